"""Issue 33's memory work at population scale (docs/population.md, "Memory"): the build's host arrays,
partition.json above 10,000 peers, and resuming a checkpoint under another client_storage."""
import json

import numpy as np
import pytest

from tallysim import checkpoint, cli, config, run
from tallysim.build import build
from tallysim.config import PartitionConfig
from tallysim.data import Ragged
from tallysim.data.partition import IID_RAGGED_FROM
from tallysim.data.partition import class_counts, partition
from tallysim.results import metrics, partition_file
from tallysim.sim import fed, mesh
from tallysim import programs
from conftest import crash_after_row, TINY, tiny, read_rows


@pytest.mark.parametrize("n,peers", [(10_000, 10_000), (123_457, 10_001), (9_000, 12_000), (240_000, 10_000)])
def test_iid_ragged_holds_the_lists_indices(n, peers):
    """From IID_RAGGED_FROM peers, partition.kind=iid is one Ragged with array_split's sorted shards:
    the same indices, in the same order, as the list of arrays of smaller populations."""
    labels = np.arange(n) % 10
    got = partition(labels, peers, PartitionConfig(kind="iid"), 10, seed=3)
    assert isinstance(got, Ragged) and len(got) == peers
    want = [np.sort(p) for p in np.array_split(np.random.default_rng(3).permutation(n), peers)]
    assert np.array_equal(got.sizes, [len(p) for p in want])
    assert np.array_equal(got.flat, np.concatenate(want))
    assert np.array_equal(class_counts(labels, got, 10, np.int32),
                          class_counts(labels, want, 10)) and class_counts(labels, got, 10, np.int32).dtype == np.int32
    assert IID_RAGGED_FROM == 10_000
    small = partition(labels, 7, PartitionConfig(kind="iid"), 10, seed=3)
    assert isinstance(small, list) and small[0].dtype == np.int64        # small runs: as before


def test_to_device_keeps_values_and_canonical_dtypes():
    for a, dtype in ((np.arange(5, dtype=np.int64), None), (np.linspace(0, 1, 7), None),
                     (np.arange(6, dtype=np.uint8).reshape(2, 3), None), ([1, 2, 3], np.int32)):
        want = __import__("jax.numpy", fromlist=["asarray"]).asarray(a, dtype)
        got = fed.to_device(a, dtype)
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)


def test_build_drops_the_host_inputs_and_chunk_inputs_shares_the_data():
    """The data a run holds is FedData's alone: all lanes in order are the build's arrays, not a copy."""
    b = build(tiny("seeds=2"))
    placement = mesh.plan(1, 2, b.cfg.peers)
    data_c = programs.chunk_inputs(b, 0, 2, placement)[0]
    assert data_c is b.fed
    one = programs.chunk_inputs(b, 1, 2, mesh.plan(1, 1, b.cfg.peers))[0]
    assert np.array_equal(one.shard_H[0], b.fed.shard_H[1])
    assert b.class_counts[0].dtype == np.int32


def _counts(P, C=10, seed=0):
    return np.random.default_rng(seed).integers(0, 5, (P, C)).astype(np.int32)


def test_partition_json_lists_every_peer_up_to_10000(tmp_path):
    c = _counts(50)
    partition_file.write(tmp_path, {"dataset": "d", "peers": 50}, [7], [c], [np.arange(50) % 7 == 0])
    doc = json.loads((tmp_path / "partition.json").read_text())
    assert doc["class_counts"] == c.tolist() and doc["shard_sizes"] == c.sum(1).tolist()
    assert doc["faulty_peers"] == list(range(0, 50, 7)) and "clients_file" not in doc
    assert not (tmp_path / "partition_clients.npz").exists()
    assert metrics.read_partition(tmp_path) == doc


def test_partition_json_above_10000_is_a_summary_with_an_npz(tmp_path, monkeypatch):
    P = partition_file.FULL_LISTS_MAX + 1
    cs = [_counts(P, seed=1), _counts(P, seed=2)]
    cs[0][:5] = [0, 0, 0, 3, 0, 0, 0, 0, 0, 0]            # five clients holding one class
    bad = [np.arange(P) % 1000 == 0, np.zeros(P, bool)]
    partition_file.write(tmp_path, {"dataset": "d", "peers": P}, [0, 1], cs, bad)
    doc = json.loads((tmp_path / "partition.json").read_text())
    assert doc["clients_file"] == "partition_clients.npz" and "class_counts" not in doc
    assert len((tmp_path / "partition.json").read_text()) < 3000
    assert doc["shard_sizes_total"] == int(cs[0].sum()) and doc["faulty_peers_count"] == 11
    assert doc["classes_per_client"]["1"] >= 5 and sum(doc["classes_per_client"].values()) == P
    q = doc["shard_sizes_quantiles"]
    assert q["0"] == cs[0].sum(1).min() and q["1"] == cs[0].sum(1).max() and q["0.5"] == np.median(cs[0].sum(1))
    back = metrics.read_partition(tmp_path)               # the full form's keys, from the npz
    assert np.array_equal(back["class_counts"], cs[0]) and np.array_equal(back["shard_sizes"], cs[0].sum(1))
    assert np.array_equal(back["per_seed"][1]["class_counts"], cs[1])
    assert np.array_equal(back["faulty_peers"], np.flatnonzero(bad[0]))
    assert len(back["class_counts"][0]) == 10              # figures/plots.py's read
    (tmp_path / "partition_clients.npz").unlink()
    with pytest.raises(config.ConfigError, match="partition_clients.npz is missing"):
        metrics.read_partition(tmp_path)


