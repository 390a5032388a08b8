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
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from tallysim import atomic, code_identity, config, jax_check, outdir
from tallysim.code_identity import code_change, random_change   # noqa: F401 - checkpoint.X, as before
from tallysim.config import ConfigError
from tallysim.results.metrics import CONFIG, METRICS
from tallysim.resume_diff import as_read_now, refuse_diff as _refuse_diff, refuse_storage_change as _refuse_storage_change

FILE = "checkpoint.npz"
DEFAULT_SECONDS = 300.0          # with no --checkpoint-every, save at most every five minutes


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
# "plugins", {module: its source's digest} of the plugins that config loads (plugin_changes); "data_digest",
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


def plugin_changes(meta: dict) -> list:
    """The plugin modules whose source file differs from the one the checkpoint was computed with: a
    plugin edited between a crash and its resume continued under the new code in silence, the rows
    before the checkpoint from the old (a fixed bug, or a new one, in one metrics.jsonl)."""
    from tallysim.protocols import plugin_import
    was = meta.get("plugins")
    if not isinstance(was, dict):
        return []
    return sorted(m for m, d in was.items() if isinstance(m, str) and d and plugin_import.source_digest(m) not in (None, d))


def resume_notice(out_dir: Path, cfg, meta: dict) -> str:
    """What `run --resume` says before it continues: from where, what its times count, and the code or
    plugins changed since the checkpoint (warnings)."""
    seeds = f", seeds from index {meta['lo']} of {cfg.seeds}" if cfg.seeds > 1 else ""
    edited = plugin_changes(meta)
    edit = (f"\ntallysim: warning: plugin {', '.join(edited)} has changed since the checkpoint was saved; the "
            f"rounds after {meta['round']} run its new code, those before ran the old (to keep one version, "
            "restore the file, or start again with --overwrite)") if edited else ""
    moved = ""
    paths = read_paths(out_dir, cfg, meta)
    if paths:
        moved = (f"\ntallysim: data.path: the run read {paths[0]} before and reads {paths[1]} now, the same data "
                 "(its digest)" + (f"; {out_dir / CONFIG} names {paths[1]}" if meta.get(MOVED) else
                                   f" (data.path={cfg.data.path} is relative: another working directory)"))
    return (f"tallysim: resuming {out_dir} from round {meta['round'] + 1} of {cfg.rounds}{seeds} "
            f"(checkpoint after round {meta['round']}); wall_s and the summary's time include the "
            f"{meta.get('elapsed', 0.0):.1f} s it ran before it stopped{code_change(meta)}{edit}{moved}")


# ----------------------------------------------------------------------------- --resume

def check_resume(cfg, out, words: dict = outdir.CLI) -> tuple[Path, dict]:
    """(the run directory, its checkpoint's meta), or one line before anything loads: `out` must be a
    tallysim run with a checkpoint, computed under this very config. config.json alone cannot say so
    (it may have been edited since, and `run --resume` without a config reads it), so the checkpoint
    carries the config that wrote it. `words`: how the refusals spell the options (outdir.PYTHON for
    tallysim.run, whose refusals named --resume and --overwrite)."""
    try:
        return _check_resume(cfg, out)
    except ConfigError as e:
        if words is outdir.CLI:
            raise
        raise type(e)(in_words(str(e), words)) from None


def in_words(text: str, words: dict) -> str:
    """A refusal written for the command line, in another caller's words: its leading `--resume:` and every
    `--overwrite` (the messages below, and read_meta's, are written once, in the command line's)."""
    if text.startswith("--resume"):
        text = "tallysim.run(resume=True)" + text[len("--resume"):]
    return text.replace("--overwrite", words["overwrite"]).replace("--checkpoint-every N", "checkpoint_every=N")


def _check_resume(cfg, out) -> tuple[Path, dict]:
    if out is None or str(out).strip() == "":
        raise ConfigError("--resume needs --out DIR, the run directory to continue")
    d = outdir.destination(out)
    if not outdir.is_run_dir(d):
        raise ConfigError(outdir.not_a_run(d, out, "--resume", outdir.CLI))
    if not (d / FILE).is_file():
        raise ConfigError(nothing_to_resume(d, out))
    outdir.refuse_unwritable(d)
    meta = read_meta(d)                 # unreadable checkpoint: say so before comparing configs
    _refuse_lost_rows(d, meta["lines"])
    if refusal := random_change(meta, d / FILE):
        raise ConfigError(refusal)
    cfg = config.validate(cfg)
    now = json.loads(json.dumps(config.to_dict(cfg)))   # as saved: tuples are lists
    written, moved = meta.get("config"), None
    if isinstance(written, dict):
        was, is_ = (written.get("protocol") or {}).get("name"), now["protocol"]["name"]
        if was != is_:
            raise ConfigError(f"--resume: {d / FILE} was computed by protocol {was!r} but the config now "
                              f"names {is_!r} (another --config or protocol.name, or {d / CONFIG} edited since?); resume with protocol.name={was}, or "
                              "start again with --overwrite")
        _refuse_storage_change(d / FILE, written, cfg)
        moved = _refuse_diff(as_read_now(written), now, f"the config {d / FILE} was computed under",
                             _may_move(d, meta, now), meta)
    saved = json.loads(json.dumps(config.to_dict(config.validate(outdir.run_config(d, "--resume", outdir.CLI)))))
    _refuse_storage_change(d / FILE, saved, cfg)     # a checkpoint without its config: config.json's storage
    moved = _refuse_diff(saved, now, str(d / CONFIG), _may_move(d, meta, now), meta) or moved
    meta = read_meta(d, config.validate(cfg))
    return d, ({**meta, MOVED: moved} if moved else meta)


