"""Omniscient Byzantine attacks on what faulty peers send (they see the round's honest messages).

Parameter attacks act on updates u_i = w_i - w_ref (w_ref the model the peer started from); the faulty
peers send w_ref + u_byz. `honest_A` marks the honest senders whose updates the attacker sees.
- `sign_flip`: u_byz = -scale * u_i, each faulty peer its own update (Allen-Zhu et al. 2020);
- `gaussian`: u_byz ~ N(0, sigma^2 I), a fresh draw per faulty peer;
- `alie` ("A little is enough", Baruch et al., NeurIPS 2019): u_byz = mu - z * sd, coordinate-wise mean
  and standard deviation of the honest updates, z = Phi^-1((n - s) / n), s = floor(n / 2 + 1) - f, the
  same vector for every faulty peer (`alie_z`; a given z overrides);
- `ipm` (inner-product manipulation, Xie, Koyejo and Gupta, UAI 2020): u_byz = -eps * mu.
Prediction attack (votes and soft labels):
- `least_likely`: the faulty peer sends its model's least likely class on each probe (one-hot as a soft
  label), the attack on federated distillation of Roux et al. (ICLR 2025).
Every function is vectorised over peers; with no faulty peer the messages come back unchanged.
"""
from __future__ import annotations

from statistics import NormalDist

import jax
import jax.numpy as jnp

PARAM_ATTACKS = ("sign_flip", "gaussian", "alie", "ipm")


def alie_z(n: int, f: int) -> float:
    """Baruch et al.'s z_max for n peers of which f are Byzantine (host float, static shapes)."""
    s = n // 2 + 1 - f
    return NormalDist().inv_cdf((n - s) / n) if 0 < (n - s) / n < 1 else 0.0


def _honest_moments(u_A, honest_A):
    """Coordinate-wise mean and population standard deviation of the honest rows of u_A."""
    w = honest_A.astype(u_A.dtype).reshape((-1,) + (1,) * (u_A.ndim - 1))
    n = jnp.maximum(jnp.sum(honest_A), 1).astype(u_A.dtype)
    mu = jnp.sum(w * u_A, axis=0) / n
    var = jnp.sum(w * (u_A - mu[None]) ** 2, axis=0) / n
    return mu, jnp.sqrt(var)


def attack_updates(kind: str, u_tree, faulty_A, key, *, scale: float = 1.0, sigma: float = 1.0,
                   z: float = 1.0, eps: float = 0.1):
    """The updates every peer sends: honest rows unchanged, faulty rows replaced by the attack."""
    honest_A = ~faulty_A
    leaves, treedef = jax.tree.flatten(u_tree)
    keys = jax.random.split(key, len(leaves))
    out = []
    for u, k in zip(leaves, keys):
        if kind == "sign_flip":
            bad = -scale * u
        elif kind == "gaussian":
            bad = sigma * jax.random.normal(k, u.shape, u.dtype)
        elif kind in ("alie", "ipm"):
            mu, sd = _honest_moments(u, honest_A)
            one = mu - z * sd if kind == "alie" else -eps * mu
            bad = jnp.broadcast_to(one[None], u.shape)
        else:
            raise ValueError(f"attack {kind!r}; allowed: {', '.join(PARAM_ATTACKS)}")
        f = faulty_A.reshape((-1,) + (1,) * (u.ndim - 1))
        out.append(jnp.where(f, bad.astype(u.dtype), u))
    return jax.tree.unflatten(treedef, out)


def least_likely(logits_AxMxC, faulty_A):
    """[A, M] classes sent: each faulty peer's least likely class, the others' argmax."""
    return jnp.where(faulty_A[:, None], jnp.argmin(logits_AxMxC, -1), jnp.argmax(logits_AxMxC, -1))
