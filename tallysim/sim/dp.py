"""Differentially private aggregates, drawn on the device from the round's keys.

Shape letters: A active peers, M probes, C classes (glossary: tallysim/sim/__init__.py).

- `gnmax`: GNMax (Papernot et al., ICLR 2018): Gaussian noise N(0, sigma^2) on every vote count
  n_c(x) before the plurality; `confident`: Confident-GNMax's check, a probe is answered only when
  max_c n_c(x) + N(0, sigma1^2) >= T (the others abstain).
- `clip_rows` + `noisy_sum`: per-peer L2 clipping to S of each peer's whole message (its [M, C] soft
  labels, or its model update over every leaf), then the sum plus N(0, (z S)^2) per coordinate
  (DP-FedAvg, McMahan et al., ICLR 2018; the same mechanism on soft labels).
The accountant that turns these into epsilon is tallysim/privacy.py (host, dp-accounting).
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from tallysim.sim import row_draws


def _normal(key, shape: tuple, rows: Optional[tuple]) -> jax.Array:
    """jax.random.normal(key, shape); rows (row0, M): rows row0.. of the draw over M rows (row_draws.py:
    a probe block draws what the all-probes vote draws for its messages)."""
    if rows is None:
        return jax.random.normal(key, shape, jnp.float32)
    return row_draws.normal_rows(key, (rows[1],) + tuple(shape[1:]), rows[0], shape[0])


def gnmax(counts_MxC: jax.Array, sigma, key, rows: Optional[tuple] = None) -> jax.Array:
    """Noisy vote counts, float32 [M, C]; sigma 0 returns the counts unchanged (as float). rows: _normal."""
    counts = counts_MxC.astype(jnp.float32)
    return counts + sigma * _normal(key, counts.shape, rows)


def confident(counts_MxC: jax.Array, threshold, sigma1, key, rows: Optional[tuple] = None) -> jax.Array:
    """float 0/1 [M]: probes whose noisy top count reaches the threshold (answered). rows: _normal."""
    top = jnp.max(counts_MxC, axis=-1).astype(jnp.float32)
    return (top + sigma1 * _normal(key, top.shape, rows) >= threshold).astype(jnp.float32)


def global_norms(tree) -> jax.Array:
    """[A] L2 norm of each row's whole message across every leaf."""
    sq = sum(jnp.sum(jnp.square(a.astype(jnp.float32)).reshape(a.shape[0], -1), axis=1)
             for a in jax.tree.leaves(tree))
    return jnp.sqrt(sq)


def clip_rows(tree, clip):
    """Each row scaled to L2 norm at most `clip` (rows already inside are unchanged)."""
    scale = jnp.minimum(1.0, clip / jnp.maximum(global_norms(tree), 1e-30))
    return jax.tree.map(lambda a: a * scale.reshape((-1,) + (1,) * (a.ndim - 1)).astype(a.dtype), tree)


def noisy_sum(tree, clip, noise_multiplier, key):
    """sum over rows (clipped beforehand) plus N(0, (noise_multiplier * clip)^2) per coordinate."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    std = noise_multiplier * clip
    out = [jnp.sum(a, axis=0) + (std * jax.random.normal(k, a.shape[1:], jnp.float32)).astype(a.dtype)
           for a, k in zip(leaves, keys)]
    return jax.tree.unflatten(treedef, out)
