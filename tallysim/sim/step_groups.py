"""How many groups `local.train_peers` splits the active peers into (LocalSpec.groups): the predicted waste
(computed / real private steps) of a grouping, and the automatic choice (ragged_groups unset). Split from
sim/local.py by job: this plans the grouping on the host; local.py runs it.
"""
from __future__ import annotations

import numpy as np


MAX_AUTO_GROUPS = 16


def waste(steps_ZxP, active: int, groups: int, draws: int = 16, seed: int = 0) -> float:
    """Predicted computed / real private steps of `local.train_peers` with `groups` groups, for real step
    counts per lane (seed) and peer (host numpy; lanes run batched, so a group runs to its longest
    over lanes).
    Under partial participation it averages `draws` random active sets."""
    steps_ZxP = np.asarray(steps_ZxP, np.int64)
    Z, P = steps_ZxP.shape
    rng = np.random.default_rng(seed)
    sets = [np.arange(P)] if active == P else [rng.choice(P, active, replace=False) for _ in range(draws)]
    g = -(-active // groups)
    real = computed = 0
    for idx in sets:
        s = -np.sort(-steps_ZxP[:, idx], axis=1)
        s = np.pad(s, ((0, 0), (0, groups * g - active)))
        computed += g * s[:, ::g].max(axis=0).sum() * Z
        real += s.sum()
    return computed / max(real, 1)


def auto_groups(steps_ZxP, active: int, target: float = 1.2, backend: str = "gpu") -> int:
    """On the CPU, one peer per group: the peers run one after another inside the compiled round,
    each only its own steps (no waste), and unbatched convolutions and matmuls are what the CPU runs
    fastest (a LeNet FedAvg round measured 7x faster than vmapped, an MLP tally round 3.8x).
    Elsewhere, the fewest groups (up to MAX_AUTO_GROUPS) whose predicted waste is <= target, else the
    least wasteful: fewer groups keep more peers in one vmapped step, which accelerators prefer."""
    if backend == "cpu":
        return active
    best, best_w = 1, float("inf")
    for g in range(1, min(MAX_AUTO_GROUPS, active) + 1):
        w = waste(steps_ZxP, active, g)
        if w <= target:
            return g
        if w < best_w - 1e-9:
            best, best_w = g, w
    return best
