"""A sweep's runs checked before any runs (run_sweep, `tallysim sweep` and its --dry-run, a figure's plan):
each run's config validated, the fields no run reads refused, the data only unfinished runs read, every
run's `devices`, the warnings said first, and --out claimed as a sweep's (split from sweep.py, which
re-exports them)."""
from __future__ import annotations

import sys
from pathlib import Path

from tallysim import config, outdir, sweep_plan, tracking, validation
from tallysim.config import Config, ConfigError
from tallysim.results import metrics
from tallysim.sweep_axes import check_fields_read, warn_repeated_runs, warn_soft_zero, warn_unmerged

DONE = metrics.DONE
INDEX = metrics.SWEEP


def configs(base_cfg: Config, runs: list[tuple[str, list[str]]]) -> list[Config]:
    """Apply and validate every run's overrides (nothing is loaded or compiled); one-line errors."""
    out = []
    for name, overrides in runs:
        try:    # validated only, not validation.single_run: a sweep prints no validation.warnings(), as its
            # grid holds fault-free points on purpose (fig8 and robustness: faults.fraction=0)
            out.append(config.validate(config.apply_overrides(base_cfg, overrides)))
        except ConfigError as e:
            raise ConfigError(f"sweep run {name}: {e}") from None
    return out


def command_configs(base_cfg: Config, runs: list[tuple[str, list[str]]], out=None) -> list[Config]:
    """`tallysim sweep`'s runs checked: each validated (`configs`), and a field (or swept axis) that no run
    reads refused, as each run alone would refuse it (sweep_axes.check_fields_read). A figure does not
    ask the second: its spec's base and smoke settings serve all its groups, and a group may read none
    of them. `out`: --out, whose finished runs' data is not checked (`unfinished`)."""
    cfgs = configs(base_cfg, runs)
    check_fields_read(runs, cfgs)
    from tallysim.data import loading
    todo = unfinished(runs, cfgs, out)
    loading.check_datasets(todo)             # --dry-run too: the data a run would read, a misspelt data.name
    return cfgs


def unfinished(runs: list, cfgs: list[Config], out) -> list[Config]:
    """The configs of the runs not finished in `out` (no DONE): the only ones whose data.path is checked. A
    finished run is only read, so data moved since does not refuse it (as run_sweep and a figure skip it);
    nor does one stopped on a non-finite loss under its config, which is skipped too (sweep_plan.diverged_before)."""
    if out is None:
        return cfgs
    out_dir = outdir.destination(out)
    return [c for (n, _), c in zip(runs, cfgs) if not sweep_plan.final(out_dir / n, c)]


def check_devices(runs: list, cfgs: list[Config]) -> None:
    """Every run's `devices` against the devices JAX sees (mesh.check_devices), in one line naming it."""
    from tallysim.sim import mesh
    for (name, _), cfg in zip(runs, cfgs):
        try:
            mesh.check_devices(cfg.devices)
        except ConfigError as e:
            raise ConfigError(f"sweep run {name}: {e}") from None


def warn_before(runs: list[tuple[str, list[str]]], cfgs: list[Config]) -> None:
    """A sweep's warnings before anything runs, for run_sweep and `tallysim sweep --dry-run`: seeds shared (seed=0,1
    with seeds=2), runs that repeat one experiment, bridge runs that never merge, soft labels sent as zeros."""
    validation.warn_seed_overlap([n for n, _ in runs], cfgs)
    warn_repeated_runs(runs, cfgs)
    warn_unmerged(runs, cfgs)
    warn_soft_zero(runs, cfgs)
    from tallysim import storage_notes      # what a single run notes before it starts, per run of the sweep
    for note in storage_notes.sweep_notes(runs, cfgs):
        print(f"tallysim: note: {note}", file=sys.stderr)


def checked_out(out, runs: list, cfgs: list, flag="--out") -> Path:
    """--out, `..` resolved, after what a sweep and its --dry-run refuse of it (outdir, tracking.check_outs); `flag`: as outdir.check's."""
    out_dir = outdir.destination(out, flag)
    dirs = {name: out_dir / outdir.check_name(name, "sweep run", out_dir) for name, _ in runs}
    outdir.check_sweep_dir(out_dir, dirs, DONE, INDEX, flag)
    tracking.check_outs(cfgs, list(dirs.values()))
    return out_dir
