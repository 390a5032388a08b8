"""Review of the second half of 2026-12-06's change (wordtally's blocked vote, leftovers14's resume at
another data.path and file_shapes' header estimate). What was found and fixed: file_shapes (the memory
estimate of a data.name=files dataset, read before the data loads) hung on a FIFO named *.npz in the
data directory, read a gzipped IDX labels file whole whatever its header declared, and estimated 10
classes (lower than the truth) for IDX labels stored as int8/int16/int32 (data/files.py reads them) and
for a dataset whose test split is empty; an .npz whose labels header claimed petabytes raised MemoryError
out of the estimate."""
from __future__ import annotations

import gzip
import os
import threading

import numpy as np
import pytest

from tallysim import config, file_shapes, sizing


def _idx(path, arr, code=0x08, dtype=np.uint8, gz=False, extra=b""):
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    body = head + arr.astype(np.dtype(dtype).newbyteorder(">")).tobytes() + extra
    path.write_bytes(gzip.compress(body) if gz else body)


def _files(path):
    return config.apply_overrides(config.Config(), ["data.name=files", f"data.path={path}"])


def _idx_dir(d, labels_code=0x08, labels_dtype=np.uint8, classes=13, test_labels=None, gz=False, extra=b""):
    _idx(d / "train-images-idx3-ubyte", np.zeros((30, 6, 6)))
    _idx(d / "t10k-images-idx3-ubyte", np.zeros((6, 6, 6)))
    y = np.arange(30) % classes
    y[-1] = classes - 1                  # the largest class appears
    _idx(d / "train-labels-idx1-ubyte", y, labels_code, labels_dtype, gz, extra)
    _idx(d / "t10k-labels-idx1-ubyte", np.arange(6) if test_labels is None else test_labels, labels_code,
         labels_dtype)


@pytest.mark.parametrize("code,dtype", [(0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32)])
def test_idx_labels_of_any_integer_type_give_their_classes(tmp_path, code, dtype):
    # was: only uint8 labels were read; int32 labels of 100 classes were estimated as 10 (lower than the truth)
    _idx_dir(tmp_path, code, dtype, classes=100)
    assert sizing.data_shape(_files(tmp_path))[:2] == (36, 100)


def test_an_empty_test_split_adds_no_class_and_keeps_the_train_classes(tmp_path):
    # was: an empty split made the estimate fall back to 10 classes (data/base.checked counts the train's 40)
    _idx_dir(tmp_path, classes=40, test_labels=np.zeros((0,)))
    assert sizing.data_shape(_files(tmp_path))[1] == 40
    d = tmp_path / "z.npz"
    np.savez(d, x_train=np.zeros((30, 4), np.float32), y_train=np.arange(30) % 40 + 10,
             x_test=np.zeros((0, 4), np.float32), y_test=np.zeros((0,), np.int64))
    assert sizing.data_shape(_files(d))[1] == 40


def test_gzipped_labels_are_decompressed_only_as_far_as_their_header_declares(tmp_path, monkeypatch):
    # was: f.read() inflated the whole stream (a mislabelled big file, a gzip bomb) before looking at it
    _idx_dir(tmp_path, gz=True, extra=b"\xff" * 100_000)
    reads = []
    real = gzip.GzipFile.read
    monkeypatch.setattr(gzip.GzipFile, "read", lambda self, n=-1: reads.append(n) or real(self, n))
    file_shapes._peek.cache_clear()
    assert sizing.data_shape(_files(tmp_path))[:2] == (36, 13)       # the trailing 0xff bytes are not labels
    assert reads and all(0 <= n <= 30 for n in reads), reads


def test_a_fifo_named_npz_in_the_data_directory_does_not_hang_the_estimate(tmp_path):
    # was: the directory's *.npz glob took a FIFO, and opening it waited for a writer forever
    fifo = tmp_path / "data.npz"
    os.mkfifo(fifo)
    done = []
    t = threading.Thread(target=lambda: done.append(file_shapes.peek(str(tmp_path))), daemon=True)
    t.start()
    t.join(5)
    try:
        assert done == [None], "file_shapes.peek hung on a FIFO named data.npz"
    finally:
        if not done:                     # release the blocked open(), so that the thread ends
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            t.join(5)


def _npy(arr, claimed=None):
    """An .npy's bytes; `claimed`: the shape its header declares instead of the array's (a corrupt file)."""
    import io
    b = io.BytesIO()
    np.save(b, arr)
    raw = b.getvalue()
    if claimed is None:
        return raw
    n = int.from_bytes(raw[8:10], "little")
    head = raw[10:10 + n].rstrip(b" \n").replace(repr(arr.shape).encode(), repr(claimed).encode())
    head += b" " * ((64 - (10 + len(head) + 1) % 64) % 64) + b"\n"
    return raw[:8] + len(head).to_bytes(2, "little") + head + raw[10 + n:]


def test_an_npz_whose_labels_header_claims_petabytes_keeps_the_guess_instead_of_raising(tmp_path):
    # was: np.lib.format.read_array allocated the claimed 7 PiB: MemoryError out of the estimate, before
    # the load could say the file is corrupt
    import zipfile
    p = tmp_path / "bomb.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("x_train.npy", _npy(np.zeros((5, 4), np.float32)))
        z.writestr("x_test.npy", _npy(np.zeros((5, 4), np.float32)))
        z.writestr("y_train.npy", _npy(np.arange(5), claimed=(10**15,)))
        z.writestr("y_test.npy", _npy(np.arange(5)))
    assert file_shapes.peek(str(p)) == ((4,), 10)
    with zipfile.ZipFile(p, "a") as z:          # a declared num_classes of a corrupt shape: the same
        z.writestr("num_classes.npy", _npy(np.int64(7), claimed=(10**15,)))
    assert file_shapes.peek(str(p)) == ((4,), 10)
