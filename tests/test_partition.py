"""Peer partitions (docs/howto/add-dataset.md, "Partitions") and the probe-pool split."""

import hashlib
import random

import numpy as np
import pytest

from tallysim.config import PARTITIONS, PartitionConfig
from tallysim.data import DataError, class_counts, partition, split_probe_pool
from tallysim.data.partition import convention

C = 10
LABELS = np.random.default_rng(123).permutation(np.arange(6000) % C)   # 600 per class, shuffled
KINDS = {
    "iid": PartitionConfig(kind="iid"),
    "dirichlet": PartitionConfig(kind="dirichlet", alpha=0.3, min_size=10),
    "dirichlet_uncapped": PartitionConfig(kind="dirichlet", alpha=0.3, min_size=10, cap=False),
    "label_quantity": PartitionConfig(kind="label_quantity", k=2),
    "label_quantity_balanced": PartitionConfig(kind="label_quantity", k=2, scheme="balanced"),
    "quantity": PartitionConfig(kind="quantity", alpha=0.5),
    "dirichlet_mix": PartitionConfig(kind="dirichlet_mix", alpha=0.3),
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


@pytest.mark.parametrize("kind", ["iid", "dirichlet", "dirichlet_uncapped", "quantity", "dirichlet_mix"])
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


@pytest.mark.parametrize("cap", [True, False])
def test_dirichlet_skew_follows_alpha(cap):
    small = partition(LABELS, 10, PartitionConfig(kind="dirichlet", alpha=0.05, min_size=1, cap=cap), C, seed=0)
    large = partition(LABELS, 10, PartitionConfig(kind="dirichlet", alpha=100.0, min_size=1, cap=cap), C, seed=0)
    s, l = _skew(class_counts(LABELS, small, C)), _skew(class_counts(LABELS, large, C))
    assert s > 0.5 and l < 0.1, (s, l)
    # near-IID also means near-equal sizes
    sizes = np.array([len(p) for p in large])
    assert sizes.std() / sizes.mean() < 0.1


@pytest.mark.parametrize("cap", [True, False])
def test_dirichlet_min_size_respected(cap):
    cfg = PartitionConfig(kind="dirichlet", alpha=0.1, min_size=50, cap=cap)
    for seed in range(3):
        parts = partition(LABELS, 10, cfg, C, seed=seed)
        assert min(len(p) for p in parts) >= 50


@pytest.mark.parametrize("cap", [True, False])
def test_dirichlet_impossible_min_size_fails_fast(cap):
    labels = np.random.default_rng(0).permutation(np.arange(54000) % C)
    cfg = PartitionConfig(kind="dirichlet", alpha=0.01, min_size=10, cap=cap)
    from tallysim.data.partition import MAX_REDRAWS
    with pytest.raises(DataError, match=f">= 10 examples in {MAX_REDRAWS} draws.*min_size"):    # a bounded number of draws
        partition(labels, 100, cfg, C, seed=0)
    # with min_size=0 the same setting is fine
    parts = partition(labels, 100, PartitionConfig(kind="dirichlet", alpha=0.01, min_size=0, cap=cap), C, seed=0)
    assert sum(len(p) for p in parts) == len(labels)


def test_dirichlet_cap_bounds_every_shard():
    # A peer stops receiving once it holds >= N/P, so it ends below N/P plus one class's examples;
    # uncapped, alpha 0.1 gives shards far beyond that.
    labels = np.random.default_rng(1).permutation(np.arange(20000) % C)
    bound = len(labels) / 20 + np.bincount(labels).max()
    ratio = {}
    for cap in (True, False):
        cfg = PartitionConfig(kind="dirichlet", alpha=0.1, cap=cap)
        sizes = np.array([[len(p) for p in partition(labels, 20, cfg, C, seed=s)] for s in range(10)])
        ratio[cap] = (sizes.max(1) / sizes.mean(1)).mean()
        if cap:
            assert sizes.max() < bound
    assert ratio[True] < ratio[False], ratio


@pytest.mark.parametrize("scheme", ["niid_bench", "balanced"])
@pytest.mark.parametrize("peers,k", [(10, 2), (3, 2), (20, 3), (5, 10), (4, 1)])
def test_label_quantity_exactly_k_classes(peers, k, scheme):
    parts = partition(LABELS, peers, PartitionConfig(kind="label_quantity", k=k, scheme=scheme), C, seed=0)
    _check_basic(parts, len(LABELS), peers)
    counts = class_counts(LABELS, parts, C)
    assert np.all((counts > 0).sum(1) == k)
    used = (counts > 0).any(0)
    if scheme == "niid_bench":
        assert all(counts[i, i % C] > 0 for i in range(peers))   # peer i always holds class i mod C
    if peers * k >= C and scheme == "balanced":
        assert used.all()                           # every class is used when possible
    if used.all():
        assert sum(len(p) for p in parts) == len(LABELS)
    for c in np.flatnonzero(used):                  # a class is split evenly among its holders
        held = counts[:, c][counts[:, c] > 0]
        assert held.max() - held.min() <= 1


@pytest.mark.parametrize("scheme", ["niid_bench", "balanced"])
def test_label_quantity_k_too_large(scheme):
    with pytest.raises(DataError, match="allowed: 1..10"):
        partition(LABELS, 4, PartitionConfig(kind="label_quantity", k=11, scheme=scheme), C, seed=0)


def test_label_quantity_bad_scheme_lists_allowed():
    with pytest.raises(DataError, match="partition.scheme='even' is not known; allowed: niid_bench, balanced"):
        partition(LABELS, 4, PartitionConfig(kind="label_quantity", scheme="even"), C, seed=0)


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
    with pytest.raises(DataError, match="allowed: iid, dirichlet, label_quantity, quantity, dirichlet_mix"):
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


# ----------------------------------------------------------------------------- earlier splits, kept

def _digest(parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(np.asarray(p, np.int64).tobytes() + b"|")
    return h.hexdigest()[:16]


# sha256 prefixes of the shards (seeds 0, 1) computed with the code before partition.cap and
# partition.scheme existed: cap=false and scheme=balanced must reproduce them bit for bit.
EARLIER = [
    (PartitionConfig(kind="dirichlet", alpha=0.3, min_size=10, cap=False), 7, ["928196b75cd3746e", "3edfe5241b62d637"]),
    (PartitionConfig(kind="dirichlet", alpha=0.1, min_size=5, cap=False), 20, ["ff1e1418ba24ef90", "8daa70f4f44d1234"]),
    (PartitionConfig(kind="label_quantity", k=2, scheme="balanced"), 7, ["dde9a0ecaee2fdb6", "fad06bf3ac164681"]),
    (PartitionConfig(kind="label_quantity", k=3, scheme="balanced"), 20, ["a17f9669414bb642", "6df612e0c51a438c"]),
]


@pytest.mark.parametrize("cfg,peers,digests", EARLIER)
def test_cap_false_and_balanced_are_the_earlier_splits(cfg, peers, digests):
    assert [_digest(partition(LABELS, peers, cfg, C, seed=s)) for s in (0, 1)] == digests


# ----------------------------------------------------------------------------- dirichlet_mix

@pytest.mark.parametrize("alpha", [0.001, 0.1])   # 0.001: one-class mixes whose class runs out fall back
def test_dirichlet_mix_equal_shards_using_everything(alpha):
    for peers in (7, 20, 600):
        parts = partition(LABELS, peers, PartitionConfig(kind="dirichlet_mix", alpha=alpha), C, seed=0)
        _check_basic(parts, len(LABELS), peers)
        sizes = np.array([len(p) for p in parts])
        assert sizes.max() - sizes.min() <= 1 and sizes.sum() == len(LABELS)


def test_dirichlet_mix_skew_follows_alpha():
    small = partition(LABELS, 20, PartitionConfig(kind="dirichlet_mix", alpha=0.05), C, seed=0)
    large = partition(LABELS, 20, PartitionConfig(kind="dirichlet_mix", alpha=1000.0), C, seed=0)
    s, l = _skew(class_counts(LABELS, small, C)), _skew(class_counts(LABELS, large, C))
    assert s > 0.6 and l < 0.1, (s, l)


def test_dirichlet_mix_follows_the_prior_and_survives_exhausted_pools():
    # Class frequencies 1:2:...:10; at alpha 1 pools run out before the shards are full (every example
    # is used), so later requests fall back to what is left. Still: equal sizes, everything dealt once,
    # and across many peers the class mix averages to the prior, as Dir(alpha x prior) does.
    labels = np.random.default_rng(3).permutation(np.repeat(np.arange(C), 100 * np.arange(1, C + 1)))
    prior = np.bincount(labels) / len(labels)
    mixes = []
    for seed in range(5):
        parts = partition(labels, 50, PartitionConfig(kind="dirichlet_mix", alpha=1.0), C, seed=seed)
        assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(labels)))
        assert {len(p) for p in parts} == {len(labels) // 50}
        counts = class_counts(labels, parts, C)
        mixes.append(counts / counts.sum(1, keepdims=True))
    assert np.abs(np.concatenate(mixes).mean(0) - prior).max() < 0.02


def test_dirichlet_mix_absent_class_and_bad_sizes():
    labels = np.array([0, 0, 2, 2, 2, 0])           # class 1 of 3 has no examples: prior 0, never drawn
    parts = partition(labels, 3, PartitionConfig(kind="dirichlet_mix", alpha=0.5), 3, seed=0)
    assert sorted(len(p) for p in parts) == [2, 2, 2]
    with pytest.raises(DataError, match="dirichlet_mix needs at least one example per peer"):
        partition(labels, 7, PartitionConfig(kind="dirichlet_mix"), 3, seed=0)
    with pytest.raises(DataError, match="partition.alpha=0.0 must be > 0"):
        partition(labels, 2, PartitionConfig(kind="dirichlet_mix", alpha=0.0), 3, seed=0)


# ----------------------------------------------------------------------------- conventions

def test_every_kind_names_its_convention():
    cfgs = [PartitionConfig(kind=k) for k in PARTITIONS]
    cfgs += [PartitionConfig(kind="dirichlet", cap=False), PartitionConfig(kind="label_quantity", scheme="balanced")]
    lines = {convention(c) for c in cfgs}
    assert "unknown" not in lines and len(lines) == len(cfgs)
    assert "arXiv:2102.02079" in convention(PartitionConfig(kind="dirichlet"))
    assert "arXiv:2102.02079" in convention(PartitionConfig(kind="label_quantity"))
    assert "arXiv:1909.06335" in convention(PartitionConfig(kind="dirichlet_mix"))
    assert "uncapped" in convention(PartitionConfig(kind="dirichlet", cap=False))
