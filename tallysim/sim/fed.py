"""Federated data resident on the device, and the static facts about a run.

Shape letters: P peers, A active peers, S largest shard, H held examples (every shard end to end),
N train examples, Q probe-pool size, M probes per round, C classes, V test examples (glossary:
tallysim/sim/__init__.py).

Shards are index arrays into one copy of the training set rather than padded copies of the images:
a Dirichlet split can make the largest shard ten times the mean, and P padded copies would cost
P * S images of device memory where indices cost P * S int32s. And the indices are ragged: one flat
array of every peer's indices end to end (`shard_H`) with each peer's offset and count, not a [P, S]
matrix padded to the largest shard, so a population of 10^6 clients of very different sizes costs
its real size (H int32s, plus 2 * P) rather than P * S. A round gathers its cohort's rows
(`cohort_shards`, [A, S]) on the device.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from tallysim.config import ConfigError
from tallysim.data.population import ragged


class FedData(NamedTuple):
    """Device-resident data. Under a batch of seeds (run.py vmaps over them) the per-seed fields,
    the shards and the pool, carry a leading seed axis; see SEED_AXES."""
    x_train: jax.Array       # [N, ...] uint8 or float32: the training split (+ probe.source examples)
    y_train: jax.Array       # [N] int32 (pool labels are hidden from peers: diagnostics only)
    shard_H: jax.Array       # [H] int32 indices into x_train: peer p's are shard_H[offset_P[p]:][:count_P[p]]
    count_P: jax.Array       # [P] int32 real examples per peer
    pool_Q: jax.Array        # [Q] int32 indices into x_train of the public probe pool
    x_test: jax.Array        # [V, ...]
    y_test: jax.Array        # [V]
    faulty_P: Optional[jax.Array] = None   # [P] bool: the seed's fixed set of faulty peers (faults.py)
    # [P] int32 where each peer's indices start in shard_H (last, so that positional FedData(...) calls
    # that leave the shards unused keep working)
    offset_P: Optional[jax.Array] = None


# vmap in_axes of FedData over a leading seed axis: each seed has its own partition, pool and faulty set.
SEED_AXES = FedData(None, None, 0, 0, 0, None, None, 0, 0)


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


def cohort_shards(data: FedData, idx_A, shard_max: Optional[int] = None) -> jax.Array:
    """[A, S] int32: the shards of peers `idx_A` (None: every peer, [P, S]) gathered from the flat
    `shard_H`, S = `shard_max` (static: Spec.shard_max; None reads the largest count, for concrete
    arrays only: tests and tools). Positions past a peer's count hold 0, a valid index that local
    training masks by the count (as the padded matrix of earlier versions did, so the same batches
    and bits); with one seed's FedData (no seed axis)."""
    if shard_max is None:
        shard_max = int(np.asarray(data.count_P).max(initial=0))
    offset = data.offset_P if idx_A is None else data.offset_P[idx_A]
    count = data.count_P if idx_A is None else data.count_P[idx_A]
    j_S = jnp.arange(shard_max, dtype=jnp.int32)
    valid = j_S[None, :] < count[:, None]
    pos = jnp.where(valid, offset[:, None] + j_S[None, :], 0)
    return jnp.where(valid, data.shard_H[pos], 0).astype(jnp.int32)


def to_device(a, dtype=None) -> jax.Array:
    """A host array on the default device, in `dtype` (None: its own, as jnp.asarray canonicalises it).
    `may_alias`: on the CPU, jnp.asarray stages a numpy array through a second host copy before the
    device's (three copies of 768 MB of inputs at once, measured for a 10^6-client run); device_put
    with may_alias copies it once. It waits for the copy: until then the transfer holds the host array,
    which the caller may want to free. The same values either way. A jax array is returned as it is."""
    if isinstance(a, jax.Array):
        return a if dtype is None else a.astype(dtype)
    a = np.asarray(a, dtype)
    out = jax.device_put(a.astype(jax.dtypes.canonicalize_dtype(a.dtype), copy=False), may_alias=True)
    return out.block_until_ready()


