"""The one short table `benchmarks/gpu.sh` prints at its end, from the `tallysim bench --json` files it wrote.

    python benchmarks/gpu_table.py OUT/table_cnn.json OUT/table_rest.json [...]
    python benchmarks/gpu_table.py --auto-conv OUT/conv.json     # AUTO_CONV rows to paste (sim/conv.py)

One markdown row per (model, dtype, P), ready to paste into docs/gpu.md:

  tallysim, plain vmap, dense   samples/s of the bench's `tallysim`, `vmap_ref` and `dense` rows
  TFLOP/s tallysim, dense       samples/s x analytic training FLOPs per example / 1e12 (the rows' `tflops`)
  tallysim / dense, vmap / dense  the fraction of the dense bound each reaches

Rows of several convolutions (`bench --conv xla,im2col,nchw`) get a `conv` column, one line per conv
(plain vmap, always conv=xla, beside each). `--auto-conv` prints instead, per (device kind, model), the
fastest conv's `AUTO_CONV` row for tallysim/sim/conv.py, with every conv's samples/s in a comment.

A cell `bench` recorded as failed (it raised, e.g. a formulation the device's compiler refused) shows
`failed` and its reason under the table, and is never an `AUTO_CONV` choice. A file that is missing,
empty or cut short (its part ran out of time before the first row) is named under the table instead
of stopping it, so the table shows whatever the lease measured. Plain Python
(no JAX): it runs even where the benchmark did not.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

CONV_IMPLS = ("tallysim", "dense")   # the columns `bench --conv` changes
COLUMNS = ("model", "dtype", "P", "tallysim", "plain vmap", "dense", "TFLOP/s tallysim", "TFLOP/s dense",
           "tallysim / dense", "vmap / dense")
IMPLS = {"tallysim": "tallysim", "vmap_ref": "plain vmap", "dense": "dense"}


def load(paths) -> tuple[list[dict], list[str]]:
    """The rows of every readable file, in order, and one line per file that gave none."""
    rows, problems = [], []
    for p in map(Path, paths):
        try:
            got = json.loads(p.read_text())
        except FileNotFoundError:
            problems.append(f"{p}: missing (its part did not run or wrote nothing)")
            continue
        except (OSError, ValueError) as e:
            problems.append(f"{p}: unreadable ({e.__class__.__name__}: {e})")
            continue
        if not isinstance(got, list) or not got:
            problems.append(f"{p}: no rows")
            continue
        rows += [r for r in got if isinstance(r, dict) and "impl" in r]
    return rows, problems


FAILED = "failed"


def _num(v) -> str:
    return v if v == FAILED else "-" if v is None else f"{v:,.0f}"


def _rate(row: dict):
    """A row's samples/s, or "failed" where the cell raised (`bench` wrote `failed`, no samples/s)."""
    return FAILED if row.get("failed") else row.get("samples_per_s")


def _tflops(v) -> str:
    return "-" if v is None else f"{v:.3g}"


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if a and b and FAILED not in (a, b) else "-"


def table(rows: list[dict], notes: list | None = None) -> str:
    """The markdown table; a cell measured twice shows its later row, and `notes` (if given) says which."""
    by_conv = len({r.get("conv") for r in rows if r["impl"] in CONV_IMPLS and r.get("conv")}) > 1
    cells: dict[tuple, dict] = {}
    for conv_rows in (True, False):         # conv-dependent rows make the lines; vmap_ref joins each
        for r in rows:
            if r["impl"] not in IMPLS or (r["impl"] in CONV_IMPLS) != conv_rows:
                continue
            base = (r["model"], r["dtype"], r.get("peers", r.get("P")))
            if conv_rows:
                keys = [base + ((r.get("conv") if by_conv else None),)]
            else:
                keys = [c for c in cells if c[:3] == base] or [base + (None,)]
            for cell in keys:
                if r["impl"] in cells.get(cell, {}) and notes is not None:
                    notes.append(f"{' '.join(str(c) for c in cell if c)} {r['impl']}: measured twice, the later "
                                 "row is shown (ratios mix runs)")
                cells.setdefault(cell, {})[r["impl"]] = r
    cols = COLUMNS[:3] + (("conv",) if by_conv else ()) + COLUMNS[3:]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for (model, dtype, P, conv), got in cells.items():
        rate = {impl: _rate(got[impl]) if impl in got else None for impl in IMPLS}
        tf = {impl: got[impl].get("tflops") if impl in got else None for impl in IMPLS}
        lines.append("| " + " | ".join([model, dtype, str(P)] + ([conv or "-"] if by_conv else []) + [_num(rate["tallysim"]), _num(rate["vmap_ref"]),
                                        _num(rate["dense"]), _tflops(tf["tallysim"]), _tflops(tf["dense"]),
                                        _ratio(rate["tallysim"], rate["dense"]),
                                        _ratio(rate["vmap_ref"], rate["dense"])]) + " |")
    return "\n".join(lines)


