"""`tallysim sweep`: the cross product of config values, one run directory each, resumable.

    python -m tallysim sweep [--config FILE] [--smoke] key=v1,v2,... [key=v ...] --out DIR [--quiet]

Axes come from the config file's optional top-level `sweep` section ({"key": [values, ...]}) and from
the command line (`key=v1,v2`, comma-separated; tuple-valued keys such as data.input_shape separate
values with ';' instead, e.g. data.input_shape=28x28x1;32x32x3). A command-line axis replaces a file
axis with the same key. An axis with one value is a plain override and is not part of the run names.

Layout of DIR:
    DIR/sweep.json            the axes; the runs: name, overrides, status (rewritten after every run)
    DIR/<name>/               one `tallysim run` directory (config.json, partition.json, metrics.jsonl)
    DIR/<name>/done.json      written after the run returned: the run is complete
    DIR/<name>/error.txt      the run failed (the sweep goes on; exit code 1 at the end)

<name> joins the varying keys and values in axis order, `k1=v1__k2=v2` ('/' becomes '-').
Runs that differ only in per-lane fields (lanes.py) run as one compiled program per group
(`--one-at-a-time`: each on its own); every run still gets its own directory and files.
Rerunning the same command skips complete runs, continues partial ones from their checkpoint
(`checkpoint.npz`) and reruns partial ones without one, so an interrupted sweep resumes where it stopped
(a checkpoint of another config than the sweep's now is refused before any run: sweep_resume.py). Every configuration is validated before the first run starts; a sweep of more
than MAX_RUNS (10,000) runs is refused before any is listed.
"""
from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

from tallysim import atomic, config, outdir, sweep_arguments, sweep_data, sweep_plan, sweep_records, sweep_resume  # noqa: F401 - sweep.config, as tests patch it
from tallysim import progress as progress_bars
from tallysim.progress_base import say
from tallysim.config import Config, ConfigError
from tallysim.sweep_axes import (MAX_RUNS, check_count, check_eval_peers, check_fields_read, expand, repeated_runs, warn_repeated_runs, warn_soft_zero, warn_unmerged,  # noqa: F401 - sweep.X, as before
                                 file_axes, parse_axis, run_numbers, safe_name)
# The order the runs go in, those finished before, and which batches compile: sweep_plan.py
from tallysim.sweep_arguments import check_runs  # noqa: F401 - sweep.check_runs, as before
from tallysim.sweep_plan import compiles, config_diff as _config_diff, done_before, plan as _plan  # noqa: F401 - sweep.done_before, sweep._plan, as before
# The runs checked before any runs (configs, the data, devices, warnings, --out): sweep_checks.py
from tallysim.sweep_checks import (DONE, INDEX, check_devices, checked_out, command_configs, configs,  # noqa: F401 - sweep.X, as before
                                   unfinished, warn_before)
# What the sweep records of each run's outcome (done.json, error.txt, sweep.json): sweep_records.py
from tallysim.sweep_records import (done as _done, fail as _fail, finished_elsewhere as _finished_elsewhere,  # noqa: F401
                                    jsonable as _jsonable, write_index as _write_index)


# ----------------------------------------------------------------------------- running

