"""The label- and size-skewed partitions (split from data/partition.py, which deals each kind and
imports these under their old names): `dirichlet` capped (NIID-Bench's `noniid-labeldir`, draw for draw)
and uncapped, `label_quantity` in NIID-Bench's scheme and the balanced one, `quantity` and
`dirichlet_mix`; and sorted_parts, each kind's shards as sorted int64 index arrays. Pure host-side numpy,
as partition.py's module docstring says of every kind."""
from __future__ import annotations

import numpy as np

from .base import DataError
from .partition_errors import MAX_REDRAWS, redraws_exhausted


def sorted_parts(chunks) -> list[np.ndarray]:
    return [np.sort(np.asarray(c, dtype=np.int64)) for c in chunks]


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


def dirichlet_capped(labels, peers, cfg, num_classes, rs):
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
            return sorted_parts(np.concatenate([ix[cut[p]:cut[p + 1]] for ix, cut in zip(shuffled, cuts)])
                                 for p in range(peers))
    raise redraws_exhausted(peers, cfg, best)


def dirichlet_uncapped(labels, peers, cfg, num_classes, rng):
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
    return sorted_parts(np.concatenate(ch) for ch in parts)


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


def label_quantity_niid_bench(labels, peers, k, num_classes, rs, pyrng):
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
    return sorted_parts(np.concatenate(ch) if ch else np.empty(0, np.int64) for ch in parts)


def label_quantity_balanced(labels, peers, k, num_classes, rng):
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
    return sorted_parts(np.concatenate(ch) if ch else np.empty(0, np.int64) for ch in parts)


def quantity(labels, peers, cfg, rng):
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
    return sorted_parts(np.split(rng.permutation(n), np.cumsum(sizes)[:-1]))


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


def dirichlet_mix(labels, peers, cfg, num_classes, rng):
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
    return sorted_parts(np.concatenate(ch) for ch in parts)
