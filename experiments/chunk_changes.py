"""Which seeds-per-program choices (build.auto_chunk) the memory estimate's change moves: every shipped
figure's compiled groups, built (data loaded and partitioned, nothing compiled), sized by the estimate
before (an earlier sizing.py, passed as a file: each of the shapes it reads) and after, for this machine's memory and for an 80 GB device.

    PYTHONPATH=$PWD python experiments/chunk_changes.py OLD_SIZING.py [fig1 fig2 ...]
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import sys
import time

from tallysim import build, sizing
from tallysim.figures import programs


def compare(argv: list, count: str = "lanes", extra=None, extra_name: str = "") -> None:
    """The table both scripts print: argv[1] the old sizing.py, argv[2:] the figures (default every
    shipped one); per budget the lanes before and after, and `extra(shapes, new lanes)` as a column
    `<extra_name>_<budget>` where given (experiments/probe_split_changes.py: the models it splits)."""
    spec = importlib.util.spec_from_file_location("old_sizing", argv[1])
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    if not all(hasattr(old, f) for f in ("per_seed_bytes", "lanes_that_fit")):     # another module's .py
        raise SystemExit(f"{argv[1]} has no per_seed_bytes and lanes_that_fit; allowed: an earlier tallysim/sizing.py")
    # the keys the old estimate reads (one before the model's facts read only the first nine)
    known = set(inspect.signature(old.per_seed_bytes).parameters) - {"lanes"}
    names = argv[2:] or [f"fig{i}" for i in range(1, 13)] + ["robustness", "matched_bits"]
    here = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    budgets = {"cpu": int(0.5 * here), "80GB": int(0.5 * 80e9)}
    cols = ["old_{}", "new_{}"] + ([extra_name + "_{}"] if extra else [])
    print(f"figure,group,{count}," + ",".join(c.format(k) for k in budgets for c in cols), flush=True)

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
            new = sizing.lanes_that_fit(n, budget, **shapes)
            row += [old.lanes_that_fit(n, budget, **{key: shapes[key] for key in known}), new]
            row += [extra(shapes, new)] if extra else []
        print(f"{name},{gname}#{k},{n}," + ",".join(map(str, row)) + f",{time.time() - t0:.0f}s", flush=True)
        del b


def parse(argv: list, doc: str) -> list:
    """argv checked: the old sizing.py (an existing file), then figure names; none is argparse's usage line
    (it was an IndexError traceback). Returns compare's argv."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("old_sizing", help="an earlier tallysim/sizing.py (e.g. `git show REV:tallysim/sizing.py > old.py`)")
    ap.add_argument("figures", nargs="*", default=[], help="figure names (default: every shipped one)")
    args = ap.parse_args(argv[1:])
    if not os.path.isfile(args.old_sizing):
        ap.error(f"{args.old_sizing} is not a file; allowed: the path of an earlier sizing.py")
    if not args.old_sizing.endswith(".py"):     # README.md: AttributeError 'NoneType' has no 'loader' (no spec)
        ap.error(f"{args.old_sizing} is no .py file; allowed: the path of an earlier sizing.py")
    return [argv[0], args.old_sizing, *args.figures]


def main() -> None:
    compare(parse(sys.argv, __doc__))


if __name__ == "__main__":
    main()
