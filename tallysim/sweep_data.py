"""A sweep run again: which of the complete runs it skipped trained on other data than the runs it ran now
(the data file replaced between the two commands). Reads partition.json only; no JAX."""
from __future__ import annotations

import json
from pathlib import Path

from tallysim import config
from tallysim.progress_base import say
from tallysim.results.partition_file import data_digest


def skipped_on_other_data(records: list, cfgs: list, log) -> None:
    """A sweep run again skips its complete runs; where the data file changed in between (same name, other
    contents), those skipped runs trained on the old data and the runs it ran now on the new, one table of
    two datasets and no word. Each run's partition.json records its data's digest (data.digest): a skipped
    run whose digest differs from that of a run of the same data settings this command ran is said."""
    def key(c):
        return json.dumps([config.to_dict(c)["data"], c.probe.source], sort_keys=True, default=str)
    now = {}
    for rec, c in zip(records, cfgs):
        if rec["status"] == "done" and (d := data_digest(rec["dir"])):
            now.setdefault(key(c), d)
    for rec, c in zip(records, cfgs):
        was, fresh = data_digest(rec["dir"]), now.get(key(c))
        if rec["status"] == "skipped" and was and fresh and was != fresh and _kind(was) == _kind(fresh):
            say(log, f"  note: {rec['name']} was skipped (done before) but trained on other data than the runs "
                f"this sweep ran now (its partition.json: {was}; the data now: {fresh}): the data file changed "
                f"in between; delete {Path(rec['dir']) / 'done.json'} to rerun it on the data as it is", rec["name"])


def _kind(d: str) -> str:
    """data.digest_kind, without importing the data layer here: digests of two kinds compare nothing."""
    return d.split(":", 1)[0]
