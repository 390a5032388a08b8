"""The two types every data module shares: the error users see and the in-memory dataset."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tallysim.config import ConfigError


class DataError(ConfigError):
    """A user-fixable data problem. Subclasses ConfigError so the CLI prints it as one line and exits 2;
    the message always says what is wrong and what is allowed or how to fix it."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray   # [N, h, w, ch]; uint8 (raw 0..255) for image datasets, float32 for synthetic
    y_train: np.ndarray   # [N] int32
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    # text (data/text.py): the task, the client of each example, the vocabulary and client names
    task: str = "classification"
    clients_train: np.ndarray | None = None   # [N] int32 client id (partition.kind=natural)
    clients_test: np.ndarray | None = None    # [V] int32
    vocab: tuple | None = None
    client_names: tuple | None = None


F32_MAX = float(np.finfo(np.float32).max)


def _pixels(x: np.ndarray, split: str, where: str) -> np.ndarray:
    """The stored example array the simulator reads (sim/fed.py `to_input`): uint8 image bytes, which it
    scales to [-1, 1], or floating point, used as given. An integer array other than uint8 holding
    bytes (int64 0..255, as np.array of a list gives) becomes uint8, so it is scaled as the same
    pixels saved as uint8 are (as raw floats 0..255 it trained to chance); integers outside 0..255
    (16-bit images, signed pixels) are refused: as floats up to 65535 the first round's loss is NaN.
    Floats beyond float32's range would become infinities on the device."""
    if np.issubdtype(x.dtype, np.integer) and x.dtype != np.uint8:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{split} images{where} are {x.dtype} integers in {lo}..{hi}; integer pixels are "
                            "read as bytes (0..255, scaled to [-1, 1]); allowed: integers in 0..255, or a "
                            f"floating-point array scaled as you mean it (e.g. x / {hi} for {x.dtype} images)")
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating) and x.dtype.itemsize > 4 and np.abs(x).max() > F32_MAX:
        raise DataError(f"{split} images{where} hold values up to {np.abs(x).max():.3g}, beyond float32's "
                        f"{F32_MAX:.3g} (the device computes in float32); allowed: finite float32 values "
                        "(scale the images, e.g. to [0, 1])")
    return x


def checked(name: str, x_train, y_train, x_test, y_test, num_classes=None, where: str = "") -> Dataset:
    """Normalise layouts (channel axis, int32 labels) and reject inconsistent arrays early, so that a bad
    file fails here with its path rather than as a shape error deep inside a jitted step."""
    where = f" in {where}" if where else ""
    xs, ys = [], []
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype == bool or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{split} images{where} have dtype {x.dtype}; allowed: integer (e.g. uint8 "
                            "pixels) or floating-point arrays")
        if not 2 <= x.ndim <= 5:
            raise DataError(f"{split} images{where} have shape {x.shape}; allowed: [N, D], [N, h, w] or "
                            "[N, h, w, ch]")
        if x.ndim == 3:                      # [N, h, w] grey images -> add the channel axis models expect
            x = x[..., None]
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
            raise DataError(f"{split} labels{where} have shape {y.shape}; allowed: [N] integer class ids "
                            "(not one-hot)")
        y = y.reshape(-1)
        if len(y) == 0:
            raise DataError(f"the {split} split{where} has no examples; a dataset needs at least one "
                            "training and one test example")
        if math.prod(x.shape[1:]) == 0:          # a model of no inputs divides by zero at init
            raise DataError(f"{split} images{where} have shape {x.shape}, no values per example; allowed: "
                            "at least one value per example")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise DataError(f"{split} images{where} hold NaN or infinite values; allowed: finite numbers")
        if len(x) != len(y):
            raise DataError(f"{split} images and labels disagree{where}: {len(x)} images vs {len(y)} "
                            "labels; each image needs exactly one label")
        x = _pixels(x, split, where)      # after the count: its min/max of no images was a numpy traceback
        if y.dtype == bool or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= 2**31 - 1:
            raise DataError(f"{split} labels{where} must be non-negative integers 0..C-1 "
                            f"(got dtype {y.dtype}, min {y.min()}, max {y.max()})")
        xs.append(x)
        ys.append(y.astype(np.int32))
    if (xs[0].dtype == np.uint8) != (xs[1].dtype == np.uint8):   # one split scaled, the other not
        raise DataError(f"train images are {xs[0].dtype} and test images {xs[1].dtype}{where}: integer pixels are "
                        "scaled from 0..255 to [-1, 1] and floating-point ones used as given, so the model would "
                        "be tested on other numbers than it trained on; allowed: both splits integer pixels "
                        "in 0..255, or both floating-point")
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise DataError(f"train and test images have different shapes{where}: {xs[0].shape[1:]} vs "
                        f"{xs[1].shape[1:]}; both splits must share one example shape")
    seen = max((int(y.max()) + 1 for y in ys if len(y)), default=0)
    num_classes = seen if num_classes is None else int(num_classes)
    if seen > num_classes:
        raise DataError(f"labels{where} reach {seen - 1} but num_classes={num_classes}; "
                        f"labels must lie in 0..{num_classes - 1}")
    from tallysim.sizing import LIMITS
    most = LIMITS["data.num_classes"][0]
    if num_classes > most:        # the one-hot layers and the host's per-class loops: a hang, not a run
        raise DataError(f"dataset{where} has {num_classes:,} classes (labels reach {seen - 1:,}"
                        f"{', num_classes given' if num_classes > seen else ''}); allowed: at most {most:,} "
                        "classes, labels 0..C-1 (renumber sparse class ids to 0..C-1)")
    if num_classes < 2:
        raise DataError(f"dataset{where} has {num_classes} class(es); a classification task needs >= 2")
    return Dataset(name, xs[0], ys[0], xs[1], ys[1], num_classes)
