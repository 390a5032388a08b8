"""A run's shapes read from its config alone, before any data is loaded or anything built: the input
floats, classes and channels of its data (data_shape, example_shape), the messages per probe (positions),
the peers active each round and trained at once (active_peers, trained_at_once), and its model's
parameters and the bytes of its held models (model_params, models_bytes). What sizing.py's estimates and
notes multiply; pure Python, no JAX (only a plugin's model is traced, plugin_params.py). sizing.X
re-exports each, as before.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Optional

from tallysim import protocols
from tallysim.file_shapes import KNOWN_SHAPES, KNOWN_TEXT, TEXT_MODELS, files_shape, text_model_params
from tallysim.plugin_params import plugin_model_params


def trained_at_once(cfg, active: int | None = None) -> int:
    """The fewest peers one training step can run at once (the estimate's activations, a lower bound):
    only the round's active peers train (a population cohort, or participation < 1 of stacked clients),
    in ragged_groups groups one after another (local.train_peers); unset, the CPU runs one peer per group
    (step_groups.auto_groups), so one. Every held peer's activations used to be counted: 64 clients at batch
    512 trained 8 at a time were refused at 1.78 GB for a 900 MB machine and measure 0.50 GB
    (XLA's compiled round and evaluation; tests/test_validation_memory.py). `active`: a model group's
    A_g (model.groups trains each group's active peers as one stacked model), else the run's A."""
    active = active_peers(cfg) if active is None else active
    return -(-active // min(cfg.ragged_groups, active)) if cfg.ragged_groups else 1


# Floats per position and layer that a built-in text model's training step keeps for its backward pass
# (text_activation_bytes), counted from the layers (sim/text_models.py), h the width: an LSTM layer's four
# gates before and after their nonlinearity (8h), its cell, the cell's tanh and its output (3h); a
# transformer block's two LayerNorms' inputs and outputs (4h), q, k and v (3h), the attention's output
# and its projection (2h), the MLP's 4h units before and after the GELU (8h), and per head the attention
# probabilities over the window and their scores (2 x heads x positions). XLA:CPU's compiled gradient step
# keeps 13.4-13.9h per LSTM layer and about 21.7h + 2.7 x heads x positions per block (memory_analysis,
# batch 24 minus batch 8): the whole example's count is 0.78-0.98 of XLA's (tests/test_text_estimate_dec19d.py).
LSTM_PER_LAYER = 11
BLOCK_PER_LAYER = 17
BLOCK_OUTSIDE = 4           # token and position embeddings, their sum, the final LayerNorm


def text_activation_bytes(name: str, model, positions: int, classes: int) -> int:
    """Bytes per example (a window of `positions` tokens) a training step of a text model keeps, a lower
    bound; a built-in's: the [positions, C] logits and their gradient in float32 (at a vocabulary of
    10,004 words, 1.6 MB a window: what dominates next-word training), and the hidden values of every
    layer (LSTM_PER_LAYER, BLOCK_PER_LAYER) at the compute dtype. The estimate counted `positions` floats
    an example whatever the model, so widening, deepening or a larger vocabulary changed nothing. A
    plugin's sequence model: its logits and their gradient, and the bytes a position its plugin declares
    in POSITION_BYTES (docs/howto/own-model.md); it counted 8 bytes a position, whatever its size."""
    if name not in TEXT_MODELS:
        # a plugin's sequence model: what it declared per position (POSITION_BYTES) of its hidden values;
        # nothing declared, its logits and their gradient alone, which every next-token model holds
        return positions * (4 * 2 * classes + protocols.position_bytes(name))
    h, size = model.hidden, 2 if model.dtype == "bfloat16" else 4
    if name == "lstm":
        hidden = model.embed + model.layers * LSTM_PER_LAYER * h
    else:
        hidden = BLOCK_OUTSIDE * h + model.layers * (BLOCK_PER_LAYER * h + 2 * model.heads * positions)
    return positions * (4 * 2 * classes + size * hidden)


def model_params(name: str, width: int, dim: int, classes: int, channels: int, shape: tuple = (), model=None) -> int:
    """A model's parameters, roughly (the estimate's unit: BYTES_PER_PARAM each); a
    text model's exactly from `model` (its embed, hidden and layers: file_shapes.text_model_params), and a
    plugin's model exactly, on examples of `shape` (plugin_model_params)."""
    if name in TEXT_MODELS and model is not None:
        return text_model_params(name, model.embed, model.hidden, model.layers, classes)
    if name == "mlp":
        return dim * width + width * width + width * classes
    if name == "cnn":
        return 64 * (dim // (16 * channels)) * 512 + 512 * classes
    exact = plugin_model_params(name, shape or (dim,), classes) if protocols.model_target(name) else None
    return 100_000 + 128 * classes if exact is None else exact


def example_shape(cfg) -> tuple:
    """One example's shape as the model sees it, without loading the data: synthetic's input_shape, a files
    dataset's as its headers say (file_shapes), else a square image of data_shape's floats and channels."""
    if cfg.data.name == "synthetic":
        return tuple(cfg.data.input_shape)
    if (found := files_shape(cfg)) is not None:
        return found[0]
    dim, _, channels = data_shape(cfg)
    side = math.isqrt(dim // channels)
    return (side, side, channels) if side * side * channels == dim else (dim,)


def asked_chunk(cfgs: list, lanes: int) -> Optional[int]:
    """The lanes a compiled batch runs at once where its configurations set seed_chunk: the smallest asked
    for (seed_chunk is per lane, so a group's configurations may differ; one that asked for small batches to
    fit memory gets them, whichever leads the group), at most `lanes`; None where none asked (sized to
    memory when built). build.auto_chunk cuts the chunks by it and sweep_plan.widths counts their compiles."""
    asked = [c.seed_chunk for c in cfgs if c.seed_chunk]
    return min(min(asked), lanes) if asked else None


def active_peers(cfg) -> int:
    """A, the peers active each round, as sim/fed.build counts them."""
    return max(1, int(round(cfg.participation * cfg.peers)))


def decimal_floor(fraction: float, n: int) -> int:
    """floor(fraction x n) with the fraction read as the decimal it was written (0.1 x 30 is 3, where the
    float product 3.0000000000000004 is safe but 0.7 x 90, 62.99999999999999, gave 62): every count a
    fraction of peers or rows makes, on the host (the trims: sim/vote.trim_count; the faulty peers)."""
    return int(Fraction(repr(float(fraction))) * n)


def faulty_peers(cfg, peers: Optional[int] = None) -> int:
    """The faulty peers of `peers` (cfg.peers by default), floor(faults.fraction * P) with the fraction
    read as the decimal it was written (0.7 x 90 peers is 63, where the float product 62.99999999999999
    gave 62), whatever faults.kind (its callers ask). The one reading: the run's (sim/faults.count),
    validation's warning and the robust rules' checks (a third of 3 peers, 0.3333333333333333 x 3, is 0
    faulty, as the run has it: the float product 1.0 let validation's warning say nothing)."""
    return decimal_floor(cfg.faults.fraction, cfg.peers if peers is None else peers)


def data_shape(cfg) -> tuple[int, int, int]:
    """(input floats per example, classes, channels) of the configured data, without loading it."""
    d, synthetic = cfg.data, cfg.data.name == "synthetic"
    if (found := files_shape(cfg)) is not None:     # its files' headers (file_shapes)
        return math.prod(found[0]), found[1], found[0][-1] if len(found[0]) > 1 else 1
    dim, classes = (math.prod(d.input_shape), d.num_classes) if synthetic else \
        KNOWN_TEXT.get(d.name) or KNOWN_SHAPES.get(d.name, (784, 10))
    channels = d.input_shape[-1] if synthetic and len(d.input_shape) > 1 else 3 if dim == 3072 else 1
    return dim, classes, channels


def positions(cfg) -> int:
    """Messages per probe (and predictions per example) of the configured data: a text window's positions."""
    return KNOWN_TEXT.get(cfg.data.name, (1,))[0]


# The estimate's unit for a held model: bytes a parameter. A float32 parameter (4 bytes) three times:
# the parameter and two copies that training keeps beside it (its gradient and SGD momentum's buffer,
# or Adam's two moments), a floor under what the optimiser's state adds.
BYTES_PER_PARAM = 4 * 3


def models_bytes(cfg) -> tuple[int, int]:
    """(every client's model stacked, the server's and the cohort's models): BYTES_PER_PARAM each
    parameter."""
    params = model_params(cfg.model.name, cfg.model.width, *data_shape(cfg), example_shape(cfg), cfg.model)
    return BYTES_PER_PARAM * params * cfg.peers, BYTES_PER_PARAM * params * (active_peers(cfg) + 1)
