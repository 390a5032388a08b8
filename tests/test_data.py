"""Data sources: synthetic, IDX/.npz files, the prepared cache, the Debian fallback, tfds prepare."""
import gzip
import os
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest

from tallysim.config import ConfigError, DataConfig
from tallysim.data import DataError, Dataset, cache_dir, load, prepare
from tallysim.data.cache import DEBIAN_FASHION_MNIST

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("TALLYSIM_DATA", str(d))
    return d


# ----------------------------------------------------------------------------- synthetic

@pytest.mark.parametrize("classes,shape", [(10, (28, 28, 1)), (1000, (16, 16, 3))])
def test_synthetic_shapes_balance_determinism(classes, shape):
    cfg = DataConfig(name="synthetic", num_classes=classes, input_shape=shape, train_size=3000,
                     test_size=1000)
    a = load(cfg, seed=0)
    assert isinstance(a, Dataset) and a.num_classes == classes
    assert a.x_train.shape == (3000,) + shape and a.x_test.shape == (1000,) + shape
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int32 and a.y_test.dtype == np.int32
    counts = np.bincount(a.y_train, minlength=classes)
    assert counts.max() - counts.min() <= 1                         # balanced
    assert abs(a.x_train.mean()) < 0.1 and 0.8 < a.x_train.std() < 1.2
    b = load(cfg, seed=0)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    c = load(cfg, seed=1)
    assert not np.array_equal(a.x_train, c.x_train)


def _nearest_centroid_acc(ds):
    x = ds.x_train.reshape(len(ds.x_train), -1)
    xt = ds.x_test.reshape(len(ds.x_test), -1)
    mu = np.stack([x[ds.y_train == c].mean(0) for c in range(ds.num_classes)])
    pred = np.argmin((mu ** 2).sum(1) - 2 * xt @ mu.T, axis=1)
    return (pred == ds.y_test).mean()


def test_synthetic_learnable_and_difficulty_matters():
    base = DataConfig(name="synthetic", train_size=4000, test_size=1000)
    easy = _nearest_centroid_acc(load(DataConfig(**{**base.__dict__, "difficulty": 0.5}), 0))
    hard = _nearest_centroid_acc(load(DataConfig(**{**base.__dict__, "difficulty": 2.0}), 0))
    assert easy > 0.85 and 0.2 < hard < easy - 0.2, (easy, hard)


def test_synthetic_flat_shape():
    ds = load(DataConfig(name="synthetic", input_shape=(64,), train_size=100, test_size=10), 0)
    assert ds.x_train.shape == (100, 64)


# ----------------------------------------------------------------------------- files

def _idx_bytes(arr: np.ndarray) -> bytes:
    code = {np.uint8: 0x08, np.int32: 0x0C}[arr.dtype.type]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _tiny(seed=0, n=(20, 8)):
    rng = np.random.default_rng(seed)
    return {"x_train": rng.integers(0, 256, (n[0], 5, 4), dtype=np.uint8),
            "y_train": (np.arange(n[0]) % 3).astype(np.uint8),
            "x_test": rng.integers(0, 256, (n[1], 5, 4), dtype=np.uint8),
            "y_test": (np.arange(n[1]) % 3).astype(np.uint8)}


