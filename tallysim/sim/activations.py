"""Bytes a model's forward pass holds per example, read off its traced program (a jaxpr), for the
memory estimate (sizing.per_seed_bytes, build.auto_chunk). Tracing only: nothing is compiled.

`saved`: every value the forward pass computes, summed (a scan's body once per step). Backpropagation
keeps at most these for the backward pass (XLA fuses and recomputes some, so it keeps fewer): the
training step's activations. Measured against XLA:CPU's compiled temporaries: 1.2-1.6x (MLP, LeNet,
CNN; experiments/memory_estimate.py).

`peak`: the most bytes alive at once when the pass runs without gradients (evaluation, the probe
exchange): the equations in order, each value freed after its last use, a scan's body held once.

Both per example: a batch of 1 + SPAN minus a batch of one, over SPAN, so the parameters, their casts
and anything else that does not grow with the batch are not counted. Never below the analytic floor
(`largest_per_example`: the largest single value the pass computes per example, plus the input for
`peak`). Batch two minus batch one was fragile: where the batch-independent values (parameters, their
casts) decide which equation is the peak, one example more can move the peak to another equation, and
the difference could be zero or negative (a chunk or eval batch sized as if a conv model's forward
pass cost nothing); over a wide span the examples outweigh them. For a program that grows linearly
with the batch (every tallysim model today) the span's difference is exactly the old one.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.extend.core as jcore
import jax.numpy as jnp
import numpy as np


class PerExample(NamedTuple):
    saved: int      # bytes: every intermediate of the forward pass (training)
    peak: int       # bytes: the most alive at once without gradients (evaluation, the exchange)
    input: int      # bytes: the example itself, float32 (in `peak`; shared by peers that see the same one)


def _bytes(v) -> int:
    aval = getattr(v, "aval", None)
    if not isinstance(v, jcore.Var) or not hasattr(aval, "shape"):
        return 0
    try:
        size = np.dtype(aval.dtype).itemsize
    except TypeError:           # an extended dtype (a random key): its own itemsize, else 8 bytes
        size = getattr(aval.dtype, "itemsize", 8)
    return int(np.prod(aval.shape, dtype=np.int64)) * size


def _subjaxprs(eqn) -> list:
    out = []
    for value in eqn.params.values():
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, jcore.ClosedJaxpr):
                out.append(v.jaxpr)
            elif isinstance(v, jcore.Jaxpr):
                out.append(v)
    return out


def saved_bytes(jaxpr) -> int:
    """Every value the equations compute (a nested program's instead of its outputs; a scan's body
    times its length; a cond's largest branch)."""
    total = 0
    for eqn in jaxpr.eqns:
        subs = _subjaxprs(eqn)
        if not subs:
            total += sum(_bytes(v) for v in eqn.outvars)
        elif eqn.primitive.name == "cond":
            total += max(saved_bytes(s) for s in subs)
        else:
            total += eqn.params.get("length", 1) * sum(saved_bytes(s) for s in subs)
    return total


# Primitives whose output is its input's buffer seen in another shape (XLA lowers them to a bitcast):
# no bytes of their own, and they keep the input alive as long as they are used. Without this an MLP's
# flattening of its input counted a second copy of every example (3.1 KB of a 28x28 MLP's 3.5 KB).
ALIASES = ("reshape", "squeeze", "expand_dims")


def peak_bytes(jaxpr) -> int:
    """The most bytes alive at once running the equations in order, each value freed after its last
    use (the inputs held throughout); a nested program's own peak counts while it runs. A reshape
    (ALIASES) is its input's buffer: it costs nothing and extends its input's life."""
    root = {}                   # alias -> the value whose buffer it is
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ALIASES and isinstance(eqn.invars[0], jcore.Var):
            root[eqn.outvars[0]] = root.get(eqn.invars[0], eqn.invars[0])
    last = {}
    for i, eqn in enumerate(jaxpr.eqns):
        for v in eqn.invars:
            if isinstance(v, jcore.Var):
                last[root.get(v, v)] = i
    for v in jaxpr.outvars:
        if isinstance(v, jcore.Var):
            last[root.get(v, v)] = len(jaxpr.eqns)
    inputs = set(jaxpr.invars)
    live = sum(_bytes(v) for v in inputs)
    peak = live
    for i, eqn in enumerate(jaxpr.eqns):
        made = [v for v in eqn.outvars if v not in root]
        out = sum(_bytes(v) for v in made)
        # a nested program's own values while it runs (its inputs are the live values passed to it)
        inner = max((peak_bytes(s) - sum(_bytes(v) for v in s.invars) for s in _subjaxprs(eqn)), default=0)
        peak = max(peak, live + out + inner)
        live += sum(_bytes(v) for v in made if v in last)
        freed = {root.get(v, v) for v in eqn.invars if isinstance(v, jcore.Var) and last.get(root.get(v, v)) == i}
        live -= sum(_bytes(v) for v in freed if v not in inputs)
    return peak


SPAN = 96      # per_example's two batches are 1 and 1 + SPAN (97, a prime: no model dimension is likely 97)


def largest_per_example(jaxpr, batch: int) -> int:
    """Bytes per example of the largest value (nested programs' too) with an axis of size `batch`, traced
    at that batch: a value the pass must hold whole, so a floor under its peak and its saved values."""
    most = 0
    for eqn in jaxpr.eqns:
        for v in ([] if eqn.primitive.name in ALIASES else eqn.outvars):     # a reshape holds no bytes of its own
            shape = getattr(getattr(v, "aval", None), "shape", ())
            if batch in shape:
                most = max(most, _bytes(v) // batch)
        for sub in _subjaxprs(eqn):
            most = max(most, largest_per_example(sub, batch))
    return most


def per_example(apply, params, input_shape: tuple) -> PerExample:
    """`apply(params, x)`'s bytes per example, x float32 [batch, *input_shape] (as the round feeds it):
    the growth from a batch of one to one of 1 + SPAN, over SPAN, and at least the analytic floor
    (largest_per_example; the module docstring says why)."""
    def traced(batch):
        return jax.make_jaxpr(apply)(params, jnp.zeros((batch,) + tuple(input_shape), jnp.float32)).jaxpr
    one, many = traced(1), traced(1 + SPAN)
    example = 4 * int(np.prod(input_shape))
    largest = largest_per_example(many, 1 + SPAN)
    return PerExample(saved=max(largest, (saved_bytes(many) - saved_bytes(one)) // SPAN),
                      peak=max(largest + example, (peak_bytes(many) - peak_bytes(one)) // SPAN), input=example)


def stacked_peak(apply_fn, params_P, input_shape) -> tuple[int, int]:
    """(most bytes alive per example in one peer's forward pass, the input's) of `apply_fn` on one peer
    of the stacked `params_P` (leading axis the peers; traced with abstract parameters, nothing
    compiled): what evaluation's batch and the exchange's chunk size by (sizing.eval_hidden_bytes,
    sizing.exchange_hidden_bytes)."""
    one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), params_P)
    fact = per_example(apply_fn, one, tuple(input_shape))
    return fact.peak, fact.input
