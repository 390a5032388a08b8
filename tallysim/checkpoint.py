"""Crash-safe checkpoints: the whole device state of a run plus its host-side bookkeeping in one `.npz`.

A checkpoint holds every leaf of the stacked state (peer params, optimizer state, server model, error
buffers) and a JSON `meta` (round, seed chunk, ledgers, pending metrics rows, metrics lines written,
elapsed time). It is written to a fresh temporary file beside it (atomic.py), flushed to disk, then
renamed over `checkpoint.npz`, so a crash at any moment leaves either the previous checkpoint or the new one, never a
torn file. Keys need no saving: every round's key is `fold_in(root, round)` of the seed.

A plain `.npz` rather than orbax: one host, one small file per run, nothing sharded, and numpy reads it
back on any machine without another dependency.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from tallysim import atomic
from tallysim.config import ConfigError

FILE = "checkpoint.npz"
DEFAULT_SECONDS = 300.0          # with no --checkpoint-every, save at most every five minutes


def save(out_dir: Path, state: Any, meta: dict) -> None:
    leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]
    arrays = {f"leaf_{i:05d}": a for i, a in enumerate(leaves)}
    path = out_dir / FILE
    f, tmp = atomic.open_temp(path)      # an exclusive new name: never an existing file or a link
    try:
        np.savez(f, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
        atomic.commit(f, tmp, path)
    except BaseException:
        f.close()
        tmp.unlink(missing_ok=True)
        raise


def read_meta(out_dir: Path) -> dict:
    path = out_dir / FILE
    try:
        with np.load(path) as z:
            return json.loads(bytes(z["__meta__"]).decode())
    except FileNotFoundError:
        raise ConfigError(f"{out_dir} has no {FILE} to resume from; run it again with --overwrite") from None
    except Exception as e:   # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise ConfigError(f"{path} is unreadable ({type(e).__name__}); run again with --overwrite") from None


def load(out_dir: Path, like: Any) -> Any:
    """The saved state, shaped like `like` (a tree of arrays or ShapeDtypeStructs)."""
    path = out_dir / FILE
    flat, treedef = jax.tree.flatten(like)
    with np.load(path) as z:
        names = sorted(k for k in z.files if k.startswith("leaf_"))
        if len(names) != len(flat):
            raise ConfigError(f"{path} holds {len(names)} arrays but this config's state has {len(flat)}; "
                              "it was written by another configuration")
        leaves = []
        for name, ref in zip(names, flat):
            a = z[name]
            if a.shape != tuple(ref.shape):
                raise ConfigError(f"{path}: array {name} has shape {a.shape}, this config needs "
                                  f"{tuple(ref.shape)}; it was written by another configuration")
            if a.dtype != ref.dtype:
                a = a.view(ref.dtype) if a.dtype.itemsize == np.dtype(ref.dtype).itemsize else a.astype(ref.dtype)
            leaves.append(jnp.asarray(a))
    return jax.tree.unflatten(treedef, leaves)


class Saver:
    """When to save: every `every` rounds when given (0 = never), else every DEFAULT_SECONDS."""

    def __init__(self, out_dir: Optional[Path], every: Optional[int]):
        self.out_dir, self.every = out_dir, every
        self.last = time.monotonic()

    def due(self, r: int) -> bool:
        if self.out_dir is None or self.every == 0:
            return False
        if self.every is not None:
            return r % self.every == 0
        return time.monotonic() - self.last >= DEFAULT_SECONDS

    def save(self, state: Any, meta: dict) -> None:
        save(self.out_dir, state, meta)
        self.last = time.monotonic()

    def discard(self) -> None:
        """A finished run needs no checkpoint; remove only the files this module wrote."""
        if self.out_dir is not None:
            for name in (FILE, FILE + ".tmp"):
                p = self.out_dir / name
                if p.is_file() and not p.is_symlink():
                    p.unlink()
