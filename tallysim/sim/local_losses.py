"""What local training's steps are scored against: the distillation losses a protocol hands LocalSpec
(`hard_label_loss` for voted labels, `soft_label_loss` for soft labels) and the private labels a step
trains on (`private_targets`: faults.kind=label_flip's flipped labels, the text task's loss weights).
Split from local.py, which re-exports them (local.X, as before).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from tallysim.sim import lanes, tasks


def hard_label_loss(classes: int, smoothing: float) -> Callable:
    def loss(logits, label_R):
        onehot = jax.nn.one_hot(label_R, classes)
        if lanes.nonzero(smoothing):      # may be a traced per-lane value (lanes.py)
            onehot = optax.smooth_labels(onehot, smoothing)
        return optax.softmax_cross_entropy(logits, onehot)
    return loss


def soft_label_loss(temperature: float) -> Callable:
    """T^2 * KL(target || softmax(logits / T)), Hinton's scaling so gradients keep their size."""
    def loss(logits, target_RxC):
        logp = jax.nn.log_softmax(logits / temperature)
        kl = jnp.sum(jax.scipy.special.xlogy(target_RxC, target_RxC) - target_RxC * logp, axis=-1)
        return temperature ** 2 * kl
    return loss


def private_targets(task, y, mask, flip, classes: int):
    """The private labels a step trains on ((c + 1) % C where `flip`: faults.kind=label_flip) and their
    loss weights, read from the labels as they are: on text, flipped PAD (0, padding) was BOS, trained
    on, and the last token C - 1 flipped to PAD was left out of the loss (hostile19). On text the flip
    stays among the words (characters), the tokens accuracy scores: c -> 4 + (c - 3) % (C - 4), the last
    word to the first; PAD, BOS, EOS and OOV stay themselves (the last word was flipped to PAD, a token
    never a target, and BOS, EOS, OOV each to the next special)."""
    weights = task.private_weights(y, mask)
    if flip is None:
        return y, weights
    if task.name == "next_token":
        lo = tasks.FIRST_WORD
        return jnp.where(flip & (y >= lo), lo + (y - lo + 1) % (classes - lo), y), weights
    return jnp.where(flip, (y + 1) % classes, y), weights
