"""Peer partitions (PROTOCOLS.md "Partitions") and the probe-pool split.

All are pure host-side numpy functions of (labels, peers, params, seed) run once before training,
so every protocol sees exactly the same shards for the same seed. Each part is a sorted int64 index
array into `labels`; no example is in two parts.
"""
from __future__ import annotations

import numpy as np

from tallysim.config import PARTITIONS, PartitionConfig

from .base import DataError

MAX_REDRAWS = 1000   # dirichlet: enough for any satisfiable setting, bounded for impossible ones


def _sorted_parts(chunks) -> list[np.ndarray]:
    return [np.sort(np.asarray(c, dtype=np.int64)) for c in chunks]


def _iid(labels, peers, rng):
    # array_split: sizes differ by at most one.
    return _sorted_parts(np.array_split(rng.permutation(len(labels)), peers))


def _dirichlet(labels, peers, cfg, num_classes, rng):
    by_class = [rng.permutation(np.flatnonzero(labels == c)) for c in range(num_classes)]
    sizes = np.array([len(ix) for ix in by_class])
    for _ in range(MAX_REDRAWS):
        # One [C, P] draw per attempt; counts first (cheap), examples only once the draw is accepted.
        props = rng.dirichlet(np.full(peers, cfg.alpha), size=num_classes)
        cuts = np.floor(np.cumsum(props, axis=1) * sizes[:, None]).astype(np.int64)
        cuts[:, -1] = sizes                     # float round-off must not drop the last examples
        counts = np.diff(cuts, axis=1, prepend=0)
        if counts.sum(axis=0).min() >= cfg.min_size:
            break
    else:
        best = int(counts.sum(axis=0).min())
        raise DataError(f"partition.kind=dirichlet could not give every one of {peers} peers >= "
                        f"{cfg.min_size} examples in {MAX_REDRAWS} draws (alpha={cfg.alpha}, last draw's "
                        f"smallest peer: {best}); lower partition.min_size or peers, or raise "
                        "partition.alpha")
    parts = [[] for _ in range(peers)]
    for c, ix in enumerate(by_class):
        for p, chunk in enumerate(np.split(ix, cuts[c, :-1])):
            parts[p].append(chunk)
    return _sorted_parts(np.concatenate(ch) for ch in parts)


def _label_quantity(labels, peers, cfg, num_classes, rng):
    k = cfg.k
    if not 1 <= k <= num_classes:
        raise DataError(f"partition.k={k} is not possible with {num_classes} classes; allowed: "
                        f"1..{num_classes}")
    # Peer i holds classes perm[(i*k + j) % C], j < k: k distinct classes per peer, every class used
    # once peers*k >= C, and each class held by floor or ceil of peers*k/C peers (as even as possible).
    # The seeded permutation decides which classes end up together.
    perm = rng.permutation(num_classes)
    holders = [[] for _ in range(num_classes)]
    for i in range(peers):
        for j in range(k):
            holders[perm[(i * k + j) % num_classes]].append(i)
    parts = [[] for _ in range(peers)]
    for c in range(num_classes):
        if holders[c]:
            ix = rng.permutation(np.flatnonzero(labels == c))
            for peer, chunk in zip(holders[c], np.array_split(ix, len(holders[c]))):
                parts[peer].append(chunk)
    return _sorted_parts(np.concatenate(ch) if ch else np.empty(0, np.int64) for ch in parts)


def _quantity(labels, peers, cfg, rng):
    n = len(labels)
    if n < peers:
        raise DataError(f"partition.kind=quantity needs at least one example per peer: {peers} peers but "
                        f"{n} examples; lower peers")
    props = rng.dirichlet(np.full(peers, cfg.alpha))
    # Everyone gets 1, the rest by largest remainder so sizes sum exactly to n.
    share = props * (n - peers)
    sizes = np.floor(share).astype(np.int64)
    rest = (n - peers) - sizes.sum()
    sizes[np.argsort(-(share - sizes), kind="stable")[:rest]] += 1
    sizes += 1
    return _sorted_parts(np.split(rng.permutation(n), np.cumsum(sizes)[:-1]))


def partition(labels: np.ndarray, peers: int, cfg: PartitionConfig, num_classes: int,
              seed: int) -> list[np.ndarray]:
    labels = np.asarray(labels).reshape(-1)
    if peers < 1:
        raise DataError(f"peers={peers} must be >= 1")
    rng = np.random.default_rng(seed)
    if cfg.kind == "iid":
        return _iid(labels, peers, rng)
    if cfg.kind == "dirichlet":
        if not cfg.alpha > 0:
            raise DataError(f"partition.alpha={cfg.alpha} must be > 0 (small = strong skew, >= 100 ~ IID)")
        return _dirichlet(labels, peers, cfg, num_classes, rng)
    if cfg.kind == "label_quantity":
        return _label_quantity(labels, peers, cfg, num_classes, rng)
    if cfg.kind == "quantity":
        if not cfg.alpha > 0:
            raise DataError(f"partition.alpha={cfg.alpha} must be > 0 (small = strong size skew)")
        return _quantity(labels, peers, cfg, rng)
    raise DataError(f"partition.kind={cfg.kind!r} is not known; allowed: {', '.join(PARTITIONS)}")


def class_counts(labels: np.ndarray, parts: list[np.ndarray], num_classes: int) -> np.ndarray:
    """[P, C] examples of each class held by each peer (for logs and tests)."""
    labels = np.asarray(labels).reshape(-1)
    return np.stack([np.bincount(labels[p], minlength=num_classes)[:num_classes] for p in parts]
                    ).astype(np.int64) if parts else np.zeros((0, num_classes), np.int64)


def split_probe_pool(n_train: int, pool_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool_idx, rest_idx): disjoint sorted int64 indices covering range(n_train). The stream is salted
    so the pool is not correlated with a partition drawn from the same seed."""
    if not 0 <= pool_size <= n_train:
        raise DataError(f"probe.pool_size={pool_size} must be in 0..{n_train} (the training examples)")
    perm = np.random.default_rng([int(seed), 0x9A01]).permutation(n_train)
    return np.sort(perm[:pool_size]).astype(np.int64), np.sort(perm[pool_size:]).astype(np.int64)
