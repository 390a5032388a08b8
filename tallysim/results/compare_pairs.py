"""A pair of `tallysim compare` (compare.py): each side's runs, their common seeds' values and paired_stats'
numbers, with notes on what was dropped or does not match; `Comparison`, the list of pairs the command prints."""
from __future__ import annotations

from typing import Optional

from tallysim.config import ConfigError
from tallysim.fields import first_few
from tallysim.results import metrics, paired_stats
from tallysim.results.compare_read import metric_key, seed_values
from tallysim.results.swept import flatten, swept_fields, unread_blank, with_defaults

# fields that are no part of a setting's identity when pairing: the seeds are what is paired
SEED_FIELDS = ("seed", "seeds")
# two differences of float32 values (each rounded by at most 2**-24 of its size) may differ by 2**-22 of it
FLOAT32_SPREAD = 2.0 ** -21


class Comparison(list):
    """The pairs of a comparison (each a dict: pair, a, b, metric_a, metric_b, at, seeds, a_values,
    b_values, diffs, n, mean, se, ci_low, ci_high, above, below, tied, sign_p, verdict, bits_a, bits_b,
    dropped; over several pairs also the unadjusted *_per_pair, family()), with `notes` (dropped seeds,
    unmatched bits, ...), `family` (the pairs the intervals hold together over: 1 for one pair or
    `per_pair`) and `text(fmt)`: the command's output."""

    def __init__(self, pairs, notes, a_name: str, b_name: str, per_pair: bool = False):
        super().__init__(pairs)
        self.notes, self.a_name, self.b_name = notes, a_name, b_name
        self.family = family(self, notes, per_pair)

    def text(self, fmt: str = "markdown") -> str:
        from tallysim.results import compare_text
        return compare_text.render(self, fmt)

    def __str__(self) -> str:
        return self.text()

    def _repr_markdown_(self) -> str:     # a notebook shows the tables
        return self.text()


def _has(runs: list, key_of, role: str) -> None:
    for d, cfg, rows in runs:
        key = key_of(rows)
        if all(r.get(key) is None for r in rows) and not any(key in (r.get("per_seed") or {}) for r in rows):
            raise ConfigError(f"{role} {d}: no value of {key!r} in any row of its {metrics.METRICS}; allowed: "
                              f"--metric naming a column it has ({first_few(metrics.columns(rows), 8)})")


def _side(runs: list, key_of, at: str, role: str) -> tuple[dict, set, Optional[float]]:
    """({seed: value}, metric keys, bits per peer) of one side of a pair, its runs' seeds pooled."""
    values, keys, bits, came = {}, set(), set(), {}
    for d, cfg, rows in runs:
        key = key_of(rows)
        split = {k for r in rows for k in (r.get("per_seed") or {})}
        if len(rows[-1].get("seeds") or [0]) > 1 and key not in split:
            # wall_s (the slowest seed's): every seed read as None, "no finite value, e.g. diverged"
            raise ConfigError(f"{role} {d}: {key!r} has one value per row for all its seeds (its mean rows keep "
                              f"no per-seed list of it), so no seed can be paired; allowed: --metric naming a "
                              f"per-seed column ({first_few(sorted(split), 8)})")
        keys.add(key)
        for s, v in seed_values(cfg, rows, key, at).items():
            if s in values:     # both named: a copy (`cp -r run run.bak`) said only "and another"
                raise ConfigError(f"{role}: seed {s} is in two runs of one setting ({came[s]} and {d}); allowed: "
                                  "runs whose seeds do not overlap (move a copy out of the directories given)")
            values[s], came[s] = v, d
        bits.add(rows[-1].get("bits_per_peer"))
    return values, keys, (bits.pop() if len(bits) == 1 else None)


def pair(a_runs: list, b_runs: list, metric: str, at: str, label: str, notes: list) -> dict:
    """One pair: each side's runs [(dir, cfg, rows)], their common seeds' values and statistics."""
    for runs, role in ((a_runs, "A"), (b_runs, "B")):     # a column absent before one not split by seed
        _has(runs, lambda rows: metric_key(rows, metric), role)
    a_vals, a_keys, a_bits = _side(a_runs, lambda rows: metric_key(rows, metric), at, "A")
    b_vals, b_keys, b_bits = _side(b_runs, lambda rows: metric_key(rows, metric), at, "B")
    where = f"{label}: " if label else ""
    common = paired(a_vals, b_vals, where, notes, "runs of the same seeds (the same `seed`, or overlapping "
                    "seed..seed+seeds-1)")
    if a_keys != b_keys:
        notes.append(f"{where}A's {'/'.join(sorted(a_keys))} against B's {'/'.join(sorted(b_keys))} (--metric "
                     "auto: each run's headline accuracy; --metric KEY compares one column)")
    if a_bits != b_bits:
        notes.append(f"{where}not matched bits: A {_bits(a_bits)} per peer, B {_bits(b_bits)} per peer")
    rounds = [sorted({rows[-1]["round"] for *_, rows in runs}) for runs in (a_runs, b_runs)]
    if at == "final" and rounds[0] != rounds[1]:    # both finished, at other lengths: say which rounds meet
        notes.append(f"{where}A's final evaluation is round {'/'.join(map(str, rounds[0]))}, B's round "
                     f"{'/'.join(map(str, rounds[1]))}")
    return {"pair": label, "a": ", ".join(str(d) for d, *_ in a_runs), "b": ", ".join(str(d) for d, *_ in b_runs),
            "metric_a": "/".join(sorted(a_keys)), "metric_b": "/".join(sorted(b_keys)), "at": at,
            "round": max(rows[-1]["round"] for *_, rows in a_runs + b_runs), **common,
            "bits_a": a_bits, "bits_b": b_bits}


