"""The axes a figure group sweeps of its own besides the ones a figure kind draws (`x`, facets, panels):
a group's `sweep` of `distill.weight=0.5,1` gives two runs at each x that every kind drew as one line (a
zigzag through both) and wrote as CSV rows that differed in nothing but their numbers (userjourney14 for
final_vs, figaxes47 for the others). Each value is a line of its own, `<group> distill.weight=0.5`, and
a CSV column."""
from __future__ import annotations


def varying(runs, *drawn: str) -> list:
    """The keys other than `drawn` whose values differ between a group's runs [(overrides, run dir)]."""
    keys = [k for ov, _ in runs for k in ov if k not in drawn]
    return [k for k in dict.fromkeys(keys) if len({ov.get(k) for ov, _ in runs}) > 1]


def own_lines(data: dict, *drawn: str) -> tuple[dict, list]:
    """({line: [(overrides, run dir)]}, the varying keys of every group, ordered, each once): `data`
    ({group: runs}) with each group split by the values of the keys it sweeps besides `drawn`; a group
    that sweeps none keeps its name."""
    other = list(dict.fromkeys(k for runs in data.values() for k in varying(runs, *drawn)))
    lines: dict = {}
    for group, runs in data.items():
        split = varying(runs, *drawn)
        for ov, d in runs:
            lines.setdefault(" ".join([group] + [f"{k}={ov[k]}" for k in split if k in ov]), []).append((ov, d))
    return lines, other


def columns(ov: dict, other: list) -> dict:
    """A run's CSV columns for the `other` keys (empty for a group that does not sweep one)."""
    return {k: ov.get(k, "") for k in other}
