"""Crash-safe checkpoints: when a run saves its state (Saver: every N rounds or every few minutes; a
group's runs each their own lanes, GroupSaver, to resume alone) and discards it once finished. What the
file holds and how it is read back is checkpoint_file.py's; --resume's checks, notice and record are
resume.py's. Both are re-exported here: `checkpoint.FILE`, `checkpoint.read_meta`,
`checkpoint.check_resume`, ... as before the split (and `checkpoint.save` is the one Saver calls, so a
test that replaces it sees every save).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import jax
import numpy as np

from tallysim import outdir
from tallysim.checkpoint_file import FILE, VERSION, load, read_meta, read_state, save  # noqa: F401 - checkpoint.X
from tallysim.code_identity import code_change, random_change   # noqa: F401 - checkpoint.X, as before
from tallysim.resume import (MOVED, check_resume, in_words, moved_paths, note_resume, nothing_to_resume,  # noqa: F401
                             plugin_changes, read_paths, resume_notice)

DEFAULT_SECONDS = 300.0          # with no --checkpoint-every, save at most every five minutes


class Saver:
    """When to save: every `every` rounds when given (0 = never), else every DEFAULT_SECONDS.
    `cadence`: the rounds at which a run's scans stop for a save (run._segments), the same in every
    process of a jax.distributed run: `elsewhere`, another process (process 0) saves this run's, and
    this one (out_dir None) stops where it does (it scanned to the next evaluation: other programs,
    the collectives out of step)."""

    def __init__(self, out_dir: Optional[Path], every: Optional[int], elsewhere: bool = False):
        self.out_dir, self.every = out_dir, every
        self.cadence = every if out_dir is not None or elsewhere else 0
        self.last = time.monotonic()

    def due(self, r: int) -> bool:
        if self.out_dir is None or self.every == 0:
            return False
        if self.every is not None:
            return r % self.every == 0
        return time.monotonic() - self.last >= DEFAULT_SECONDS

    def save(self, state: Any, meta: dict) -> None:
        if self.out_dir is not None:    # None: another process writes it (run.py gathers the state in each)
            save(self.out_dir, state, meta)
        self.last = time.monotonic()

    def discard(self) -> None:
        """A finished run needs no checkpoint; remove only the files this module wrote."""
        if self.out_dir is not None:
            for name in (FILE, FILE + ".tmp", outdir.RETRY_CHECKPOINT):     # and an out-of-memory retry's copy
                p = self.out_dir / name
                if p.is_file() and not p.is_symlink():
                    p.unlink()
            outdir.remove_stale_temps(self.out_dir)      # a killed earlier attempt's half-written files


class GroupSaver(Saver):
    """A group's checkpoints (run.run_group: runs trained as lanes of one program): one per run, in its own
    directory, holding its own lanes of the state and its own meta (Lanes.meta's list; None: nothing to
    save, a run stopped or past its rounds) as the run alone would save them, so that each resumes alone
    (a run with a checkpoint is a batch of its own: sweep_plan.plan). `lanes`: each run's lane indices.
    Only at a cadence asked for (`every` None: none, not every few minutes as a lone run): resumed alone,
    each run compiles a program of its own where the group compiled one, so a group stopped after minutes
    is cheaper to run again; nor where its lanes run `chunk` at a time, fewer than all (a chunk mixes
    runs), which a cadence asked for says on stderr."""

    def __init__(self, out_dirs: list, every: Optional[int], lanes: list, chunk: Optional[int] = None):
        first = next((d for d in out_dirs if d is not None), None)
        total = sum(map(len, lanes))
        if every and chunk is not None and chunk < total and first is not None:
            print(f"tallysim: note: the group's {total} lanes run {chunk} at a time, and a chunk mixes runs: "
                  "they save no checkpoint (--one-at-a-time saves each run's)", file=sys.stderr)
        super().__init__(first, every if every and (chunk is None or chunk >= total) else 0)
        self.cadence = self.every       # every process's: a group always has its directories (process 0's)
        self.out_dirs, self.lanes = out_dirs, lanes

    def save(self, state: Any, metas) -> None:
        if isinstance(metas, dict):     # a group of one configuration: Lanes.meta gives its meta as a lone
            metas = [metas]             # run's (a dict), whose keys were zipped with the directories
        host = jax.device_get(state)            # once: each run's lanes are numpy slices of it
        for d, idx, meta in zip(self.out_dirs, self.lanes, metas):
            if d is not None and meta is not None:
                save(d, jax.tree.map(lambda x: np.asarray(x)[np.asarray(idx)], host), meta)
        self.last = time.monotonic()

    def discard(self) -> None:
        for d in self.out_dirs:
            Saver(d, 0).discard()
