"""Federated data resident on the device, and the static facts about a run.

Shape letters: P peers, A active peers, S largest shard, N train examples, Q probe-pool size,
M probes per round, C classes, T test examples.

Shards are index arrays into one copy of the training set rather than padded copies of the images:
a Dirichlet split can make the largest shard ten times the mean, and P padded copies would cost
P * S images of device memory where indices cost P * S int32s.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class FedData(NamedTuple):
    x_train: jax.Array       # [N, ...] uint8 or float32 (training split minus the probe pool)
    y_train: jax.Array       # [N] int32
    shard_PxS: jax.Array     # [P, S] int32 indices into x_train; padding points at 0 and is masked
    count_P: jax.Array       # [P] int32 real examples per peer
    x_pool: jax.Array        # [Q, ...] public probe pool
    y_pool: jax.Array        # [Q] hidden labels, diagnostics only
    x_test: jax.Array        # [T, ...]
    y_test: jax.Array        # [T]


class Spec(NamedTuple):
    """Static (Python) facts that shape the compiled program."""
    peers: int
    active: int              # peers per round (participation * P, at least 1)
    shard_max: int           # S
    pool: int                # Q
    probes: int              # M
    classes: int             # C
    input_shape: tuple


def to_input(x: jax.Array) -> jax.Array:
    """Raw stored examples -> float32 model input. uint8 images map to [-1, 1]."""
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) * (2.0 / 255.0) - 1.0
    return x.astype(jnp.float32)


def build(x_train, y_train, parts, x_pool, y_pool, x_test, y_test, num_classes, cfg) -> tuple[FedData, Spec]:
    """Host numpy arrays + per-peer index lists -> device-resident FedData and its Spec."""
    peers = len(parts)
    counts = np.array([len(p) for p in parts], np.int32)
    shard_max = int(counts.max())
    shard = np.zeros((peers, shard_max), np.int32)
    for i, p in enumerate(parts):   # host-side, once per run
        shard[i, :len(p)] = p
    fed = FedData(
        x_train=jnp.asarray(x_train), y_train=jnp.asarray(y_train, jnp.int32),
        shard_PxS=jnp.asarray(shard), count_P=jnp.asarray(counts),
        x_pool=jnp.asarray(x_pool), y_pool=jnp.asarray(y_pool, jnp.int32),
        x_test=jnp.asarray(x_test), y_test=jnp.asarray(y_test, jnp.int32))
    active = max(1, int(round(cfg.participation * peers)))
    spec = Spec(peers=peers, active=active, shard_max=shard_max, pool=len(x_pool),
                probes=cfg.probe.per_round, classes=num_classes,
                input_shape=tuple(x_train.shape[1:]))
    return fed, spec


def label_bits(classes: int) -> int:
    """L = ceil(log2 C): bits of one hard label."""
    return max(1, math.ceil(math.log2(classes)))
