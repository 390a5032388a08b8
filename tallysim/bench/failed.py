"""A `tallysim bench` cell that raised (a formulation the device's compiler refuses, `model.conv=pallas`
off a GPU, out of memory): recorded as a row without samples/s whose `failed` says why, so the bench
measures the next cell and a lease's one call keeps every other row (benchmarks/gpu.sh, part conv)."""
from __future__ import annotations


def error_line(e: BaseException) -> str:
    """The error's type and first non-empty line (at most 300 characters): what a table note can hold."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


def row(model, dtype, P, impl, conv, steps, batch, device, error: BaseException) -> dict:
    """The measured row's fields, with samples/s, times and TFLOP/s None and `failed` set."""
    return dict(model=model, peers=P, dtype=dtype, impl=impl, samples_per_s=None, device=device, sec=None,
                compile_s=None, steps=steps, batch=batch, conv=conv, P=P, mode=impl, flops_per_example=None,
                tflops=None, failed=error_line(error))


def missing(todo, measured: list[dict], skip=()) -> list[str]:
    """The impls of `todo` the cell had not measured when it raised (`skip`: those it would not time)."""
    done = {r["impl"] for r in measured}
    return [impl for impl in todo if impl not in done and impl not in skip]
