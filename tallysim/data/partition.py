"""Peer partitions (docs/howto/add-dataset.md, "Partitions") and the probe-pool split.

All are pure host-side numpy functions of (labels, peers, params, seed) run once before training,
so every protocol sees exactly the same shards for the same seed. Each part is a sorted int64 index
array into `labels`; no example is in two parts. Two kinds return a data.Ragged (every part end to end
in one array) instead of a list: `population` (its parts in dealt order, not sorted; with
partition.reuse an example may be in several parts) and `iid` from IID_RAGGED_FROM peers (the same
sorted parts, int32 while the indices fit).

`dirichlet` (cap=true) and `label_quantity` (scheme=niid_bench) reproduce NIID-Bench's published code
(Li, Diao, Chen, He, "Federated Learning on Non-IID Data Silos: An Experimental Study", ICDE 2022,
arXiv:2102.02079; github.com/Xtra-Computing/NIID-Bench, utils.py `partition_data`) draw for draw:
they consume `np.random.RandomState(seed)` (and, for #C=k's class picks, `random.Random(seed)`) in
the order NIID-Bench's `np.random.seed(seed); random.seed(seed)` global calls do, so the same seed and
label array give the same shards. The other kinds draw from `np.random.default_rng(seed)`.
"""
from __future__ import annotations

import random

import numpy as np

from tallysim.config import LABEL_QUANTITY_SCHEMES, PARTITIONS, PartitionConfig

from .base import DataError
from .partition_errors import MAX_REDRAWS, check_k, dealt_absent_classes  # noqa: F401 - partition.MAX_REDRAWS, as before
from .population import Ragged, population
from .population import class_counts as _ragged_class_counts
# the label- and size-skewed kinds, and the shards as sorted arrays: data/label_skew.py
from .label_skew import (dirichlet_capped as _dirichlet_capped, dirichlet_mix as _dirichlet_mix,
                         dirichlet_uncapped as _dirichlet_uncapped, label_quantity_balanced as _label_quantity_balanced,
                         label_quantity_niid_bench as _label_quantity_niid_bench, quantity as _quantity,
                         sorted_parts as _sorted_parts)


ALPHA_HINT = {"dirichlet": "small = strong skew, >= 100 ~ IID",       # the kinds that read alpha
              "dirichlet_mix": "small = strong skew, >= 100 ~ IID", "quantity": "small = strong size skew"}

# partition.json's "convention" line per kind (and cap / scheme).
NIID_BENCH = ("NIID-Bench (Li et al., ICDE 2022, arXiv:2102.02079; github.com/Xtra-Computing/NIID-Bench "
              "utils.py partition_data)")
CONVENTIONS = {
    "natural": "one client of the dataset per peer (LEAF/TFF's natural split); the peers' clients drawn "
               "uniformly without replacement, numpy default_rng([seed, 0xC11E])",
    "iid": "uniform random split, sizes differ by at most one (the procedure of NIID-Bench's `homo`, "
           "numpy default_rng(seed) stream)",
    ("dirichlet", True): f"{NIID_BENCH} `noniid-labeldir` = FedML partition_class_samples_with_dirichlet"
                         "_distribution: per class Dir(alpha) over peers, peers already holding >= N/P "
                         "get none, redrawn until every peer has >= min_size; same shards as NIID-Bench "
                         "after np.random.seed(seed)",
    ("dirichlet", False): "tallysim's uncapped per-class Dir(alpha) split (versions before partition.cap; "
                          "no N/P cap, so also a quantity skew), numpy default_rng(seed) stream",
    ("label_quantity", "niid_bench"): NIID_BENCH + " `noniid-#label{k}`: peer i holds class i mod C plus "
                                      "k-1 random other classes, each class split equally among its holders; "
                                      "same shards as NIID-Bench after np.random.seed(seed) and random.seed(seed)",
    ("label_quantity", "balanced"): "tallysim's balanced #C=k (versions before partition.scheme): classes "
                                    "dealt cyclically after a permutation, each held by as even a number of "
                                    "peers as possible; numpy default_rng(seed) stream",
    "quantity": "Dir(alpha) shard sizes with IID labels (in the spirit of NIID-Bench's `iid-diff-quantity`, "
                "but every peer gets >= 1 example; numpy default_rng(seed) stream)",
    "dirichlet_mix": "Hsu, Qi, Brown 2019, 'Measuring the Effects of Non-Identical Data Distribution for "
                     "Federated Visual Classification' (arXiv:1909.06335): equal shards, each peer's class "
                     "mix ~ Dir(alpha x class frequencies), drawn without replacement; numpy default_rng(seed)",
    "population": "many clients, sizes max(min_size, floor(1/2 + LogNormal(log(mean_size) - sigma^2/2, sigma))) as "
                  "in LEAF's / FedProx's synthetic populations (Li et al., MLSys 2020), IID labels, dealt from "
                  "one shuffle (reuse: a fresh shuffle per pass, clients then share examples); stored ragged "
                  "(data/population.py); numpy default_rng([seed, 0x9097])",
}


