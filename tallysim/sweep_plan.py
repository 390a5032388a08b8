"""The order a sweep's runs go in (batches of runs, each one compiled program), how many finished
before, and which batches compile a program of their own: what the bar over the runs needs to promise
an ETA (progress_base.RunsClock). Split from sweep.py, which re-exports these names."""
from __future__ import annotations

from pathlib import Path

from tallysim.config import Config
from tallysim.results import metrics

DONE = metrics.DONE


def done_before(out_dir: Path, runs) -> int:
    """How many of `runs` (name, overrides) finished before (their DONE is there): the sweep skips them, so
    the bar over runs neither waits for them nor, with only they left, promises an ETA."""
    return sum((Path(out_dir) / name / DONE).exists() for name, _ in runs)


def plan(cfgs: list[Config], dirs: list[Path], grouped: bool) -> list[list[int]]:
    """The order runs go in: batches of run indices, each one compiled program. Grouped, the runs
    still to do are grouped by their static signature (lanes.group); a finished run, or a partial
    one with a checkpoint (it resumes on its own), is a batch of one."""
    from tallysim import checkpoint
    from tallysim.sim import lanes
    todo = [i for i, d in enumerate(dirs)
            if grouped and not (d / DONE).exists() and not (d / checkpoint.FILE).is_file()]
    batches = {min(g): g for g in (([todo[k] for k in grp] for grp in lanes.group([cfgs[i] for i in todo])))}
    out, seen = [], set()
    for i in range(len(cfgs)):
        if i in seen:
            continue
        batch = batches.get(i, [i])
        seen.update(batch)
        out.append(batch)
    return out


def compiles(cfgs: list[Config], dirs: list[Path], batches: list[list[int]]) -> list[bool]:
    """Per batch of `plan`: whether running it compiles a program. A finished batch (skipped) does not,
    nor one whose program (lanes.signature: the shapes and every static field) an earlier batch of
    this sweep compiled (one at a time, runs of the same shapes: the command line's compile cache
    holds it); every other batch does."""
    from tallysim.sim import lanes
    seen, out = set(), []
    for batch in batches:
        if all((dirs[i] / DONE).exists() for i in batch):
            out.append(False)
            continue
        sig = lanes.signature(cfgs[batch[0]])
        out.append(sig not in seen)
        seen.add(sig)
    return out
