"""One function per paper figure: run a figure config's (resumable) sweeps, aggregate seeds, plot.

A figure config (`experiments/figN.json`) is JSON with:
  kind     how to plot: curves | final_vs | classes | mechanism | pareto | speed | faults | privacy |
           robustness | vocab (fig11: accuracy vs bits per peer, one panel per `panels` entry) |
           model_groups (fig12: each model group's accuracy vs its bits per peer, model.groups)
  base     config fields shared by every run (nested sections as in config.json)
  extends  (any config file, config.read_file) parent files, relative to this one, merged under it;
           shared bases live in experiments/base/ and are not figures
  groups   name -> {config fields} (one line / marker style per group); a group may also
           `include` another experiment file (its fields and its `sweep` axes; the path is relative
           to the figure file being run, even when a base names it) and add `sweep` axes
  sweep    axes applied to every group ({"key": [values]})
  smoke    {"base": {...}, "sweep": {...}, "groups": {...}, "only": [group names]}: a few-minute
           version of the figure (`only`: draw just these groups); smoke.groups names groups of
           `groups` only; a field set in both smoke.base and smoke.groups.<name> takes the group's value
  x        (final_vs, classes, faults) the swept key on the x axis; `target` the accuracy for bits-to-target
  facets   (faults) swept keys: one panel per combination of their values (`within`: the accuracy
           drop the table's "within" column allows; `probe_group`: whose probe aggregates to plot)
  panels   (pareto, vocab, model_groups) panel name -> {config fields}: every group runs once per panel with these
           fields on top (run names start `<panel>__`, so a panel's name holds no `__`), and the figure draws one panel each; the
           panels of a group form one sweep, so host-side fields (the partition) share programs.
           `smoke.panels` may replace them
  every_round  (pareto) group names whose runs give one point per evaluated round (round r of a
           FedAvg run is the FedAvg run of r rounds), so a rounds axis needs no runs of its own
Runs go to RESULTS/<name>[-smoke]/<group>/<run>/ (each a `tallysim run` directory; finished runs are
skipped, so an interrupted figure resumes), figures to OUT/<name>.png, .pdf and .csv.
"""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Optional

from tallysim import atomic, outdir, sweep, sweep_plan
from tallysim import progress as progress_bars
from tallysim.progress_base import QuietLog, result, say
from tallysim.config import ConfigError
from tallysim.fields import count, home
from tallysim.sweep_records import PLAN
from tallysim.results.metrics import panel_of  # noqa: F401 - figures.panel_of, as before
from tallysim.figures import selection
# A figure config's groups and panels as validated sweeps: figures/plans.py
from tallysim.figures.plans import group_plans, panels, with_panels  # noqa: F401 - figures.group_plans, as before
from tallysim.figures.shipped import (EXPERIMENTS, FIGURES, check_named, experiments_dir, resolve,  # noqa: F401 - as before
                                      shipped_config, unique_figures)
# What a figure checks before it runs anything: figures/preflight_checks.py
from tallysim.figures.preflight_checks import (KINDS, NAME_MAX, check_output_names, output_names,  # noqa: F401 - as before
                                               preflight)


class FigureError(RuntimeError):
    """Nothing to draw: every run of the figure failed."""


def speed_rows(spec, smoke, log) -> list[dict]:
    """`tallysim bench` rows for the spec's grid: `model`, `peers`, `dtype` (a value or a list), `steps`,
    `batch`, `loop_max`, optional `impls`, `max_peers` ({model: largest P})."""
    from tallysim.bench import throughput as bench
    s = {**spec.get("base", {}), **(spec.get("smoke", {}).get("base", {}) if smoke else {})}
    return bench.measure(s.get("model", "mlp"), s["peers"], s.get("steps", 20), s.get("batch", 32),
                         s.get("dtype", "float32"), s.get("loop_max", 100), impls=s.get("impls", bench.IMPLS),
                         max_peers=s.get("max_peers"),
                         emit=lambda r: log(f"  {r['model']} {r['dtype']} P={r['peers']} {r['impl']}: "
                                            f"{r['samples_per_s']:,.0f} samples/s"))


