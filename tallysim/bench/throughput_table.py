"""The throughput table as text (`tallysim bench`, bench/throughput.py measures its rows): the header
that says what each column ran and on which device, one line per (model, dtype, P[, conv]) with
tallysim's speed-ups over the loop and vmap_ref and its fraction of the dense bound, and the notes under
it (what the default grid left out, torch_ref's absence, cells that failed). throughput.X re-exports
`table` and `header`, as before.
"""
from __future__ import annotations

from typing import Iterable, Optional

import jax

from tallysim.bench import device_name
from tallysim.bench.flags import CONV_IMPLS, REPEATS


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except Exception:
        return False
    return True


def _fmt(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _fmt_tflops(v: float) -> str:
    """Three significant figures: a CPU's 0.00123 and an H200's 42.5 both stay readable."""
    return f"{v:.3g}"


def table(rows: list[dict], notes: Iterable[str] = ()) -> str:
    """One line per (model, dtype, P), and per conv where the rows hold several (`--conv a,b`; then a
    `conv` column): samples/s per impl, tallysim's speed-up over loop and vmap_ref (those two rows, run
    once with conv=xla, stand beside every conv's line), its fraction of the dense bound, and its
    analytic TFLOP/s."""
    by_conv = len({r.get("conv") for r in rows if r["impl"] in CONV_IMPLS and r.get("conv")}) > 1
    groups: dict[tuple, dict] = {}
    tflops: dict[tuple, float] = {}
    for r in rows:
        if r["impl"] in CONV_IMPLS:
            cell = (r["model"], r["dtype"], r["peers"], r.get("conv") if by_conv else None)
            groups.setdefault(cell, {})[r["impl"]] = r["samples_per_s"]
            if r["impl"] == "tallysim" and r.get("tflops") is not None:
                tflops[cell] = r["tflops"]
    for r in rows:
        if r["impl"] not in CONV_IMPLS:
            base = (r["model"], r["dtype"], r["peers"])
            for cell in [c for c in groups if c[:3] == base] or [base + (None,)]:
                groups.setdefault(cell, {})[r["impl"]] = r["samples_per_s"]
    has_torch = any(r["impl"] == "torch_ref" for r in rows)
    head = ["model", "dtype", "P"] + (["conv"] if by_conv else []) + ["tallysim", "loop", "vmap_ref", "dense"] \
        + (["torch_ref"] if has_torch else []) + ["tallysim/loop", "tallysim/vmap_ref", "tallysim/dense", "tallysim TFLOP/s"]
    lines = [head]
    for cell, s in groups.items():
        m, d, P, c = cell
        t = s.get("tallysim")
        ratio = lambda other: f"{t / s[other]:.2f}x" if t and s.get(other) else "-"
        tf = tflops.get(cell)
        # a cell that raised (`failed` row, samples/s None) says so; one not measured stays "-"
        show = lambda impl: "failed" if impl in s and s[impl] is None else _fmt(s.get(impl))
        lines.append([m, d, str(P)] + ([c or "-"] if by_conv else []) + [show("tallysim"), show("loop"), show("vmap_ref"), show("dense")]
                     + ([show("torch_ref")] if has_torch else [])
                     + [ratio("loop"), ratio("vmap_ref"), ratio("dense"), "-" if tf is None else _fmt_tflops(tf)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [" | ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out + [f"  {n}" for n in notes])


def header(rows: list[dict], steps: int, batch: int, repeats: int = REPEATS) -> str:
    dev = rows[0]["device"] if rows else device_name()
    convs = list(dict.fromkeys(r["conv"] for r in rows if r["impl"] in CONV_IMPLS and r.get("conv")))
    conv = convs[0] if len(convs) == 1 else (" or ".join(convs) + " (the conv column)") if convs else None
    return (f"local-training samples/s (P * {steps} steps * batch {batch} / s, median of up to {repeats} after a warm-up) on "
            f"{dev} ({jax.devices()[0]}), jax {jax.__version__}\n"
            f"  tallysim: local.train_peers with the grouping a run picks (CPU: peers one by one in one program), model.conv="
            f"{('auto (= ' + conv.split(':')[1] + ' here)') if conv and ':' in conv else conv or 'auto'}; loop: Python loop over jitted "
            f"local.train_peer, conv=xla; vmap_ref: plain jit(vmap(scan)) yardstick (tallysim.bench.ref, "
            f"from benchmarks/vmap_ref.py), conv=xla; dense: ONE model trained with batch P * {batch}, the bound "
            f"(same FLOPs, no per-peer weights), tallysim's conv; ratios > 1: tallysim is faster; TFLOP/s: samples/s x "
            f"analytic training FLOPs per example (tallysim.bench.flops) / 1e12")


def table_notes(rows: list[dict], notes: Iterable[str], loop_max: int) -> list[str]:
    """The lines under the table: `notes` (resolve_args': what the default grid leaves out), why torch_ref
    has no rows, where the loop was not timed, and each cell that failed (its `failed` row's why)."""
    return [*notes,
            "torch_ref: no PyTorch rows (" + ("torch is installed, but " if torch_available() else
                                              "torch is not installed, and ") +
            "the PyTorch per-peer loop is not in the package yet: run benchmarks/torch_ref.py on the same machine)",
            f"loop: timed only for P <= --loop-max {loop_max} ('-' above it)",
            *(f"failed: {r['model']} {r['dtype']} P={r['peers']}" + (f" conv={r['conv']}" if r.get("conv") else "")
              + f" {r['impl']}: {r['failed']}" for r in rows if r.get("failed"))]
