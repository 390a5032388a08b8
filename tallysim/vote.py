"""Plurality tally of hard labels, soft-label aggregation, and the mechanism diagnostics.

Shape letters: A voting peers, M probes, C classes.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Tally(NamedTuple):
    winner_M: jax.Array      # int32 consensus class
    share_M: jax.Array       # winning votes / A
    keep_M: jax.Array        # float 0/1: probe survives abstention


def count_votes(votes_AxM: jax.Array, classes: int) -> jax.Array:
    """n_c(x): votes per probe and class, [M, C] int32."""
    return jnp.sum(jax.nn.one_hot(votes_AxM, classes, dtype=jnp.int32), axis=0)


def tally(votes_AxM: jax.Array, classes: int, ties: str = "lowest", min_agreement: float = 0.0,
          key=None) -> Tally:
    counts_MxC = count_votes(votes_AxM, classes)
    top_M = jnp.max(counts_MxC, axis=-1)
    if ties == "lowest":
        winner = jnp.argmax(counts_MxC, axis=-1)          # argmax returns the first maximum
    elif ties == "random":
        # A uniform score on the tied classes only; the largest score picks one tied class at random.
        score = jnp.where(counts_MxC == top_M[:, None], jax.random.uniform(key, counts_MxC.shape), -1.0)
        winner = jnp.argmax(score, axis=-1)
    else:
        raise ValueError(f"vote.ties={ties!r}; allowed: lowest, random")
    share = top_M / votes_AxM.shape[0]
    keep = (share >= min_agreement).astype(jnp.float32) if min_agreement > 0 else jnp.ones_like(share)
    return Tally(winner.astype(jnp.int32), share, keep)


def quantize_probs(probs: jax.Array, bits: int) -> jax.Array:
    """What the server receives of a probability vector sent with `bits` bits per value."""
    if bits == 32:
        return probs
    if bits == 16:
        return probs.astype(jnp.float16).astype(jnp.float32)
    if bits == 8:
        return jnp.round(probs * 255.0) / 255.0
    raise ValueError(f"comm.soft_bits={bits}; allowed: 32, 16, 8")


def soft_aggregate(probs_AxMxC: jax.Array, aggregate: str = "mean", era_temperature: float = 0.1):
    mean = jnp.mean(probs_AxMxC, axis=0)
    if aggregate == "mean":
        return mean
    # DS-FL's entropy reduction: sharpen the average so the targets are more confident.
    return jax.nn.softmax(mean / era_temperature, axis=-1)


def diagnostics(logits_AxMxC: jax.Array, y_M: jax.Array, winner_M: jax.Array,
                share_M: jax.Array) -> dict:
    """Vote vs soft-average accuracy on the probes, agreement and wrong-prediction confidence."""
    probs = jax.nn.softmax(logits_AxMxC, axis=-1)
    pred_AxM = jnp.argmax(logits_AxMxC, axis=-1)
    softavg_M = jnp.argmax(jnp.mean(probs, axis=0), axis=-1)
    wrong = (pred_AxM != y_M[None, :]).astype(jnp.float32)
    conf = jnp.max(probs, axis=-1)
    return {
        "vote_acc": jnp.mean(winner_M == y_M),
        "softavg_acc": jnp.mean(softavg_M == y_M),
        "agreement": jnp.mean(share_M),
        "wrong_confidence": jnp.sum(conf * wrong) / jnp.maximum(jnp.sum(wrong), 1.0),
    }