def _crash_after_round(monkeypatch, at):
    crash_after_row(monkeypatch, at)


@pytest.mark.parametrize("was,now", [("stacked", "auto"), ("auto", "stacked")])
def test_resume_under_another_client_storage_is_refused_before_compiling(tmp_path, monkeypatch, capsys, was, now):
    items = ["protocol.name=fedavg", "peers=8", "participation=0.25", "rounds=4", "eval_every=1"]
    out = tmp_path / "o"
    with monkeypatch.context() as m:
        _crash_after_round(m, 2)
        with pytest.raises(KeyboardInterrupt):
            run.run(tiny(*items, f"client_storage={was}"), str(out), progress=False, checkpoint_every=1)
    assert (out / checkpoint.FILE).exists()

    def no_compile(*a, **k):
        raise AssertionError("compiled before refusing")
    with monkeypatch.context() as m:
        m.setattr(programs, "round_programs", no_compile)       # programs.chunk_programs calls it
        m.setattr(run, "build_group", no_compile)
        m.setattr(run, "build", no_compile)
        assert cli.main(["run", *TINY, *items, f"client_storage={now}", "--out", str(out), "--resume",
                         "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"client_storage={was}" in err and f"client_storage={now}" in err
    assert f"allowed: resume with client_storage={was}, or start again with --overwrite" in err
    assert ("the server model only" in err) and ("every client's model" in err)
    # the same storage resumes, to the uninterrupted run's rows
    assert cli.main(["run", *TINY, *items, f"client_storage={was}", "--out", str(out), "--resume", "--quiet"]) == 0
    ref = run.run(tiny(*items, f"client_storage={was}"), str(tmp_path / "ref"), progress=False)["out"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]  # noqa: E731
    assert strip(read_rows(out)) == strip(read_rows(ref))


@pytest.mark.parametrize("peers", [IID_RAGGED_FROM - 1, IID_RAGGED_FROM])
def test_both_iid_implementations_give_the_same_clients_at_the_boundary(peers, monkeypatch):
    """partition.kind=iid is a list of arrays below IID_RAGGED_FROM peers and one Ragged from it. At the
    boundary, each implementation forced on the other's side: the same clients, index for index, so
    the same per-client sizes and class counts. What differs is the container and the dtype only
    (int64 arrays in a list; one int32 flat array with offsets)."""
    import importlib
    part_mod = importlib.import_module("tallysim.data.partition")   # the module, not the function
    n = 3 * peers + 1234                 # sizes 3 and 4: array_split's two blocks
    labels = np.random.default_rng(1).integers(0, 10, n)
    kinds = {}
    for threshold in (peers + 1, peers):                # dense, then Ragged, at the same P
        monkeypatch.setattr(part_mod, "IID_RAGGED_FROM", threshold)
        kinds[threshold <= peers] = partition(labels, peers, PartitionConfig(kind="iid"), 10, seed=7)
    dense, flat = kinds[False], kinds[True]
    assert isinstance(dense, list) and isinstance(flat, Ragged)
    assert dense[0].dtype == np.int64 and flat.flat.dtype == np.int32
    assert np.array_equal([len(p) for p in dense], flat.sizes) and set(flat.sizes) == {3, 4}
    assert np.array_equal(np.concatenate(dense), flat.flat)
    assert np.array_equal(class_counts(labels, dense, 10), class_counts(labels, flat, 10))


def test_a_build_at_the_iid_boundary_is_the_same_under_both_implementations(monkeypatch):
    """A whole build at 10,000 peers (under_trained faults: the shard cuts iterate the partition) with
    the dense and the Ragged partition: the same device shards, sizes, class counts and faulty set."""
    import importlib
    part_mod = importlib.import_module("tallysim.data.partition")   # the module, not the function
    items = ["data.name=synthetic", "data.input_shape=[4]", "data.train_size=31000", "data.test_size=100",
             "probe.pool_size=100", "probe.per_round=8", "model.name=mlp", "model.width=8", "peers=10000",
             "participation=0.001", "partition.kind=iid", "faults.kind=under_trained", "faults.fraction=0.1",
             "faults.examples=1", "client_storage=auto"]
    cfg = config.validate(config.apply_overrides(config.Config(), items))
    built = {}
    for threshold in (cfg.peers + 1, cfg.peers):
        monkeypatch.setattr(part_mod, "IID_RAGGED_FROM", threshold)
        built[threshold] = build(cfg)
    a, b = built[cfg.peers + 1].fed, built[cfg.peers].fed
    for field in ("shard_H", "count_P", "offset_P", "faulty_P"):
        assert np.array_equal(np.asarray(getattr(a, field)), np.asarray(getattr(b, field))), field
    assert int(np.asarray(a.faulty_P).sum()) == 1000 and set(np.asarray(a.count_P)[0][np.asarray(a.faulty_P)[0]]) == {1}
    assert np.array_equal(built[cfg.peers + 1].class_counts[0], built[cfg.peers].class_counts[0])
