"""Which shipped figure groups the exchange's probe split (sizing.probe_chunk, exchange.split_probes) reaches,
and which seeds-per-program choices (build.auto_chunk) it moves: every figure's compiled groups built (data
loaded and partitioned, nothing compiled), each model (a model.groups group's own) checked at the lanes the
group runs with, on this machine's memory and on an 80 GB device.

    PYTHONPATH=$PWD python experiments/probe_split_changes.py OLD_SIZING.py [fig1 fig2 ...]

Prints figure, group, seeds, then per budget: the lanes before and after, and the models whose probes are
split at those lanes (name:probes per pass/probes), "-" where none is.
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import time

from tallysim import build, sizing
from tallysim.figures import programs


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
    spec = importlib.util.spec_from_file_location("old_sizing", sys.argv[1])
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    known = set(inspect.signature(old.per_seed_bytes).parameters) - {"lanes"}
    names = sys.argv[2:] or [f"fig{i}" for i in range(1, 13)] + ["robustness", "matched_bits"]
    here = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    budgets = {"cpu": int(0.5 * here), "80GB": int(0.5 * 80e9)}
    print("figure,group,seeds," + ",".join(f"old_{k},new_{k},split_{k}" for k in budgets), flush=True)

    def unplanned(name, e):
        print(f"{name},-,-,{type(e).__name__}: {e}", flush=True)

    for name, gname, k, group in programs(names, unplanned):
        t0 = time.time()
        try:
            b = build.build_group(group)
        except Exception as e:      # noqa: BLE001 - data this machine lacks
            print(f"{name},{gname}#{k},-,{type(e).__name__}: {str(e)[:80]}", flush=True)
            continue
        shapes = build.lane_shapes(b)
        n = len(b.seeds)
        row = []
        for budget in budgets.values():
            new = sizing.lanes_that_fit(n, budget, **shapes)
            row += [old.lanes_that_fit(n, budget, **{key: shapes[key] for key in known}), new,
                    split_models(shapes, new)]
        print(f"{name},{gname}#{k},{n}," + ",".join(map(str, row)) + f",{time.time() - t0:.0f}s", flush=True)
        del b


if __name__ == "__main__":
    main()
