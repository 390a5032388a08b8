"""The order a sweep's runs go in (batches of runs, each one compiled program), how many finished
before, and which batches compile a program of their own: what the bar over the runs needs to promise
an ETA (progress_base.RunsClock); and what `sweep --dry-run` says each run would do there (`states`,
`strangers`). Split from sweep.py, which re-exports these names."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from tallysim import config
from tallysim.config import Config, ConfigError
from tallysim.fields import count, first_few
from tallysim.results import metrics

DONE = metrics.DONE


def done_before(out_dir: Path, runs, cfgs: Optional[list] = None) -> int:
    """How many of `runs` (name, overrides) finished before (their DONE is there) or, given their `cfgs`,
    stopped before on a non-finite loss under the same config (diverged_before): the sweep skips them, so
    the bar over runs neither waits for them nor, with only they left, promises an ETA (a diverged run
    counted as to do made the first ETA one run's time too long per such run)."""
    dirs = [Path(out_dir) / name for name, _ in runs]
    return sum((d / DONE).exists() if cfgs is None else final(d, cfgs[i]) for i, d in enumerate(dirs))


def final(run_dir: Path, cfg: Config) -> bool:
    """Whether the sweep (and a figure) will not run run_dir again: it finished (DONE), or it stopped on a
    non-finite loss under this very config (diverged_before). The one test of the sweep's skip, its bar,
    its data check and a figure selection's missing runs."""
    return (run_dir / DONE).exists() or diverged_before(run_dir, cfg) is not None


def diverged_before(run_dir: Path, cfg: Config) -> Optional[str]:
    """error.txt's line where run_dir holds a run stopped by a non-finite loss under this very config and
    code (tallysim's and its plugins'), else None. Such a run keeps no checkpoint
    (results.run_dir.how_stopped), so run again it computed the same rounds from round 1 and diverged in
    the same one: the sweep (and a figure) skips it as final, failed, and says so; one of another config
    (a smaller optim.lr in the base) or under other code (a fix) runs again, saying why (again_why)."""
    line = _diverged_line(run_dir)
    return None if line is None or again_why(run_dir, cfg) else line


def again_why(run_dir: Path, cfg: Config) -> str:
    """Why a run stopped on a non-finite loss before runs again: its config.json differs from cfg, a plugin's
    file or tallysim's code has changed since it ran ("" where none: it is skipped, diverged_before). A
    finished run is kept under other code (sweep_records.skip_done notes it); this one has no result to
    keep, and the skip rested on the same config and code giving the same NaN, which a fix changes."""
    kind, what = changed_since(run_dir, cfg)
    return {"config": f"its config.json differs from this config ({what})",
            "plugin": f"plugin {what} has changed since it ran", "code": what}.get(kind, "")


def changed_since(run_dir: Path, cfg: Config) -> tuple[str, str]:
    """What has changed since run_dir ran, first found of: ("config", its config.json's differing keys),
    ("plugin", the edited plugins), ("code", tallysim_change's sentence); ("", "") where nothing. The one
    test behind a finished run's notes (sweep_records.skip_done, state) and a NaN-stopped run's again_why,
    each wording it its own way."""
    if diff := config_diff(run_dir, cfg):
        return "config", first_few(diff, 4, ", ...")
    if edited := plugin_edits(run_dir):
        return "plugin", ", ".join(edited)
    return ("code", changed) if (changed := tallysim_change(run_dir)) else ("", "")


def tallysim_change(run_dir: Path) -> str:
    """"tallysim's code has changed since it ran (it ran ...; now ...)" where the code that computed
    run_dir's last rounds (config.json's `code`, or that of its last resume under other code) is another
    version or source than this process runs; "" where the same or unrecorded (before 2026-12-06)."""
    from tallysim import code_identity
    try:
        doc = json.loads((run_dir / metrics.CONFIG).read_text())
        was = next((e["code"] for e in reversed(doc.get("resumed") or []) if isinstance(e, dict) and "code" in e),
                   doc.get("code"))
    except (OSError, ValueError, UnicodeDecodeError, AttributeError, TypeError):
        return ""
    now = code_identity.identity()
    if not code_identity.changed(was, now):
        return ""
    return (f"tallysim's code has changed since it ran (it ran {code_identity.describe(was)}; now "
            f"{code_identity.describe(now)})")


def again_line(run_dir: Path, cfg: Config) -> str:
    """The line a sweep says before it runs again a run that stopped on a non-finite loss before: why
    (again_why); "" for any other run."""
    if _diverged_line(run_dir) is None or not (why := again_why(run_dir, cfg)):
        return ""
    return (f"  note: {run_dir.name} stopped on a non-finite loss before, and runs again from round 1: {why}, "
            "so it may not diverge again")


def restart_line(run_dir: Path, cfg: Config) -> str:
    """The line a sweep says before it runs again from round 1 a run that had computed rounds but saved no
    checkpoint (killed, `kill -9` or a lost machine, before its first one): its rows are replaced and those
    rounds computed again. Only `--dry-run` said so; the sweep itself started it over unsaid. "" for any other
    run (done, resumable, stopped on a non-finite loss: again_line, or with no row yet)."""
    from tallysim import checkpoint, outdir
    if (run_dir / DONE).exists() or (run_dir / checkpoint.FILE).is_file() or _diverged_line(run_dir) is not None \
            or outdir.run_state(run_dir) != "stopped" or outdir.being_written(run_dir):
        return ""
    try:
        rounds = json.loads((run_dir / metrics.CONFIG).read_text()).get("rounds")
        lines = (run_dir / metrics.METRICS).read_text().splitlines()
        last = json.loads(lines[-1]).get("round") if lines else None
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return ""
    if type(last) is not int:
        return ""
    other = f", of another config ({first_few(diff, 4, ', ...')})," if (diff := config_diff(run_dir, cfg)) else ""
    return (f"  note: {run_dir.name} stopped after round {last} of {rounds} before its first checkpoint, and runs "
            f"again from round 1: its rows{other} are replaced and those rounds computed again (--checkpoint-every "
            "K saves a checkpoint every K rounds; without it a run alone saves one every 5 minutes, runs that "
            "share a program none)")


def _diverged_line(run_dir: Path) -> Optional[str]:
    """error.txt's non-finite-loss line where run_dir holds a run stopped so (no done.json, no checkpoint, a
    readable config.json), whatever its config or code; else None."""
    from tallysim import checkpoint, outdir
    from tallysim.results.run_dir import DIVERGED
    if (run_dir / DONE).exists() or (run_dir / checkpoint.FILE).is_file() or not outdir.is_run_dir(run_dir) \
            or not (run_dir / metrics.CONFIG).is_file():
        return None
    try:
        text = (run_dir / metrics.ERROR).read_text(encoding="utf-8", errors="replace")
        # config_diff reads a config.json it cannot parse as "no difference": a damaged one is not this config
        if not isinstance(json.loads((run_dir / metrics.CONFIG).read_text()), dict):
            return None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return next((x.strip() for x in text.splitlines() if DIVERGED in x), None)


def plan(cfgs: list[Config], dirs: list[Path], grouped: bool) -> list[list[int]]:
    """The order runs go in: batches of run indices, each one compiled program. Grouped, the runs
    still to do are grouped by their static signature (lanes.group); a finished run, one stopped by a
    non-finite loss under its config (skipped), or a partial one with a checkpoint (it resumes on its
    own), is a batch of one."""
    from tallysim import checkpoint
    from tallysim.sim import lanes
    todo = [i for i, d in enumerate(dirs) if grouped and not (d / checkpoint.FILE).is_file()
            and not final(d, cfgs[i])]
    batches = {min(g): g for g in (([todo[k] for k in grp] for grp in lanes.group([cfgs[i] for i in todo])))}
    out, seen = [], set()
    for i in range(len(cfgs)):
        if i in seen:
            continue
        batch = batches.get(i, [i])
        seen.update(batch)
        out.append(batch)
    return out


def compiles(cfgs: list[Config], dirs: list[Path], batches: list[list[int]],
             cached: Optional[bool] = None) -> list[int]:
    """Per batch of `plan`: how many programs running it compiles (one per chunk width of its lanes:
    seeds=5 with seed_chunk=2 run chunks of 2, 2 and 1, and the chunk of 1 compiles its own; measured
    13.8 s of 30.0 s of compiling there). A finished batch (skipped) compiles none. With the persistent
    compile cache in effect (`cached`; None: startup.cache_in_effect()), a program (program_key and
    width) an earlier batch of this sweep compiled is read from it instead (one at a time, seed=0,1
    compiled 7.9 s then 1.3 s); without it each run builds and compiles its programs anew (seed=1
    compiled 12.8 s where seed=0 took 14.3 s), and counting it as cached made the ETA short by a
    compile per such run. A width sized to memory at run time (no seed_chunk) is not known here: one."""
    if cached is None:
        from tallysim import startup
        cached = startup.cache_in_effect()
    seen, out = set(), []
    for batch in batches:
        if all(final(dirs[i], cfgs[i]) for i in batch):
            out.append(0)
            continue
        batch_cfgs = [cfgs[i] for i in batch]
        keys = {(program_key(batch_cfgs), width) for width in widths(batch_cfgs)}
        out.append(len(keys - seen) if cached else len(keys))
        seen |= keys
    return out


def widths(cfgs: list[Config]) -> list[int]:
    """The widths of the chunks a batch's lanes (each configuration's seeds) run in, as build.auto_chunk
    cuts them where a configuration sets seed_chunk (the smallest asked for); all in one otherwise."""
    from tallysim.config_shapes import asked_chunk
    lanes = sum(c.seeds for c in cfgs)
    chunk = asked_chunk(cfgs, lanes) or lanes
    return [chunk] + ([lanes % chunk] if lanes % chunk else [])


def program_key(cfgs: list[Config]) -> tuple:
    """What a batch's compiled program depends on besides its chunk width (`widths`): the static
    signature (lanes.signature: shapes and static fields), its lanes (each configuration's seeds and
    seed_chunk) and every lane field's values in it. A lane field the batch does not vary is a constant in the program (Context.consts), so one at
    a time optim.lr=0.02,0.05 compile twice (7.9 s, then 7.7 s where seed=1 took 1.3 s, the cache's);
    one it varies is an array, but its distinct values are static facts too (lanes.choices)."""
    from tallysim.sim import lanes
    values = tuple((k, tuple(sorted({repr(config.get_field(c, k)) for c in cfgs}))) for k in lanes.traced())
    return lanes.signature(cfgs[0]), tuple(sorted((c.seeds, repr(c.seed_chunk)) for c in cfgs)), values


def config_diff(run_dir: Path, cfg: Config) -> list[str]:
    """Keys whose value in run_dir/config.json differs from cfg (a stale run after a config edit); [] where
    it cannot be read."""
    try:
        old = json.loads((run_dir / metrics.CONFIG).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    if not isinstance(old, dict):
        return []
    for key in ("resumed", "placement", "code"):     # records of the run (resumes, devices, code), not fields
        old.pop(key, None)
    return config.diff(old, json.loads(json.dumps(config.to_dict(cfg))))


def plugin_edits(run_dir: Path) -> list[str]:
    """The plugins whose source file differs from the one run_dir's finished run recorded (config.json's
    `code.plugins`, written since 2026-12-07): its rows are the old code's. [] where unrecorded, unreadable
    or not imported in this process."""
    from tallysim.protocols import plugin_import
    try:
        was = json.loads((run_dir / metrics.CONFIG).read_text()).get("code", {}).get("plugins")
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return []
    if not isinstance(was, dict):
        return []
    return sorted(m for m, d in was.items() if isinstance(m, str) and d
                  and plugin_import.source_digest(m) not in (None, d))


def state(run_dir: Path, cfg: Config) -> str:
    """What the sweep would do with one run's directory, as `--dry-run` says it: "done" (skipped), "will
    resume from round R+1, its checkpoint after round R" (sweep._run_or_resume), "will run" (again, from
    round 1, where the directory holds a run stopped before its first checkpoint). A finished run whose directory was
    renamed by hand is "will run": the dry run listed the runs alone, not which would run again."""
    from tallysim import checkpoint, outdir
    if outdir.being_written(run_dir):
        # a `tallysim run --out` of it, or another sweep's run, writing it now: it was "will run again from
        # round 1 (it stopped before its first checkpoint)", and the real sweep records it failed (busy)
        return ("being written by another tallysim process now; the sweep would not touch it and would record "
                "it failed, unless that process finishes it first")
    if (run_dir / DONE).exists():
        kind, what = changed_since(run_dir, cfg)
        return "done" + {"config": f"; skipped, though its config.json differs ({what})",
                         "plugin": f"; skipped, though plugin {what} has changed since it ran",
                         "code": f"; skipped, though {what} (its rows stay the old code's)"}.get(kind, "")
    if line := diverged_before(run_dir, cfg):
        return (f"failed before, skipped: it stopped on a non-finite loss under this config ({line}), so run "
                f"again it would diverge again; delete {run_dir} to run it anyway")
    if (run_dir / checkpoint.FILE).is_file():
        try:
            # the checkpoint's round is the last one done: "will resume from round 1" read as the run's first
            # round again, where the run itself then said "resuming ... from round 2 of 4"
            done = checkpoint.read_meta(run_dir)['round']
            return f"will resume from round {done + 1}, its checkpoint after round {done}"
        except ConfigError as e:
            return f"will run again from round 1 (its checkpoint cannot be resumed: {e})"
    if _diverged_line(run_dir) is not None:       # not skipped: another config, or code, than the NaN's
        return f"will run again from round 1 (it stopped on a non-finite loss before, but {again_why(run_dir, cfg)})"
    if outdir.is_run_dir(run_dir) and (run_dir / metrics.METRICS).is_file():
        # of another config (the sweep's edited since): its rows are replaced by this config's, unsaid
        diff = config_diff(run_dir, cfg)
        return (f"will run again from round 1 (it {outdir.how_stopped(run_dir)}"
                + (f"; its rows, of another config ({first_few(diff, 4, ', ...')}), are "
                   "replaced" if diff else "") + ")")
    return "will run"


def strangers(out_dir: Path, runs, cfgs: list[Config]) -> list[str]:
    """One line per run directory in out_dir that is no run of this sweep (renamed by hand, or another
    sweep's), naming the run of this sweep whose config it holds where there is one: that run would run
    again, its results sitting under the other name."""
    from tallysim import outdir
    names = {name for name, _ in runs}
    try:
        entries = sorted(p for p in Path(out_dir).iterdir() if p.name not in names and outdir.is_run_dir(p))
    except OSError:
        return []
    lines = []
    for d in entries:
        # a run still to do whose config it holds: renamed by hand, its results sit there and it runs again
        # (config_diff says [] of a config.json it cannot read: such a folder holds no run's config)
        same = [name for (name, _), cfg in zip(runs, cfgs) if not (Path(out_dir) / name / DONE).exists()
                and _readable(d / metrics.CONFIG) and not config_diff(d, cfg)]
        lines.append(f"not part of this sweep: {d.name} (renamed? it holds the config of run {same[0]}, which will "
                     f"run again; rename it back to {same[0]} to keep its results)" if same else
                     f"not part of this sweep: {d.name} (renamed or from another sweep?)")
    return lines


def _readable(path: Path) -> bool:
    """Whether `path` holds a JSON object (a config.json config_diff can compare)."""
    try:
        return isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError, UnicodeDecodeError):
        return False


def dry_run(args, runs, cfgs: list[Config], checked_out) -> int:
    """`sweep --dry-run` (moved from sweep.main): each run with what the sweep would do in --out (`state`),
    the directories of no run of it (`strangers`), and the runs and compiled programs it would make;
    `checked_out`: sweep's check of --out (what the real sweep refuses of it, the dry run refuses too)."""
    from tallysim import outdir, sweep_resume
    from tallysim.sim import lanes
    out_dir = None
    if args.out is not None:     # what the real sweep refuses of --out ("" too), the dry run refuses too
        out_dir = checked_out(args.out, runs, cfgs)
        if not out_dir.is_dir() or not any(out_dir.iterdir()):
            out_dir = None       # nothing there: every run would run, and the list says no more
        else:                    # a checkpoint this sweep could not continue, as the real one refuses
            sweep_resume.refuse_lost_checkpoints(runs, cfgs, out_dir, DONE)
            sweep_resume.refuse_smoke_mix(out_dir, runs, bool(getattr(args, "smoke", False)), DONE)
            if outdir.being_written(out_dir):    # the real sweep is refused (sweep_busy); the list said nothing
                print(f"note: {out_dir} is being written by another tallysim sweep (or figure) right now: "
                      "this sweep would be refused until it ends; the runs' fates below are as of now")
    for i, ((name, overrides), cfg) in enumerate(zip(runs, cfgs), 1):   # each run's fate in DIR
        fate = f" ({state(out_dir / name, cfg)})" if out_dir is not None else ""
        print(f"[{i}/{len(runs)}] {name}: {' '.join(overrides)}{fate}")
    for line in strangers(out_dir, runs, cfgs) if out_dir is not None else []:
        print(line)
    grouped = not getattr(args, "one_at_a_time", False)
    if out_dir is None:
        groups = 1 if not cfgs else len(lanes.group(cfgs))
        print(f"{count(len(runs), 'run')}; {count(groups if grouped else len(runs), 'compiled program')}")
        return 0
    # runs already done are skipped and compile nothing: count what the real sweep would do
    dirs = [out_dir / name for name, _ in runs]
    done = sum((d / DONE).exists() for d in dirs)
    # a run stopped on a non-finite loss under this config and code is skipped too (`final`): it was counted "to run"
    diverged = sum(final(d, c) for d, c in zip(dirs, cfgs)) - done
    skipped = f", {diverged} skipped as diverged before" if diverged else ""
    programs = sum(compiles(cfgs, dirs, plan(cfgs, dirs, grouped)))
    print(f"{count(len(runs), 'run')} ({done} done{skipped}, {len(runs) - done - diverged} to run); "
          f"{count(programs, 'compiled program')}")
    return 0
