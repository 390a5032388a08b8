"""XLA's own account of what a built run's programs hold (`compiled.memory_analysis()` on this backend):
the yardstick the seeds-per-program estimate (sizing.lanes_bytes, what build.auto_chunk sizes by) is
checked against, by tests/test_memory_estimate.py and experiments/memory_estimate.py."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from tallysim import build, programs, sizing
from tallysim.sim import mesh, tasks
from tallysim.sim.evaluate import evaluate


def measured_bytes(b: build.Built) -> dict:
    """Compile one round and one evaluation of every lane of `b` and return their bytes: the round's
    temporaries, arguments and outputs, evaluation's temporaries, their sum (`measured`), the estimate
    and estimate / measured."""
    lanes = len(b.seeds)
    placement = mesh.plan(1, lanes, b.ctx.spec.peers)
    # the state's shapes, not the state: lowering reads only shapes and dtypes, so the numbers are the
    # same (checked on an MLP, an LSTM and a model group), and init is neither compiled nor run (3-4.5 s
    # of CPU per call on the suite's small models, XLA's optimisations on)
    state = jax.eval_shape(lambda: programs.initial_state(b, placement))
    data_c, values, _, k_rounds, x_test, y_test = programs.chunk_inputs(b, 0, lanes, placement)
    single, _ = programs.round_programs(b)
    ctx = b.ctx       # model.groups: one apply per group, as run.py evaluates them
    apply = tuple(g.model.apply for g in ctx.model_groups) if ctx.model_groups else ctx.model.apply
    rnd = single.lower(state, data_c, k_rounds, jnp.arange(1, 2, dtype=jnp.int32), values).compile().memory_analysis()
    ev = jax.jit(jax.vmap(functools.partial(evaluate, apply, classes=b.ctx.spec.classes,
                                            task=tasks.of(b.ctx.spec), lanes=lanes), in_axes=(0, 0, None, None)))
    evm = ev.lower(state.params, state.server, x_test, y_test).compile().memory_analysis()
    measured = (rnd.temp_size_in_bytes + rnd.argument_size_in_bytes + rnd.output_size_in_bytes
                + evm.temp_size_in_bytes)
    estimate = sizing.lanes_bytes(lanes, **build.lane_shapes(b))
    return {"round_temp": rnd.temp_size_in_bytes, "round_args": rnd.argument_size_in_bytes,
            "round_out": rnd.output_size_in_bytes, "eval_temp": evm.temp_size_in_bytes,
            "measured": measured, "estimate": estimate, "ratio": estimate / measured}
