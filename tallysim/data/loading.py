"""`load(cfg.data, seed)`: the simulation's only entry to data. numpy + stdlib only (no TensorFlow)."""
from __future__ import annotations

import numpy as np

from tallysim.config import DataConfig

from .base import Dataset, DataError
from .cache import cache_dir, cache_file, debian_fashion_mnist, write_cache
from .files import read_npz, read_path
from .synthetic import generate


# Names users most often mean; any other tfds image-classification name works once prepared.
COMMON = ("synthetic", "files", "mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100",
          "emnist/balanced", "emnist/byclass", "emnist/letters", "emnist/digits", "svhn_cropped")


def _not_prepared(name: str) -> DataError:
    import difflib
    prepared = sorted(p.stem.replace("__", "/") for p in cache_dir().glob("*.npz")) if cache_dir().is_dir() else []
    near = difflib.get_close_matches(name, list(COMMON) + prepared, n=1)
    if near and near[0] != name:
        return DataError(f"dataset {name!r} is not known or not prepared; did you mean {near[0]!r}? "
                         f"(prepared: {', '.join(prepared) or 'none'}; built in: synthetic, files)")
    extra = " or: apt-get install dataset-fashion-mnist;" if name == "fashion_mnist" else ""
    return DataError(f"dataset {name!r} is not prepared in {cache_dir()}; run: python -m tallysim prepare "
                     f"{name} (needs internet and `pip install -e .[tf]`);{extra} or set data.path=DIR "
                     "with IDX/.npz files")


def _source(cfg: DataConfig, seed: int) -> Dataset:
    if cfg.name == "synthetic":
        return generate("synthetic", cfg.num_classes, cfg.input_shape, cfg.train_size, cfg.test_size,
                        cfg.difficulty, seed)
    if cfg.name == "files":
        if not cfg.path:
            raise DataError("data.name=files needs data.path=DIR (a directory of IDX or .npz files)")
        return read_path(cfg.path, "files")
    cached = cache_file(cfg.name)
    if cached.is_file():
        return read_npz(cached, cfg.name)
    if cfg.path:
        return read_path(cfg.path, cfg.name)
    if cfg.name == "fashion_mnist":
        ds = debian_fashion_mnist(cfg.name)
        if ds is not None:
            try:
                write_cache(ds, cfg.name)   # next load skips the IDX decoding
            except DataError:
                pass                        # read-only home: still usable, just not cached
            return ds
    raise _not_prepared(cfg.name)


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of n examples with class proportions kept (up to rounding), seeded.

    Each example gets a key (rank within its class in a random order + 0.5) / class size; taking the
    n smallest keys takes the same fraction from every class."""
    rng = np.random.default_rng([int(seed), 0x5B5E7])
    order = rng.permutation(len(labels))
    shuffled = labels[order]
    counts = np.bincount(shuffled)
    rank = np.empty(len(labels), np.int64)
    by_label = np.argsort(shuffled, kind="stable")            # grouped by class, shuffled inside
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[by_label] = np.arange(len(labels)) - np.repeat(starts, counts)
    key = (rank + 0.5) / counts[shuffled]
    return np.sort(order[np.argsort(key, kind="stable")[:n]])


def load(cfg: DataConfig, seed: int) -> Dataset:
    ds = _source(cfg, seed)
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    for key, v in (("data.max_train", cfg.max_train), ("data.max_test", cfg.max_test)):
        if v is not None and v < 1:
            raise DataError(f"{key}={v} must be >= 1 (or none for all examples)")
    if cfg.max_train is not None and cfg.max_train < len(y_train):
        keep = stratified_subset(y_train, cfg.max_train, seed)
        x_train, y_train = x_train[keep], y_train[keep]
    if cfg.max_test is not None:
        x_test, y_test = x_test[:cfg.max_test], y_test[:cfg.max_test]
    return Dataset(ds.name, x_train, y_train, x_test, y_test, ds.num_classes)
