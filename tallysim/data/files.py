"""Reading user-supplied data: MNIST-format IDX files (gzipped or raw) and .npz archives.

Only numpy + stdlib, so the simulation path never needs TensorFlow.
"""
from __future__ import annotations

import gzip
import math
import os
import pathlib
import zipfile
import zlib

import numpy as np

from tallysim.file_shapes import IDX_DTYPES as _IDX_DTYPES, classify as _classify

from .base import Dataset, DataError, checked

# _IDX_DTYPES: the IDX type codes (file_shapes.IDX_DTYPES, which reads the same headers for the estimate)

EXPECTED = ("train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
            "t10k-labels-idx1-ubyte[.gz] (or any names containing train/test|t10k and images|labels), "
            "or one .npz with x_train, y_train, x_test, y_test")


MAX_IDX_BYTES = 1 << 36      # 64 GiB: a header claiming more is corrupt, not a dataset to decode


def _idx_bytes(path: pathlib.Path) -> bytes:
    try:
        raw = pathlib.Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":             # sniff gzip by magic rather than trusting the extension
            raw = gzip.decompress(raw)
    except OSError as e:                       # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read {path} ({e.strerror or e}); re-download it or fix its permissions") from None
    except (EOFError, zlib.error) as e:
        raise DataError(f"{path} is a truncated or corrupt gzip file ({e}); re-download it") from None
    return raw


def read_idx(path: pathlib.Path) -> np.ndarray:
    raw = _idx_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic {raw[:4].hex()}); expected MNIST-format "
                        "IDX, optionally gzipped")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    offset = 4 + 4 * ndim
    if not 1 <= ndim <= 5 or len(raw) < offset:
        raise DataError(f"{path} is truncated or corrupt: its IDX header claims {ndim} dimensions; "
                        "allowed: 1..5 with a complete header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    need = math.prod(shape) * dtype.itemsize
    if need > MAX_IDX_BYTES:
        raise DataError(f"{path} is corrupt: its header claims {shape} of {dtype} ({need:,} bytes, more than "
                        f"the {MAX_IDX_BYTES:,} allowed); re-download the file")
    if len(raw) - offset != need:
        raise DataError(f"{path} is truncated or corrupt: header says {shape} of {dtype} but the body has "
                        f"{len(raw) - offset} bytes; re-download the file")
    return np.frombuffer(raw, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def read_npz(path: pathlib.Path, name: str, cached: bool = False) -> Dataset:
    """One .npz (a prepared cache when `cached`); every way it can be broken is one DataError."""
    fix = f"delete it and run: python -m tallysim prepare {name}" if cached else "fix or replace the file"
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DataError(f"{path} is a single .npy array, not an .npz archive; {fix}")
        with z:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
            if missing:
                raise DataError(f"{path} lacks key(s) {', '.join(missing)}; an .npz needs x_train, "
                                "y_train, x_test, y_test (and optionally num_classes)")
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
            num_classes = z["num_classes"] if "num_classes" in z.files else None
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{path} is corrupt: an array header claims more memory than exists; {fix}") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        why = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise DataError(f"cannot read {path} as .npz ({why}); {fix}") from None
    if num_classes is not None:
        if num_classes.shape != () or not np.issubdtype(num_classes.dtype, np.integer) \
                or not 2 <= int(num_classes) < 2**31:
            raise DataError(f"{path}: num_classes must be one integer >= 2, got {num_classes!r}; {fix}")
        num_classes = int(num_classes)
    return checked(name, num_classes=num_classes, where=str(path), **arrays)


def read_path(path: str | pathlib.Path, name: str) -> Dataset:
    """A directory of IDX files (or with one .npz), or an .npz file."""
    p = pathlib.Path(os.path.expanduser(path))
    if p.is_file() and p.suffix == ".npz":
        return read_npz(p, name)
    if not p.is_dir():
        raise DataError(f"data path {str(p)!r} does not exist or is not a directory; expected a directory "
                        f"with {EXPECTED}")
    found: dict = {}
    for f in sorted(p.iterdir()):
        key = _classify(f.name) if f.is_file() and f.suffix != ".npz" else None
        if key and key not in found:           # first match in sorted order wins: deterministic
            found[key] = f
    need = [(s, r) for s in ("train", "test") for r in ("x", "y")]
    if all(k in found for k in need):
        arrays = {f"{r}_{s}": read_idx(found[(s, r)]) for s, r in need}
        return checked(name, where=str(p), **arrays)
    npz = sorted(p.glob("*.npz"))
    if len(npz) == 1:
        return read_npz(npz[0], name)
    if len(npz) > 1:
        raise DataError(f"{p} holds several .npz files ({', '.join(f.name for f in npz)}); set data.path "
                        "to the one to use")
    have = ", ".join(f"{s}-{'images' if r == 'x' else 'labels'}" for s, r in need if (s, r) in found)
    raise DataError(f"no usable dataset files in {p} (found: {have or 'none'}); expected {EXPECTED}")
