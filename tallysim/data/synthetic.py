"""A generated classification task that needs no files: `data.name=synthetic`.

Each class is a mixture of a few prototypes. A prototype is a random pattern on a coarse grid
(at most 7x7 per channel) smoothly upsampled to the input shape, so classes differ in low-frequency
structure the way real images do and a CNN's inductive bias helps. An example is one of its class's
prototypes plus coarse noise (scaled by `difficulty`: this is what makes classes overlap) plus
per-pixel noise (which a model must learn to average away). Mixtures make the task non-linear, so an
MLP/CNN beats a linear model but does not reach 100%.
"""
from __future__ import annotations

import numpy as np

from .base import Dataset, DataError

PROTOS_PER_CLASS = 3
COARSE = 7          # coarse grid side: the intrinsic dimension is at most 7*7*channels
COARSE_NOISE = 1.0  # coarse-noise std at difficulty=1, relative to unit-variance prototypes
PIXEL_NOISE = 1.0   # per-pixel noise std (before normalisation), independent of difficulty
CHUNK = 4096        # examples generated per block: bounds the temporary memory


def _interp_matrix(n: int, g: int) -> np.ndarray:
    """[n, g] linear-interpolation matrix: upsamples a length-g signal to length n."""
    if g == 1:
        return np.ones((n, 1), np.float32)
    pos = np.linspace(0, g - 1, n)
    lo = np.minimum(np.floor(pos).astype(int), g - 2)
    frac = pos - lo
    m = np.zeros((n, g), np.float32)
    m[np.arange(n), lo] = 1 - frac
    m[np.arange(n), lo + 1] = frac
    return m


def _layout(shape: tuple):
    """Spatial axes to upsample and the trailing channel count. (h, w, ch) -> spatial (h, w), ch;
    (D,) -> spatial (D,), 1 channel that is dropped again at the end."""
    if len(shape) == 1:
        return tuple(shape), 1, True
    return tuple(shape[:-1]), shape[-1], False


def _render(z: np.ndarray, mats, shape: tuple) -> np.ndarray:
    """z: [B, g1, .., gk, ch] coarse -> [B, *shape] by applying each axis' interpolation matrix."""
    out = z
    for axis, m in enumerate(mats, start=1):
        out = np.moveaxis(np.tensordot(out, m, axes=([axis], [1])), -1, axis)
    return out.reshape((len(z),) + tuple(shape))


def generate(name: str, num_classes: int, input_shape, train_size: int, test_size: int,
             difficulty: float, seed: int) -> Dataset:
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape) or len(shape) > 4:
        raise DataError(f"data.input_shape={shape} is not supported for synthetic data; allowed: 1 to 4 "
                        "positive dimensions, e.g. 28x28x1 or 32x32x3 or 64")
    if num_classes < 2:
        raise DataError(f"data.num_classes={num_classes} must be >= 2")
    if difficulty < 0:
        raise DataError(f"data.difficulty={difficulty} must be >= 0 (0 = noise-free, larger = harder)")
    spatial, channels, flat = _layout(shape)
    coarse = tuple(min(s, COARSE) for s in spatial)
    mats = [_interp_matrix(s, g) for s, g in zip(spatial, coarse)]
    # Independent streams so train/test sizes do not change the prototypes or each other.
    proto_ss, train_ss, test_ss = np.random.SeedSequence([int(seed), 0x5EED]).spawn(3)
    protos = np.random.default_rng(proto_ss).standard_normal(
        (num_classes, PROTOS_PER_CLASS) + coarse + (channels,), dtype=np.float32)
    # Upsampled linear interpolation lowers the variance (mixing neighbours); measure the overall scale
    # once from the prototypes so outputs are roughly unit-scale whatever the shape.
    sample = _render(protos.reshape((-1,) + coarse + (channels,))[:256], mats, spatial + (channels,))
    total_std = np.sqrt(sample.var() * (1 + (COARSE_NOISE * difficulty) ** 2) + PIXEL_NOISE ** 2)

    def split(ss, n):
        rng = np.random.default_rng(ss)
        y = rng.permutation(np.arange(n) % num_classes).astype(np.int32)   # balanced classes
        which = rng.integers(0, PROTOS_PER_CLASS, n)
        x = np.empty((n,) + shape, np.float32)
        for s in range(0, n, CHUNK):
            e = min(n, s + CHUNK)
            z = protos[y[s:e], which[s:e]]
            z = z + (COARSE_NOISE * difficulty) * rng.standard_normal(z.shape, dtype=np.float32)
            img = _render(z, mats, spatial + (channels,))
            img += PIXEL_NOISE * rng.standard_normal(img.shape, dtype=np.float32)
            x[s:e] = (img / total_std).reshape((e - s,) + shape)
        return x, y

    x_train, y_train = split(train_ss, int(train_size))
    x_test, y_test = split(test_ss, int(test_size))
    return Dataset(name, x_train, y_train, x_test, y_test, int(num_classes))
