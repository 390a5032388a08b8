"""The two types every data module shares: the error users see and the in-memory dataset."""
from __future__ import annotations

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
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise DataError(f"{split} images{where} hold NaN or infinite values; allowed: finite numbers")
        if len(x) != len(y):
            raise DataError(f"{split} images and labels disagree{where}: {len(x)} images vs {len(y)} "
                            "labels; each image needs exactly one label")
        if y.dtype == bool or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= 2**31 - 1:
            raise DataError(f"{split} labels{where} must be non-negative integers 0..C-1 "
                            f"(got dtype {y.dtype}, min {y.min()}, max {y.max()})")
        xs.append(x)
        ys.append(y.astype(np.int32))
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise DataError(f"train and test images have different shapes{where}: {xs[0].shape[1:]} vs "
                        f"{xs[1].shape[1:]}; both splits must share one example shape")
    seen = max((int(y.max()) + 1 for y in ys if len(y)), default=0)
    num_classes = seen if num_classes is None else int(num_classes)
    if seen > num_classes:
        raise DataError(f"labels{where} reach {seen - 1} but num_classes={num_classes}; "
                        f"labels must lie in 0..{num_classes - 1}")
    if num_classes < 2:
        raise DataError(f"dataset{where} has {num_classes} class(es); a classification task needs >= 2")
    return Dataset(name, xs[0], ys[0], xs[1], ys[1], num_classes)
