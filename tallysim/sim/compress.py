"""Parameter-compression operators of the FedAvg-family baselines, on flat update vectors [W].

Shape letters: A active peers, W the model's parameters flattened (sim/sparse.py's layout).
Every operator is pure and vmapped over peers by its caller; each has an exact bit cost as a
Python int from static sizes (`*_bits`), which comm.py's ledger adds up.

- `random_k` (rand-k, Stich et al., NeurIPS 2018; Konecny et al. 2016): k coordinates drawn uniformly
  without replacement from a seed the server shares (the round key), scaled by W / k so the estimate is
  unbiased. Bits: k values; no indices (the server regenerates the mask from the key).
- `qsgd` (Alistarh et al., NeurIPS 2017): Q_s(v)_i = |v| sign(v_i) l_i / s, l_i the stochastic rounding
  of s |v_i| / |v| to a neighbouring integer level; unbiased. Bits, with fixed-length codes (the paper's
  Elias coding is shorter for small s; we do not assume it): 32 for |v| + W (1 sign + ceil(log2(s + 1))).
- `sign` (signSGD with majority vote, Bernstein et al., ICLR 2019): each peer sends sign(v) (1 bit per
  coordinate, 0 mapped to +1), the server sends back the sign of the sum of signs (1 bit per coordinate,
  ties to +1) and everyone steps by lr times it: a vote on parameters, TallyTrain's counterpart.
- `topk` with error feedback lives in sim/sparse.py (the bridge's merges); FedPAQ (Reisizadeh et al.,
  AISTATS 2020) is FedAvg with `qsgd` on each peer's update.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from tallysim.sim.comm import ceil_log2

NORM_BITS = 32


def random_k_mask(key, W: int, k: int) -> jax.Array:
    """float 0/1 [W]: k coordinates without replacement (the same for every peer of the round)."""
    idx = jax.random.choice(key, W, (k,), replace=False)
    return jnp.zeros((W,), jnp.float32).at[idx].set(1.0)


def random_k(u_W: jax.Array, mask_W: jax.Array, k: int) -> jax.Array:
    """The unbiased rand-k estimate of u: (W / k) * u on the mask, 0 elsewhere (u may be [..., W])."""
    return u_W * mask_W * (u_W.shape[-1] / k)


def random_k_bits(k: int, bits: int) -> int:
    return k * bits


def qsgd(u_W: jax.Array, s, key) -> jax.Array:
    """QSGD's stochastic s-level quantisation of u (exact zeros where |u| = 0)."""
    norm = jnp.sqrt(jnp.sum(jnp.square(u_W.astype(jnp.float32))))
    r = s * jnp.abs(u_W) / jnp.maximum(norm, 1e-30)
    lo = jnp.floor(r)
    level = lo + (jax.random.uniform(key, u_W.shape) < (r - lo)).astype(r.dtype)
    return (norm * jnp.sign(u_W) * level / s).astype(u_W.dtype)


def qsgd_bits(W: int, s: int) -> int:
    return NORM_BITS + W * (1 + ceil_log2(s + 1))


def signs(u_W: jax.Array) -> jax.Array:
    """+1 / -1 per coordinate (0 sends +1: one bit carries no third value)."""
    return jnp.where(u_W >= 0, 1.0, -1.0).astype(u_W.dtype)


def majority(signs_AxW: jax.Array, mask_A=None) -> jax.Array:
    """The sign of the sum of the senders' signs, ties to +1."""
    if mask_A is not None:
        signs_AxW = signs_AxW * mask_A[:, None].astype(signs_AxW.dtype)
    return jnp.where(jnp.sum(signs_AxW, axis=0) >= 0, 1.0, -1.0).astype(signs_AxW.dtype)


def sign_bits(W: int) -> int:
    return W
