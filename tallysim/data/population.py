"""Peers' shards as one ragged array, and `partition.kind=population`: many clients of lognormal sizes.

A partition of 10^5 or 10^6 clients cannot be a Python list of 10^6 index arrays (seconds to build,
~100 bytes of overhead each, and every step after it would loop over them). `Ragged` holds every
client's indices end to end in one array with the sizes beside it; it still reads like the list
(len, indexing, iteration) so the small partitions' code paths take either. `population` draws its
sizes and deals its examples with vectorised numpy only.
"""
from __future__ import annotations

import numpy as np

from .base import DataError

POPULATION_STREAM = 0x9097      # salt of partition.kind=population's draws


class Ragged:
    """P index arrays end to end: client p holds flat[offsets[p]:offsets[p] + sizes[p]]."""
    __slots__ = ("flat", "sizes", "offsets")

    def __init__(self, flat: np.ndarray, sizes: np.ndarray):
        self.flat = np.asarray(flat)
        self.sizes = np.asarray(sizes, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64) if len(self.sizes) \
            else np.zeros(0, np.int64)
        if int(self.sizes.sum()) != len(self.flat):
            raise ValueError(f"Ragged: sizes add up to {int(self.sizes.sum())} but {len(self.flat)} indices")

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, p: int) -> np.ndarray:
        o = self.offsets[p]
        return self.flat[o:o + self.sizes[p]]

    def __iter__(self):
        return (self[p] for p in range(len(self)))

    def take(self, rows: np.ndarray) -> "Ragged":
        """The same clients with every index i replaced by rows[i] (indices into a subset -> into
        the whole training set); int32 where the rows fit, so 10^7 indices are not copied at int64."""
        rows = np.asarray(rows)
        if not len(rows) or rows.max() < 2**31:
            rows = rows.astype(np.int32)
        return Ragged(rows[self.flat], self.sizes)

    def owner(self) -> np.ndarray:
        """[H] the client of each flat position."""
        return np.repeat(np.arange(len(self.sizes)), self.sizes)


def ragged(parts) -> Ragged:
    """A list of index arrays (the other partitions' result) or a Ragged -> Ragged."""
    if isinstance(parts, Ragged):
        return parts
    sizes = np.fromiter((len(p) for p in parts), np.int64, count=len(parts))
    flat = np.concatenate(parts) if len(parts) and sizes.sum() else np.zeros(0, np.int64)
    return Ragged(flat.astype(np.int64, copy=False), sizes)


COUNT_BLOCK = 1 << 15           # clients per bincount in class_counts: bounds its temporaries


def class_counts(labels: np.ndarray, parts: Ragged, num_classes: int, dtype=np.int64) -> np.ndarray:
    """[P, C] examples of each class per client (partition.class_counts for a Ragged): one bincount
    per block of COUNT_BLOCK clients, so the temporaries stay a block's size, not 10^7 int64s.
    `dtype` int32 halves the result (80 MB at 10^6 clients of 10 classes, kept by the build)."""
    P = len(parts)
    if labels.ndim > 1:       # sequences: [P, 1] sequences per client
        return parts.sizes.reshape(P, 1).astype(dtype)
    labels = labels.reshape(-1)
    out = np.zeros((P, num_classes), dtype)
    for a in range(0, P, COUNT_BLOCK):          # ceil(P / 2^15) blocks, never a loop over clients
        b = min(P, a + COUNT_BLOCK)
        lo, hi = parts.offsets[a], parts.offsets[b - 1] + parts.sizes[b - 1]
        owner = np.repeat(np.arange(b - a, dtype=np.int64), parts.sizes[a:b])
        key = owner * num_classes + labels[parts.flat[lo:hi]]
        out[a:b] = np.bincount(key, minlength=(b - a) * num_classes).reshape(b - a, num_classes)
    return out


