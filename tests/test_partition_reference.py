"""`dirichlet` and `label_quantity` against NIID-Bench's published procedures, shard for shard.

The references below are transcribed from NIID-Bench (Li, Diao, Chen, He, "Federated Learning on
Non-IID Data Silos: An Experimental Study", ICDE 2022; github.com/Xtra-Computing/NIID-Bench, utils.py
`partition_data`, branches `noniid-labeldir` and `noniid-#label{k}`), written here independently of
tallysim's code. NIID-Bench seeds `np.random.seed(seed)` and `random.seed(seed)` (experiments.py,
partition.py) and then calls the global functions; a `np.random.RandomState(seed)` and a
`random.Random(seed)` making the same calls in the same order give the same draws. tallysim's shards
must then be exactly NIID-Bench's index sets, for the same label array and seed.
"""
import random

import numpy as np
import pytest

from tallysim.config import PartitionConfig
from tallysim.data import partition
from tallysim.data.partition import MAX_REDRAWS

K = 10
# Unequal class sizes (so N/P and the per-class splits are not round numbers), in shuffled order.
LABELS = np.random.default_rng(5).choice(K, size=20000, p=np.linspace(1, 2, K) / np.linspace(1, 2, K).sum())
SEEDS = (0, 1, 2)


def niid_bench_labeldir(y_train, n_parties, beta, seed, min_require_size=10):
    """NIID-Bench `noniid-labeldir` (= FedML's partition_class_samples_with_dirichlet_distribution)."""
    np_random = np.random.RandomState(seed)            # np.random.seed(seed); np.random.* below
    min_size = 0
    N = y_train.shape[0]
    passes = 0
    while min_size < min_require_size:
        passes += 1
        assert passes <= MAX_REDRAWS, "the setting needs more redraws than tallysim allows"
        idx_batch = [[] for _ in range(n_parties)]
        for k in range(K):
            idx_k = np.where(y_train == k)[0]
            np_random.shuffle(idx_k)
            proportions = np_random.dirichlet(np.repeat(beta, n_parties))
            proportions = np.array([p * (len(idx_j) < N / n_parties) for p, idx_j in zip(proportions, idx_batch)])
            proportions = proportions / proportions.sum()
            proportions = (np.cumsum(proportions) * len(idx_k)).astype(int)[:-1]
            idx_batch = [idx_j + idx.tolist() for idx_j, idx in zip(idx_batch, np.split(idx_k, proportions))]
            min_size = min([len(idx_j) for idx_j in idx_batch])
    for j in range(n_parties):
        np_random.shuffle(idx_batch[j])
    return idx_batch


def niid_bench_label_k(y_train, n_parties, num, seed):
    """NIID-Bench `noniid-#label{num}`: the class picks use Python's `random`, the shuffles numpy's."""
    np_random, py_random = np.random.RandomState(seed), random.Random(seed)
    if num == 10:
        net_dataidx_map = {i: np.ndarray(0, dtype=np.int64) for i in range(n_parties)}
        for i in range(10):
            idx_k = np.where(y_train == i)[0]
            np_random.shuffle(idx_k)
            split = np.array_split(idx_k, n_parties)
            for j in range(n_parties):
                net_dataidx_map[j] = np.append(net_dataidx_map[j], split[j])
        return [net_dataidx_map[j] for j in range(n_parties)]
    times = [0 for i in range(K)]
    contain = []
    for i in range(n_parties):
        current = [i % K]
        times[i % K] += 1
        j = 1
        while (j < num):
            ind = py_random.randint(0, K - 1)
            if (ind not in current):
                j = j + 1
                current.append(ind)
                times[ind] += 1
        contain.append(current)
    net_dataidx_map = {i: np.ndarray(0, dtype=np.int64) for i in range(n_parties)}
    for i in range(K):
        idx_k = np.where(y_train == i)[0]
        np_random.shuffle(idx_k)
        split = np.array_split(idx_k, times[i])
        ids = 0
        for j in range(n_parties):
            if i in contain[j]:
                net_dataidx_map[j] = np.append(net_dataidx_map[j], split[ids])
                ids += 1
    return [net_dataidx_map[j] for j in range(n_parties)]


def assert_same_shards(ours, ref):
    assert len(ours) == len(ref)
    for p, (a, b) in enumerate(zip(ours, ref)):
        b = np.sort(np.asarray(b, dtype=np.int64))
        assert np.array_equal(a, b), f"peer {p}: {len(a)} vs NIID-Bench's {len(b)} examples"


@pytest.mark.parametrize("peers", [10, 100])
@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dirichlet_matches_niid_bench_labeldir(beta, peers):
    cfg = PartitionConfig(kind="dirichlet", alpha=beta)          # cap=true and min_size=10: the defaults
    for seed in SEEDS:
        assert_same_shards(partition(LABELS, peers, cfg, K, seed), niid_bench_labeldir(LABELS, peers, beta, seed))


def test_dirichlet_min_size_is_niid_bench_min_require_size():
    cfg = PartitionConfig(kind="dirichlet", alpha=0.3, min_size=150)
    for seed in SEEDS:
        assert_same_shards(partition(LABELS, 40, cfg, K, seed),
                           niid_bench_labeldir(LABELS, 40, 0.3, seed, min_require_size=150))


@pytest.mark.parametrize("peers", [10, 23])
@pytest.mark.parametrize("k", [1, 2, 3, 10])
def test_label_quantity_matches_niid_bench_label_k(k, peers):
    cfg = PartitionConfig(kind="label_quantity", k=k)            # scheme=niid_bench: the default
    for seed in SEEDS:
        assert_same_shards(partition(LABELS, peers, cfg, K, seed), niid_bench_label_k(LABELS, peers, k, seed))


def test_other_seed_other_shards():
    # The match is not a coincidence of a degenerate stream: seeds differ, and so do the references.
    cfg = PartitionConfig(kind="dirichlet", alpha=0.5)
    a, b = partition(LABELS, 10, cfg, K, 0), partition(LABELS, 10, cfg, K, 1)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b))