def convention(cfg: PartitionConfig) -> str:
    """One line naming the published procedure (with its citation) that `cfg` follows, for partition.json."""
    key = {"dirichlet": ("dirichlet", cfg.cap), "label_quantity": ("label_quantity", cfg.scheme)}
    return CONVENTIONS.get(key.get(cfg.kind, cfg.kind), "unknown").replace("{k}", str(cfg.k))


IID_RAGGED_FROM = 10_000    # peers from which partition.kind=iid returns a Ragged, not a list of arrays


def _iid(labels, peers, rng):
    # array_split: sizes differ by at most one.
    if peers >= IID_RAGGED_FROM:
        return _iid_ragged(len(labels), peers, rng)
    return _sorted_parts(np.array_split(rng.permutation(len(labels)), peers))


def _iid_ragged(n: int, peers: int, rng) -> Ragged:
    """`_iid`'s shards, the same indices, as one Ragged: 10^6 sorted arrays of ~100 bytes of overhead
    each cost seconds and hundreds of MB. array_split gives the first n % peers clients one example more,
    so each size's clients are one [clients, size] block of the permutation, sorted row by row in place."""
    perm = rng.permutation(n)
    q, r = divmod(n, peers)
    perm[:r * (q + 1)].reshape(r, q + 1).sort(axis=1)
    perm[r * (q + 1):].reshape(peers - r, q).sort(axis=1)
    sizes = np.full(peers, q, np.int64)
    sizes[:r] += 1
    return Ragged(perm.astype(np.int32) if n < 2**31 else perm, sizes)


NATURAL_STREAM = 0xC11E     # salt of partition.kind=natural's draw of clients


def natural(clients: np.ndarray | None, peers: int, seed: int, name: str = "the dataset",
            pick: str = "random") -> list[np.ndarray]:
    """partition.kind=natural: peer i holds every example of one client of the dataset. The clients
    are `peers` drawn uniformly without replacement, numpy default_rng([seed, NATURAL_STREAM]), or
    (pick="largest") the `peers` clients holding the most examples; taken in increasing client id;
    peers = the number of clients takes every client."""
    clients = np.asarray(clients).reshape(-1) if clients is not None else None
    chosen = natural_clients(clients, peers, seed, name, pick)
    order = np.argsort(clients, kind="stable")
    starts = np.searchsorted(clients[order], chosen, "left")
    ends = np.searchsorted(clients[order], chosen, "right")
    return _sorted_parts(order[a:b] for a, b in zip(starts, ends))


def natural_clients(clients: np.ndarray | None, peers: int, seed: int, name: str = "the dataset",
                    pick: str = "random") -> np.ndarray:
    """The client ids partition.kind=natural gives peers 0..peers-1, in that order (peer i holds
    client natural_clients(...)[i]): what the per-client test metrics pair each peer with.
    pick="largest": the clients with the most examples in `clients` (ties: the lower id), whatever
    the seed, so that a small run's few peers each hold a role with enough text to learn from."""
    if clients is None:
        raise DataError(f"partition.kind=natural needs a dataset with clients (shakespeare, "
                        f"shakespeare_words); {name} has none; use partition.kind=iid or dirichlet")
    clients = np.asarray(clients).reshape(-1)
    ids = np.unique(clients)
    if peers > len(ids):
        # the clients that still hold a training sequence: with data.max_train or a large probe pool, far
        # fewer than the dataset's (192 of shakespeare's 715 at data.max_train=300), said as such
        raise DataError(f"peers={peers} is above the {len(ids)} clients of {name} that hold a training example "
                        f"(after data.max_train and the probe pool) (partition.kind=natural); "
                        f"allowed: peers=1..{len(ids)} (peers={len(ids)} takes every client)")
    if pick == "largest":
        ids, counts = np.unique(clients, return_counts=True)
        return np.sort(ids[np.argsort(-counts, kind="stable")[:peers]])
    return np.sort(np.random.default_rng([int(seed), NATURAL_STREAM]).choice(ids, peers, replace=False))