def paired(a_vals: dict, b_vals: dict, where: str, notes: list, allowed: str) -> dict:
    """The common seeds of {seed: value} A and B (a value None: no finite one), each dropped seed named in
    `notes`, with their values, differences A - B and paired_stats' numbers; `allowed`: what the refusal of
    no common seed suggests."""
    only = sorted(set(a_vals) ^ set(b_vals))
    if only:
        notes.append(f"{where}seeds dropped (not in both A and B): "
                     + ", ".join(f"{s} (only in {'A' if s in a_vals else 'B'})" for s in only))
    common = sorted(set(a_vals) & set(b_vals))
    if not common:
        raise ConfigError(f"{where}A's seeds {sorted(a_vals)} and B's {sorted(b_vals)} have none in common: no "
                          f"pair to compare; allowed: {allowed}")
    no_value = [s for s in common if a_vals[s] is None or b_vals[s] is None]
    if no_value:
        notes.append(f"{where}seeds dropped (no finite value, e.g. diverged): " + ", ".join(
            f"{s} ({'A' if a_vals[s] is None else 'B'})" for s in no_value))
    seeds = [s for s in common if s not in no_value]
    if not seeds:
        raise ConfigError(f"{where}no seed has a finite value in both A and B; nothing to compare")
    a, b = [a_vals[s] for s in seeds], [b_vals[s] for s in seeds]
    diffs = [x - y for x, y in zip(a, b)]
    stats = paired_stats.summarize(diffs, _tol(a, b))
    if stats["flat"]:
        notes.append(f"{where}{paired_stats.FLAT}")
    return {"seeds": seeds, "a_values": a, "b_values": b, "diffs": diffs, **stats, "dropped": only + no_value}


def _tol(a_values: list, b_values: list) -> float:
    # the values are float32 accuracies (or losses): differences equal but for that rounding are equal
    return FLOAT32_SPREAD * max(abs(v) for v in (*a_values, *b_values))


def family(pairs: list, notes: list, per_pair: bool) -> int:
    """Over m > 1 pairs (unless `per_pair`), each pair's interval made Bonferroni's and its sign-test p
    Holm's, and its verdict taken from them, so that the m verdicts hold together at 95%: with 20 pairs
    and no real difference anywhere, one pair's own 95% interval says "above" or "below" about once. The
    unadjusted numbers stay in the pair as ci_low_per_pair, ci_high_per_pair, sign_p_per_pair,
    verdict_per_pair; a note names each pair whose verdict the adjustment changed. Returns m (1: none)."""
    m = 1 if per_pair else len(pairs)
    if m == 1:
        return 1
    for p, q in zip(pairs, paired_stats.holm([p["sign_p"] for p in pairs])):
        own = {f"{k}_per_pair": p[k] for k in ("ci_low", "ci_high", "sign_p", "verdict")}
        p.update(paired_stats.summarize(p["diffs"], _tol(p["a_values"], p["b_values"]), m, q), **own)
        if p["verdict"] != own["verdict_per_pair"]:
            # a flat pair's verdict is its sign test's (FLAT): "its own 95% interval" named one of no width
            whose = (f"its own sign test (p {own['sign_p_per_pair']:.4g})" if p["flat"] else "its own 95% interval")
            notes.append(f"{p['pair'] or 'the pair'}: {p['verdict']} over the {m} pairs; {whose} alone says "
                         f"{own['verdict_per_pair']} (--per-pair)")
    return m


def _bits(b) -> str:
    return "unknown (the runs of one setting differ)" if b is None else f"{metrics.bits_text(b)} bits"


def differ(cfgs: list) -> str:
    fields = [k for k in swept_fields(cfgs) if k not in SEED_FIELDS]
    # a field a run never reads shown as None: tally's comm.soft_bits read "32", its unread default
    flat = [unread_blank(with_defaults(flatten(c), fields), fields) for c in cfgs]
    return "; ".join(f"{k} ({flat[0].get(k)} / {flat[1].get(k)})" for k in fields[:6]) + (
        f"; {len(fields) - 6} more" if len(fields) > 6 else "")
