"""Which shipped figure groups the exchange's probe split (sizing.probe_chunk, exchange.split_probes) reaches,
and which seeds-per-program choices (build.auto_chunk) it moves: every figure's compiled groups built (data
loaded and partitioned, nothing compiled), each model (a model.groups group's own) checked at the lanes the
group runs with, on this machine's memory and on an 80 GB device.

    PYTHONPATH=$PWD python experiments/probe_split_changes.py OLD_SIZING.py [fig1 fig2 ...]

Prints figure, group, seeds, then per budget: the lanes before and after, and the models whose probes are
split at those lanes (name:probes per pass/probes), "-" where none is.
"""
from __future__ import annotations

import sys

from experiments.chunk_changes import compare, parse
from tallysim import sizing


def split_models(shapes: dict, lanes: int) -> str:
    models = list(shapes["groups"]) or [dict(peak=shapes["peak"], saved=shapes["saved"])]
    probes, positions, classes = shapes["probes"], shapes["positions"], shapes["classes"]
    out = []
    for i, m in enumerate(models):
        if not probes or m["saved"] is None:
            continue
        forward = max(m["peak"], shapes["example"])
        k = sizing.probe_chunk(probes, probes * positions, classes, forward, shapes["example"],
                               4 * classes * positions, lanes)
        if k < probes:
            out.append(f"{m.get('name', i)}:{k}/{probes}")
    return " ".join(out) or "-"


def main() -> None:
    compare(parse(sys.argv, __doc__), count="seeds", extra=split_models, extra_name="split")


if __name__ == "__main__":
    main()