def auto_conv(rows: list[dict]) -> str:
    """`AUTO_CONV` rows to paste into tallysim/sim/conv.py: per (device kind, model), the conv whose
    tallysim row was fastest (over the dtypes and P measured: their mean ratio to the first conv)."""
    by: dict[tuple, dict] = {}
    failed: dict[tuple, dict] = {}       # a conv whose cell raised is never chosen; the comment names it
    for r in rows:
        if r["impl"] == "tallysim" and r.get("conv"):
            kind = str(r.get("device") or "?").split(":", 1)[-1]
            conv = r["conv"].split(":", 1)[-1]          # auto:xla -> xla
            if r.get("failed") or not r.get("samples_per_s"):
                failed.setdefault((kind, r["model"]), {}).setdefault(conv, r.get("failed") or "no samples/s")
                by.setdefault((kind, r["model"]), {})
                continue
            cell = by.setdefault((kind, r["model"]), {})
            cell.setdefault(conv, []).append(((r["dtype"], r.get("peers", r.get("P"))), r["samples_per_s"]))
    out = []
    for (kind, model), convs in by.items():
        rate = {c: dict(v) for c, v in convs.items() if c not in failed.get((kind, model), {})}
        common = set.intersection(*(set(v) for v in rate.values())) if rate else set()
        if len(rate) < 2 or not common:
            continue
        first = next(iter(rate))
        score = {c: sum(rate[c][k] / rate[first][k] for k in common) / len(common) for c in rate}
        best = max(score, key=score.get)
        shown = ", ".join(f"{c} {sum(rate[c][k] for k in common) / len(common):,.0f}" for c in rate)
        shown += "".join(f", {c} failed" for c in failed.get((kind, model), {}))
        cells = ", ".join(f"{d} P={p}" for d, p in sorted(common, key=str))
        out.append(f'    ("{kind}", "{model}", "{best}"),   # tallysim samples/s: {shown} ({cells})')
    return "\n".join(out)


def failures(rows: list[dict]) -> list[str]:
    """One line per cell that raised (`bench` recorded it as failed and went on), with its reason."""
    return [f"failed: {r.get('model')} {r.get('dtype')} P={r.get('peers', r.get('P'))}"
            + (f" conv={r['conv']}" if r.get("conv") else "") + f" {r.get('impl')}: {r['failed']}"
            for r in rows if r.get("failed")]


def main(argv=None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if paths and paths[0] == "--auto-conv":
        rows, problems = load(paths[1:])
        text = auto_conv(rows)
        print("AUTO_CONV rows (tallysim/sim/conv.py), fastest conv per device kind and model:")
        print(text or "  (none: no model measured with two or more convs)")
        for line in problems + failures(rows):
            print(f"  {line}")
        return 0 if text else 1
    if not paths:
        print("usage: python benchmarks/gpu_table.py BENCH.json [BENCH.json ...] (the files `tallysim bench "
              "--json FILE` wrote)", file=sys.stderr)
        return 2
    rows, problems = load(paths)
    device = next((r.get("device") for r in rows if r.get("device")), None)
    if rows:
        print(f"samples/s of local training (P x steps x batch / s) on {device}; TFLOP/s from analytic FLOPs "
              "per example (tallysim/bench/flops.py); dense = one model, batch P x batch (the bound)")
        print(table(rows, problems))
    for line in problems + failures(rows):
        print(f"  {line}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
