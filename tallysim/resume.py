"""--resume: whether a run directory can continue under the config given (check_resume: a tallysim run
with a checkpoint, its metrics rows whole, computed under this very config), what the resume says before
it continues (resume_notice: from where, the code, plugins or data path changed since), and what
config.json records of it (note_resume). Split from checkpoint.py, which re-exports these names; the
checkpoint file itself is checkpoint_file.py's, the config's differences resume_diff.py's.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional

from tallysim import atomic, code_identity, config, existing_run, outdir
from tallysim.checkpoint_file import FILE, read_meta
from tallysim.code_identity import code_change, random_change
from tallysim.config import ConfigError
from tallysim.results.metrics import CONFIG, METRICS
from tallysim.resume_diff import as_read_now, refuse_diff as _refuse_diff, refuse_storage_change as _refuse_storage_change


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
            f"{meta.get('elapsed', 0.0):.1f} s it had run up to that checkpoint (the time after it is not counted: those rounds run again){code_change(meta)}{edit}{moved}")


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
        raise ConfigError(existing_run.not_a_run(d, out, "--resume", outdir.CLI))
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
        now = str(Path(os.path.expanduser(now)).resolve()) if isinstance(now, str) and now else now
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
    now = str(Path(os.path.expanduser(cfg.data.path)).resolve())
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
