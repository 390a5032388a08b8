"""probe.source's inputs against the training data's, before anything loads: the shapes of the named
datasets are known from the config (file_shapes), so a pool of other inputs (cifar10's 32x32x3 images
beside fashion_mnist's 28x28, a text dataset's windows beside images) is refused by validation (a run,
`run --print-config`, a sweep's --dry-run) rather than by build_data.with_probe_source after both had
loaded (3-9 s). Names whose shape the config cannot tell (a prepared dataset, data.path) are left to that
load-time check."""
from __future__ import annotations

import math

from tallysim.file_shapes import KNOWN_SHAPES, KNOWN_TEXT, files_shape
from tallysim.schema import Config, ConfigError


def known_inputs(name: str, cfg: Config, training: bool = False) -> tuple[tuple, bool] | None:
    """(one example's shape, whether it is text) of dataset `name` as the config tells it, or None where
    it cannot: synthetic's data.input_shape (probe.source=synthetic is generated from the same data.*
    fields), a text dataset's window, a named image dataset's square image; the training data's files by
    their headers. A training dataset read from data.path is only what its files say."""
    if name == "synthetic":
        return tuple(int(s) for s in cfg.data.input_shape), False
    if training and cfg.data.path is not None:
        found = files_shape(cfg)
        return None if found is None else (tuple(found[0]), False)
    if name in KNOWN_TEXT:
        return (KNOWN_TEXT[name][0],), True
    if name in KNOWN_SHAPES:
        dim = KNOWN_SHAPES[name][0]
        channels = 3 if dim == 3072 else 1
        side = math.isqrt(dim // channels)
        return (side, side, channels), False
    return None


def check(cfg: Config) -> None:
    """A probe.source whose inputs are known to differ from the training data's: refused, naming both shapes.
    Compared as the models read them: their number of values, and text windows against images (the same
    count of values in another layout is left to the load-time check, which compares the arrays)."""
    if cfg.probe.source is None or cfg.probe.source == cfg.data.name:
        return
    src = known_inputs(cfg.probe.source, cfg)
    own = known_inputs(cfg.data.name, cfg, training=True)
    if src is None or own is None or (math.prod(src[0]) == math.prod(own[0]) and src[1] == own[1]):
        return
    kind = {True: "text windows of", False: "inputs of"}
    # where only the kind differs (80 floats beside 80-token windows) the shape alone would be no advice
    also = "" if src[1] == own[1] else (", text windows too" if own[1] else ", not text windows")
    raise ConfigError(f"probe.source={cfg.probe.source} has {kind[src[1]]} shape {src[0]} but data.name="
                      f"{cfg.data.name} has {kind[own[1]]} shape {own[0]}: the probe pool is appended to the "
                      "training examples and every model reads both; allowed: a probe.source of the training "
                      f"inputs' shape {own[0]}{also}, or none (the pool carved out of {cfg.data.name}'s training "
                      "split)")
