"""Byzantine-robust aggregation of parameter pytrees with a leading axis of A received models.

Every function takes a pytree whose leaves are [A, ...] and `mask_A` (bool [A], the models that
arrived; None: all of them), is pure and vectorised (no Python loop over peers), and treats the
pytree as one flat vector of all its leaves (distances and norms are over the whole model, as the
papers define them). `f` is the number of Byzantine peers the rule is told to tolerate.

Aggregators (ByzFL's names in brackets):
- `krum(x, mask, f, m)`: Krum (Blanchard et al., NeurIPS 2017) with m=1; multi-Krum (El Mhamdi et al.,
  ICML 2018) averages the m best. Score_i = sum of squared distances from x_i to its n - f - 2 nearest
  other arrived models. [Krum, MultiKrum]
- `geometric_median(x, mask, weight, iters, nu)`: smoothed Weiszfeld iterations (RFA, Pillutla et al.,
  IEEE TSP 2022): z <- sum_i b_i x_i / sum_i b_i with b_i = w_i / max(nu, |z - x_i|). [GeometricMedian]
- `centered_clip(x, mask, center, tau, iters)`: v <- v + mean_i clip_tau(x_i - v), clip_tau(d) =
  d * min(1, tau / |d|) (Karimireddy, He and Jaggi, ICML 2021). [CenteredClipping]
Pre-aggregators, composable with any of them (they return a new [A', ...] pytree and mask):
- `bucketing(x, mask, s, key)`: a random permutation, then means of consecutive buckets of s models
  (Karimireddy, He and Jaggi, ICLR 2022). [Bucketing]
- `nnm(x, mask, f)`: each model replaced by the mean of its n - f nearest arrived models, itself
  included (Allouah et al., AISTATS 2023). [NNM]
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp


def _rows(tree) -> int:
    return jax.tree.leaves(tree)[0].shape[0]


def _mask(tree, mask_A):
    return jnp.ones((_rows(tree),), bool) if mask_A is None else mask_A


def _flat(tree):
    """[A, D] float32: every leaf flattened and concatenated (for distances only)."""
    return jnp.concatenate([a.reshape(a.shape[0], -1).astype(jnp.float32) for a in jax.tree.leaves(tree)], 1)


def pairwise_sq_dists(tree) -> jax.Array:
    """[A, A] squared Euclidean distances between the rows (whole models), clamped at 0."""
    x = _flat(tree)
    sq = jnp.sum(x * x, axis=1)
    return jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)


def weighted_rows(tree, w_A):
    """sum_i w_i x_i over the leading axis (w need not sum to one)."""
    return jax.tree.map(lambda a: jnp.tensordot(w_A.astype(a.dtype), a, axes=1), tree)


def krum_scores(tree, mask_A, f: int) -> jax.Array:
    """[A] Krum scores; +inf for models that did not arrive. With n arrived, each score sums the
    max(n - f - 2, 1) smallest squared distances to the other arrived models."""
    mask = _mask(tree, mask_A)
    A = mask.shape[0]
    d = pairwise_sq_dists(tree)
    valid = mask[None, :] & mask[:, None] & ~jnp.eye(A, dtype=bool)
    d = jnp.where(valid, d, jnp.inf)
    n = jnp.sum(mask, dtype=jnp.int32)
    k = jnp.maximum(n - f - 2, 1)
    ds = jnp.sort(d, axis=1)
    take = jnp.arange(A)[None, :] < k
    score = jnp.sum(jnp.where(take & jnp.isfinite(ds), ds, 0.0), axis=1)
    return jnp.where(mask, score, jnp.inf)


def krum(tree, mask_A, f: int, m: int = 1):
    """The mean of the m arrived models with the lowest Krum scores (m=1: Krum's one model)."""
    mask = _mask(tree, mask_A)
    score = krum_scores(tree, mask, f)
    rank = jnp.argsort(jnp.argsort(score))           # 0 for the best
    n = jnp.sum(mask, dtype=jnp.int32)
    chosen = (rank < jnp.minimum(m, n)) & mask
    w = chosen.astype(jnp.float32) / jnp.maximum(jnp.sum(chosen), 1)
    return weighted_rows(tree, w)


def geometric_median(tree, mask_A, weight_A=None, iters: int = 8, nu: float = 1e-6):
    """Smoothed Weiszfeld: `iters` fixed-point steps from the weighted mean (RFA's default is a few)."""
    mask = _mask(tree, mask_A)
    w = jnp.where(mask, 1.0 if weight_A is None else weight_A, 0.0).astype(jnp.float32)
    w = w / jnp.maximum(jnp.sum(w), 1e-30)
    x = _flat(tree)

    def step(z, _):
        dist = jnp.sqrt(jnp.sum((x - z[None, :]) ** 2, axis=1))
        b = w / jnp.maximum(nu, dist)
        return (b @ x) / jnp.maximum(jnp.sum(b), 1e-30), None

    z, _ = jax.lax.scan(step, w @ x, None, length=iters)
    b = w / jnp.maximum(nu, jnp.sqrt(jnp.sum((x - z[None, :]) ** 2, axis=1)))
    # the last step again, leaf by leaf in the leaves' own dtype: the same fixed point, unflattened
    return weighted_rows(tree, b / jnp.maximum(jnp.sum(b), 1e-30))


def centered_clip(tree, mask_A, center, tau: float, iters: int = 1):
    """Centered clipping around `center` (a pytree without the A axis, e.g. the previous aggregate)."""
    mask = _mask(tree, mask_A)
    n = jnp.maximum(jnp.sum(mask), 1).astype(jnp.float32)

    def step(v, _):
        diff = jax.tree.map(lambda a, c: a - c[None], tree, v)
        norm = jnp.sqrt(jnp.sum(_flat(diff) ** 2, axis=1))
        scale = jnp.where(mask, jnp.minimum(1.0, tau / jnp.maximum(norm, 1e-30)), 0.0) / n
        return jax.tree.map(lambda c, d: c + d, v, weighted_rows(diff, scale)), None

    v, _ = jax.lax.scan(step, center, None, length=iters)
    return v


def nnm(tree, mask_A, f: int):
    """Nearest-neighbour mixing: [A, ...] of means over each model's n - f nearest arrived models."""
    mask = _mask(tree, mask_A)
    A = mask.shape[0]
    d = jnp.where(mask[None, :], pairwise_sq_dists(tree), jnp.inf)
    d = jnp.where(jnp.eye(A, dtype=bool) & mask[:, None], -1.0, d)     # itself first, ties aside
    n = jnp.sum(mask, dtype=jnp.int32)
    k = jnp.maximum(n - f, 1)
    rank = jnp.argsort(jnp.argsort(d, axis=1), axis=1)
    w = ((rank < k) & mask[None, :]).astype(jnp.float32)
    w = w / jnp.maximum(jnp.sum(w, axis=1, keepdims=True), 1.0)
    return jax.tree.map(lambda a: jnp.tensordot(w.astype(a.dtype), a, axes=1), tree), mask


def bucketing(tree, mask_A, s: int, key):
    """Means of ceil(A / s) buckets of a random permutation of the rows; a bucket with no arrived
    model is masked out. Returns (tree [ceil(A/s), ...], mask)."""
    mask = _mask(tree, mask_A)
    A = mask.shape[0]
    B = -(-A // s)
    perm = jax.random.permutation(key, A)
    bucket = jnp.zeros((A,), jnp.int32).at[perm].set(jnp.arange(A) // s)      # row -> its bucket
    member = (bucket[None, :] == jnp.arange(B)[:, None]) & mask[None, :]      # [B, A]
    cnt = jnp.sum(member, axis=1)
    w = member.astype(jnp.float32) / jnp.maximum(cnt, 1)[:, None]
    return jax.tree.map(lambda a: jnp.tensordot(w.astype(a.dtype), a, axes=1), tree), cnt > 0


AGGREGATORS = ("krum", "multikrum", "geomed", "cclip")
PRE_AGGREGATORS = ("none", "bucketing", "nnm")


def aggregate(tree, mask_A: Optional[jax.Array], how: str, f: int, *, center=None, m: Optional[int] = 1,
              tau: float = 1.0, iters: int = 8, pre: str = "none", bucket: int = 2, key=None,
              weight_A=None):
    """One robust aggregate: the optional pre-aggregation, then the aggregator. `weight_A`: geomed's
    weights (RFA's shard sizes), used only without pre-aggregation (its rows are then the peers').
    `m`: multikrum's models averaged; None: n - f, n counted after the pre-aggregation (the buckets
    that hold a model: counted before it, m >= the buckets made multi-Krum their plain mean)."""
    if pre == "nnm":
        tree, mask_A = nnm(tree, mask_A, f)
    elif pre == "bucketing":
        tree, mask_A = bucketing(tree, mask_A, bucket, key)
        # f Byzantine models can sit in f different buckets: f stays (capped at the bucket count;
        # f may be traced, e.g. a lane's faulty count)
        f = jnp.minimum(f, _rows(tree))
    elif pre != "none":
        raise ValueError(f"pre={pre!r}; allowed: {', '.join(PRE_AGGREGATORS)}")
    if how == "krum":
        return krum(tree, mask_A, f, 1)
    if how == "multikrum":
        if m is None:
            m = jnp.sum(_mask(tree, mask_A), dtype=jnp.int32) - f
        return krum(tree, mask_A, f, m)
    if how == "geomed":
        return geometric_median(tree, mask_A, weight_A if pre == "none" else None, iters=iters)
    if how == "cclip":
        return centered_clip(tree, mask_A, center, tau, iters)
    raise ValueError(f"aggregate={how!r}; allowed: {', '.join(AGGREGATORS)}")