def partition(labels: np.ndarray, peers: int, cfg: PartitionConfig, num_classes: int,
              seed: int, clients: np.ndarray | None = None, name: str = "the dataset") -> list[np.ndarray] | Ragged:
    """`clients`: each example's client id (text datasets), for partition.kind=natural. A list of
    index arrays, or (population) a Ragged that reads like one."""
    if peers < 1:
        raise DataError(f"peers={peers} must be >= 1")
    if cfg.kind == "natural":
        return natural(clients, peers, seed, name, cfg.pick)
    if cfg.kind == "population":      # a Ragged, never a list of 10^6 arrays
        return population(len(labels), peers, cfg.mean_size, cfg.sigma, cfg.min_size, cfg.reuse, seed, name)
    if np.ndim(labels) > 1:         # sequences (next-token): one label per position, not per example
        if cfg.kind != "iid":
            raise DataError(f"partition.kind={cfg.kind} splits by class label, and {name}'s examples are "
                            "sequences with a label per position; allowed: partition.kind=natural (one "
                            "client per peer) or iid (sequences dealt uniformly)")
        return _iid(np.asarray(labels), peers, np.random.default_rng(seed))
    labels = np.asarray(labels).reshape(-1)
    if cfg.kind in ALPHA_HINT and not cfg.alpha > 0:
        raise DataError(f"partition.alpha={cfg.alpha} must be > 0 ({ALPHA_HINT[cfg.kind]})")
    if cfg.kind == "dirichlet" and cfg.cap:
        return _dirichlet_capped(labels, peers, cfg, num_classes, np.random.RandomState(seed))
    if cfg.kind == "label_quantity":
        check_k(cfg.k, num_classes)
        if cfg.scheme == "niid_bench":
            return dealt_absent_classes(_label_quantity_niid_bench(labels, peers, cfg.k, num_classes,
                                         np.random.RandomState(seed), random.Random(seed)), labels, num_classes, name)
        if cfg.scheme == "balanced":
            return dealt_absent_classes(_label_quantity_balanced(labels, peers, cfg.k, num_classes,
                                                                  np.random.default_rng(seed)), labels, num_classes, name)
        raise DataError(f"partition.scheme={cfg.scheme!r} is not known; allowed: "
                        f"{', '.join(LABEL_QUANTITY_SCHEMES)}")
    rng = np.random.default_rng(seed)
    if cfg.kind == "iid":
        return _iid(labels, peers, rng)
    if cfg.kind == "dirichlet":
        return _dirichlet_uncapped(labels, peers, cfg, num_classes, rng)
    if cfg.kind == "quantity":
        return _quantity(labels, peers, cfg, rng)
    if cfg.kind == "dirichlet_mix":
        return _dirichlet_mix(labels, peers, cfg, num_classes, rng)
    raise DataError(f"partition.kind={cfg.kind!r} is not known; allowed: {', '.join(PARTITIONS)}")


def class_counts(labels: np.ndarray, parts: list[np.ndarray] | Ragged, num_classes: int,
                 dtype=np.int64) -> np.ndarray:
    """[P, C] examples of each class held by each peer (for logs and tests), of `dtype`."""
    labels = np.asarray(labels)
    if isinstance(parts, Ragged):
        return _ragged_class_counts(labels, parts, num_classes, dtype)
    if labels.ndim > 1:       # sequences (next-token): [P, 1] sequences per peer, not P x C token counts
        return np.array([[len(p)] for p in parts], dtype).reshape(len(parts), 1)
    labels = labels.reshape(-1)
    return np.stack([np.bincount(labels[p], minlength=num_classes)[:num_classes] for p in parts]
                    ).astype(dtype) if parts else np.zeros((0, num_classes), dtype)


def split_probe_pool(n_train: int, pool_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool_idx, rest_idx): disjoint sorted int64 indices covering range(n_train). The stream is salted
    so the pool is not correlated with a partition drawn from the same seed."""
    if not 0 <= pool_size <= n_train:
        raise DataError(f"probe.pool_size={pool_size} must be in 0..{n_train} (the training examples)")
    perm = np.random.default_rng([int(seed), 0x9A01]).permutation(n_train)
    # copy=False: the permutation is int64 already, and a copy of 10^7 indices is 80 MB more at the peak
    return (np.sort(perm[:pool_size]).astype(np.int64, copy=False),
            np.sort(perm[pool_size:]).astype(np.int64, copy=False))