def ragged_stack(parts_per_seed: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per seed, the peers' index arrays (a list, or a data.Ragged) -> (shard [Z, H] int32 flat and
    padded to the largest H over the seeds, offset [Z, P] int32, count [Z, P] int32). Vectorised:
    a data.Ragged of 10^6 clients is never split into 10^6 arrays."""
    rag = [ragged(parts) for parts in parts_per_seed]
    H = max(len(r.flat) for r in rag)
    if H >= 2**31:
        raise ConfigError(f"the peers' shards hold {H:,} examples in all, more than int32 offsets address "
                          f"(2**31 - 1); allowed: fewer peers or smaller shards (partition.mean_size)")
    if len(rag) == 1 and rag[0].flat.dtype == np.int32:
        shard = rag[0].flat[None]             # one seed: no padded copy of 10^7 indices
    else:
        shard = np.zeros((len(rag), H), np.int32)
        for z, r in enumerate(rag):           # one copy per seed
            shard[z, :len(r.flat)] = r.flat
    return (shard, np.stack([r.offsets for r in rag]).astype(np.int32),
            np.stack([r.sizes for r in rag]).astype(np.int32))


def build(x_train, y_train, parts_per_seed, pool_per_seed, x_test, y_test, num_classes, cfg,
          faulty_per_seed=None) -> tuple[FedData, Spec]:
    """Host arrays + per-seed peer index lists (or data.Ragged), pools and faulty sets (bool [P]
    each; None: no faulty peers) -> FedData with a leading seed axis."""
    shard, offset, count = ragged_stack(parts_per_seed)
    shard_max = int(count.max(initial=0))
    peers = count.shape[1]
    active = max(1, int(round(cfg.participation * peers)))
    for count_P in count:           # build.build_group checked each lane first, naming its configuration
        check_size_rule(cfg, count_P)
    fed = FedData(
        x_train=to_device(x_train), y_train=to_device(y_train, np.int32),
        shard_H=to_device(shard), count_P=to_device(count),
        pool_Q=to_device(np.stack(pool_per_seed).astype(np.int32)),
        x_test=to_device(x_test), y_test=to_device(y_test, np.int32),
        faulty_P=to_device(np.zeros(count.shape, bool)
                           if faulty_per_seed is None else np.stack(faulty_per_seed).astype(bool)),
        offset_P=to_device(offset))
    spec = Spec(peers=peers, active=active, shard_max=shard_max, pool=len(pool_per_seed[0]),
                probes=cfg.probe.per_round, classes=num_classes,
                input_shape=tuple(x_train.shape[1:]))
    return fed, spec


def check_size_rule(cfg, count_P, lane: str = "") -> None:
    """participation_rule=size never draws an empty shard (sim/cohort.py): refused in one line where
    fewer of the peers than a round's cohort hold examples. `lane`: which lane of a group (its seed and
    the partition fields its configuration sets), so that the message names the right configuration."""
    peers = len(count_P)
    active = max(1, int(round(cfg.participation * peers)))
    if cfg.participation_rule != "size" or active >= peers:
        return
    have = int((np.asarray(count_P) > 0).sum())
    if have < active:
        where = lane or f"partition.kind={cfg.partition.kind}"
        raise ConfigError(f"participation_rule=size draws {active} peers per round by shard size but "
                          f"only {have} peers hold any examples ({where}); "
                          "allowed: participation <= that fraction, a partition without empty "
                          "shards (partition.min_size >= 1), or participation_rule=uniform")


def seed_slice(fed: FedData, i: int) -> FedData:
    """One seed's FedData (no seed axis), e.g. for tests and tools that drive a protocol directly."""
    return fed._replace(shard_H=fed.shard_H[i], count_P=fed.count_P[i], pool_Q=fed.pool_Q[i],
                        faulty_P=None if fed.faulty_P is None else fed.faulty_P[i],
                        offset_P=None if fed.offset_P is None else fed.offset_P[i])


def lane_take(fed: FedData, idx) -> FedData:
    """Lanes `idx` (an index array) of a FedData with a leading seed (lane) axis: every per-lane field
    of SEED_AXES, so a new per-lane field needs no change here."""
    return fed._replace(**{name: getattr(fed, name)[idx]
                           for name, ax in zip(fed._fields, SEED_AXES)
                           if ax == 0 and getattr(fed, name) is not None})
