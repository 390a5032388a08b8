"""Issue 7 section 2: every user error is one line, exit 2, before anything compiles or big data loads.

One block per class of bad input: non-finite/absurd values, sizes that cannot fit, --config files of
the wrong shape or types, derived defaults re-derived from config.json, names that do not fit the file
system, corrupt data files, unknown datasets and offline prepare, corrupt run directories for
plot/pareto/figure. Nothing here trains a model.
"""
import gzip
import json
import struct
import sys

import numpy as np
import pytest

from tallysim import cli, config, run  # noqa: F401  (imported before jit is patched)
from tallysim.config import Config, ConfigError, DataConfig
from tallysim.data import DataError, load, prepare
from conftest import FMNIST, TINY, needs_fmnist




def one_line(capsys, code) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("tallysim: error: "), err
    return err


# ----------------------------------------------------------------------------- values

VALUES = [
    (["optim.lr=nan"], "optim.lr=nan must be a finite number; allowed: (0, 3.4e+38]"),
    (["optim.lr=inf"], "optim.lr=inf must be a finite number"),
    (["optim.lr=1e39"], "optim.lr=1e+39 is out of range"),
    (["feddf.lr=0"], "feddf.lr=0.0 is out of range"),
    (["optim.momentum=nan"], "optim.momentum=nan must be a finite number; allowed: [0, 1)"),
    (["optim.momentum=1.5"], "allowed: [0, 1)"),
    (["distill.temperature=nan"], "distill.temperature=nan must be a finite"),
    (["data.difficulty=nan"], "data.difficulty=nan must be a finite"),
    (["partition.alpha=inf"], "partition.alpha=inf must be a finite"),
    (["partition.kind=dirichlet", "partition.alpha=nan"], "partition.alpha=nan"),
    (["participation=nan"], "participation=nan must be a finite"),
    (["bridge.density=-inf"], "bridge.density=-inf must be a finite"),
    (["vote.min_agreement=nan"], "vote.min_agreement=nan"),
    (["distill.gate=1.5"], "distill.gate=1.5 is out of range; allowed: [0, 1]"),
    (["distill.gate=nan"], "distill.gate=nan must be a finite number"),
    (["distill.ramp_rounds=-1"], "distill.ramp_rounds=-1 is out of range; allowed: 0..2147483647"),
    (["distill.ramp_rounds=2.5"], "distill.ramp_rounds='2.5': expected an integer"),
    (["bridge.vote_at=end"], "bridge.vote_at='end' is not known; allowed: start, merge"),
    (["seed=-1"], "seed=-1 is out of range; allowed: 0..2147483647"),
    (["seed=99999999999999999999"], "seed=99999999999999999999 is out of range; allowed: 0..2147483647"),
    (["data.seed=-1"], "data.seed=-1 is out of range; allowed: 0..2147483647"),
    (["seed=2147483647", "seeds=2"], "exceeds 2147483647"),
    (["comm.param_bits=0"], "comm.param_bits=0 is out of range; allowed: 1..64"),
    (["data.input_shape=0x3"], "data.input_shape=(0, 3) is not supported"),
    (["data.input_shape=1x1x1x1x1"], "1 to 4 positive dimensions"),
    # sizes: out of the integer range, or in range but beyond this machine's memory
    (["data.num_classes=1000000000000"], "data.num_classes=1000000000000 is more than 100,000, the most tallysim accepts"),
    (["data.train_size=1000000000000"], "data.train_size=1000000000000 is out of range"),
    (["model.width=1000000000"], "lower model.width, peers"),
    (["data.train_size=2000000000"], "(the synthetic data alone"),
    (["data.num_classes=2000000000"], "data.num_classes"),
    (["peers=1000000", "model.width=2000"], "of memory"),
    (["probe.per_round=2000000000"], "the probe outputs alone"),
    # names and paths
    (["probe.source=files"], "probe.source=files is not supported"),
    (["data.name=" + "x" * 300], "is not a usable dataset name; allowed: 1..200 bytes"),
    (["probe.source=" + "y" * 300], "probe.source="),
    (["data.name=files", "data.path=/" + "d" * 300], "data.path="),
]