def _write_idx(d: pathlib.Path, arrays, gz: bool, names=None):
    d.mkdir(parents=True, exist_ok=True)
    names = names or {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
                      "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    for key, name in names.items():
        data = _idx_bytes(arrays[key])
        (d / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_directory(tmp_path, gz):
    arrays = _tiny()
    _write_idx(tmp_path / "d", arrays, gz)
    ds = load(DataConfig(name="files", path=str(tmp_path / "d")), 0)
    assert ds.x_train.shape == (20, 5, 4, 1) and ds.x_train.dtype == np.uint8
    assert np.array_equal(ds.x_train[..., 0], arrays["x_train"])
    assert np.array_equal(ds.y_test, arrays["y_test"]) and ds.y_test.dtype == np.int32
    assert ds.num_classes == 3


def test_idx_loose_names_and_int32(tmp_path):
    arrays = _tiny()
    arrays["y_train"] = arrays["y_train"].astype(np.int32)
    _write_idx(tmp_path, arrays, gz=True, names={"x_train": "fashion_train_images", "y_train":
                                                 "fashion_train_labels", "x_test": "test-images.idx",
                                                 "y_test": "test-labels.idx"})
    ds = load(DataConfig(name="files", path=str(tmp_path)), 0)
    assert np.array_equal(ds.y_train, arrays["y_train"])


def test_npz_file_and_directory(tmp_path):
    arrays = _tiny()
    np.savez(tmp_path / "mine.npz", **arrays)
    for path in (tmp_path / "mine.npz", tmp_path):
        ds = load(DataConfig(name="files", path=str(path)), 0)
        assert ds.x_test.shape == (8, 5, 4, 1) and ds.num_classes == 3


def test_missing_path_and_empty_dir(tmp_path):
    with pytest.raises(DataError, match=r"does not exist.*train-images-idx3-ubyte"):
        load(DataConfig(name="files", path=str(tmp_path / "nope")), 0)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(_tiny()["x_train"]))
    with pytest.raises(DataError, match=r"found: train-images.*expected"):
        load(DataConfig(name="files", path=str(tmp_path)), 0)


def test_corrupt_idx(tmp_path):
    _write_idx(tmp_path, _tiny(), gz=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"garbage!")
    with pytest.raises(DataError, match="not an IDX file"):
        load(DataConfig(name="files", path=str(tmp_path)), 0)


def test_mismatched_lengths(tmp_path):
    arrays = _tiny()
    arrays["y_train"] = arrays["y_train"][:-1]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match="20 images vs 19 labels"):
        load(DataConfig(name="files", path=str(tmp_path / "bad.npz")), 0)


# ----------------------------------------------------------------------------- cache

def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("TALLYSIM_DATA")
    assert cache_dir() == pathlib.Path.home() / ".cache" / "tallysim"


def test_cache_round_trip_via_prepare_path(cache, tmp_path):
    arrays = _tiny()
    _write_idx(tmp_path / "src", arrays, gz=True)
    written = prepare("emnist/balanced", path=str(tmp_path / "src"))
    assert written == cache / "emnist__balanced.npz" and written.is_file()
    assert not list(cache.glob("*.tmp*"))                          # atomic write left nothing behind
    with np.load(written) as z:
        assert set(z.files) == {"x_train", "y_train", "x_test", "y_test", "num_classes"}
        assert z["y_train"].dtype == np.int32 and int(z["num_classes"]) == 3
    ds = load(DataConfig(name="emnist/balanced"), 0)
    assert ds.name == "emnist/balanced" and ds.x_train.shape == (20, 5, 4, 1)
    assert np.array_equal(ds.x_train[..., 0], arrays["x_train"])


def test_not_prepared_message(cache):
    with pytest.raises(DataError) as e:
        load(DataConfig(name="cifar10"), 0)
    msg = str(e.value)
    assert isinstance(e.value, ConfigError) and "\n" not in msg
    assert f"dataset 'cifar10' is not prepared in {cache}" in msg
    assert "python -m tallysim prepare cifar10" in msg and "pip install -e .[tf]" in msg


def test_not_prepared_fashion_mentions_apt(cache, monkeypatch, tmp_path):
    monkeypatch.setattr("tallysim.data.cache.DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load(DataConfig(name="fashion_mnist"), 0)


def test_tfds_name_with_path_reads_files(cache, tmp_path):
    np.savez(tmp_path / "c.npz", **_tiny())
    ds = load(DataConfig(name="cifar10", path=str(tmp_path / "c.npz")), 0)
    assert ds.name == "cifar10" and len(ds.y_train) == 20


def test_max_train_max_test(tmp_path):
    np.savez(tmp_path / "d.npz", **_tiny(n=(300, 50)))
    full = load(DataConfig(name="files", path=str(tmp_path)), 0)
    cfg = DataConfig(name="files", path=str(tmp_path), max_train=30, max_test=7)
    a, b = load(cfg, 0), load(cfg, 0)
    assert a.x_train.shape[0] == 30 and a.x_test.shape[0] == 7
    assert np.array_equal(a.x_test, full.x_test[:7])
    assert np.array_equal(a.x_train, b.x_train)                     # seeded
    assert not np.array_equal(a.x_train, load(cfg, 1).x_train)
    assert np.bincount(a.y_train).tolist() == [10, 10, 10]          # stratified
    big = load(DataConfig(name="files", path=str(tmp_path), max_train=10**6, max_test=10**6), 0)
    assert len(big.y_train) == 300 and len(big.y_test) == 50


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(),
                    reason=f"{DEBIAN_FASHION_MNIST} absent (apt-get install dataset-fashion-mnist)")
