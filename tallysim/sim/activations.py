"""Bytes a model's forward pass holds per example, read off its traced program (a jaxpr), for the
memory estimate (sizing.per_seed_bytes, build.auto_chunk). Tracing only: nothing is compiled.

`saved`: every value the forward pass computes, summed (a scan's body once per step). Backpropagation
keeps at most these for the backward pass (XLA fuses and recomputes some, so it keeps fewer): the
training step's activations. Measured against XLA:CPU's compiled temporaries: 1.2-1.6x (MLP, LeNet,
CNN; experiments/memory_estimate.py).

`peak`: the most bytes alive at once when the pass runs without gradients (evaluation, the probe
exchange): the equations in order, each value freed after its last use, a scan's body held once.

Both per example: a batch of two minus a batch of one, so the parameters, their casts and anything
else that does not grow with the batch are not counted.
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


def per_example(apply, params, input_shape: tuple) -> PerExample:
    """`apply(params, x)`'s bytes per example, x float32 [batch, *input_shape] (as the round feeds it)."""
    def traced(batch):
        return jax.make_jaxpr(apply)(params, jnp.zeros((batch,) + tuple(input_shape), jnp.float32)).jaxpr
    one, two = traced(1), traced(2)
    return PerExample(saved=max(0, saved_bytes(two) - saved_bytes(one)),
                      peak=max(0, peak_bytes(two) - peak_bytes(one)), input=4 * int(np.prod(input_shape)))


def stacked_peak(apply_fn, params_P, input_shape) -> tuple[int, int]:
    """(most bytes alive per example in one peer's forward pass, the input's) of `apply_fn` on one peer
    of the stacked `params_P` (leading axis the peers; traced with abstract parameters, nothing
    compiled): what evaluation's batch and the exchange's chunk size by (sizing.eval_hidden_bytes,
    sizing.exchange_hidden_bytes)."""
    one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), params_P)
    fact = per_example(apply_fn, one, tuple(input_shape))
    return fact.peak, fact.input