@pytest.mark.parametrize("items,expected", VALUES, ids=[" ".join(v[0])[:40] for v in VALUES])
def test_bad_values(items, expected, tmp_path, capsys, no_compile, monkeypatch):
    monkeypatch.setattr("tallysim.data.load", lambda *a, **k: pytest.fail("loaded data"))
    err = one_line(capsys, cli.main(["run", *TINY, *items, "--out", str(tmp_path / "o"), "--quiet"]))
    assert expected in err, err
    assert not (tmp_path / "o").exists()


def test_memory_message_names_estimate_and_limit():
    cfg = config.apply_overrides(Config(), ["model.width=1000000000"])
    with pytest.raises(ConfigError, match=r"needs at least .* of memory .* more than this machine's "
                                          r"[0-9.]+ [KMGT]B; lower model.width"):
        config.validate(cfg)


def test_every_float_and_int_field_has_a_range():
    from tallysim import validation
    for key, t in config.field_keys().items():
        inner, _ = validation.split_optional(t)
        if inner is float:
            assert key in validation.FLOAT_RANGES, key
        if inner is int and key != "comm.soft_bits":
            assert key in validation.INT_RANGES, key


def test_wrong_types_set_in_python_are_refused():
    for cfg in (config.with_values(Config(), {"peers": True}), config.with_values(Config(), {"optim.lr": "x"}),
                config.with_values(Config(), {"data.input_shape": (28, 28.0)})):
        with pytest.raises(ConfigError, match="has the wrong type"):
            config.validate(cfg)


# ----------------------------------------------------------------------------- --config files

FILES = [
    (b"[1, 2]", "holds a list, not a JSON object"),
    (b"null", "holds null, not a JSON object"),
    (b'"peers"', "holds a string, not a JSON object"),
    (b"3.5", "holds a number, not a JSON object"),
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "is not UTF-8 text"),
    (b"{", "is not valid JSON"),
    (b"", "is not valid JSON"),
    (b'{"peers": ' + b"9" * 5000 + b"}", "cannot be parsed"),
    (b'{"peers": [1, 2]}', "peers=[1, 2] is a list; expected an integer"),
    (b'{"peers": null}', "peers=None is null; expected an integer"),
    (b'{"peers": 1.5}', "peers=1.5 is a number; expected an integer"),
    (b'{"peers": true}', "peers=True is a boolean; expected an integer"),
    (b'{"data": {"input_shape": 5}}', "data.input_shape=5 is an integer; expected a list of positive"),
    (b'{"data": {"input_shape": [28, true]}}', "data.input_shape=[28, True] is a list"),
    (b'{"data": {"num_classes": 2.5}}', "data.num_classes=2.5 is a number; expected an integer"),
    (b'{"init": {"shared": 7}}', "init.shared=7 is an integer; expected true or false or null"),
    (b'{"init": 7}', "init must be an object of init.* fields"),
    (b'{"optim": {"lr": "fast"}}', "optim.lr='fast' is a string; expected a number"),
    (b'{"protocol": {"name": 3}}', "protocol.name=3 is an integer; expected a string"),
    (b'{"smoke": [1]}', "the `smoke` section must be an object"),
    (b'{"smoke": "peers=3"}', "the `smoke` section must be an object"),
    (b'{"smoke": {"peers": "x"}}', "(smoke section): peers='x'"),
    (b'{"sweep": 5}', "the `sweep` section must be an object"),
    (b'{"derived": "init.shared"}', '"derived"'),
    (b'{"optim": {"lr": NaN}}', "optim.lr=nan must be a finite number"),
]


@pytest.mark.parametrize("raw,expected", FILES, ids=[f[0][:30].decode("latin-1") for f in FILES])
def test_bad_config_files(raw, expected, tmp_path, capsys, no_compile):
    f = tmp_path / "c.json"
    f.write_bytes(raw)
    err = one_line(capsys, cli.main(["run", "--config", str(f), "--smoke", "--out", str(tmp_path / "o")]))
    assert expected in err, err
    if "NaN" not in raw.decode("latin-1"):
        assert str(f) in err, err                     # the message names the file


