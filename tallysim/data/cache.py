"""The prepared-dataset cache: one compressed .npz per dataset, plus the Debian fashion-mnist source.

Preparing (tfds, needs TensorFlow and internet) and loading (numpy only) are separate steps so that a
simulation machine only ever needs jax + numpy; the .npz is the hand-off between them.
"""
from __future__ import annotations

import os
import pathlib
import sys

import numpy as np

from tallysim import atomic, fields

from .base import Dataset, DataError
from .files import read_path

# Debian/Ubuntu package `dataset-fashion-mnist` installs the original gzipped IDX files here.
DEBIAN_FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")


def cache_dir() -> pathlib.Path:
    env = os.environ.get("TALLYSIM_DATA")
    if env and not env.strip():     # TALLYSIM_DATA=" ": datasets prepared into a folder named " " here
        raise DataError(f"TALLYSIM_DATA={env!r} is blank; allowed: the directory that holds (or will hold) the "
                        "prepared datasets, or unset for ~/.cache/tallysim")
    # A file there, or above it (TALLYSIM_DATA=/etc/passwd/x): nothing was read from it or cached in it, and the
    # run went on from Debian's files (or asked to prepare) as if TALLYSIM_DATA were unset, in silence.
    where = pathlib.Path(os.path.expanduser(env)) if env else None
    try:
        file = where and next((p for p in (where, *where.parents) if p.exists() and not p.is_dir()), None)
    except OSError as e:    # a name past the file system's limit: "File name too long" named no variable
        raise DataError(f"TALLYSIM_DATA={env[:80]}{'...' if len(env) > 80 else ''} cannot be a directory here "
                        f"({e.strerror or e}); allowed: a directory path, e.g. ~/.cache/tallysim (the default, "
                        "when unset)") from None
    if file is not None:
        what = "is a file" if file == where else f"is under the file {file}"
        raise DataError(f"TALLYSIM_DATA={env} {what}, not a directory; allowed: the directory that holds (or will "
                        "hold) the prepared datasets, e.g. ~/.cache/tallysim (the default, when unset)")
    if env and (run := atomic.run_above(pathlib.Path(os.path.expanduser(env)) / "dataset.npz")) is not None:
        # a run's directory holds its results: shakespeare.npz was written among them, a file no run wrote,
        # then copied and archived with the run's results
        raise DataError(f"TALLYSIM_DATA={env} is inside the run directory {run}: the prepared datasets would be "
                        "written among its results; allowed: a directory outside every run, e.g. "
                        "~/.cache/tallysim (the default, when unset)")
    return pathlib.Path(os.path.expanduser(env)) if env else pathlib.Path.home() / ".cache" / "tallysim"


def cache_file(name: str) -> pathlib.Path:
    # tfds names may contain a config after '/', e.g. emnist/balanced; keep the cache flat.
    return cache_dir() / (name.replace("/", "__") + ".npz")


def write_cache(ds: Dataset, name: str) -> pathlib.Path:
    """Write atomically (atomic.writing: an exclusive temporary file renamed into place): a crash or a
    concurrent run never leaves a half-written file that a later load would misread."""
    path = cache_file(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic.writing(path) as f:        # on a full disk its temporary file is removed, unwritten
            np.savez_compressed(f, x_train=ds.x_train, y_train=ds.y_train.astype(np.int32),
                                x_test=ds.x_test, y_test=ds.y_test.astype(np.int32),
                                num_classes=np.int64(ds.num_classes))
    except OSError as e:
        raise DataError(f"cannot write the data cache {path} ({e.strerror or e}); set TALLYSIM_DATA to a "
                        "writable directory") from None
    return path


_SAID: set = set()      # the cache folders whose write failure was said (once each, per process)


def cache_or_warn(ds: Dataset, name: str) -> None:
    """write_cache for data that is usable without it (Debian's Fashion-MNIST files): a failure is said once,
    on stderr, not raised. It was passed over in silence: TALLYSIM_DATA=/proc/nope ran with no cache, every
    run decoding the IDX files again, and a later `prepare` or text run found the folder unusable."""
    try:
        write_cache(ds, name)
    except DataError as e:
        where = str(cache_dir())
        if where not in _SAID:
            _SAID.add(where)
            print(f"tallysim: warning: {e}; this run reads {name} without it (each run decodes the "
                  "source files again)", file=sys.stderr, flush=True)


def free_target(path: pathlib.Path) -> pathlib.Path:
    """`path`, refused at once where a directory holds the cache file's name or its folder cannot be made:
    write_arrays found it only after the plays were parsed (~15 s) and said "set TALLYSIM_DATA to a writable
    directory"."""
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a data cache file; allowed: move or remove it, or set "
                        "TALLYSIM_DATA to another directory")
    try:        # a folder that cannot be made (TALLYSIM_DATA=/proc/nope): refused before the parse, not after
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot write the data cache {path} ({e.strerror or e}); set TALLYSIM_DATA to a "
                        "writable directory") from None
    return path


def write_arrays(arrays: dict, path: pathlib.Path) -> pathlib.Path:
    """np.savez_compressed(path, **arrays), atomically (as write_cache)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic.writing(path) as f:
            np.savez_compressed(f, **arrays)
    except OSError as e:
        raise DataError(f"cannot write the data cache {path} ({e.strerror or e}); set TALLYSIM_DATA to a "
                        "writable directory") from None
    return path


def env_flag(var: str) -> bool:
    """An on/off environment variable (fields.env_flag: a value that is neither refused). Here for the
    layers below fields (sim/conv_pallas reads TALLYSIM_PALLAS_INTERPRET; test_hygiene keeps sim off fields)."""
    return fields.env_flag(var)


def debian_disabled() -> bool:
    """TALLYSIM_NO_DEBIAN=1 ignores Debian's files, as on a machine without them (e.g. to test Colab)."""
    return env_flag("TALLYSIM_NO_DEBIAN")


def debian_fashion_mnist(name: str = "fashion_mnist") -> Dataset | None:
    """The Debian files if installed (and not disabled by TALLYSIM_NO_DEBIAN), else None (callers
    decide what error to raise)."""
    if debian_disabled() or not DEBIAN_FASHION_MNIST.is_dir():
        return None
    ds = read_path(DEBIAN_FASHION_MNIST, name)
    return Dataset(name, ds.x_train, ds.y_train, ds.x_test, ds.y_test, 10)
