"""The order a sweep's runs go in (batches of runs, each one compiled program), how many finished
before, and which batches compile a program of their own: what the bar over the runs needs to promise
an ETA (progress_base.RunsClock). Split from sweep.py, which re-exports these names."""
from __future__ import annotations

from pathlib import Path

from tallysim import config
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
    nor one whose program (program_key) an earlier batch of this sweep compiled (the command line's
    compile cache holds it: one at a time, seed=0,1 compiled 7.9 s then 1.3 s); every other batch does."""
    seen, out = set(), []
    for batch in batches:
        if all((dirs[i] / DONE).exists() for i in batch):
            out.append(False)
            continue
        key = program_key([cfgs[i] for i in batch])
        out.append(key not in seen)
        seen.add(key)
    return out


def program_key(cfgs: list[Config]) -> tuple:
    """What a batch's compiled program depends on: the static signature (lanes.signature: shapes and
    static fields), its lanes (each configuration's seeds and seed_chunk) and every lane field's values
    in it. A lane field the batch does not vary is a constant in the program (Context.consts), so one at
    a time optim.lr=0.02,0.05 compile twice (7.9 s, then 7.7 s where seed=1 took 1.3 s, the cache's);
    one it varies is an array, but its distinct values are static facts too (lanes.choices)."""
    from tallysim.sim import lanes
    values = tuple((k, tuple(sorted({repr(config.get_field(c, k)) for c in cfgs}))) for k in lanes.traced())
    return lanes.signature(cfgs[0]), tuple(sorted((c.seeds, repr(c.seed_chunk)) for c in cfgs)), values
