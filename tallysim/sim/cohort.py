"""Which peers take part in a round: `participation_rule` (docs/config.md, docs/population-data.md).

Shape letters: P peers, A active peers (glossary: tallysim/sim/__init__.py).

uniform: A of the P peers uniformly without replacement (every peer's inclusion probability A/P).
size:    A peers drawn one after another without replacement, each draw picking a remaining peer with
         probability proportional to its shard size (successive sampling, "probability proportional to
         size without replacement"). Drawn in one step as the A largest of log(size_p) + Gumbel_p
         (the Gumbel-top-k trick, Kool, van Hoof, Welling, ICML 2019; equivalently Efraimidis &
         Spirakis 2006's weighted reservoir keys u^(1/size)). It is the without-replacement form of
         the sampling by data size of Li, Huang, Yang, Wang, Zhang, "On the Convergence of FedAvg on
         Non-IID Data" (ICLR 2020, Scheme I) and FedProx (Li et al., MLSys 2020), whose aggregate is
         then the plain mean of the sampled models: under `size` the FedAvg family's and bridge's
         aggregation weights are uniform over the cohort (`aggregation_counts`), not shard-size
         weighted again. The mean is unbiased for the size-weighted objective with replacement; without
         replacement it is so up to the O(A/P) difference between the two (what cross-device cohorts,
         A << P, have). Empty shards are never drawn (weight 0); build refuses a partition with fewer
         than A non-empty shards.

uniform's draw: `jax.random.permutation(key, P)` (jax/_src/random/core.py, `_shuffle`) sorts `arange(P)`
by fresh random 32-bit keys, stably, `rounds(P)` times (1 up to P = 1,625, 2 up to about 2.7 million).
An XLA sort of 10^6 elements takes seconds on a CPU, so drawing 10 clients of a million cost more than
training them (docs/population.md). `draw` gives the same set in O(P) work: with two sorts, the first A
of the result are sigma1(J), J the positions of the second-round keys of stable rank 0..A-1 and
sigma1(j) the position of the first-round key of stable rank j (stable: equal keys in position order).
Ranks are selected by a radix pass: a histogram of the keys' top 16 bits locates each rank's bucket, and
only the members of those buckets (about A * P / 65,536 keys) are sorted. When they are more than a fixed
budget (a case of vanishing probability) the full permutation runs instead, so the result is always
the permutation's, bit for bit (tests/test_population.py checks both paths against jax's).

`cohort_draw` says how either rule's cohort is computed: `sort`, the draws above (the numbers of earlier
versions; O(P) random numbers per round), or `sequential`: the same distribution from A
random integers in O(A^2 + A log P) work, independent of P, but other numbers. It draws the cohort one
peer at a time. Each peer owns an interval of "point space": [p, p + 1) under uniform (unit masses), its
shard's [offset_P[p], offset_P[p] + count_P[p]) under size (offset_P is the exclusive cumulative sum of
count_P, sim/fed.py, so the space is [0, H) and an empty shard owns nothing). Draw j picks u uniformly
in [0, remaining mass), maps it past the intervals already drawn (`skip_removed`) and takes the peer
whose interval holds the point, then removes that interval. Every point left is equally likely, so each
draw picks a remaining peer with probability proportional to its mass: uniformly without replacement,
or successive sampling by size. Integers: the mass is P or H, both below 2**31 (`peers` is an int32
field and sim/fed.ragged_stack refuses H >= 2**31), so every point and sum fits int32. u comes from
jax.random.randint, whose two 32-bit words make each value's probability uniform to a relative
mass / 2**64.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

RULES = ("uniform", "size")
DRAWS = ("sort", "sequential")


def uniform(key, peers: int, active: int) -> jax.Array:
    """Sorted [A] indices, A of P uniformly without replacement (the rule of earlier versions, same draws:
    jnp.sort(jax.random.permutation(key, peers)[:active]), in O(P) work (`draw`)."""
    return draw(key, peers, active)


def by_size(key, count_P, active: int) -> jax.Array:
    """Sorted [A] indices drawn successively without replacement with probability proportional to
    count_P (Gumbel-top-k on log count)."""
    log_w = jnp.where(count_P > 0, jnp.log(jnp.maximum(count_P, 1).astype(jnp.float32)), -jnp.inf)
    score_P = log_w + jax.random.gumbel(key, count_P.shape, jnp.float32)
    return jnp.sort(jax.lax.top_k(score_P, active)[1])


def skip_removed(u, start_K, width_K):
    """Point u of the space with the K removed intervals (start_K ascending, non-overlapping; unused
    slots width 0) taken out -> the same point in the full space: walking the intervals in order of
    start, u += width for each whose start <= u. Vectorised: interval k is passed exactly when its start
    in the reduced space, start_k minus the widths before it, is <= u (those starts only grow with k, so
    the passed intervals are a prefix and the walk's sum is the masked sum)."""
    before_K = jnp.cumsum(width_K) - width_K
    return u + jnp.sum(jnp.where(start_K - before_K <= u, width_K, 0))


def sequential(key, active: int, peers: int, offset_P=None, count_P=None) -> jax.Array:
    """Sorted [A] int32 indices drawn one after another without replacement, each draw proportional
    to the peers' masses among those left: unit masses (uniform, offset_P None) or count_P with offset_P
    its exclusive cumulative sum (size). A random integers, O(A^2 + A log P) work: no [P]-shaped value
    (the module's docstring)."""
    by_size = offset_P is not None
    total = (offset_P[-1] + count_P[-1]) if by_size else jnp.int32(peers)
    slots = jnp.arange(active)
    empty = jnp.iinfo(jnp.int32).max            # unused slots: past every point, width 0

    def one(j, carry):
        start_K, width_K, peer_A, removed = carry
        u = jax.random.randint(jax.random.fold_in(key, j), (), 0, total - removed, jnp.int32)
        point = skip_removed(u, start_K, width_K)
        if by_size:   # the last peer starting at or before the point: empty shards share its offset
            peer = (jnp.searchsorted(offset_P, point, side="right") - 1).astype(jnp.int32)
            start, width = offset_P[peer], count_P[peer]
        else:
            peer, start, width = point, point, jnp.int32(1)
        at = jnp.sum(start_K < start)           # keep the removed intervals in order of start
        start_K = jnp.where(slots < at, start_K, jnp.where(slots == at, start, jnp.roll(start_K, 1)))
        width_K = jnp.where(slots < at, width_K, jnp.where(slots == at, width, jnp.roll(width_K, 1)))
        return start_K, width_K, peer_A.at[j].set(peer), removed + width

    init = (jnp.full((active,), empty, jnp.int32), jnp.zeros((active,), jnp.int32),
            jnp.zeros((active,), jnp.int32), jnp.int32(0))
    return jnp.sort(jax.lax.fori_loop(0, active, one, init)[2])


def uniform_sequential(key, peers: int, active: int) -> jax.Array:
    """Sorted [A] int32: A of P uniformly without replacement, from A random integers (`sequential`)."""
    return sequential(key, active, peers)


def by_size_sequential(key, offset_P, count_P, active: int) -> jax.Array:
    """Sorted [A] int32: successive sampling proportional to count_P (as `by_size`), from A random
    integers (`sequential`); offset_P the exclusive cumulative sum of count_P (FedData.offset_P; None
    computes it, O(P): for hand-made FedData only)."""
    if offset_P is None:
        offset_P = jnp.cumsum(count_P) - count_P
    return sequential(key, active, count_P.shape[0], offset_P.astype(jnp.int32), count_P.astype(jnp.int32))


def aggregation_counts(rule: str, count_A) -> jax.Array:
    """What the server's weighted mean weighs the cohort's models by: their shard sizes (uniform
    sampling: FedAvg's weights), or ones (size sampling: the sizes already chose the cohort)."""
    return jnp.ones_like(count_A) if rule == "size" else count_A


BUCKET_BITS = 16
MIN_BUDGET = 64              # candidate keys sorted per selected rank, at least


def rounds(peers: int) -> int:
    """Sort rounds of jax.random.permutation for `peers` elements (_shuffle's static rule)."""
    return int(np.ceil(3 * np.log(max(1, peers)) / np.log(np.iinfo(np.uint32).max)))


def select_ranks(keys_P: jax.Array, ranks_A: jax.Array, budget: int):
    """(positions of the keys of stable rank `ranks_A`, whether the candidates fit `budget`): rank r is
    the r-th element of a stable ascending argsort of keys_P."""
    P = keys_P.shape[0]
    hi_P = (keys_P >> (32 - BUCKET_BITS)).astype(jnp.int32)
    hist = jnp.zeros((1 << BUCKET_BITS,), jnp.int32).at[hi_P].add(1)
    upto = jnp.cumsum(hist)                                   # keys in buckets <= b
    bucket_A = jnp.searchsorted(upto, ranks_A, side="right")  # the bucket holding each rank
    within_A = ranks_A - (upto[bucket_A] - hist[bucket_A])    # its rank inside the bucket
    wanted = jnp.zeros((1 << BUCKET_BITS,), bool).at[bucket_A].set(True)
    member_P = wanted[hi_P]
    fits = jnp.sum(member_P) <= budget
    # candidates in position order (padding after them, keyed past every real key of equal value)
    cand = jnp.nonzero(member_P, size=budget, fill_value=P)[0]
    ckeys = jnp.where(cand < P, keys_P[jnp.minimum(cand, P - 1)], jnp.uint32(0xFFFFFFFF))
    skeys, spos = jax.lax.sort_key_val(ckeys, cand)           # stable: by (key, position)
    shi = (skeys >> (32 - BUCKET_BITS)).astype(jnp.int32)
    start_A = jnp.searchsorted(shi, bucket_A, side="left")    # where each bucket begins among them
    return spos[jnp.minimum(start_A + within_A, budget - 1)], fits


def draw(key, peers: int, active: int, budget: int = 0) -> jax.Array:
    """jnp.sort(jax.random.permutation(key, peers)[:active]), bit for bit, in O(peers) work. `budget`:
    candidate keys sorted per selection (0: the default; a test forces the fallback with a small one)."""
    if rounds(peers) != 2 or active >= peers:      # small P (one sort is cheap) or P past 2.7 million
        return jnp.sort(jax.random.permutation(key, peers)[:active])
    k, sub1 = jax.random.split(key)                # _shuffle's key schedule: split, bits, per round
    _, sub2 = jax.random.split(k)
    keys1 = jax.random.bits(sub1, (peers,), jnp.uint32)
    keys2 = jax.random.bits(sub2, (peers,), jnp.uint32)
    budget = budget or min(peers, active * max(MIN_BUDGET, 4 * math.ceil(peers / (1 << BUCKET_BITS))))
    # where the second sort takes its first `active` from: ranks 0..active-1 of its keys
    J, fits2 = select_ranks(keys2, jnp.arange(active), budget)
    picked, fits1 = select_ranks(keys1, J, budget)  # what the first sort put there
    # The fallback as a loop that runs only when needed: a lax.cond under vmap (run.py vmaps rounds over
    # lanes) becomes a select that computes both branches, the full permutation every round; and the
    # barrier ties the loop's key to its carry, or XLA hoists the loop-invariant permutation out of it.
    def fallback(c):
        k_, _ = jax.lax.optimization_barrier((key, c[0]))
        return jnp.sort(jax.random.permutation(k_, peers)[:active]), jnp.bool_(True)

    out, _ = jax.lax.while_loop(lambda c: ~c[1], fallback, (jnp.sort(picked), fits1 & fits2))
    return out