# The in-memory meta key (never saved) of a resume whose data.path alone changed: [the refusal to raise,
# the path the run read before, the path it reads now]. run_files.check_same_data refuses it unless the new file gives the recorded digest.
MOVED = "data_path_moved"


def _may_move(d: Path, meta: dict, now: dict) -> bool:
    """Whether a changed data.path may be proved the same data by its digest (checked once loaded): a
    dataset read from a file (data.name=files, or a named one whose data.path only says where its files
    are), and a recorded digest of its contents. A cluster job requeued on another node finds the same
    .npz at another path. Not: generated data (its gen- digest counts labels and shapes, not the inputs),
    a run recorded before 2026-12-06 (no digest: nothing proves the file is the same)."""
    from tallysim.data import GENERATED, digest_kind
    if now["data"]["name"] in GENERATED:
        return False
    from tallysim.results.partition_file import data_digest
    was = meta.get("data_digest")
    if not (isinstance(was, str) and was):
        was = data_digest(d)
    return isinstance(was, str) and digest_kind(was) == "crc32"


def _refuse_lost_rows(d: Path, lines: int) -> None:
    """The metrics rows written before the checkpoint must still be there, whole: the resumed run keeps
    the first `lines` lines of metrics.jsonl and appends, so a deleted, emptied or cut file made a
    metrics.jsonl without its first rows (or with half a line in it) and no word said."""
    path = d / METRICS
    try:
        kept = path.read_bytes().split(b"\n")[:lines] if lines else []
    except FileNotFoundError:
        kept = []
    except OSError as e:
        raise ConfigError(f"--resume: {path} cannot be read ({e.strerror or e}); restore it, or run again "
                          "with --overwrite") from None
    whole = 0
    for line in kept:
        try:
            if not isinstance(json.loads(line), dict):
                break
        except ValueError:
            break
        whole += 1
    if whole < lines:
        raise ConfigError(f"--resume: {path} holds {whole} whole row(s) of the {lines} written before the "
                          "checkpoint (deleted, emptied or cut since?), and a resumed run would lack them; "
                          "allowed: restore that file, or run again with --overwrite")


def nothing_to_resume(d: Path, out) -> str:
    """Why a run without a checkpoint cannot be resumed. --overwrite is advised only where it loses
    nothing: a finished run has kept its results, and says where they are."""
    if outdir.run_state(d) == "finished":
        return (f"--resume: {out} is a finished run (every round ran; a finished run keeps no checkpoint): "
                f"its results are in {d / METRICS}; to train longer, run with more rounds into another --out")
    return (f"{out} has no {FILE} to resume from (it {outdir.how_stopped(d)}); start it again "
            "with --overwrite (--checkpoint-every N saves one every N rounds)")


def moved_paths(out_dir: Path, meta: dict) -> tuple:
    """(the data path the run read before, the one it reads now), both resolved where they can be, of a
    resume whose data.path moved (meta[MOVED]); the first from partition.json's record (data_read.py),
    read before this resume rewrites it, else as the run's config named it."""
    from tallysim import data_read
    if len(meta[MOVED]) < 5:            # once: partition.json is rewritten after the notice
        now = meta[MOVED][2]
        now = str(Path(now).expanduser().resolve()) if isinstance(now, str) and now else now
        meta[MOVED] = [*meta[MOVED][:3], data_read.resolved_path(out_dir) or meta[MOVED][1], now]
    return meta[MOVED][3], meta[MOVED][4]


def read_paths(out_dir: Path, cfg, meta: dict) -> Optional[tuple]:
    """(the data path the run read before, the one it reads now), resolved, where they differ: data.path
    moved (meta[MOVED]), or a relative one read from another working directory; None where they are the
    same or nothing says which file it read before (generated data, a run before 2026-12-06)."""
    if meta.get(MOVED):
        was, now = moved_paths(out_dir, meta)
        return (was, now) if was != now else None
    from tallysim import data_read
    was = data_read.resolved_path(out_dir)
    if not (was and cfg.data.path):
        return None
    now = str(Path(cfg.data.path).expanduser().resolve())
    return (was, now) if was != now else None


def note_resume(out_dir: Path, meta: dict) -> None:
    """config.json records every resume: from which round and seed chunk, and when."""
    doc = json.loads((out_dir / CONFIG).read_text())
    entry = {"round": meta["round"], "seed_index": meta["lo"], "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if meta.get(MOVED) and isinstance(doc.get("data"), dict):
        # the same data (its digest) at another path: config.json names the path in use, resolved (a
        # relative one written as given named another file from another working directory), so that a
        # plain `run --resume` on this node finds it; the entry keeps the one the run read before, as
        # partition.json recorded it resolved (data_read.py), else as its config named it
        was, now = moved_paths(out_dir, meta)
        if was != now:      # the checkpoint's config kept the relative path config.json no longer names
            entry["data_path_was"] = was
        doc["data"]["path"] = now
    if code_identity.changed(meta.get("code"), code_identity.identity()):
        entry["code"] = code_identity.identity()     # the rounds from here on ran this code
    doc.setdefault("resumed", []).append(entry)
    atomic.write_text(out_dir / CONFIG, json.dumps(doc, indent=2) + "\n")
