"""Part of a figure: `tallysim figure --only GROUP,... --panel PANEL,...` (make_figure's only= and panel=).
The selected runs go into the run folders the full figure writes (RESULTS/<figure>/<group>/<run>/), so a
later full figure skips them as finished; the figure is drawn only once every run it needs has finished.
Before this, re-running some groups meant one hand-written `tallysim sweep` per group and panel with the
figure's fields on the command line, checked field by field against the figure's own configs."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from tallysim import sweep_plan
from tallysim.config import ConfigError
from tallysim.figures.plans import Plans
from tallysim.progress_base import QuietLog, result, say
from tallysim.results.metrics import panel_of


def names(value, flag: str) -> Optional[list]:
    """--only/--panel as a list of names: "a,b" (the command line's), ["a", "b"] (Python's), or None (all)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(n, str) for n in items) \
            or not [n for n in items if n.strip()]:
        raise ConfigError(f"{flag} {value!r:.60}: allowed one name or several, comma-separated (e.g. tally,local)")
    return list(dict.fromkeys(n.strip() for n in items if n.strip()))


def select(plans: Plans, panel_names, only, panel, tag: str) -> Plans:
    """The runs of `plans` in the groups `only` and panels `panel` (None: every one), the same Configs
    and run names as the full plan's; an unknown name is refused (naming the allowed ones) before any
    run or folder is made."""
    only, panel = names(only, "--only"), names(panel, "--panel")
    unknown = [g for g in only or () if g not in plans]
    if unknown:
        raise ConfigError(f"figure {tag}: --only {','.join(unknown)}: not a group of this figure; allowed: "
                          f"{', '.join(plans) or 'none (a benchmark has no groups)'}")
    if panel is not None and not panel_names:
        raise ConfigError(f"figure {tag}: --panel {','.join(panel)}: this figure has no panels; allowed: leave "
                          "out --panel (--only selects its groups)")
    unknown = [p for p in panel or () if p not in panel_names]
    if unknown:
        raise ConfigError(f"figure {tag}: --panel {','.join(unknown)}: not a panel of this figure; allowed: "
                          f"{', '.join(panel_names)}")
    chosen, configs = {}, {}
    for g, (cfg, runs) in plans.items():
        if only is not None and g not in only:
            continue
        keep = [i for i, (n, _) in enumerate(runs) if panel is None or panel_of(n) in panel]
        chosen[g] = (cfg, [runs[i] for i in keep])
        configs[g] = [plans.configs[g][i] for i in keep]
    return Plans(chosen, configs, {g: plans.axes.get(g, []) for g in chosen})


def missing(plans: Plans, root: Path) -> dict:
    """group name -> how many of its runs (of the full plan) have not finished in root/<group>/. A run
    stopped on a non-finite loss under its config is final (the sweep skips it: sweep_plan.diverged_before)
    and the full figure leaves it out: counted missing, a figure with one was never drawn by a selection,
    which said to run the group again, which skipped it again."""
    left = {g: sum(not sweep_plan.final(root / g / n, c) for (n, _), c in zip(runs, plans.configs[g]))
            for g, (_, runs) in plans.items()}
    return {g: n for g, n in left.items() if n}


def left_alone(full: Plans, plans: Plans, root: Path) -> dict:
    """group name -> its whole plan for sweep.json (sweep_records.PLAN), for each selected group of which
    the selection runs only some runs: each run's name where it runs now, else the record of the run it
    leaves alone: done before, failed before (stopped on a non-finite loss under this config), or not run
    (status "not_run", why). The group's sweep.json listed the selected runs alone until a full pass, and
    `table`/`pareto`/`plot` on the group read as the whole sweep what was part of it."""
    from tallysim.results import metrics
    from tallysim.sweep_records import NOT_RUN
    out = {}
    for g, (_, runs) in plans.items():
        chosen = {n for n, _ in runs}
        if len(chosen) == len(full[g][1]):
            continue
        entries = []
        for (n, ov), cfg in zip(full[g][1], full.configs[g]):
            if n in chosen:
                entries.append(n)
                continue
            rec, d = {"name": n, "overrides": list(ov), "dir": str(root / g / n)}, root / g / n
            if (d / metrics.DONE).exists():
                rec["status"] = metrics.DONE_BEFORE
            elif line := sweep_plan.diverged_before(d, cfg):
                rec.update(status="failed", error=line, diverged=True)
            else:
                rec.update(status=NOT_RUN, why="not in this `figure --only/--panel` selection: the full figure, "
                                               "or a selection naming it, runs it")
            entries.append(rec)
        out[g] = entries
    return out


def not_drawn(tag: str, left: dict, root: Path) -> str:
    """What a selection says when the figure still lacks runs: which groups, and that the runs are kept."""
    return (f"{tag}: not drawn: groups still missing runs: "
            f"{', '.join(f'{g} ({n})' for g, n in left.items())}; the runs made are kept in {root} (run the rest "
            "with --only/--panel, or the full figure, which skips the finished ones, to draw it)")


class ReadBack(QuietLog):
    """The log of a selection's second pass over the full plan, once every run has finished: it only
    reads each run's record back for drawing, so its progress lines (a "skip NAME (done)" per run) are
    dropped, while a note about a run (say) and a result still reach `log` as they would."""

    def __init__(self, log):
        self.log = log

    def note(self, line: str, name: str = "") -> None:
        say(self.log, line, name)

    def result(self, line: str) -> None:
        result(self.log, line)