def run_sweep(base_cfg: Config, runs: list[tuple[str, list[str]]], out_dir, progress: bool = True,
              log: Callable[[str], None] = print, meta: Optional[dict] = None, grouped: bool = True,
              runs_bar=None, validated: Optional[list] = None, checkpoint_every: Optional[int] = None) -> list[dict]:
    """Run every (name, overrides) into out_dir/name; returns one record per run:
    {name, overrides, dir, status: done|done_before|failed, [summary|error]} (done_before: finished by an
    earlier call, left as it was; "skipped" before 2026-12-07, metrics.done_before reads both).

    All configs are validated first (ConfigError before anything is created). Complete runs
    (done.json present) are skipped; partial tallysim run directories are rerun with overwrite=True
    (a directory holding anything tallysim did not write stops the sweep before it starts). A run that
    fails (NonFiniteLoss, a data-dependent ConfigError, or any other exception) leaves error.txt in
    its directory and the sweep continues. `progress` shows a bar over the runs (done / total, ETA;
    `runs_bar`: a caller's, e.g. a figure's over all its groups) above each run's per-round bar.

    `grouped` (the default): runs that differ only in per-lane fields (lanes.py: learning rates,
    weights, temperatures, partition, seed, rounds) run as one compiled program each group, with the
    same files and metrics as one at a time; `grouped=False` runs them one after another.
    `validated`: `configs(base_cfg, runs)` as the caller already has it (a figure's plan), not made again.
    `checkpoint_every`: each run's checkpoint cadence, as `run`'s (None: every few minutes; 0: never); a
    group of runs trained as one program saves each run's own only at a cadence given (run.run_group), and
    each resumes alone.
    """
    runs = check_runs(runs, out_dir, progress=progress, grouped=grouped)   # pairs, named once, a path, flags
    checkpoint_every = sweep_arguments.check_hooks(log, meta, checkpoint_every)   # -1, None for log, a list for meta
    cfgs = configs(base_cfg, runs) if validated is None else validated
    if len(cfgs) != len(runs):
        raise ValueError(f"run_sweep: {len(cfgs)} validated configs for {len(runs)} runs")
    # eval_peers above a run's peers: the run (run.run, no check_read) evaluated every peer in silence,
    # the rows beside the others' averaging another share; refused before anything runs, as `tallysim
    # sweep` and a figure's plan refuse it (not check_fields_read: a figure's base serves groups that
    # legitimately leave some of its fields unread, and an API caller's base may too)
    check_eval_peers(runs, cfgs)
    warn_before(runs, cfgs)                  # the API's sweep too, not only `tallysim sweep`
    check_devices(runs, cfgs)                # before any run directory is created
    out_dir = checked_out(out_dir, runs, cfgs)     # nothing is created or replaced until every run dir is ours (or absent)
    from tallysim.data import loading
    loading.check_datasets(unfinished(runs, cfgs, out_dir))     # data.path, a misspelt data.name: as the CLI's
    with outdir.sweep_lock(out_dir):         # a second sweep into out_dir at once: refused before its index
        return _run_locked(runs, cfgs, out_dir, progress, log, meta, grouped, runs_bar, checkpoint_every)


def _run_locked(runs, cfgs, out_dir: Path, progress: bool, log, meta, grouped: bool,
                runs_bar, every: Optional[int]) -> list[dict]:
    """run_sweep's runs, with out_dir's sweep lock held."""
    from tallysim import run as runmod
    sweep_resume.refuse_lost_checkpoints(runs, cfgs, out_dir, DONE)
    sweep_resume.refuse_smoke_mix(out_dir, runs, (meta or {}).get("smoke"), DONE)
    records = [{"name": name, "overrides": list(ov), "dir": str(out_dir / name), "status": "pending"}
               for name, ov in runs]
    _write_index(out_dir, records, meta)
    n = len(runs)
    sweep_records.say_again(runs, cfgs, out_dir, log)     # NaN-stopped runs that run again, and why
    own_bar = runs_bar is None
    bar = progress_bars.runs_bar(n, progress, done_before=done_before(out_dir, runs, cfgs)) if own_bar else runs_bar
    batches = _plan(cfgs, [out_dir / name for name, _ in runs], grouped)
    compiling = compiles(cfgs, [out_dir / name for name, _ in runs], batches)
    if bar and own_bar:             # a caller's bar (a figure's) was told its groups' compiles when it opened
        bar.expect_compiles(sum(compiling))
    try:
        for batch, compiled in zip(batches, compiling):
            if bar:
                bar.batch_starts(compiled)
            if len(batch) > 1:
                _run_grouped(runmod, batch, runs, cfgs, records, out_dir, progress, log, meta, every)
                if bar:
                    bar.done(len(batch))
                continue
            i = batch[0]
            (name, _), cfg, rec = runs[i], cfgs[i], records[i]
            run_dir = out_dir / name
            if (run_dir / DONE).exists():       # kept, with a note where its config, code or rows changed since
                sweep_records.skip_done(run_dir, rec, cfg, log, f"[{i + 1}/{n}]")
                if bar:
                    bar.done(skipped=True)      # done before: not in the bar's rate
                continue
            if line := sweep_plan.diverged_before(run_dir, cfg):     # final: it would diverge again
                sweep_records.skip_diverged(run_dir, rec, line, log, f"[{i + 1}/{n}]")
            else:       # one stopped on a non-finite loss under another config or code: _run_locked said why
                _run_one(runmod, i, runs, cfgs, records, out_dir, progress, log, meta, every)
            if bar:
                bar.done(skipped=bool(line))
    except BaseException:
        for rec in records:
            if rec["status"] == "running":
                rec["status"] = "interrupted"
        _write_index(out_dir, records, meta)
        raise
    finally:
        if bar and own_bar:
            bar.close()
    _finished_elsewhere(out_dir, records, log)
    from tallysim.build import data_digest_now      # the data loaded only where every run of it was skipped
    sweep_data.skipped_on_other_data(records, cfgs, log, data_digest_now)
    _write_index(out_dir, records, meta)
    return records


