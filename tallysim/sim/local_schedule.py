"""Which examples and probes each step of a peer's local round reads: the private schedule (each epoch a
permutation with the peer's own examples first and the padding last, or local_steps uniform draws), the
probe schedule (a per-peer shuffle of the M probes, walked by real step), and the private steps a peer
really takes (`real_steps`). Split from local.py, which re-exports them (local.X, as before).

Shape letters: S largest shard, B private batch, R probe batch, T steps, E epochs (glossary:
tallysim/sim/__init__.py).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def private_schedule(spec, key, shard_S, count):
    """Example indices [T, B] and validity mask [T, B] of one peer's private steps this round (`spec`: its
    local.LocalSpec)."""
    B, S = spec.batch_size, spec.shard_max
    if spec.local_steps is not None:
        # Exactly local_steps steps: sample positions uniformly from the peer's own examples.
        u = jax.random.uniform(key, (spec.local_steps, B))
        pos = jnp.minimum((u * count).astype(jnp.int32), jnp.maximum(count - 1, 0))
        return shard_S[pos], jnp.broadcast_to(count > 0, pos.shape)
    per_epoch = math.ceil(S / B)

    def perm(k):
        r = jnp.where(jnp.arange(S) < count, jax.random.uniform(k, (S,)), 2.0)
        return jnp.argsort(r)
    perms_ExS = jax.vmap(perm)(jax.random.split(key, spec.epochs))
    perms_ExS = jnp.pad(perms_ExS, ((0, 0), (0, per_epoch * B - S)))
    mask = jnp.broadcast_to(jnp.arange(per_epoch * B) < count, perms_ExS.shape)
    steps = spec.epochs * per_epoch
    return shard_S[perms_ExS].reshape(steps, B), mask.reshape(steps, B)


def probe_schedule(key, probes: int, steps: int, batch: int, step_T=None):
    """Probe indices [T, R]: walk through a per-peer shuffle of the M probes, wrapping around."""
    order = jax.random.permutation(key, probes)
    step_T = jnp.arange(steps) if step_T is None else step_T
    pos = (step_T[:, None] * batch + jnp.arange(batch)[None, :]) % probes
    return order[pos]


def real_steps(spec, count):
    """Private steps a peer with `count` examples really takes this round."""
    if spec.local_steps is not None:
        return jnp.where(count > 0, spec.local_steps, 0).astype(jnp.int32)
    return (spec.epochs * ((count + spec.batch_size - 1) // spec.batch_size)).astype(jnp.int32)
