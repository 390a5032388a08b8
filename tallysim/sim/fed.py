"""Federated data resident on the device, and the static facts about a run.

Shape letters: P peers, A active peers, S largest shard, N train examples, Q probe-pool size,
M probes per round, C classes, V test examples (glossary: tallysim/sim/__init__.py).

Shards are index arrays into one copy of the training set rather than padded copies of the images:
a Dirichlet split can make the largest shard ten times the mean, and P padded copies would cost
P * S images of device memory where indices cost P * S int32s.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np


class FedData(NamedTuple):
    """Device-resident data. Under a batch of seeds (run.py vmaps over them) the per-seed fields,
    the shards and the pool, carry a leading seed axis; see SEED_AXES."""
    x_train: jax.Array       # [N, ...] uint8 or float32: the training split (+ probe.source examples)
    y_train: jax.Array       # [N] int32 (pool labels are hidden from peers: diagnostics only)
    shard_PxS: jax.Array     # [P, S] int32 indices into x_train; padding points at 0 and is masked
    count_P: jax.Array       # [P] int32 real examples per peer
    pool_Q: jax.Array        # [Q] int32 indices into x_train of the public probe pool
    x_test: jax.Array        # [V, ...]
    y_test: jax.Array        # [V]
    faulty_P: Optional[jax.Array] = None   # [P] bool: the seed's fixed set of faulty peers (faults.py)


# vmap in_axes of FedData over a leading seed axis: each seed has its own partition, pool and faulty set.
SEED_AXES = FedData(None, None, 0, 0, 0, None, None, 0)


class Spec(NamedTuple):
    """Static (Python) facts that shape the compiled program."""
    peers: int
    active: int              # peers per round (participation * P, at least 1)
    shard_max: int           # S
    pool: int                # Q
    probes: int              # M
    classes: int             # C
    input_shape: tuple
    groups: int = 1          # local training: peer groups by shard size (local.train_peers)
    task: str = "classification"   # sim/tasks.py: classification | next_token

    @property
    def messages(self) -> int:
        """Messages per peer and round of the probe exchange: M probes x the task's positions."""
        from tallysim.sim import tasks
        return self.probes * tasks.of(self).positions


def to_input(x: jax.Array) -> jax.Array:
    """Raw stored examples -> float32 model input. uint8 images map to [-1, 1]."""
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) * (2.0 / 255.0) - 1.0
    return x.astype(jnp.float32)


def pool_examples(data: FedData, idx):
    """(inputs, hidden labels) of pool positions `idx`."""
    rows = data.pool_Q[idx]
    return data.x_train[rows], data.y_train[rows]


def pad_shards(parts: list, shard_max: int) -> tuple[np.ndarray, np.ndarray]:
    shard = np.zeros((len(parts), shard_max), np.int32)
    for i, p in enumerate(parts):   # host-side, once per run
        shard[i, :len(p)] = p
    return shard, np.array([len(p) for p in parts], np.int32)


def build(x_train, y_train, parts_per_seed, pool_per_seed, x_test, y_test, num_classes, cfg,
          faulty_per_seed=None) -> tuple[FedData, Spec]:
    """Host arrays + per-seed peer index lists, pools and faulty sets (bool [P] each; None: no
    faulty peers) -> FedData with a leading seed axis."""
    shard_max = max(len(p) for parts in parts_per_seed for p in parts)
    shards, counts = zip(*(pad_shards(parts, shard_max) for parts in parts_per_seed))
    fed = FedData(
        x_train=jnp.asarray(x_train), y_train=jnp.asarray(y_train, jnp.int32),
        shard_PxS=jnp.asarray(np.stack(shards)), count_P=jnp.asarray(np.stack(counts)),
        pool_Q=jnp.asarray(np.stack(pool_per_seed).astype(np.int32)),
        x_test=jnp.asarray(x_test), y_test=jnp.asarray(y_test, jnp.int32),
        faulty_P=jnp.asarray(np.zeros((len(parts_per_seed), len(parts_per_seed[0])), bool)
                             if faulty_per_seed is None else np.stack(faulty_per_seed).astype(bool)))
    peers = len(parts_per_seed[0])
    active = max(1, int(round(cfg.participation * peers)))
    spec = Spec(peers=peers, active=active, shard_max=shard_max, pool=len(pool_per_seed[0]),
                probes=cfg.probe.per_round, classes=num_classes,
                input_shape=tuple(x_train.shape[1:]))
    return fed, spec


def seed_slice(fed: FedData, i: int) -> FedData:
    """One seed's FedData (no seed axis), e.g. for tests and tools that drive a protocol directly."""
    return fed._replace(shard_PxS=fed.shard_PxS[i], count_P=fed.count_P[i], pool_Q=fed.pool_Q[i],
                        faulty_P=None if fed.faulty_P is None else fed.faulty_P[i])


def lane_take(fed: FedData, idx) -> FedData:
    """Lanes `idx` (an index array) of a FedData with a leading seed (lane) axis: every per-lane field
    of SEED_AXES, so a new per-lane field needs no change here."""
    return fed._replace(**{name: getattr(fed, name)[idx]
                           for name, ax in zip(fed._fields, SEED_AXES)
                           if ax == 0 and getattr(fed, name) is not None})


def label_bits(classes: int) -> int:
    """L = ceil(log2 C): bits of one hard label."""
    return max(1, math.ceil(math.log2(classes)))
