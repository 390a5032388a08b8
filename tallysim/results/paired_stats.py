"""The statistics of a paired-seed comparison (`tallysim compare`): per-seed differences A - B, their mean,
standard error, a 95% Student-t interval (n - 1 degrees of freedom), the count of seeds each way, an exact
two-sided sign test, and the verdict word with its rule; over several pairs read together, Bonferroni's
quantile and Holm's adjusted p (quantile, holm). Pure Python (math only): no scipy, which tallysim does not
depend on; tests/test_compare_dec26e.py checks every number against scipy.stats, test_compare_dec27d.py the
adjustments against a numpy derivation.

Why a t-interval and not the docs' count of seeds: with 3 seeds "above in 3 of 3" happens 1 time in 4 with
no real difference (the sign test's p = 0.25), so the count alone cannot separate a gain from noise.
"""
from __future__ import annotations

import math
from typing import Optional

LEVEL = 0.95
ABOVE, LEVEL_WORD, BELOW = "A above B", "level within noise", "A below B"
VERDICTS = (ABOVE, LEVEL_WORD, BELOW)
RULE = ("verdict: \"A above B\" where the 95% Student-t interval (n - 1 degrees of freedom) of the mean "
        "paired difference A - B lies wholly above 0, \"A below B\" where it lies wholly below 0, \"level "
        "within noise\" where it holds 0 or there is one seed (no interval); seeds each way: above / below / "
        "tied (exactly 0); sign test: exact two-sided binomial p over the untied seeds (it cannot fall below "
        "0.05 with fewer than 6 of them)")
NO_INTERVAL = "one seed: no interval"
# where every seed's difference is the same (compare: to the values' float32 rounding) the s.e. is 0 and the
# interval has no width: it measures no noise (accuracies are counts over a test set, so two seeds ahead by
# the same count happen), and "A above B" from 2 seeds was claimed by it; the sign test decides instead
FLAT = ("the difference is the same at every seed: the standard error is 0 and the interval has no width, so it "
        "measures no noise; the verdict is the sign test's (p < 0.05, which needs 6 seeds or more; over several "
        "pairs Holm's p, which needs more)")


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The `p` quantile (0.5 < p < 1) of Student's t with `df` degrees of freedom, by bisection on t_cdf."""
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


def sign_test_p(above: int, below: int) -> float:
    """Exact two-sided sign test: twice the binomial(n, 1/2) tail at the smaller count, capped at 1; ties
    are left out before (n = above + below); no untied seed: 1.0."""
    n = above + below       # n = 0: 2 * comb(0, 0) / 1, capped: 1.0
    k = min(above, below)
    # integer over integer: 2.0 ** n overflowed a float past 1023 seeds (an OverflowError's traceback;
    # `seeds` goes to 10,000), and this quotient of exact integers is rounded once
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / (1 << n))


def quantile(pairs: int = 1) -> float:
    """The Student-t quantile a 95% interval takes: 0.975 for one pair; over `pairs` pairs read together,
    Bonferroni's 1 - 0.05/(2 pairs), so that each interval holds at 1 - 0.05/pairs and all of them at 95%."""
    return 1.0 - (1.0 - LEVEL) / (2.0 * pairs)


def holm(ps: list) -> list:
    """Holm's step-down adjusted p-values of `ps` (one per pair, in their order): the k-th smallest times
    (m - k + 1), never below an adjusted smaller one, capped at 1; any of them < 0.05 keeps the family-wise
    error at 5% (Bonferroni's m p is never smaller)."""
    m, out, top = len(ps), [0.0] * len(ps), 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: ps[j])):
        top = max(top, min(1.0, (m - rank) * ps[i]))
        out[i] = top
    return out


def summarize(diffs: list, tol: float = 0.0, pairs: int = 1, sign_p: Optional[float] = None) -> dict:
    """The statistics of paired differences A - B (one per seed, finite): n, mean, se and the 95%
    t-interval (None for one seed; over `pairs` pairs Bonferroni's, quantile()), the seeds above / below /
    tied, the sign test's p (or `sign_p`, Holm's adjusted one), and the verdict; `flat` where there are 2
    seeds or more and the differences spread by at most `tol` (FLAT: the verdict is then the sign test's)."""
    n = len(diffs)
    if n == 0:
        raise ValueError("summarize: no paired difference")
    mean = math.fsum(diffs) / n
    above, below = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    se: Optional[float] = None
    lo = hi = None
    if n > 1:
        var = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)
        se = math.sqrt(var / n)
        half = t_quantile(quantile(pairs), n - 1) * se
        lo, hi = mean - half, mean + half
    verdict = ABOVE if lo is not None and lo > 0 else BELOW if hi is not None and hi < 0 else LEVEL_WORD
    sign_p = sign_test_p(above, below) if sign_p is None else sign_p
    flat = n > 1 and max(diffs) - min(diffs) <= tol
    if flat:
        verdict = LEVEL_WORD if sign_p >= 0.05 else ABOVE if above > below else BELOW
    return {"n": n, "mean": mean, "se": se, "ci_low": lo, "ci_high": hi, "above": above, "below": below,
            "tied": n - above - below, "sign_p": sign_p, "verdict": verdict, "flat": flat}
