"""The checkpoint file: a run's whole device state plus its host-side bookkeeping in one `.npz`, written
atomically and read back checked (split from checkpoint.py, which decides when a run saves).

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
import zipfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tallysim import atomic, jax_check
from tallysim.config import ConfigError

FILE = "checkpoint.npz"


def save(out_dir: Path, state: Any, meta: dict) -> None:
    leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]
    arrays = {f"leaf_{i:05d}": a for i, a in enumerate(leaves)}
    with atomic.writing(out_dir / FILE) as f:      # an exclusive new name: never an existing file or a link
        np.savez(f, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)


VERSION = 1                      # of `meta` (run_recorders.Recorder.meta writes it); another is refused
# Every key a version-1 meta holds, with its type: a checkpoint missing one, or holding another type,
# was written by another version (or edited) and is refused on --resume in one line.
_META = {"version": int, "chunk": int, "lo": int, "round": int, "ledgers": list, "evals": dict,
         "lines": int, "last": dict, "elapsed": (int, float)}
# Optional (older checkpoints lack them): "config", the config the state was computed under (config.to_dict);
# "plugins", {module: its source's digest} of the plugins that config loads (resume.plugin_changes); "data_digest",
# the data's (data.digest: run_files.check_same_data); "code", the code that computed it (code_identity.py:
# a resume under other code is warned about, code_change); "random", JAX's random generator settings
# (code_identity.random_settings: a resume under others is refused, random_change).


def read_meta(out_dir: Path, cfg=None, name: str = FILE) -> dict:
    """The checkpoint's meta, checked before anything loads or compiles: every array's CRC (a flipped
    bit is found now, not after compiling), the version and keys of meta, and with `cfg` that its
    round and seed index lie inside that configuration's rounds and seeds. Any problem is one line.
    `name`: another checkpoint file in out_dir (an out-of-memory retry's copy, memory_retry.RETRY)."""
    path = out_dir / name
    try:
        # every CRC before any array header is parsed: a damaged header can declare a shape of petabytes,
        # and numpy's MemoryError allocating it passed for the machine running out of memory (a traceback)
        # where the file is simply corrupt (zipfile checks a member's CRC only once read to its end)
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
        if bad is None:
            with np.load(path) as z:
                meta = json.loads(bytes(z["__meta__"]).decode())
    except FileNotFoundError:
        raise ConfigError(f"{out_dir} has no {name} to resume from; run it again with --overwrite") from None
    except Exception as e:   # noqa: BLE001 - any unreadable file is the same user-facing problem
        _unless_out_of_memory(e)
        raise ConfigError(f"{path} is unreadable ({type(e).__name__}); run again with --overwrite") from None
    if bad is not None:
        raise ConfigError(f"{path} is corrupt (array {bad} fails its CRC check); run again with --overwrite")
    _check_meta(meta, path)
    if cfg is not None:
        if meta["round"] > cfg.rounds:
            raise ConfigError(f"{path} is at round {meta['round']} but this run has rounds={cfg.rounds}; "
                              "allowed: a checkpoint of this run, or run again with --overwrite")
        if meta["lo"] >= cfg.seeds or meta["chunk"] > cfg.seeds:
            raise ConfigError(f"{path} starts at seed index {meta['lo']} (chunk {meta['chunk']}) but this "
                              f"run has seeds={cfg.seeds}; allowed: a checkpoint of this run, or --overwrite")
    return meta


def _unless_out_of_memory(e: Exception) -> None:
    """Raise `e` itself when the machine ran out of memory reading or placing the state (MemoryError; XLA's
    RESOURCE_EXHAUSTED putting an array on the device): the file is fine, and "unreadable; run again with
    --overwrite" advised throwing a good checkpoint away (and hid the error run.py retries in smaller
    chunks)."""
    if jax_check.out_of_memory(e):
        raise e


def _check_meta(meta: Any, path: Path) -> None:
    if not isinstance(meta, dict):
        raise ConfigError(f"{path}: its metadata is not an object; run again with --overwrite")
    if meta.get("version") != VERSION:
        raise ConfigError(f"{path} is checkpoint version {str(meta.get('version'))[:20]}, this tallysim "
                          f"reads version {VERSION}; resume it with the tallysim that wrote it, or --overwrite")
    for key, kind in _META.items():
        value = meta.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            raise ConfigError(f"{path}: its metadata has no valid {key!r} (another tallysim version "
                              "wrote it?); run again with --overwrite")
    if meta["chunk"] < 1:
        raise ConfigError(f"{path}: its metadata has chunk={meta['chunk']}; run again with --overwrite")


def load(out_dir: Path, like: Any) -> Any:
    """The saved state, shaped like `like` (a tree of arrays or ShapeDtypeStructs)."""
    try:
        return read_state(out_dir / FILE, like)
    except ConfigError:
        raise
    except Exception as e:   # noqa: BLE001 - changed on disk since read_meta checked it
        _unless_out_of_memory(e)
        raise ConfigError(f"{out_dir / FILE} is unreadable ({type(e).__name__}); run again with --overwrite") from None


def read_state(path, like: Any) -> Any:
    """The state in `path` (a checkpoint file, or its bytes as a file object), shaped like `like`."""
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