def make_figure(name_or_path: str, smoke: bool = False, results: str = "results", out: str = "figures",
                progress: bool = True, log=print, grouped: bool = True, start=None,
                checkpoint_every: Optional[int] = None, only=None, panel=None) -> dict:
    """Run and draw one figure. Returns the paths written and the seconds it took. Each group's
    runs are a sweep (grouped into shared programs unless `grouped=False`). `start`: as group_plans
    (a speed figure calls it before its benchmark). `checkpoint_every`: as sweep.run_sweep's.
    `only`, `panel`: run just these groups and panels (figures/selection.py); drawn once every run of
    the figure has finished, else {"missing": {group: runs left}, "seconds": ...}."""
    from tallysim.figures import arguments, drawing, plots

    arguments.check(results, out, log, checkpoint_every, progress=progress, grouped=grouped)
    results, out = home(results), home(out)  # make_figure(results="~/r") from Python: the home's, as the CLI's
    name, path, spec, kind, tag = preflight(name_or_path, smoke, results, out)
    out_dir = Path(out)
    plans = group_plans(spec, smoke, path.parent, start) if kind != "speed" else {}   # every check before any mkdir
    full, root = plans, Path(results) / tag
    if only is not None or panel is not None:       # unknown names refused here, before any folder
        plans = selection.select(full, panels(spec, smoke), only, panel, tag)
    if plans:
        plans.check_data(root)
    if kind == "speed" and start is not None:
        start()
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if kind == "speed":
        data = speed_rows(spec, smoke, log)
        if not data:
            raise FigureError(f"{tag}: the benchmark measured nothing, nothing to draw (check the "
                              f"model, peers and impls of {path})")
    else:
        data, errors = {}, []
        whole = selection.left_alone(full, plans, root) if plans is not full else {}
        recs_by_group = _run_groups(plans, root, tag, progress, log, grouped, checkpoint_every, whole)
        if plans is not full:       # --only/--panel: drawn only once every run of the figure has finished
            left = selection.missing(full, root)
            if left:
                result(log, selection.not_drawn(tag, left, root))
                return {"missing": left, "seconds": round(time.time() - t0, 1)}
            plans = full            # nothing left to run: each finished run's record, read back in silence
            # (its per-run skip lines and a second, already-full bar said nothing the first pass had not)
            recs_by_group = _run_groups(plans, root, tag, False, selection.ReadBack(log), grouped, checkpoint_every)
        left_out = []
        for gname, (cfg, runs) in plans.items():
            recs = recs_by_group[gname]
            failed = [r["name"] for r in recs if r["status"] == "failed"]
            if failed:
                left_out.append(f"{tag}: {len(failed)} runs of {gname} failed and are left out: {', '.join(failed)}")
            data[gname] = [(dict(o.split("=", 1) for o in ov), Path(results) / tag / gname / n)
                           for n, ov in runs if n not in failed]
            errors += [(Path(results) / tag / gname / r["name"], r.get("error", "failed"))
                       for r in recs if r["status"] == "failed"]
        if not any(data.values()):
            if not errors:
                raise FigureError(f"{tag}: {path} defines no runs, nothing to draw")
            where, why = errors[0]
            raise FigureError(f"{tag}: all {len(errors)} runs failed, nothing to draw; the first: {why} "
                              f"(see {where / 'error.txt'})")
        for line in left_out:       # a figure drawn without them (all failed: the error above says so)
            say(log, line)
    title = spec.get("title", name)
    paths = plots.draw(kind, spec, data, out_dir / tag, title + (" (smoke)" if smoke else ""))
    for line in drawing.partial_notes(kind, data, tag):      # points over fewer seeds, as table/plot say
        say(log, line)
    paths["seconds"] = round(time.time() - t0, 1)
    atomic.write_text(out_dir / f"{tag}.json", json.dumps(paths, indent=2) + "\n")
    result(log, f"{tag}: wrote {', '.join(str(p) for k, p in paths.items() if k != 'seconds')} "
           f"in {paths['seconds']} s")
    return paths


