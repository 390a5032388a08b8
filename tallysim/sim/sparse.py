"""Flatten a model, pick its top-k entries with error feedback, and merge the sparse updates.

Shape letters: A active peers, W parameters of one model (|W|), K entries sent by one peer
(glossary: tallysim/sim/__init__.py).

Pure functions of flat float vectors; `bridge` vmaps them over the active peers. Top-k uses
`jax.lax.top_k` on |u|, which returns equal values in index order, so ties go to the lower index:
the selection is a deterministic function of u alone (zeros are picked last, lowest index first).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


class Layout(NamedTuple):
    """How one model flattens: its tree structure and each leaf's shape and (start, size)."""
    treedef: Any
    shapes: tuple            # leaf shapes in tree order
    segments: tuple          # ((start, size), ...) of each leaf in the flat vector
    size: int                # |W|

    def unravel(self, flat_W: jax.Array) -> PyTree:
        leaves = [flat_W[s:s + n].reshape(shape) for (s, n), shape in zip(self.segments, self.shapes)]
        return jax.tree.unflatten(self.treedef, leaves)


def layout(tree: PyTree) -> Layout:
    """The flat layout of one (unstacked) model, from arrays or jax.eval_shape structs. The order is
    jax.tree.leaves', as in jax.flatten_util.ravel_pytree."""
    leaves, treedef = jax.tree.flatten(tree)
    shapes = tuple(tuple(leaf.shape) for leaf in leaves)
    segments, start = [], 0
    for shape in shapes:
        segments.append((start, math.prod(shape)))
        start += math.prod(shape)
    return Layout(treedef, shapes, tuple(segments), start)


def flatten(tree: PyTree) -> jax.Array:
    """One model -> [W]."""
    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])


def flatten_stacked(tree_A: PyTree) -> jax.Array:
    """[A, ...] leaves -> [A, W]."""
    return jax.vmap(flatten)(tree_A)


def unflatten_stacked(lay: Layout, flat_AxW: jax.Array) -> PyTree:
    return jax.vmap(lay.unravel)(flat_AxW)


def ceil_fraction(density: float, n: int) -> int:
    """ceil(density * n) with density read as the decimal it was written as: in floats
    0.07 * 100 = 7.000000000000001, whose ceiling would be 8."""
    return min(n, math.ceil(Fraction(repr(float(density))) * n))


def num_selected(density: float, lay: Layout, scope: str) -> int:
    """k: entries one peer sends, ceil(density*|W|) (global) or the sum over leaves of
    ceil(density*leaf size) (per_tensor). Static Python int."""
    if scope == "global":
        return ceil_fraction(density, lay.size)
    return sum(ceil_fraction(density, n) for _, n in lay.segments)


def topk_mask(u_W: jax.Array, k: int) -> jax.Array:
    """Boolean mask of the k entries of u largest in |u|; ties to the lower index. k is static."""
    n = u_W.shape[0]
    if k >= n:
        return jnp.ones((n,), bool)
    if k <= 0:
        return jnp.zeros((n,), bool)
    _, idx = jax.lax.top_k(jnp.abs(u_W), k)
    return jnp.zeros((n,), bool).at[idx].set(True)


def lane_topk_mask(u_W: jax.Array, k, kmax: int) -> jax.Array:
    """`topk_mask` with a traced k (one lane of a grouped sweep, lanes.py) bounded by the group's
    static kmax: the first k of the top kmax. top_k sorts by |u| with ties in index order, so this is
    exactly topk_mask(u_W, k) for every k <= kmax."""
    n = u_W.shape[0]
    kmax = min(kmax, n)
    _, idx = jax.lax.top_k(jnp.abs(u_W), kmax)
    return jnp.zeros((n,), bool).at[idx].set(jnp.arange(kmax) < k)


class LaneK(NamedTuple):
    """Per-lane k of a grouped sweep over `bridge.density`: k_seg traced (one entry for global scope,
    one per leaf segment (seg) for per_tensor), kmax_seg the group's static bound for each."""
    k_seg: Any
    kmax_seg: tuple


def lane_k(density, choices: tuple, lay: Layout, scope: str) -> LaneK:
    """The k's of a traced density: exact, since `choices` (the group's densities, Python floats) are
    mapped to their k on the host and the lane's float32 density is matched against them."""
    if len(set(np.asarray(choices, np.float32).tolist())) < len(choices):
        # two densities equal in float32 could not be told apart on the device
        raise ValueError(f"bridge.density values {choices} coincide in float32; sweep them one at a time")
    per = ([(num_selected(d, lay, scope),) for d in choices] if scope == "global"
           else [tuple(ceil_fraction(d, n) for _, n in lay.segments) for d in choices])
    table = jnp.asarray(per, jnp.int32)                                   # [choices, seg]
    hit = jnp.asarray(density, jnp.float32) == jnp.asarray(choices, jnp.float32)
    return LaneK(jnp.sum(jnp.where(hit[:, None], table, 0), axis=0), tuple(max(col) for col in zip(*per)))


def select_mask(u_W: jax.Array, density, lay: Layout, scope: str, lk: LaneK | None = None) -> jax.Array:
    """The sent entries: top-k over the whole vector (global) or within each leaf (per_tensor);
    with `lk`, k per lane (the density is then traced and not read)."""
    if lk is not None:
        if scope == "global":
            return lane_topk_mask(u_W, lk.k_seg[0], lk.kmax_seg[0])
        return jnp.concatenate([lane_topk_mask(u_W[s:s + n], lk.k_seg[i], lk.kmax_seg[i])
                                for i, (s, n) in enumerate(lay.segments)])
    if scope == "global":
        return topk_mask(u_W, num_selected(density, lay, scope))
    parts = [topk_mask(u_W[s:s + n], ceil_fraction(density, n)) for s, n in lay.segments]
    return jnp.concatenate(parts)


class Sparsified(NamedTuple):
    sent_W: jax.Array        # s = u on the mask, 0 elsewhere
    error_W: jax.Array       # e = u - s (exactly: u off the mask, 0 on it)
    mask_W: jax.Array        # bool, the k coordinates sent


def sparsify(theta_W, ref_W, error_W, density, lay: Layout, scope: str, lk: LaneK | None = None) -> Sparsified:
    """Error feedback: u = (theta - ref) + e; send s = topk(u); keep e' = u - s. s + e' == u exactly."""
    u = (theta_W - ref_W) + error_W
    mask = select_mask(u, density, lay, scope, lk)
    zero = jnp.zeros_like(u)
    return Sparsified(jnp.where(mask, u, zero), jnp.where(mask, zero, u), mask)


def merge(sent_AxW, mask_AxW, weight_A, average: str) -> jax.Array:
    """The server's merged update [W]: sum_i w_i s_i (weighted, w summing to one) or, per coordinate,
    the plain sum divided by the number of peers that sent it (per_coordinate; 0 where none did)."""
    if average == "weighted":
        return jnp.tensordot(weight_A.astype(sent_AxW.dtype), sent_AxW, axes=1)
    senders = jnp.sum(mask_AxW, axis=0).astype(sent_AxW.dtype)
    return jnp.sum(sent_AxW, axis=0) / jnp.maximum(senders, 1.0)


def reset(theta_AxW, ref_new_W, merged_W, sent_AxW, mode: str) -> jax.Array:
    """Peers after a merge: theta_ref (hard) or theta + merged - own sent part (soft)."""
    if mode == "hard":
        return jnp.broadcast_to(ref_new_W, theta_AxW.shape)
    return theta_AxW + (merged_W[None, :] - sent_AxW)