def test_debian_fashion_mnist_fallback(cache):
    ds = load(DataConfig(name="fashion_mnist"), 0)
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.x_train.dtype == np.uint8 and ds.num_classes == 10
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert (cache / "fashion_mnist.npz").is_file()                  # written into the cache
    again = load(DataConfig(name="fashion_mnist", max_test=5), 0)   # now from the cache
    assert np.array_equal(again.y_test, ds.y_test[:5])


# ----------------------------------------------------------------------------- no TensorFlow

def test_load_never_imports_tensorflow(tmp_path):
    np.savez(tmp_path / "d.npz", **_tiny())
    code = (
        "import sys\n"
        "from tallysim.config import DataConfig\n"
        "from tallysim.data import load\n"
        "load(DataConfig(name='synthetic', train_size=50, test_size=10), 0)\n"
        f"load(DataConfig(name='files', path={str(tmp_path)!r}), 0)\n"
        "load(DataConfig(name='mnist'), 0)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorflow_datasets')]\n"
        "assert not bad, bad\n"
        "print('ok')\n")
    # a prepared 'mnist' cache so the tfds-name path is exercised too
    cache = tmp_path / "cache"
    cache.mkdir()
    np.savez(cache / "mnist.npz", **_tiny(), num_classes=10)
    env = {**os.environ, "TALLYSIM_DATA": str(cache)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


# ----------------------------------------------------------------------------- tfds prepare (offline)

def test_prepare_tfds_mocked(cache, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(sys.modules["tallysim.data.prepare"], "_reachable", lambda *a, **k: True)
    # Without TensorFlow, tfds.load cannot build a tf.data pipeline, so prepare() falls back to
    # tfds.data_source, which mock_data serves (USE_CODE: random examples from the builder's features).
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        written = prepare("mnist")
    assert written == cache / "mnist.npz"
    ds = load(DataConfig(name="mnist"), 0)
    assert ds.x_train.shape == (12, 28, 28, 1) and ds.x_train.dtype == np.uint8
    assert ds.y_train.dtype == np.int32 and ds.num_classes == 10
    assert ds.x_test.shape == (12, 28, 28, 1)


def test_prepare_unknown_tfds_name(cache):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError, match="no classification dataset"):
        prepare("definitely_not_a_dataset")
    assert not cache.exists() or not list(cache.iterdir())


@pytest.mark.skipif(not pathlib.Path("/usr/share/datasets/fashion-mnist").exists(),
                    reason="real Fashion-MNIST absent: apt-get install dataset-fashion-mnist")
def test_prepare_fashion_mnist_uses_debian_files_without_downloading(cache, monkeypatch):
    prep = sys.modules["tallysim.data.prepare"]      # the package re-exports the function by that name

    def no_tfds(name):
        raise AssertionError("tried tfds although the Debian files are on disk")
    monkeypatch.setattr(prep, "_from_tfds", no_tfds)
    path = prepare("fashion_mnist")
    assert path.exists() and np.load(path)["x_train"].shape == (60000, 28, 28, 1)


# ----------------------------------------------------------------------------- Colab: no Debian, first use

def test_no_debian_env_hides_debian_files(cache, monkeypatch):
    from tallysim.data.cache import debian_fashion_mnist
    monkeypatch.setenv("TALLYSIM_NO_DEBIAN", "1")
    assert debian_fashion_mnist() is None
    with pytest.raises(DataError, match="dataset 'fashion_mnist' is not prepared"):
        load(DataConfig(name="fashion_mnist"), 0)
    assert not (cache / "fashion_mnist.npz").exists()
    monkeypatch.setenv("TALLYSIM_NO_DEBIAN", "0")                   # 0 means off, as unset
    assert (debian_fashion_mnist() is None) == (not DEBIAN_FASHION_MNIST.is_dir())


def test_load_prepares_on_first_use_under_mock_data(cache, monkeypatch, capsys):
    # Colab: tfds importable and no cached copy, so load() prepares the dataset itself, as tfds.load would.
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.delenv("TALLYSIM_NO_AUTO_PREPARE", raising=False)
    monkeypatch.setenv("TALLYSIM_NO_DEBIAN", "1")
    with tfds.testing.mock_data(num_examples=30, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = load(DataConfig(name="fashion_mnist", max_test=10), 0)
    err = capsys.readouterr().err
    assert "fashion_mnist is not prepared" in err and "preparing it with tensorflow_datasets" in err, err
    assert "prepared fashion_mnist: 30 train, 30 test examples, 10 classes" in err, err
    assert ds.x_train.shape == (30, 28, 28, 1) and ds.x_test.shape == (10, 28, 28, 1)
    assert (cache / "fashion_mnist.npz").is_file()
    again = load(DataConfig(name="fashion_mnist"), 0)               # from the cache, silently
    assert capsys.readouterr().err == "" and np.array_equal(again.x_train, ds.x_train)


def test_first_use_of_a_misspelt_name_lists_the_closest(cache, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.delenv("TALLYSIM_NO_AUTO_PREPARE", raising=False)
    with tfds.testing.mock_data(num_examples=5), pytest.raises(DataError) as e:
        load(DataConfig(name="fashion_mnis"), 0)
    assert "closest: fashion_mnist" in str(e.value) and "\n" not in str(e.value)


def test_first_use_failure_is_one_line(cache, monkeypatch, capsys):
    # tfds imported but neither TensorFlow nor a local copy (nor the network): one line, nothing cached.
    pytest.importorskip("tensorflow_datasets")
    prep = sys.modules["tallysim.data.prepare"]
    monkeypatch.delenv("TALLYSIM_NO_AUTO_PREPARE", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(cache.parent / "tfds"))
    monkeypatch.setattr(prep, "_has", lambda m: m == "tensorflow_datasets")     # as without TensorFlow
    monkeypatch.setattr(prep, "_reachable", lambda *a, **k: False)
    with pytest.raises(DataError) as e:
        load(DataConfig(name="mnist"), 0)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"dataset 'mnist' is not prepared in {cache} and preparing it "
                                              "on first use failed: cannot prepare 'mnist': offline"), msg
    assert "pip install tensorflow-cpu" in msg and not list(cache.glob("*.npz"))


def test_no_first_use_preparation_without_tensorflow(cache, monkeypatch):
    monkeypatch.delenv("TALLYSIM_NO_AUTO_PREPARE", raising=False)
    prep = sys.modules["tallysim.data.prepare"]
    monkeypatch.setattr(prep, "_has", lambda m: m == "tensorflow_datasets")
    monkeypatch.delitem(sys.modules, "tensorflow_datasets", raising=False)
    assert not prep.can_prepare_on_first_use()                      # the one-line error stays
    monkeypatch.setattr(prep, "_has", lambda m: True)               # Colab: tfds and TensorFlow
    assert prep.can_prepare_on_first_use()
    monkeypatch.setenv("TALLYSIM_NO_AUTO_PREPARE", "1")
    assert not prep.can_prepare_on_first_use()


def test_path_wins_over_a_prepared_cache_of_the_same_name(cache, tmp_path):
    """`data.path=...` with the default data.name=fashion_mnist: where fashion_mnist was prepared, the run
    trained on the cache and never looked at the path (a missing one included)."""
    from tallysim.data.cache import write_cache
    write_cache(Dataset("fashion_mnist", **_tiny(seed=1, n=(30, 9)), num_classes=3), "fashion_mnist")
    assert len(load(DataConfig(name="fashion_mnist"), 0).y_train) == 30          # the cache, without a path
    np.savez(tmp_path / "mine.npz", **_tiny())
    assert len(load(DataConfig(name="fashion_mnist", path=str(tmp_path / "mine.npz")), 0).y_train) == 20
    with pytest.raises(DataError, match=r"^data path '.*absent' does not exist"):
        load(DataConfig(name="fashion_mnist", path=str(tmp_path / "absent")), 0)