def _run_groups(plans, root: Path, tag: str, progress, log, grouped: bool, checkpoint_every,
                whole: Optional[dict] = None) -> dict:
    """Each group of `plans` as its sweep into root/<group>/: group name -> its run records. `whole`: a
    selection's groups' whole plans for their sweep.json (selection.left_alone)."""
    # every group's sweep lock before the first group runs: a second figure (or a sweep) writing one of
    # these directories refuses this one now, not after its first groups have run
    locks = contextlib.ExitStack()
    try:
        for gname in plans:
            locks.enter_context(outdir.sweep_lock(root / gname))
    except BaseException:
        locks.close()           # the groups locked before the refused one
        raise
    bar = None
    try:        # the bar inside: one that fails to start (a Ctrl-C, a closed terminal) gives the locks back
        # one bar over every group's runs (the per-round bar sits under it)
        bar = progress_bars.runs_bar(sum(len(runs) for _, runs in plans.values()), progress, f"{tag} runs",
                                     sum(sweep.done_before(root / g, runs, plans.configs[g])
                                         for g, (_, runs) in plans.items()))
        if bar:         # every group's compiles to come, for the ETA before the first run ends
            bar.expect_compiles(sum(_compiles(plans.configs[g], runs, root / g, grouped)
                                    for g, (_, runs) in plans.items()))
        recs_by_group = {}
        for gname, (cfg, runs) in plans.items():
            log(f"{tag}: group {gname} ({count(len(runs), 'run')})")
            recs_by_group[gname] = sweep.run_sweep(cfg, runs, root / gname, progress=progress,
                                                   log=log, grouped=grouped, runs_bar=bar,
                                                   validated=plans.configs[gname],
                                                   checkpoint_every=checkpoint_every,
                                                   meta={"axes": plans.axes.get(gname, []),   # table's order
                                                         **({PLAN: whole[gname]} if gname in (whole or {}) else {})})
    finally:
        if bar:
            bar.close()
        locks.close()
    return recs_by_group


def _compiles(cfgs: list, runs: list, out_dir: Path, grouped: bool) -> int:
    """How many of a group's batches of runs will compile a program (sweep_plan.compiles); `cfgs`: its
    runs' Configs as group_plans validated them."""
    dirs = [out_dir / name for name, _ in runs]
    return sum(sweep_plan.compiles(cfgs, dirs, sweep_plan.plan(cfgs, dirs, grouped)))


def dry_run(name_or_path: str, smoke: bool = False, grouped: bool = True, log=print,
            results: Optional[str] = None, out: Optional[str] = None, start=None, only=None, panel=None) -> int:
    """Validate a figure's runs and print, per group, its runs and compiled programs; returns the
    number of programs (as `sweep --dry-run`: grouped by lanes.signature, or one per run). `results`,
    `out`: checked as the real run checks them. `start`: as group_plans. `only`, `panel`: as make_figure's."""
    results, out = home(results), home(out)
    name, path, spec, _, tag = preflight(name_or_path, smoke, results, out)
    if spec.get("kind") == "speed":
        if only is not None or panel is not None:       # as make_figure refuses it
            selection.select({}, {}, only, panel, tag)
        log(f"{name}: a benchmark, no runs")
        return 0
    plans = group_plans(spec, smoke, path.parent, start)
    if only is not None or panel is not None:           # the selection make_figure would run
        plans = selection.select(plans, panels(spec, smoke), only, panel, tag)
    plans.check_data(Path(results if results is not None else "results") / tag)     # as make_figure's
    from tallysim.sim import lanes               # imports JAX: only once the figure has validated
    total_runs = total = 0
    for gname, (_, runs) in plans.items():
        n = len(lanes.group(plans.configs[gname])) if grouped and runs else len(runs)
        log(f"{name}{'-smoke' if smoke else ''}: group {gname}: {count(len(runs), 'run')}, {count(n, 'compiled program')}")
        total_runs, total = total_runs + len(runs), total + n
    log(f"{name}{'-smoke' if smoke else ''}: {count(total_runs, 'run')}; {count(total, 'compiled program')}")
    return total


