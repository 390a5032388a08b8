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
from .partition_errors import MAX_REDRAWS, check_k, dealt_absent_classes, redraws_exhausted
from .population import Ragged, population
from .population import class_counts as _ragged_class_counts


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


def _sorted_parts(chunks) -> list[np.ndarray]:
    return [np.sort(np.asarray(c, dtype=np.int64)) for c in chunks]


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


def _capped_pass(by_class, n, peers, alpha, rs):
    """One pass of NIID-Bench's `noniid-labeldir` loop: per class, shuffle it, draw Dir(alpha) over the
    peers, zero every peer already holding >= N/P examples, renormalise and cut at the truncated
    cumulative proportions. Same calls, same order, same float operations as the published code, so
    the cuts agree exactly. Returns (shuffled classes, [C, P+1] cuts), or None if the renormalisation
    divides by zero (every peer still under N/P drew an exact 0.0 at tiny alpha): NIID-Bench casts the
    NaNs to int there (undefined), we redraw."""
    sizes = np.zeros(peers, dtype=np.int64)
    shuffled, cuts = [], np.zeros((len(by_class), peers + 1), dtype=np.int64)
    for c, ix in enumerate(by_class):
        ix = ix.copy()                          # NIID-Bench re-reads np.where(y == k) every pass
        rs.shuffle(ix)
        props = rs.dirichlet(np.repeat(alpha, peers))
        props = props * (sizes < n / peers)     # the cap: a peer at or above N/P takes no more
        total = props.sum()
        if not total > 0:
            return None
        props = props / total
        # The published np.split(ix, cuts): a cumsum of non-negative floats is non-decreasing and
        # stays <= len(ix) after truncation, so these are plain slice bounds. Counts only here: the
        # examples are dealt once a pass is accepted.
        cuts[c, 1:-1] = (np.cumsum(props) * len(ix)).astype(int)[:-1]
        cuts[c, -1] = len(ix)
        sizes += np.diff(cuts[c])
        shuffled.append(ix)
    return shuffled, cuts


def _dirichlet_capped(labels, peers, cfg, num_classes, rs):
    by_class = [np.flatnonzero(labels == c) for c in range(num_classes)]
    best = None                                 # the last usable draw's smallest peer; None: none usable
    # NIID-Bench loops `while min_size < min_require_size` (with min_size=0 it would never draw at
    # all); we always draw once, and stop after MAX_REDRAWS where it would loop forever.
    for _ in range(MAX_REDRAWS):
        drawn = _capped_pass(by_class, len(labels), peers, cfg.alpha, rs)
        if drawn is None:
            continue
        shuffled, cuts = drawn
        best = int(np.diff(cuts, axis=1).sum(axis=0).min())
        if best >= cfg.min_size:
            # NIID-Bench then shuffles each peer's list; order is irrelevant here (parts are sorted).
            return _sorted_parts(np.concatenate([ix[cut[p]:cut[p + 1]] for ix, cut in zip(shuffled, cuts)])
                                 for p in range(peers))
    raise redraws_exhausted(peers, cfg, best)


def _dirichlet_uncapped(labels, peers, cfg, num_classes, rng):
    # partition.cap=false: the split of earlier versions, kept bit for bit (default_rng stream).
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
        raise redraws_exhausted(peers, cfg, best)
    parts = [[] for _ in range(peers)]
    for c, ix in enumerate(by_class):
        for p, chunk in enumerate(np.split(ix, cuts[c, :-1])):
            parts[p].append(chunk)
    return _sorted_parts(np.concatenate(ch) for ch in parts)


def _niid_bench_classes(peers, k, num_classes, pyrng):
    """NIID-Bench's #C=k class sets: peer i holds i mod C, then random.randint(0, C-1) draws (Python's
    `random`, as published) until it has k distinct classes."""
    held = []
    for i in range(peers):
        current = {i % num_classes}             # a set: only membership matters for the shards
        while len(current) < k:
            current.add(pyrng.randint(0, num_classes - 1))
        held.append(current)
    return held


def _label_quantity_niid_bench(labels, peers, k, num_classes, rs, pyrng):
    holders = [[] for _ in range(num_classes)]  # in peer order: NIID-Bench deals the pieces that way
    for p, classes in enumerate(_niid_bench_classes(peers, k, num_classes, pyrng)):
        for c in classes:
            holders[c].append(p)
    parts = [[] for _ in range(peers)]
    for c in range(num_classes):
        ix = np.flatnonzero(labels == c)
        rs.shuffle(ix)                          # every class, held or not: the published call order
        # A class nobody drew (possible when peers < C) is left out; NIID-Bench stops with an error.
        for peer, chunk in zip(holders[c], np.array_split(ix, len(holders[c])) if holders[c] else []):
            parts[peer].append(chunk)
    return _sorted_parts(np.concatenate(ch) if ch else np.empty(0, np.int64) for ch in parts)


def _label_quantity_balanced(labels, peers, k, num_classes, rng):
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


def _mix_round(mix, need, supply, rng):
    """One round of requests: every peer still short asks for `need` examples from its mix renormalised
    over the classes that still have examples (in proportion to what is left if its mix has no mass
    there). A class asked for more than it holds serves a uniformly random subset of the requested
    examples (multivariate hypergeometric, as if the requests arrived in random order) and runs out."""
    open_ = supply > 0
    want = mix * open_
    mass = want.sum(axis=1, keepdims=True)
    want = np.where(mass > 0, want / np.where(mass > 0, mass, 1), supply / supply.sum())
    demand = rng.multinomial(need, want)
    grant = demand.copy()
    for c in np.flatnonzero(demand.sum(axis=0) > supply):
        grant[:, c] = rng.multivariate_hypergeometric(demand[:, c], supply[c])
    return grant


def _dirichlet_mix(labels, peers, cfg, num_classes, rng):
    """Hsu et al. 2019: equal shards (n // P, the first n % P peers one more; every example used), each
    peer's class mix q ~ Dir(alpha x class frequencies), examples drawn without replacement. Pools run
    out because the shards use everything: requests then go in rounds (`_mix_round`) until every shard
    is full; each round but the last empties at least one class, so there are at most C rounds. The
    peers left short in a round take their remainder from the classes still available, so at small
    alpha some mixes end up less skewed than their draw."""
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in range(num_classes)]
    supply = np.array([len(ix) for ix in pools], dtype=np.int64)
    n = int(supply.sum())
    if n < peers:
        raise DataError(f"partition.kind=dirichlet_mix needs at least one example per peer: {peers} peers "
                        f"but {n} examples; lower peers")
    present = supply > 0                        # Dir needs positive parameters: absent classes get 0
    mix = np.zeros((peers, num_classes))
    mix[:, present] = rng.dirichlet(cfg.alpha * supply[present] / n, size=peers)
    need = np.full(peers, n // peers, dtype=np.int64)
    need[:n % peers] += 1
    take = np.zeros((peers, num_classes), dtype=np.int64)
    for _ in range(num_classes):                # enough: see above
        grant = _mix_round(mix, need, supply, rng)
        take += grant
        need -= grant.sum(axis=1)
        supply -= grant.sum(axis=0)
        if not need.any():
            break
    assert not need.any() and not supply.any(), "dirichlet_mix: every example is dealt in <= C rounds"
    parts = [[] for _ in range(peers)]
    for c, ix in enumerate(pools):
        for p, chunk in enumerate(np.split(ix, np.cumsum(take[:, c])[:-1])):
            parts[p].append(chunk)
    return _sorted_parts(np.concatenate(ch) for ch in parts)


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
