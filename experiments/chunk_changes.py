"""Which seeds-per-program choices (build.auto_chunk) the memory estimate's change moves: every shipped
figure's compiled groups, built (data loaded and partitioned, nothing compiled), sized by the estimate
before (an earlier sizing.py, passed as a file: each of the shapes it reads) and after, for this machine's memory and for an 80 GB device.

    PYTHONPATH=$PWD python experiments/chunk_changes.py OLD_SIZING.py [fig1 fig2 ...]
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import time

from tallysim import build, sizing
from tallysim.figures import programs



def main() -> None:
    spec = importlib.util.spec_from_file_location("old_sizing", sys.argv[1])
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    # the keys the old estimate reads (one before the model's facts read only the first nine)
    known = set(inspect.signature(old.per_seed_bytes).parameters) - {"lanes"}
    names = sys.argv[2:] or [f"fig{i}" for i in range(1, 13)] + ["robustness", "matched_bits"]
    here = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    budgets = {"cpu": int(0.5 * here), "80GB": int(0.5 * 80e9)}
    print("figure,group,lanes," + ",".join(f"old_{k},new_{k}" for k in budgets), flush=True)

    def unplanned(name, e):         # a benchmark figure, or one this machine cannot plan
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
            row += [old.lanes_that_fit(n, budget, **{key: shapes[key] for key in known}),
                    sizing.lanes_that_fit(n, budget, **shapes)]
        print(f"{name},{gname}#{k},{n}," + ",".join(map(str, row)) + f",{time.time() - t0:.0f}s", flush=True)
        del b


if __name__ == "__main__":
    main()