def programs(names, unplanned, smoke: bool = False):
    """(figure, group name, k, [configs]) for each compiled program of each figure's runs at full size
    (or smoke): its groups' configurations grouped as a sweep groups them (lanes.group). For scripts
    that size or build every shipped program (experiments/chunk_changes.py, eval_batch_changes.py); a
    figure that does not plan (a benchmark, data this machine lacks) goes to `unplanned(name, error)`."""
    for name in names:
        try:
            _, path, spec, _, _ = preflight(name, smoke, None, None)
            plans = group_plans(spec, smoke, path.parent)
            from tallysim.sim import lanes               # imports JAX: only once the figure has validated
            found = [(gname, k, [cfgs[i] for i in grp]) for gname, cfgs in plans.configs.items()
                     for k, grp in enumerate(lanes.group(cfgs))]
        except Exception as e:      # noqa: BLE001 - the caller says which and goes on
            unplanned(name, e)
            continue
        for gname, k, group in found:
            yield name, gname, k, group


def main(args) -> int:
    import sys
    if "all" in args.figure and len(args.figure) > 1:     # was "figure 'all' not found"
        raise ConfigError(f"figure {' '.join(args.figure)}: `all` is every figure; allowed: all alone, or "
                          "the figures by name")
    names = list(FIGURES) if args.figure == ["all"] else unique_figures(args.figure)   # each once
    # every figure's checks before the first runs: `figure fig2 rounds=3` (or a misspelt second name) ran the
    # first figure's runs, hours of them, and only then said the second was not found
    for n in names:
        check_named(n)
    only, panel = getattr(args, "only", None), getattr(args, "panel", None)
    if (only is not None or panel is not None) and len(names) > 1:
        raise ConfigError(f"figure {' '.join(args.figure)}: --only/--panel name groups and panels of one figure; "
                          "allowed: one figure with them (run each figure's selection in turn)")
    # each figure once, by the file it resolves to; run under the name given (fig1 stays fig1 in the logs),
    # but a shipped copy by its resolved file, so its "not here; using the shipped copy" note prints once
    chosen: dict = {}
    for n in names:
        path = str(preflight(n, args.smoke, home(args.results), home(args.out))[1])
        chosen.setdefault(path, n if n in FIGURES or Path(n).exists() else path)
    names = list(chosen.values())
    code, started = 0, []

    def start():
        """JAX's setup (startup.start_jax), once, when the first figure has validated: a refused
        figure imports no JAX (~0.25 s, not ~2 s), as `run` and `sweep`."""
        if not started:
            from tallysim import startup
            startup.start_jax()
            started.append(True)
    if getattr(args, "dry_run", False):
        for n in names:
            dry_run(n, smoke=args.smoke, grouped=not getattr(args, "one_at_a_time", False),
                    results=args.results, out=args.out, start=start, only=only, panel=panel)
        return 0
    for n in names:                  # a figure with nothing to draw does not stop the others
        try:
            make_figure(n, smoke=args.smoke, results=args.results, out=args.out, progress=not args.quiet,
                        log=QuietLog() if args.quiet else print,       # --quiet: docs/cli.md
                        grouped=not getattr(args, "one_at_a_time", False), start=start,
                        checkpoint_every=getattr(args, "checkpoint_every", None), only=only, panel=panel)
        except FigureError as e:
            print(f"tallysim: error: {e}", file=sys.stderr)
            code = 1
    return code