def sizes(peers: int, mean: float, sigma: float, floor: int, rng) -> np.ndarray:
    """Client sizes max(floor, floor(X + 1/2)), X ~ LogNormal(log(mean) - sigma^2 / 2, sigma): E[X] = mean,
    the heavy right tail of LEAF's and FedProx's synthetic populations (Li et al., MLSys 2020,
    'Federated Optimization in Heterogeneous Networks': lognormal samples per device). X rounds half up:
    np.rint's half to even gave every client 2 at mean 2.5, sigma 0 and 4 at 3.5 (a mean of 2.5 is
    not a size: at sigma 0 every client holds mean rounded half up; above 0 the rounding moves the mean by
    under 0.02 at mean 2.5 or 30, docs/population-data.md). Any sigma > 0 draws the sizes of rint bit
    for bit but at an X exactly k + 1/2, which a continuous draw does not meet."""
    mu = np.log(mean) - sigma ** 2 / 2
    x = rng.lognormal(mu, sigma, peers)       # drawn at sigma 0 too: the shuffle after it reads the same stream
    if sigma == 0:
        x = np.full(peers, float(mean))       # exp(log(mean)) may miss a half-integer mean by an ulp
    return np.maximum(np.floor(x + 0.5), floor).astype(np.int64)


def population(n: int, peers: int, mean: float, sigma: float, floor: int, reuse: bool, seed: int,
               name: str = "the dataset") -> Ragged:
    """partition.kind=population: `peers` clients with `sizes(...)` examples each, dealt from one
    shuffle of the n examples in order (default_rng([seed, POPULATION_STREAM])), IID labels. When the
    sizes add up to more than n, `reuse` deals the examples again in a fresh shuffle each pass
    (clients then share examples; never twice within one client); without it, refused."""
    if peers < 1:
        raise DataError(f"peers={peers} must be >= 1")
    rng = np.random.default_rng([int(seed), POPULATION_STREAM])
    s = sizes(peers, mean, sigma, floor, rng)
    total = int(s.sum())
    if floor > n:       # every client holds min_size: lowering mean_size or sigma, as below says, cannot help
        raise DataError(f"partition.min_size={floor} is above the {n} examples {name} has after the probe pool "
                        f"(no client may hold an example twice); allowed: partition.min_size <= {n}, or add "
                        "training examples (data.train_size)")
    if s.max(initial=0) > n:
        raise DataError(f"partition.kind=population drew a client of {int(s.max())} examples but {name} has "
                        f"{n} after the probe pool; lower partition.mean_size or partition.sigma, or add "
                        "training examples (data.train_size)")
    if total == 0:      # every client empty: no shard to gather from, an IndexError inside the first round
        raise DataError(f"partition.kind=population drew 0 examples for every one of its {peers} clients "
                        f"(lognormal sizes of mean {mean} and sigma {sigma} round to 0, and partition.min_size="
                        f"{floor}); allowed: partition.min_size >= 1, or a smaller partition.sigma (half the clients "
                        "hold under mean * exp(-sigma^2 / 2) examples)")
    if total > n and not reuse:
        raise DataError(f"partition.kind=population: {peers} clients of mean {mean} hold {total} examples but "
                        f"{name} has {n} after the probe pool; allowed: peers * partition.mean_size <= {n}, "
                        "or partition.reuse=true (clients share examples: for benchmarks), or more data")
    passes = -(-total // n) if total else 0
    dtype = np.int32 if n < 2**31 else np.int64
    flat = np.empty(total, dtype)
    for p in range(passes):                    # ceil(total / n) passes, filled in place (no 2x copy)
        piece = flat[p * n:(p + 1) * n]
        piece[:] = rng.permutation(n)[:len(piece)]
    if passes > 1:
        _straddlers(flat, s, n, rng)
    # Each client's indices stay in dealt order, not sorted as the other partitions' are: sorting
    # 3 * 10^7 indices by client costs seconds, and local training reshuffles a shard every epoch.
    return Ragged(flat, s)


def _straddlers(flat: np.ndarray, s: np.ndarray, n: int, rng) -> None:
    """In place: the clients whose examples span two shuffles may hold an example twice; give each of
    them a fresh draw without replacement (few: at most one per pass boundary)."""
    ends = np.cumsum(s)
    starts = ends - s
    cross = np.flatnonzero(((starts // n) != ((ends - 1) // n)) & (s > 0))
    for p in cross:                      # at most passes - 1 clients
        flat[starts[p]:ends[p]] = rng.choice(n, int(s[p]), replace=False)
