"""The text of `tallysim compare` (compare.py): markdown (what A and B are, the metric, the verdict rule, a
table of each seed's values and difference, a table of each pair's statistics, then the notes), or CSV
(one row per pair and seed, then one `mean` row per pair with the statistics; full precision, the notes
on stderr; `family`: the pairs its interval and sign test hold together over, 1 for none)."""
from __future__ import annotations

import csv
import io

from tallysim.config import ConfigError
from tallysim.results import paired_stats

FORMATS = ("markdown", "csv")
CSV_COLUMNS = ("pair", "seed", "a", "b", "diff", "n", "se", "ci_low", "ci_high", "above", "below", "tied",
               "sign_p", "verdict", "metric_a", "metric_b", "at", "round", "family")


def to_finish(d, status: str) -> str:
    """What to do about a run `compare` refuses as unfinished (`table`'s status: incomplete, running,
    failed): the refusal said only "allowed: finished runs", to a user whose sweep had been killed."""
    from pathlib import Path
    d = Path(d)
    if status == "running":
        return "wait until the process writing it finishes, then compare again"
    if status == "failed":
        return f"{d / 'error.txt'} says why it failed"
    if (d.parent / "sweep.json").is_file():
        return f"run the sweep (or figure) command that wrote {d.parent} again: it continues the run"
    if (d / "checkpoint.npz").is_file():
        return f"`tallysim run --out {d} --resume` continues it"
    return f"it saved no checkpoint: run it again (`tallysim run ... --out {d} --overwrite`)"


def _num(v) -> str:
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:.6g}"


def _signed(v) -> str:
    return f"{v:+.4f}" if abs(v) < 1000 else f"{v:+.6g}"


def _end(v) -> str:
    """An interval's end: its sign decides the verdict, so one within 0.00005 of 0 is not printed "-0.0000"
    (softlabel over tally at Dirichlet 0.1, 3 seeds: [-0.0000, +0.4053], "level within noise", read as 0
    held by rounding; it was -2.1e-05)."""
    return f"{v:+.2g}" if v and abs(v) < 0.00005 else _signed(v)


def _interval(p: dict) -> str:
    if p["ci_low"] is None:
        return paired_stats.NO_INTERVAL
    return f"[{_end(p['ci_low'])}, {_end(p['ci_high'])}]"


def _what(c) -> str:
    """The metric line. It named the first pair's metric and round alone: `--by` over a sweep of `rounds` (or
    of runs with and without a server model) compared the others at other rounds (or acc_global) unsaid."""
    def metric(p):
        return p["metric_a"] if p["metric_a"] == p["metric_b"] else f"{p['metric_a']} (A) / {p['metric_b']} (B)"
    metrics_ = list(dict.fromkeys(metric(p) for p in c))
    rounds = sorted({p["round"] for p in c if p["round"] is not None})     # None: a per-seed CSV without rounds
    at = ("at each seed's best evaluation" if c[0]["at"] != "final"
          else f"at each pair's final evaluation (rounds {', '.join(map(str, rounds))})" if len(rounds) > 1
          else "at the final evaluation" + (f" (round {rounds[0]})" if rounds else ""))
    return f"metric: {' or '.join(metrics_)}{' (by pair)' if len(metrics_) > 1 else ''} {at}"


def _family(m: int, n: int) -> list:
    """The header line of n > 1 pairs: read together (m = n, compare_pairs.family), or each alone (--per-pair)."""
    if n == 1:
        return []
    if m == 1:
        return [f"per-pair 95% over {n} pairs (--per-pair): each interval and sign test is its pair's own, not "
                f"adjusted for the {n}: with no real difference anywhere about one pair in 20 claims a direction by "
                "chance (without --per-pair: family-wise)"]
    return [f"family-wise 95% over {m} pairs: each interval is Bonferroni's (the t quantile at 1 - 0.05/(2 x {m}) "
            f"= {paired_stats.quantile(m):.6g}, not 0.975) and each sign-test p Holm's, so that with no real "
            f"difference in any pair the chance of any \"above\" or \"below\" among the {m} is at most 5% (each "
            "pair's own 95% interval would give about one in 20 by chance); --per-pair: each pair's own 95%"]


def markdown(c) -> str:
    from tallysim.results import md
    named = any(p["pair"] for p in c)
    head = ["pair"] if named else []
    m = getattr(c, "family", 1)
    lines = [f"A: {c.a_name}", f"B: {c.b_name}", _what(c), paired_stats.RULE, *_family(m, len(c)), "",
             "| " + " | ".join(head + ["seed", "A", "B", "A - B"]) + " |", "|" + "---|" * (len(head) + 4)]
    for p in c:
        for s, a, b, d in zip(p["seeds"], p["a_values"], p["b_values"], p["diffs"]):
            cells = ([md.cell(p["pair"])] if named else []) + [str(s), _num(a), _num(b), _signed(d)]
            lines.append("| " + " | ".join(cells) + " |")
    interval, sign = ("95% t-interval", "sign test p") if m == 1 else (
        f"family-wise 95% t-interval ({m} pairs)", "sign test p (Holm)")
    lines += ["", "| " + " | ".join(head + ["seeds", "mean A - B", "std err", interval,
                                            "above / below / tied", sign, "verdict"]) + " |",
              "|" + "---|" * (len(head) + 7)]
    for p in c:
        cells = ([md.cell(p["pair"])] if named else []) + [
            str(p["n"]), _signed(p["mean"]), "" if p["se"] is None else _num(p["se"]), _interval(p),
            f"{p['above']} / {p['below']} / {p['tied']}", f"{p['sign_p']:.4g}", p["verdict"]]
        lines.append("| " + " | ".join(cells) + " |")
    if c.notes:
        lines += [""] + [f"- {n}" for n in c.notes]
    return "\n".join(lines) + "\n"


def to_csv(c) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for p in c:
        tail = [p["metric_a"], p["metric_b"], p["at"], p["round"], getattr(c, "family", 1)]
        for s, a, b, d in zip(p["seeds"], p["a_values"], p["b_values"], p["diffs"]):
            w.writerow([p["pair"], s, repr(a), repr(b), repr(d)] + [""] * 9 + tail)
        stats = [p["n"]] + ["" if p[k] is None else repr(p[k]) for k in ("se", "ci_low", "ci_high")] + [
            p["above"], p["below"], p["tied"], repr(p["sign_p"]), p["verdict"]]
        w.writerow([p["pair"], "mean", repr(sum(p["a_values"]) / p["n"]), repr(sum(p["b_values"]) / p["n"]),
                    repr(p["mean"])] + stats + tail)
    return buf.getvalue()


def render(c, fmt: str = "markdown") -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not known; allowed: {', '.join(FORMATS)}")
    return markdown(c) if fmt == "markdown" else to_csv(c)