def _run_one(runmod, i: int, runs, cfgs, records, out_dir: Path, progress: bool, log, meta,
             every: Optional[int] = None) -> None:
    """Run i alone (resuming it from its checkpoint if it has one) and record how it went."""
    (name, overrides), cfg, rec = runs[i], cfgs[i], records[i]
    run_dir = out_dir / name
    log(f"[{i + 1}/{len(runs)}] {name}")
    rec["status"] = "running"
    _write_index(out_dir, records, meta)
    t0 = time.time()
    try:
        last = _run_or_resume(runmod, cfg, run_dir, progress, log, every)
    except outdir.Busy as e:
        _fail(run_dir, rec, str(e), log, busy=True)
    except (runmod.NonFiniteLoss, ConfigError) as e:
        _fail(run_dir, rec, str(e), log, diverged=isinstance(e, runmod.NonFiniteLoss))
    except Exception as e:     # a bug in one configuration should not lose the rest of the sweep
        _fail(run_dir, rec, f"{type(e).__name__}: {e}", log, detail=traceback.format_exc())
    else:
        _done(run_dir, rec, runmod, cfg, overrides, last, time.time() - t0, log)
    _write_index(out_dir, records, meta)


def _run_grouped(runmod, batch: list[int], runs, cfgs, records, out_dir: Path, progress: bool, log,
                 meta, every: Optional[int] = None) -> None:
    """Several runs as one compiled program (run.run_group). What stops the program decides what
    follows, so that no run is computed twice and no error is reported twice:
    - a directory another process is writing (outdir.Busy, claimed before anything runs): its runs go one
      at a time, so only the busy ones fail (and count as done if that process finishes them);
    - one configuration refused while the group is built (build.RunRefused: its data, e.g. an
      impossible partition): that run fails, reported once, and the others run as a group without it;
    - out of memory (the group's lanes already went in smaller chunks, run.run_group): its runs that
      finished are done (their done.json written as each finished); those with a checkpoint resume from
      it, each alone; the rest run as two halves, down to single runs (every run of the
      group ran again from round 1, its checkpoint and rows overwritten, until late on 2026-12-07);
    - anything else is the compiled program's, which each run alone would compile too: every run of
      the group fails with it, reported once (`--one-at-a-time` runs them apart)."""
    from tallysim import build
    if len(batch) == 1:
        return _run_one(runmod, batch[0], runs, cfgs, records, out_dir, progress, log, meta, every)
    n = len(runs)
    names = [runs[i][0] for i in batch]
    log(f"[{run_numbers(batch)}/{n}] {len(batch)} runs as one program: {', '.join(names)}")
    for i in batch:
        records[i]["status"] = "running"
    _write_index(out_dir, records, meta)
    t0 = time.time()

    def finished(k: int, last) -> None:     # its last row written, or its loss not finite: done or failed
        i = batch[k]                        # now, though the group goes on (and an out-of-memory fallback keeps it)
        if isinstance(last, Exception):
            _fail(out_dir / runs[i][0], records[i], str(last), log, diverged=isinstance(last, runmod.NonFiniteLoss))
        else:
            _done(out_dir / runs[i][0], records[i], runmod, cfgs[i], runs[i][1], last, (time.time() - t0) / len(batch), log)
        _write_index(out_dir, records, meta)
    try:
        results = runmod.run_group([cfgs[i] for i in batch], [out_dir / runs[i][0] for i in batch], progress,
                                   warn=False, checkpoint_every=every, on_finished=finished)   # warned for the whole sweep
    except outdir.Busy:        # another process writes one of the directories (two copies of a sweep):
        for i in batch:        # one at a time, each run claims its own; the busy ones are recorded so
            _run_one(runmod, i, runs, cfgs, records, out_dir, progress, log, meta, every)
        return
    except build.RunRefused as e:
        i = batch[e.index]
        log(f"[{i + 1}/{n}] {runs[i][0]}")
        _fail(out_dir / runs[i][0], records[i], str(e), log)
        rest = [j for j in batch if j != i]
        for j in rest:
            records[j]["status"] = "pending"
        return _run_grouped(runmod, rest, runs, cfgs, records, out_dir, progress, log, meta, every)
    except Exception as e:     # noqa: BLE001 - recorded against the group's runs, the sweep goes on
        first = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        left = [i for i in batch if records[i]["status"] == "running"]   # those finished or stopped are kept
        if runmod.out_of_memory(e):
            alone, rest = sweep_resume.after_group(left, [out_dir / runs[i][0] for i in left])
            stopped = sum(records[i]["status"] == "failed" for i in batch)
            say(log, f"  the group did not fit in memory as one program ({first}); " + sweep_resume.after_group_words(
                len(batch) - len(left) - stopped, len(alone), len(rest), stopped), ", ".join(names))
            for i in alone:
                _run_one(runmod, i, runs, cfgs, records, out_dir, progress, log, meta, every)
            for part in (rest[:len(rest) // 2], rest[len(rest) // 2:]):
                for j in part:
                    records[j]["status"] = "pending"
                if part:
                    _run_grouped(runmod, part, runs, cfgs, records, out_dir, progress, log, meta, every)
            return
        log(f"  FAILED as one program, all {len(left)} runs: {first} (see each run's error.txt; "
            "--one-at-a-time runs them apart)")
        detail = traceback.format_exc()
        for i in left:
            _fail(out_dir / runs[i][0], records[i], first, lambda _: None, detail=detail)
        _write_index(out_dir, records, meta)
        return
    seconds = (time.time() - t0) / len(batch)
    for i, res in zip(batch, results):
        (name, overrides), rec = runs[i], records[i]
        if rec["status"] in ("done", "failed"):     # finished or stopped while the group went on (`finished`)
            continue
        if isinstance(res, Exception):
            _fail(out_dir / name, rec, str(res), log, diverged=isinstance(res, runmod.NonFiniteLoss))
        else:
            _done(out_dir / name, rec, runmod, cfgs[i], overrides, res, seconds, log)
    _write_index(out_dir, records, meta)


def _run_or_resume(runmod, cfg: Config, run_dir: Path, progress: bool, log, every: Optional[int] = None) -> dict:
    """A partial run with a checkpoint of this very config continues from it; anything else reruns; either
    saves a checkpoint every `every` rounds (run.run's checkpoint_every)."""
    from tallysim import checkpoint
    if (run_dir / checkpoint.FILE).is_file():
        try:
            meta = checkpoint.read_meta(run_dir)
            # meta's round is the last one done (the run's own line says "from round R+1 ... (checkpoint
            # after round R)"); "resuming from round R" beside it named two different rounds
            log(f"  resuming from round {meta['round'] + 1} (its checkpoint after round {meta['round']}, "
                f"seed index {meta['lo']})")
            return runmod.run(cfg, str(run_dir), progress=progress, resume=True, checkpoint_every=every)
        except outdir.Busy:
            raise                      # another process runs it: not a reason to start it again
        except ConfigError as e:
            say(log, f"  cannot resume ({e}); running it again", run_dir.name)
    return runmod.run(cfg, str(run_dir), overwrite=True, progress=progress, checkpoint_every=every)
