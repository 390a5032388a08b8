"""Peer partitions (PROTOCOLS.md "Partitions") and the probe-pool split."""

import numpy as np
import pytest

from tallysim.config import PartitionConfig
from tallysim.data import DataError, class_counts, partition, split_probe_pool

C = 10
LABELS = np.random.default_rng(123).permutation(np.arange(6000) % C)   # 600 per class, shuffled
KINDS = {
    "iid": PartitionConfig(kind="iid"),
    "dirichlet": PartitionConfig(kind="dirichlet", alpha=0.3, min_size=10),
    "label_quantity": PartitionConfig(kind="label_quantity", k=2),
    "quantity": PartitionConfig(kind="quantity", alpha=0.5),
}


def _check_basic(parts, n, peers):
    assert len(parts) == peers
    for p in parts:
        assert p.dtype == np.int64 and np.all(np.diff(p) > 0)     # sorted, no repeats
        assert p.size == 0 or (p.min() >= 0 and p.max() < n)
    allidx = np.concatenate(parts)
    assert len(np.unique(allidx)) == len(allidx)                  # disjoint


@pytest.mark.parametrize("kind", list(KINDS))
def test_disjoint_sorted_and_deterministic(kind):
    cfg = KINDS[kind]
    a = partition(LABELS, 7, cfg, C, seed=1)
    _check_basic(a, len(LABELS), 7)
    b = partition(LABELS, 7, cfg, C, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = partition(LABELS, 7, cfg, C, seed=2)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("kind", ["iid", "dirichlet", "quantity"])
def test_covers_everything(kind):
    parts = partition(LABELS, 9, KINDS[kind], C, seed=0)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(LABELS)))


def test_iid_equal_sizes_and_balanced_labels():
    parts = partition(LABELS, 7, KINDS["iid"], C, seed=0)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    counts = class_counts(LABELS, parts, C)
    assert counts.shape == (7, C) and counts.sum() == len(LABELS)
    assert counts.min() > 0.5 * len(LABELS) / 7 / C


def _skew(counts):
    """Mean total-variation distance between each peer's label distribution and uniform."""
    dist = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    return np.abs(dist - 1 / counts.shape[1]).sum(1).mean() / 2


def test_dirichlet_skew_follows_alpha():
    small = partition(LABELS, 10, PartitionConfig(kind="dirichlet", alpha=0.05, min_size=1), C, seed=0)
    large = partition(LABELS, 10, PartitionConfig(kind="dirichlet", alpha=100.0, min_size=1), C, seed=0)
    s, l = _skew(class_counts(LABELS, small, C)), _skew(class_counts(LABELS, large, C))
    assert s > 0.5 and l < 0.1, (s, l)
    # near-IID also means near-equal sizes
    sizes = np.array([len(p) for p in large])
    assert sizes.std() / sizes.mean() < 0.1


def test_dirichlet_min_size_respected():
    cfg = PartitionConfig(kind="dirichlet", alpha=0.1, min_size=50)
    for seed in range(3):
        parts = partition(LABELS, 10, cfg, C, seed=seed)
        assert min(len(p) for p in parts) >= 50


def test_dirichlet_impossible_min_size_fails_fast():
    labels = np.random.default_rng(0).permutation(np.arange(54000) % C)
    cfg = PartitionConfig(kind="dirichlet", alpha=0.01, min_size=10)
    from tallysim.data.partition import MAX_REDRAWS
    with pytest.raises(DataError, match=f">= 10 examples in {MAX_REDRAWS} draws.*min_size"):    # a bounded number of draws
        partition(labels, 100, cfg, C, seed=0)
    # with min_size=0 the same setting is fine
    parts = partition(labels, 100, PartitionConfig(kind="dirichlet", alpha=0.01, min_size=0), C, seed=0)
    assert sum(len(p) for p in parts) == len(labels)


@pytest.mark.parametrize("peers,k", [(10, 2), (3, 2), (20, 3), (5, 10), (4, 1)])
def test_label_quantity_exactly_k_classes(peers, k):
    parts = partition(LABELS, peers, PartitionConfig(kind="label_quantity", k=k), C, seed=0)
    _check_basic(parts, len(LABELS), peers)
    counts = class_counts(LABELS, parts, C)
    assert np.all((counts > 0).sum(1) == k)
    used = (counts > 0).any(0)
    if peers * k >= C:
        assert used.all()                           # every class is used when possible
        assert sum(len(p) for p in parts) == len(LABELS)
    for c in np.flatnonzero(used):                  # a class is split evenly among its holders
        held = counts[:, c][counts[:, c] > 0]
        assert held.max() - held.min() <= 1


def test_label_quantity_k_too_large():
    with pytest.raises(DataError, match="allowed: 1..10"):
        partition(LABELS, 4, PartitionConfig(kind="label_quantity", k=11), C, seed=0)


def test_quantity_sizes_skewed_labels_iid():
    parts = partition(LABELS, 10, PartitionConfig(kind="quantity", alpha=0.2), C, seed=0)
    sizes = np.array([len(p) for p in parts])
    assert sizes.sum() == len(LABELS) and sizes.min() >= 1
    assert sizes.max() > 3 * np.median(sizes)       # skewed sizes at small alpha
    big = parts[int(sizes.argmax())]
    assert _skew(class_counts(LABELS, [big], C)) < 0.1   # labels stay ~IID
    tiny = partition(LABELS[:12], 12, PartitionConfig(kind="quantity", alpha=0.01), C, seed=0)
    assert [len(p) for p in tiny] == [1] * 12


def test_bad_kind_lists_allowed():
    with pytest.raises(DataError, match="allowed: iid, dirichlet, label_quantity, quantity"):
        partition(LABELS, 4, PartitionConfig(kind="shards"), C, seed=0)


def test_class_counts():
    labels = np.array([0, 1, 1, 2, 2, 2])
    counts = class_counts(labels, [np.array([0, 1]), np.array([2, 3, 4, 5])], 4)
    assert counts.tolist() == [[1, 1, 0, 0], [0, 1, 3, 0]]


def test_split_probe_pool():
    pool, rest = split_probe_pool(1000, 100, seed=3)
    assert len(pool) == 100 and len(rest) == 900
    assert np.array_equal(np.sort(np.concatenate([pool, rest])), np.arange(1000))
    assert np.all(np.diff(pool) > 0) and np.all(np.diff(rest) > 0)
    again, _ = split_probe_pool(1000, 100, seed=3)
    other, _ = split_probe_pool(1000, 100, seed=4)
    assert np.array_equal(pool, again) and not np.array_equal(pool, other)
    assert not np.array_equal(pool, np.arange(100))     # random, not the first N
    with pytest.raises(DataError, match="pool_size"):
        split_probe_pool(10, 11, seed=0)