@pytest.mark.parametrize("what", ["directory", "missing"])
def test_config_path_not_a_file(what, tmp_path, capsys):
    f = tmp_path / "cfgdir" if what == "directory" else tmp_path / "nope.json"
    if what == "directory":
        f.mkdir()
    err = one_line(capsys, cli.main(["run", "--config", str(f), "--out", str(tmp_path / "o")]))
    assert str(f) in err and ("is a directory" in err or "does not exist" in err), err


def test_sweep_and_figure_read_config_files_the_same_way(tmp_path, capsys):
    f = tmp_path / "c.json"
    f.write_text("[]")
    assert "not a JSON object" in one_line(capsys, cli.main(["sweep", "--config", str(f), "--out",
                                                             str(tmp_path / "s"), "--dry-run"]))
    assert "not a JSON object" in one_line(capsys, cli.main(["figure", str(f), "--results", str(tmp_path / "r"),
                                                             "--out", str(tmp_path / "f")]))


# ----------------------------------------------------------------------------- derived defaults

def _written(cfg: Config, tmp_path):
    """The config.json `run` writes (run.run dumps to_dict of the validated config)."""
    f = tmp_path / "config.json"
    f.write_text(json.dumps(config.to_dict(config.validate(cfg)), indent=2))
    return f


def test_derived_defaults_are_derived_again_for_another_protocol(tmp_path):
    f = _written(config.apply_overrides(Config(), ["protocol.name=fedavg", "local_epochs=2"]), tmp_path)
    doc = json.loads(f.read_text())
    assert doc["derived"] == ["init.shared", "optim.reset_each_round", "warmup_epochs"]
    assert doc["optim"]["reset_each_round"] is True and doc["warmup_epochs"] == 0
    same = config.validate(config.load_file(str(f)))
    assert (same.optim.reset_each_round, same.init.shared, same.warmup_epochs) == (True, True, 0)
    soft = config.validate(config.apply_overrides(config.load_file(str(f)), ["protocol.name=softlabel"]))
    assert (soft.optim.reset_each_round, soft.init.shared, soft.warmup_epochs) == (False, False, 2)


def test_values_the_user_set_are_kept(tmp_path):
    f = _written(config.apply_overrides(Config(), ["protocol.name=fedavg", "optim.reset_each_round=false",
                                                   "warmup_epochs=3"]), tmp_path)
    assert json.loads(f.read_text())["derived"] == ["init.shared"]
    soft = config.validate(config.apply_overrides(config.load_file(str(f)), ["protocol.name=softlabel"]))
    assert (soft.optim.reset_each_round, soft.init.shared, soft.warmup_epochs) == (False, False, 3)


def test_old_config_json_without_derived_still_loads(tmp_path):
    doc = config.to_dict(config.validate(config.apply_overrides(Config(), ["protocol.name=fedavg"])))
    doc.pop("derived")
    f = tmp_path / "config.json"
    f.write_text(json.dumps(doc))
    cfg = config.validate(config.load_file(str(f)))
    assert cfg.optim.reset_each_round is True and cfg == config.validate(config.from_dict(doc))


# ----------------------------------------------------------------------------- corrupt data files

def _arrays(n_train=12, n_test=4, **over):
    a = {"x_train": np.zeros((n_train, 4, 4), np.uint8), "y_train": np.arange(n_train) % 3,
         "x_test": np.zeros((n_test, 4, 4), np.uint8), "y_test": np.arange(n_test) % 3}
    a.update(over)
    return a


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    d.mkdir()
    monkeypatch.setenv("TALLYSIM_DATA", str(d))
    return d


