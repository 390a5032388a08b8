"""What a sweep records of each run's outcome: its `done.json` (finished; a grouped run's as soon as its
last row is written, run.run_group's on_finished), its `error.txt` (failed), and the sweep's index
`sweep.json` (every run's status, rewritten as they change). Split from sweep.py, which re-exports
these names (sweep._done, sweep._fail, ... as before)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

from tallysim import atomic, outdir
from tallysim.config import Config
from tallysim.results import metrics

DONE = metrics.DONE
INDEX = metrics.SWEEP


def jsonable(d: dict) -> Any:
    return json.loads(json.dumps(d))


# meta's key (not written as such) for the whole plan of a figure group run in part (`figure --only/--panel`,
# figures/selection.left_alone): its runs in order, each this sweep's run's name or the record of one it
# leaves alone ("not_run", done before, or failed before), so that sweep.json lists every run of the group
PLAN = "_plan"
NOT_RUN = "not_run"         # sweep.json's status of a run of the plan no sweep has run yet (results/sweep_gaps.py)


def write_index(out_dir: Path, records: list[dict], meta: Optional[dict]) -> None:
    meta = dict(meta or {})
    plan = meta.pop(PLAN, None)
    if plan:    # a selection's sweep.json listed its own runs alone, read as the whole group until a full pass
        mine = {r["name"]: r for r in records}
        records = [mine.pop(e) if isinstance(e, str) else e for e in plan if not isinstance(e, str) or e in mine] \
            + list(mine.values())
    doc = {**meta, "runs": records}
    atomic.write_text(out_dir / INDEX, json.dumps(doc, indent=2) + "\n")


def finished_elsewhere(out_dir: Path, records: list, log) -> None:
    """A run another process was writing (busy) that has finished meanwhile is done, not failed: two
    copies of one sweep each left the other's runs "failed" in sweep.json, and the last to end wrote it."""
    for rec in records:
        if rec.get("busy") and rec["status"] == "failed" and (out_dir / rec["name"] / DONE).is_file():
            rec.update(status="done", finished_by="another process")
            rec.pop("error", None)
            log(f"  {rec['name']}: finished by the other process meanwhile")


def done(run_dir: Path, rec: dict, runmod, cfg: Config, overrides, last: dict, seconds: float, log) -> None:
    """Record a finished run: its done.json (the sweep skips it from now on), its summary line."""
    err = run_dir / metrics.ERROR      # an earlier attempt's (a resumed run keeps its files): now untrue
    if err.is_file() and not err.is_symlink():
        err.unlink()
    atomic.write_text(run_dir / DONE, metrics.dumps_row({      # strict JSON: the last row's inf as "Infinity"
        "name": rec["name"], "overrides": list(overrides), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(seconds, 3), "last": last}, indent=2) + "\n")
    rec["status"] = "done"
    rec["summary"] = metrics.summary_line(cfg, last)
    if gone := last.get(metrics.SEEDS_NONFINITE):     # a diverged seed's NaN or inf in a mean: main's closing lines
        rec["seeds_diverged"] = "; ".join(f"{k}: {metrics.diverged_of(last, k)}" for k in gone)
    log("  " + rec["summary"])


def fail(run_dir: Path, rec: dict, message: str, log, detail: Optional[str] = None,
         diverged: bool = False, busy: bool = False) -> None:
    """Record a failed run. `busy`: another process (an identical sweep) is writing run_dir, so nothing
    is written into it; its error.txt would stay beside the done.json that process writes."""
    err = run_dir / metrics.ERROR
    if not busy:
        outdir.mark(run_dir)           # so a rerun may replace this failed run
        if detail or not err.exists():
            atomic.write_text(err, (detail or message).rstrip("\n") + "\n")
    rec["status"] = "failed"
    rec["error"] = message.splitlines()[0] if message else "failed"
    if busy:
        rec["busy"] = True                 # finished_elsewhere: done if that process finishes it first
    if diverged:                       # its loss went non-finite (run.NonFiniteLoss): a result, not a bug
        rec["diverged"] = True
    log(f"  FAILED: {rec['error']}" + ("" if busy else f" (see {err})"))     # --quiet: in main's closing lines


def skip_done(run_dir: Path, rec: dict, cfg: Config, log, where: str) -> None:
    """Record a run an earlier sweep finished as done before, kept as it is, with a note where its config.json
    differs from cfg, a plugin's file or tallysim's code has changed since it ran (its rows are the old
    code's: sweep_plan.tallysim_change; a code change alone was skipped in silence), or its rows were cut."""
    from tallysim import sweep_plan
    from tallysim.progress_base import say
    rec["status"] = metrics.DONE_BEFORE     # not "skipped": its results are there (docs/sweeps.md)
    log(f"{where} skip {run_dir.name} (done)")
    again = f"delete {run_dir / DONE} to rerun it"
    kind, what = sweep_plan.changed_since(run_dir, cfg)
    if kind == "config":
        say(log, f"  note: its config.json differs from this sweep's config ({what}); {again}", run_dir.name)
    elif kind == "plugin":      # its rows are the old plugin's
        say(log, f"  note: plugin {what} has changed since this run finished (its rows are the old code's); {again}",
            run_dir.name)
    elif kind == "code":        # kept: a result, where a NaN-stopped run has none
        say(log, f"  note: {what}: its rows are the old code's, kept as a finished run is; {again}", run_dir.name)
    elif outdir.run_state(run_dir) != "finished":   # skipped in silence; `table`: incomplete
        say(log, f"  note: its {metrics.METRICS} no longer holds the finished run's rows (emptied, cut or deleted "
            f"since it finished); {again}", run_dir.name)


def say_again(runs, cfgs: list, out_dir: Path, log) -> None:
    """Before a sweep's first run: each run that stopped on a non-finite loss before and runs again now (its
    config or code differs from the NaN's: sweep_plan.again_line), and why; it ran again unsaid, as any run.
    So is each run stopped with rows but no checkpoint (sweep_plan.restart_line), which starts again from round 1."""
    from tallysim import sweep_plan
    from tallysim.progress_base import say
    for (name, _), cfg in zip(runs, cfgs):
        if line := sweep_plan.again_line(out_dir / name, cfg) or sweep_plan.restart_line(out_dir / name, cfg):
            say(log, line, name)


def skip_diverged(run_dir: Path, rec: dict, line: str, log, where: str) -> None:
    """Record a run that stopped on a non-finite loss under this config before (sweep_plan.diverged_before)
    as failed and diverged, not run again: from round 1 it would diverge in the same round."""
    rec.update(status="failed", error=line, diverged=True)
    log(f"{where} skip {run_dir.name} (failed before: it stopped on a non-finite loss under this config, "
        f"{line}; run again it would diverge again: delete {run_dir} to run it anyway)")
