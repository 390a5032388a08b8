"""What a `--resume` refuses in the config it is given, against the config the checkpoint was computed
under (checkpoint.check_resume): another client_storage, any other field, and among them another
seed_chunk, whose refusal says first how the run continues. Split from checkpoint.py (its 400 lines).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from tallysim import config
from tallysim.config import ConfigError
from tallysim.fields import first_few


def as_read_now(written):
    """A checkpoint's recorded config as this tallysim reads a config.json (config.from_dict, validated):
    a field added since the checkpoint was saved takes its default, as it does in the run's own config.json.
    Compared raw, a checkpoint from before a new field (cohort_draw, tally.target) differed from every
    config by `cohort_draw=None->'sort'`, and `run --resume` and a sweep refused to continue it. Kept as
    written where this code cannot read it (the diff then names what differs)."""
    if not isinstance(written, dict):
        return written
    try:
        return json.loads(json.dumps(config.to_dict(config.validate(config.from_dict(written, where="the checkpoint's config")))))
    except ConfigError:
        return written


def _held(storage: str, cfg) -> str:
    """What the run's state holds under `storage` (the checkpoint's arrays follow it)."""
    from tallysim import protocols
    keeps = protocols.client_state(cfg)
    if storage == "auto" and not keeps:
        return "the server model only"
    return "every client's model" + (f" ({keeps})" if storage == "auto" else "")


def refuse_storage_change(path: Path, written: dict, cfg) -> None:
    """A checkpoint of one client_storage resumed under another: refused in one line before anything
    compiles, saying what each holds. The run's numbers are the storage's own (the two storages compile
    to different programs: float rounding, docs/population.md), so a run that changed storage halfway
    would match neither; it continues under the storage it started with or starts again."""
    was, is_ = written.get("client_storage"), cfg.client_storage
    if was is None or was == is_:
        return
    raise ConfigError(f"--resume: {path} was computed with client_storage={was} (its state: "
                      f"{_held(was, cfg)}) but this config sets client_storage={is_} ({_held(is_, cfg)}); "
                      f"allowed: resume with client_storage={was}, or start again with --overwrite")


def rounds_done(meta: Optional[dict], rounds) -> Optional[int]:
    """The rounds a checkpoint's run has done over all its seed chunks: every chunk before its own ran
    `rounds`, then its own chunk's round. The chunks before it counted as run._run_all's bar counts them:
    as wide as its own, the last maybe narrower (an out-of-memory retry narrows a run's chunks from a
    chunk's start, which need not be a multiple of the new width)."""
    if not meta or not isinstance(rounds, int):
        return None
    return -(-meta["lo"] // meta["chunk"]) * rounds + meta["round"]


def chunk_refusal(diff: list, what: str, chunk, done: Optional[int]) -> str:
    """A resume under another seed_chunk: refused by design (the checkpoint holds the state of one chunk
    of that many seeds), but "or use --overwrite" read as the way to go on, and it discards the run. The
    way on first, naming the value; then what --overwrite costs."""
    others = [d for d in diff if not d.startswith("seed_chunk=")]
    rounds = f"its {done} round{'' if done == 1 else 's'}" if done is not None else "its rounds"
    chunk = "none" if chunk is None else config.show(chunk)      # as typed: seed_chunk=none
    return (f"--resume: this config sets another seed_chunk than {what} ({first_few(diff, 4, ', ...')}"
            "); the checkpoint holds one chunk's state of seed_chunk="
            f"{chunk}, so resuming with seed_chunk={chunk}"
            f"{' and the other fields as they were' if others else ''} continues the run; --overwrite "
            f"starts it again and discards {rounds}")


def refuse_diff(was: dict, now: dict, what: str, may_move: bool = False,
                 meta: Optional[dict] = None) -> Optional[list]:
    """Refuse a config `now` that differs from `was`; with `may_move`, a change of data.path alone is
    returned as [the refusal, the old path] instead: run_files.check_same_data raises that refusal unless
    the file at the new path gives the digest the run recorded (it can tell only once the data is loaded)."""
    diff = config.diff(was, now)
    if not diff:
        return None
    said = (f"--resume: this config differs from {what} ({first_few(diff, 4, ', ...')}); resume with the "
            "same config or use --overwrite")
    if was.get("seed_chunk") != now.get("seed_chunk"):
        said = chunk_refusal(diff, what, was.get("seed_chunk"), rounds_done(meta, was.get("rounds")))
    if may_move and len(diff) == 1 and diff[0].startswith("data.path="):
        return [said, (was.get("data") or {}).get("path"), now["data"]["path"]]
    raise ConfigError(said)
