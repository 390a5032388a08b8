"""Bytes per example that a model's passes hold, the estimates' unit: one training example's kept for the
backward pass from the config alone (`example_bytes`), and from a traced forward pass's peak
(sim/activations.py) what evaluation and the exchange hold besides their inputs and logits
(`forward_hidden`, `eval_hidden_bytes`, `exchange_hidden_bytes`, with FORWARD_SLACK over the traced walk).
Pure Python, no JAX; split from sizing.py, which re-exports them (sizing.X, as before).
"""
from __future__ import annotations

from tallysim import protocols
from tallysim.config_shapes import text_activation_bytes
from tallysim.file_shapes import TEXT_MODELS


FORWARD_SLACK = 1.5     # XLA's buffers reuse less than the walk frees (per_seed_bytes, and the chunk and batch sizes)


def forward_hidden(peak: int, example: int, logits: int) -> int:
    """Bytes per example one peer's forward pass holds besides its input and its logits: `peak` its
    most bytes alive per example (sim/activations.py, input and logits included)."""
    return max(0, peak - example - logits)


def eval_hidden_bytes(models, example: int, logits: int) -> int:
    """Bytes per test example that evaluation's forward passes hold besides the input and the logits
    eval_batch counts: `models` is ((peers, peak), ...), one pair per model evaluated (model.groups: one
    per group), `peak` as forward_hidden's; the server's model (or room for it) is one more peer of the
    largest. FORWARD_SLACK over the traced walk."""
    hidden = [forward_hidden(peak, example, logits) for _, peak in models]
    return int(FORWARD_SLACK * (sum(p * h for (p, _), h in zip(models, hidden)) + max(hidden, default=0)))


def exchange_hidden_bytes(peak: int, example: int, logits: int, probes: int) -> int:
    """Bytes one peer of an exchange chunk holds besides its messages' logits, which peer_chunk counts:
    its forward pass over the round's `probes` examples at once (forward_hidden each, FORWARD_SLACK over
    them, as eval_hidden_bytes counts an evaluation batch's; no server model here). fig12's CNN over
    1,000 probes: about 1.2 GB a peer, so a chunk sized by its logits alone (10 CNNs) held 12.5 GB."""
    return int(FORWARD_SLACK * probes * forward_hidden(peak, example, logits))


def example_bytes(model, dim: int, classes: int, positions: int) -> int:
    """Bytes one training example of `model` keeps for the backward pass, roughly: a text model's from its
    layers and vocabulary (text_activation_bytes; a plugin's sequence model on a text dataset from its
    vocabulary and its POSITION_BYTES); else two float32 copies of the widest layer (the inputs
    gathered and one layer's values: XLA measured 8.6 bytes per input float for 64 MLPs at once; 4 copies,
    as before, put this "lower bound" at 1.4x the measured round)."""
    if model.name in TEXT_MODELS or (positions > 1 and protocols.model_target(model.name)):
        return text_activation_bytes(model.name, model, positions, classes)     # a plugin's: its POSITION_BYTES
    return 4 * 2 * max(dim, model.width if model.name == "mlp" else 0)