def _good_npz(path):
    np.savez_compressed(path, **_arrays())
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "zero-byte", "bit-flipped", "garbage", "npy"])
def test_corrupt_cache_npz_is_one_line_naming_it(damage, cache):
    f = cache / "mnist.npz"
    raw = _good_npz(f)
    if damage == "truncated":
        f.write_bytes(raw[: len(raw) // 2])
    elif damage == "zero-byte":
        f.write_bytes(b"")
    elif damage == "bit-flipped":
        i = raw.index(b"x_train.npy") + 40             # inside the first member's compressed body
        f.write_bytes(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:])
    elif damage == "garbage":
        f.write_bytes(np.random.default_rng(0).bytes(500))
    else:
        np.save(open(f, "wb"), np.zeros(3))
    with pytest.raises(DataError) as e:
        load(DataConfig(name="mnist"), 0)
    msg = str(e.value)
    assert str(f) in msg and "\n" not in msg and "prepare mnist" in msg, msg


BAD_NPZ = [
    ({"x_train": np.array(["a"] * 12)}, "have dtype <U1"),
    ({"x_train": np.zeros((12, 4), bool)}, "have dtype bool"),
    ({"y_train": np.linspace(0, 2, 12)}, "must be non-negative integers"),
    ({"y_train": np.eye(12, 3, dtype=np.int32)}, "(not one-hot)"),
    ({"x_train": np.zeros(12, np.uint8)}, "have shape (12,)"),
    ({"x_train": np.full((12, 4), np.nan, np.float32)}, "NaN or infinite"),
    ({"y_train": np.full(12, -1)}, "must be non-negative"),
    ({"x_train": np.zeros((0, 4, 4), np.uint8), "y_train": np.zeros(0, np.int64)}, "train split in"),
    ({"num_classes": np.array([10, 10])}, "num_classes must be one integer"),
    ({"num_classes": np.array(1)}, "num_classes must be one integer >= 2"),
]


@pytest.mark.parametrize("over,expected", BAD_NPZ, ids=[b[1][:25] for b in BAD_NPZ])
def test_npz_wrong_dtypes_shapes_or_empty(over, expected, tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, **_arrays(**over))
    with pytest.raises(DataError) as e:
        load(DataConfig(name="files", path=str(f)), 0)
    assert expected in str(e.value) and str(f) in str(e.value), str(e.value)


def test_npz_with_zero_training_examples_via_cli(tmp_path, capsys, no_compile):
    f = tmp_path / "d.npz"
    np.savez(f, **_arrays(x_train=np.zeros((0, 4, 4), np.uint8), y_train=np.zeros(0, np.int64)))
    err = one_line(capsys, cli.main(["run", "data.name=files", f"data.path={f}", "--out", str(tmp_path / "o")]))
    assert "has no examples" in err and "1..-1" not in err, err


def _idx(arr: np.ndarray, dims=None) -> bytes:
    dims = arr.shape if dims is None else dims
    return struct.pack(">BBBB", 0, 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + arr.tobytes()


def _idx_dir(d, images=None):
    d.mkdir()
    x, y = np.zeros((6, 4, 4), np.uint8), (np.arange(6) % 2).astype(np.uint8)
    files = {"train-images-idx3-ubyte.gz": gzip.compress(_idx(x)), "train-labels-idx1-ubyte.gz": gzip.compress(_idx(y)),
             "t10k-images-idx3-ubyte.gz": gzip.compress(_idx(x)), "t10k-labels-idx1-ubyte.gz": gzip.compress(_idx(y))}
    if images is not None:
        files["train-images-idx3-ubyte.gz"] = images
    for name, raw in files.items():
        (d / name).write_bytes(raw)
    return d / "train-images-idx3-ubyte.gz"


GOOD_GZ = gzip.compress(_idx(np.zeros((6, 4, 4), np.uint8)))
BAD_IDX = [
    (GOOD_GZ[: len(GOOD_GZ) // 2], "truncated or corrupt gzip"),
    (GOOD_GZ[:12] + bytes([GOOD_GZ[12] ^ 0xFF]) + GOOD_GZ[13:], "gzip"),
    (b"\x1f\x8bnot really gzip", "cannot read"),
    (gzip.compress(_idx(np.zeros(16, np.uint8), dims=(10**12 // 65536, 256, 256))), "header claims"),
    (gzip.compress(b"\x00\x00\x08\xc8" + b"\x00" * 20), "claims 200 dimensions"),
    (gzip.compress(_idx(np.zeros((6, 4, 3), np.uint8), dims=(6, 4, 4))), "truncated or corrupt: header says"),
    (b"PK\x03\x04", "is not an IDX file"),
]


@pytest.mark.parametrize("raw,expected", BAD_IDX, ids=[b[1] for b in BAD_IDX])
def test_corrupt_idx_files(raw, expected, tmp_path):
    bad = _idx_dir(tmp_path / "idx", raw)
    with pytest.raises(DataError) as e:
        load(DataConfig(name="files", path=str(bad.parent)), 0)
    assert expected in str(e.value) and str(bad) in str(e.value), str(e.value)


@needs_fmnist
def test_corrupt_fashion_mnist_cache_falls_back_to_debian(cache, capsys):
    f = cache / "fashion_mnist.npz"
    f.write_bytes(b"PK\x03\x04 broken")
    ds = load(DataConfig(name="fashion_mnist", max_test=10), 0)
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.num_classes == 10
    assert "re-importing fashion_mnist from Debian's files" in capsys.readouterr().err
    with np.load(f) as z:                                     # the cache was written again, whole
        assert z["y_test"].shape == (10000,)
    assert FMNIST.exists()


# ----------------------------------------------------------------------------- unknown datasets, prepare

def test_unknown_dataset_lists_builtins_prepared_and_closest(cache, capsys, no_compile):
    np.savez(cache / "emnist__balanced.npz", **_arrays())
    err = one_line(capsys, cli.main(["run", "data.name=fashion_mnis", "--out", str(cache.parent / "o")]))
    assert "closest: fashion_mnist" in err and "built in: synthetic, files" in err, err
    assert "prepared: emnist/balanced" in err and "python -m tallysim prepare fashion_mnis" in err, err
    with pytest.raises(DataError, match="prepared: emnist/balanced"):
        load(DataConfig(name="no_such_dataset"), 0)


def test_prepare_offline_fails_in_seconds(cache, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    prep = sys.modules["tallysim.data.prepare"]
    monkeypatch.setattr(prep, "_reachable", lambda *a, **k: False)
    monkeypatch.setattr(prep, "_downloaded", lambda name: False)
    import socket

    def no_network(*a, **k):
        raise AssertionError("an offline prepare must not open a connection")
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(DataError, match=r"cannot prepare 'cifar10': offline .* prepare cifar10 --path DIR"):
        prepare("cifar10")


def test_reachable_is_bounded_by_its_timeout(monkeypatch):
    # No wall-clock assertion: the connection gets the timeout, and the wait on it is bounded too.
    import socket
    import threading
    prep = sys.modules["tallysim.data.prepare"]
    seen, joins = [], []

    def fake_connect(addr, timeout=None):
        seen.append(timeout)
        raise OSError("unreachable")
    real_join = threading.Thread.join

    def join(self, timeout=None):
        joins.append(timeout)
        return real_join(self, timeout)
    monkeypatch.setattr(socket, "create_connection", fake_connect)
    monkeypatch.setattr(threading.Thread, "join", join)
    assert prep._reachable(("192.0.2.1", 9), timeout=0.3) is False
    assert seen == [0.3] and joins and all(t is not None and t <= 1.0 for t in joins)


def test_prepare_name_too_long(cache, capsys):
    err = one_line(capsys, cli.main(["prepare", "n" * 300]))
    assert "not a usable dataset name" in err


# ----------------------------------------------------------------------------- plot, pareto, figure

def _run_dir(d, rows=None, cfg=None, raw_rows=None):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg if cfg is not None else {"protocol": {"name": "tally"},
                                                                            "rounds": 2}))
    rows = rows if rows is not None else [{"round": r, "bits_per_peer": 1e3 * r, "acc_mean": 0.5 + r / 10,
                                           "acc_global": None} for r in (1, 2)]
    (d / "metrics.jsonl").write_text(raw_rows if raw_rows is not None else
                                     "".join(json.dumps(r) + "\n" for r in rows))
    return d


BROKEN_RUNS = [
    ({"raw_rows": '{"round": 1, "bits_per_peer": 10, "acc_mean": 0.5}\n{"round": 2, "bits\n'}, "line 2 is not valid JSON"),
    ({"raw_rows": "\x00\x01garbage\n"}, "line 1 is not valid JSON"),
    ({"rows": [{"round": 1, "acc_mean": 0.5}]}, "line 1 has no bits_per_peer"),
    ({"rows": [{"round": 1, "bits_per_peer": "lots", "acc_mean": 0.5}]}, "bits_per_peer='lots'"),
    ({"rows": [[1, 2]]}, "line 1 is not a JSON object"),
    ({"rows": [{"round": "1", "bits_per_peer": 1, "acc_mean": 0.5}]}, "round='1' must be an integer"),
    ({"cfg": [1]}, "config.json is not a tallysim config"),
    ({"cfg": {"protocol": "tally"}}, "config.json is not a tallysim config"),
]


@pytest.mark.parametrize("kw,expected", BROKEN_RUNS, ids=[b[1][:30] for b in BROKEN_RUNS])
def test_plot_and_pareto_on_corrupt_runs(kw, expected, tmp_path, capsys):
    d = _run_dir(tmp_path / "r", **kw)
    err = one_line(capsys, cli.main(["plot", str(d), "--out", str(tmp_path / "p.png")]))
    assert expected in err and str(d) in err, err
    assert cli.main(["pareto", str(d), "--out", str(tmp_path / "q.png")]) == 2
    note, err = capsys.readouterr().err.strip().splitlines()  # the only run is skipped with a note
    assert note.startswith(f"pareto: skipping {d}: ") and expected in note, note
    assert err.startswith("tallysim: error: no complete runs"), err


def test_truncated_config_json(tmp_path, capsys):
    d = _run_dir(tmp_path / "r")
    (d / "config.json").write_text('{"protocol": {"na')
    err = one_line(capsys, cli.main(["plot", str(d), "--out", str(tmp_path / "p.png")]))
    assert f"{d / 'config.json'} is not valid JSON" in err, err


def test_pareto_skips_one_corrupt_run_with_a_note(tmp_path, capsys):
    _run_dir(tmp_path / "tree" / "good")
    bad = _run_dir(tmp_path / "tree" / "bad", raw_rows="{torn\n")
    assert cli.main(["pareto", str(tmp_path / "tree"), "--out", str(tmp_path / "p.png")]) == 0
    err = capsys.readouterr().err
    assert f"pareto: skipping {bad}: {bad / 'metrics.jsonl'} line 1 is not valid JSON" in err, err
    assert (tmp_path / "p.png").is_file()


@pytest.mark.parametrize("cmd", ["plot", "pareto"])
def test_figure_outputs_and_metric(cmd, tmp_path, capsys):
    d = _run_dir(tmp_path / "r")
    (tmp_path / "existing").mkdir()
    cases = [(["--out", str(tmp_path / "existing")], "is a directory; give a figure file"),
             (["--out", str(tmp_path / "f.xyz")], ".xyz is not an image format; allowed: "),
             (["--out", str(tmp_path / "noext")], "no extension is not an image format"),
             (["--out", str(d / "metrics.jsonl" / "f.png")], "is a file, not a directory"),
             (["--out", str(tmp_path / "m.png"), "--metric", "nosuch"], "--metric 'nosuch' is not a")]
    for extra, expected in cases:
        err = one_line(capsys, cli.main([cmd, str(d), *extra]))
        assert expected in err, (extra, err)
    assert not (tmp_path / "existing.png").exists() and not list((tmp_path / "existing").iterdir())


FIGURE_SPECS = [
    ({"kind": "nosuch", "groups": {"a": {}}}, "kind='nosuch' is not known; allowed: curves"),
    ({"kind": ["curves"]}, "kind=['curves'] is not known"),
    ({"kind": "curves", "groups": ["a", "b"]}, "`groups` (and `smoke.groups`) must be an object"),
    ({"kind": "curves", "groups": {"a": 3}}, "figure group 'a' must be an object"),
    ({"kind": "curves", "base": [1]}, "`base` must be an object"),
    ({"kind": "curves", "groups": {"a": {"peers": "x"}}}, "peers='x'"),
]


@pytest.mark.parametrize("spec,expected", FIGURE_SPECS, ids=[s[1][:30] for s in FIGURE_SPECS])
def test_bad_figure_configs(spec, expected, tmp_path, capsys, no_compile):
    f = tmp_path / "fig.json"
    f.write_text(json.dumps(spec))
    err = one_line(capsys, cli.main(["figure", str(f), "--results", str(tmp_path / "r"),
                                     "--out", str(tmp_path / "f"), "--quiet"]))
    assert expected in err, err
    assert not (tmp_path / "r").exists()


def test_figure_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("mine")
    err = one_line(capsys, cli.main(["figure", "fig1", "--smoke", "--out", str(tmp_path / "f")]))
    assert "is a file" in err and (tmp_path / "f").read_text() == "mine"
