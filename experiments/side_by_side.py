"""tallysim's `bench` cells and the shared plain-JAX yardstick (shared/bench/vmap_ref.py), timed in ONE
process, alternating, so that every ratio compares numbers taken under the same load (the CPU is shared:
absolute samples/s move 3x between processes, docs/performance.md).

    PYTHONPATH=. python experiments/side_by_side.py [--ref DIR] [--rounds 3] [--grid mlp:10,100 ...]
                                                    [--steps 2] [--batch 32] [--dtype float32] [--json F]

Each round runs, in order: the yardstick script's own `main()` (`--model mlp`, its vmap and per-peer loop
rows: the MLP is the same 784-200-200-10 network as tallysim's `mlp`), then `tallysim bench`'s
`measure` for every grid cell with the columns tallysim, vmap_ref (the in-package copy of the yardstick,
native convolution) and dense (one model with batch P x batch, tallysim's convolution). Ratios are taken
within a round; the summary gives each ratio's min, median and max over the rounds.
`--ref` defaults to the first of ../shared/bench and ../../shared/bench (from the repository root) that
holds vmap_ref.py."""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_COMPILATION_CACHE", "false")   # compile time is not what is compared

from tallysim.bench import throughput  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
IMPLS = ("tallysim", "vmap_ref", "dense")


def find_ref(given: str | None) -> Path:
    for d in ([Path(given)] if given else [ROOT.parent / "shared/bench", ROOT.parent.parent / "shared/bench"]):
        if (d / "vmap_ref.py").is_file():
            return d / "vmap_ref.py"
    raise SystemExit(f"no vmap_ref.py under {given or '../shared/bench or ../../shared/bench'}; give --ref DIR")


def run_yardstick(path: Path, argv: list[str]) -> list[dict]:
    """The shared script's main() as its author wrote it, with its JSON lines caught from stdout."""
    spec = importlib.util.spec_from_file_location("shared_vmap_ref", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out, saved = io.StringIO(), sys.argv
    sys.argv = [str(path)] + argv
    try:
        with contextlib.redirect_stdout(out):
            mod.main()
    finally:
        sys.argv = saved
    return [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]


def parse_grid(cells: list[str], error=None) -> list[tuple[str, int]]:
    """(model, P) of every model:P,P... cell; `error` (argparse's) says what is wrong in one line: `mlp` or
    `mlp:x` was int()'s traceback, and an unknown model failed in bench's measure after the yardstick ran."""
    from tallysim.config import MODELS      # bench's measure refuses any other
    grid = []
    for cell in cells:
        model, _, peers = cell.partition(":")
        try:
            grid += [(model, int(p)) for p in peers.split(",")]
        except ValueError:
            grid = None
        if grid is None or model not in MODELS or min(p for _, p in grid) < 1:
            if error is None:
                raise ValueError(f"--grid cell {cell!r}")
            error(f"--grid {cell}: allowed: model:P,P... with a model of {', '.join(MODELS)} and peer counts "
                  "of 1 or more, e.g. mlp:10,100")
    return grid


def one_round(ref: Path, grid, steps, batch, dtype) -> dict:
    """{(model, P): {column: samples/s}}; yardstick columns are `shared_vmap` and `shared_loop`."""
    cells: dict = {}
    mlp_peers = sorted({p for m, p in grid if m == "mlp"})
    if mlp_peers:
        for r in run_yardstick(ref, ["--model", "mlp", "--peers", ",".join(map(str, mlp_peers)), "--steps",
                                     str(steps), "--batch", str(batch), "--dtype", dtype]):
            cells.setdefault(("mlp", r["P"]), {})["shared_" + r["mode"]] = r["samples_per_s"]
    for model, P in grid:
        for r in throughput.measure(model, [P], steps, batch, dtype, impls=IMPLS):
            cells.setdefault((model, P), {})[r["impl"]] = r["samples_per_s"]
    return cells


RATIOS = (("tallysim", "shared_vmap"), ("tallysim", "shared_loop"), ("tallysim", "vmap_ref"),
          ("tallysim", "dense"), ("vmap_ref", "shared_vmap"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", help="directory holding the shared vmap_ref.py")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--grid", nargs="+", default=["mlp:10,100", "lenet:10,100", "cnn:10"],
                    help="model:P,P... cells (docs/performance.md's: mlp, lenet at 10 and 100, cnn at 10)")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--json", help="write every round's cells and the summary here")
    a = ap.parse_args(argv)
    ref, grid = find_ref(a.ref), parse_grid(a.grid, ap.error)
    if a.rounds < 1:        # 0 or -1 printed an empty summary, no cell measured
        ap.error(f"--rounds {a.rounds}: allowed: 1 or more")
    if a.json and (Path(a.json).is_dir() or not Path(a.json).resolve().parent.is_dir()):
        # was write_text's traceback after every round had been measured, the numbers lost
        ap.error(f"--json {a.json}: allowed: a file path in an existing folder")
    rounds = []
    for i in range(a.rounds):
        t0 = time.time()
        cells = one_round(ref, grid, a.steps, a.batch, a.dtype)
        rounds.append(cells)
        print(f"round {i + 1} ({time.strftime('%H:%M:%S')}, {time.time() - t0:.0f} s, load "
              f"{os.getloadavg()[0]:.1f}):", flush=True)
        for (m, P), s in cells.items():
            print(f"  {m} P={P}: " + ", ".join(f"{k} {v:,.0f}" for k, v in s.items()), flush=True)
    summary = {}
    print("ratio: min / median / max over the rounds (each ratio within one round)")
    for m, P in dict.fromkeys(grid):
        for num, den in RATIOS:
            vals = [c[(m, P)][num] / c[(m, P)][den] for c in rounds if num in c[(m, P)] and den in c[(m, P)]]
            if vals:
                summary[f"{m} P={P} {num}/{den}"] = [min(vals), statistics.median(vals), max(vals)]
                print(f"  {m} P={P} {num}/{den}: {min(vals):.2f} / {statistics.median(vals):.2f} / {max(vals):.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps(dict(
            rounds=[{f"{m} P={P}": s for (m, P), s in c.items()} for c in rounds], summary=summary), indent=1))


if __name__ == "__main__":
    main()
