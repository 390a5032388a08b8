"""One metrics row from a run's per-seed rows (aggregate): the mean over seeds under the usual keys, its
std, each seed's value, and how many seeds each mean is over (`seeds_counted`) or holds a NaN or inf of
(`seeds_nonfinite`). Split from headline.py by job: this makes the multi-seed row, headline.py reads the
headline numbers and their words from any row (and re-exports `aggregate` under its old name).

Re-exported by tallysim/results/metrics.py, the run directory's schema; like it, imports nothing above it
and no JAX.
"""
from __future__ import annotations

import math

import numpy as np

from tallysim.results.rows import PEER_PLACES, SEEDS_COUNTED, SEEDS_NONFINITE


def _exact(key: str, vals: list) -> bool:
    """Whether the seeds' values are one exact count to keep as it is: integers (bits_up/bits_down, steps,
    faulty, ...) or a bits key (bits_per_peer, up + down over P, may be fractional) on which every seed
    agrees. Their mean was a float (3072 -> 3072.0; three 0.1s -> 0.10000000000000002), so a multi-seed
    row's bits differed in type, or in the last digit, from each of its seeds' own."""
    first = vals[0]
    if isinstance(first, bool) or not isinstance(first, (int, float)):
        return False
    if not (isinstance(first, int) or key.startswith("bits_")):
        return False
    return all(type(v) is type(first) and v == first for v in vals)


def aggregate(rows: list[dict], seeds: list) -> dict:
    """One metrics row from per-seed rows: the mean under the usual keys, `<key>_std`, `per_seed`
    (bits and integer counts every seed agrees on: that value, exact, std 0.0; wall_s: the largest; a key
    null for every seed: null; null for some: the mean and std over the seeds that have a value, each
    seed's value, null or not, in per_seed and how many were averaged in `seeds_counted`; NaN or inf for
    some: kept in the mean, which is then not finite, and how many in `seeds_nonfinite`; a list,
    acc_peers: the element-wise mean, no std)."""
    if len(rows) == 1:
        return rows[0]
    out, per_seed, counted, nonfinite = {"round": rows[0]["round"], "seeds": seeds}, {}, {}, {}
    for k in rows[0]:
        if k == "round":
            continue
        vals = [r[k] for r in rows]
        # one seed's null (no vote arrived in its lanes' round, nothing kept) nulled the other seeds'
        # values too: a 3-seed dropout run's vote_acc was null wherever one seed's round had no sender
        have = [v for v in vals if v is not None]
        if k == "wall_s":
            out[k] = max(vals)
        elif any(isinstance(v, list) for v in vals):    # acc_peers: peer i's mean over seeds; each seed's list kept
            out[k] = [round(float(x), PEER_PLACES) for x in np.mean(np.asarray(vals, float), axis=0)]
            per_seed[k] = vals
        elif not have:
            out[k] = None
        elif _exact(k, have):       # bits and counts every seed agrees on: the value itself, not a float mean
            out[k] = have[0]
            out[k + "_std"] = 0.0
            per_seed[k] = vals
        else:
            # one seed's NaN or inf (a diverged model's perplexity) is its result, not a missing value: kept in
            # the mean and counted (seeds_nonfinite), not the other seeds' mean passed off as the run's
            with np.errstate(invalid="ignore", over="ignore"):
                out[k] = float(np.mean(have))
                out[k + "_std"] = float(np.std(have))
            per_seed[k] = vals
            if bad := sum(isinstance(v, float) and not math.isfinite(v) for v in have):
                nonfinite[k] = bad
        if have and len(have) < len(vals) and k != "wall_s":
            counted[k] = len(have)
    out["per_seed"] = per_seed
    if counted:
        out[SEEDS_COUNTED] = counted
    if nonfinite:
        out[SEEDS_NONFINITE] = nonfinite
    return out
