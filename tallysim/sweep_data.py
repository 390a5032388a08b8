"""A sweep run again: which of the complete runs it skipped trained on other data than the runs it ran now
(the data file replaced between the two commands). Reads partition.json only; no JAX."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

from tallysim import config, data_read
from tallysim.config import ConfigError
from tallysim.progress_base import say
from tallysim.results import metrics
from tallysim.results.partition_file import data_digest


def skipped_on_other_data(records: list, cfgs: list, log, digest_now: Optional[Callable] = None) -> None:
    """A sweep run again skips its complete runs; where the data file changed in between (same name, other
    contents), those skipped runs trained on the old data and the runs it ran now on the new, one table of
    two datasets and no word. Each run's partition.json records its data's digest (data.digest): a skipped
    run whose digest differs from that of a run of the same data settings this command ran is said.
    Where no run of those settings ran now (the whole sweep skipped: it had finished before the file was
    replaced), `digest_now(cfg)` (build.data_digest_now: the data loaded as it is now) gives the digest to
    compare, for data.name=files only, the data a user replaces; without it that rerun said nothing. Not
    loaded where a skipped run recorded the files in the state they are in now (data_read.py: size, times,
    inode): its digest is the data's now, and an all-skipped re-run costs a stat, not a load."""
    def key(c):
        return json.dumps([config.to_dict(c)["data"], c.probe.source], sort_keys=True, default=str)
    now = {}
    for rec, c in zip(records, cfgs):
        if rec["status"] == "done" and (d := data_digest(rec["dir"])):
            now.setdefault(key(c), d)
    for rec, c in zip(records, cfgs):       # a skipped run's record, where the files are as it read them
        if metrics.done_before(rec) and key(c) not in now and c.data.name == "files" and not c.probe.source \
                and (d := data_read.digest_if_unchanged(rec["dir"], c.data.path)):
            now[key(c)] = d
    for rec, c in zip(records, cfgs):
        if metrics.done_before(rec) and key(c) not in now and digest_now and c.data.name == "files" \
                and data_digest(rec["dir"]):
            now[key(c)] = _loaded(digest_now, c)
    for rec, c in zip(records, cfgs):
        was, fresh = data_digest(rec["dir"]), now.get(key(c))
        if metrics.done_before(rec) and was and fresh and was != fresh and _kind(was) == _kind(fresh):
            say(log, f"  note: {rec['name']} was skipped (done before) but trained on other data than the runs "
                f"this sweep ran now or the data as it is now (its partition.json: {was}; the data now: {fresh}): "
                f"the data file changed in between; delete {Path(rec['dir']) / 'done.json'} to rerun it on the "
                "data as it is", rec["name"])


def _loaded(digest_now: Callable, cfg) -> Optional[str]:
    """digest_now(cfg), None where the data cannot be loaded now (moved or deleted since: the skipped runs'
    results stand, and a run of it would say what is wrong)."""
    try:
        return digest_now(cfg)
    except (ConfigError, OSError, ValueError):       # DataError is a ConfigError
        return None


def _kind(d: str) -> str:
    """data.digest_kind, without importing the data layer here: digests of two kinds compare nothing."""
    return d.split(":", 1)[0]
