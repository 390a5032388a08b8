"""The lanes one compiled program vmaps together share the 256 MiB budgets (sizing.CHUNK_BYTES) of the
probe exchange's peer chunk and of evaluation's test batch; the memory estimate that sets the seeds
per compiled batch (build.auto_chunk, sizing.lanes_bytes) counts those budgets once over the lanes,
and counts probes only for protocols that train on them (traits.distill)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim import build, config, programs, protocols, sizing
from tallysim.sim import mesh
from tallysim.sim.evaluate import evaluate

from conftest import tiny

MiB = 2**20


def test_eval_batch_budget_covers_the_lanes():
    # 1,000 peers x 1,000 classes: 67 examples a batch for one lane; 4 lanes share those 256 MiB
    assert sizing.eval_batch(1000, 1000) == 67
    assert sizing.eval_batch(1000, 1000, lanes=4) == 16
    assert sizing.eval_batch(10, 10, lanes=8) == 500          # small: the batch does not change
    for lanes in (1, 3, 64):
        b = sizing.eval_batch(1000, 1000, lanes=lanes)
        assert lanes * 4 * 1000 * b * 1000 <= sizing.CHUNK_BYTES


def test_evaluation_uses_the_lanes_it_vmaps(monkeypatch):
    """run.py tells evaluate how many lanes it vmaps (3 seeds on one device), and evaluate sizes its
    batch from them."""
    from tallysim.sim import evaluate as evaluate_
    seen = []
    real = evaluate_.eval_batch
    monkeypatch.setattr(evaluate_, "eval_batch", lambda *a, **k: seen.append(k.get("lanes")) or real(*a, **k))
    from tallysim import run
    run.run(tiny("protocol.name=local", "rounds=1", "seeds=3"), progress=False)
    assert seen and set(seen) == {3}, seen


def test_a_smaller_batch_keeps_the_accuracies_exactly(monkeypatch):
    """Where the lanes shrink the batch, the accuracies are the same numbers (they are counts); only a
    perplexity's float sum over batches may round differently. The budget is lowered so that one lane
    takes all 50 test examples in one batch and 2 or 7 lanes take 25 or 7."""
    rng = np.random.default_rng(0)
    P, V, D, C = 3, 50, 4, 7
    monkeypatch.setattr(sizing, "CHUNK_BYTES", 4 * P * C * V)
    w = jnp.asarray(rng.normal(size=(P, D, C)), jnp.float32)
    x, y = jnp.asarray(rng.normal(size=(V, D)), jnp.float32), jnp.asarray(rng.integers(0, C, V), jnp.int32)
    apply = lambda p, xb: xb @ p                                        # noqa: E731
    seen = []
    real = sizing.eval_batch
    monkeypatch.setattr("tallysim.sim.evaluate.eval_batch", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    one = evaluate(apply, w, w[0], x, y, C, batch=V)
    for lanes in (2, 7):
        got = evaluate(apply, w, w[0], x, y, C, batch=V, lanes=lanes)
        for key in ("acc_P", "acc_ensemble", "acc_global"):
            np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(one[key]))
    assert seen == [50, 25, 7]


def test_auto_chunk_counts_probes_only_where_the_protocol_trains_on_them(monkeypatch, no_compile):
    """A FedAvg run's probe.per_round is never drawn (traits.distill is false): 10^7 probes must not
    cost it its seeds per program. A 1 GB device: every seed of the FedAvg run fits."""
    class Device:
        def memory_stats(self):
            return {"bytes_limit": 10**9}
    monkeypatch.setattr(jax, "local_devices", lambda: [Device()])
    b = build.build(tiny("protocol.name=fedavg", "probe.per_round=10000000", "seeds=4"))
    assert build.auto_chunk(b) == 4
    # the same shapes with the probes counted (a protocol that trains on them) would not fit one seed
    spec = b.ctx.spec
    shapes = dict(num_params=b.ctx.num_params, peers=spec.peers, active=spec.active, input_shape=spec.input_shape,
                  batch_size=b.cfg.batch_size, probe_batch=b.cfg.batch_size, probes=10**7, classes=spec.classes,
                  soft=False)
    assert sizing.lanes_bytes(1, **shapes) > 10**9 // 2
    assert protocols.traits("tally").distill and not protocols.traits("fedavg").distill


def test_the_shared_chunk_is_counted_once_over_the_lanes():
    """No compiling: where the exchange chunk is budget-bound, more lanes add their accumulators and
    state, not another 2 x 256 MiB of chunk temporaries each (votes alone)."""
    shapes = dict(num_params=10_000, peers=1000, active=1000, input_shape=(8,), batch_size=1, probe_batch=1,
                  probes=1000, classes=1000, soft=False)
    one, eight = sizing.lanes_bytes(1, **shapes), sizing.lanes_bytes(8, **shapes)
    chunk_temporaries = sizing.LIVE_PER_CHUNK_VOTES * sizing.CHUNK_BYTES     # soft=False: votes alone
    assert eight < 8 * one - 6 * chunk_temporaries
    assert sizing.lanes_that_fit(8, eight, **shapes) == 8
    assert sizing.lanes_that_fit(8, eight - 1, **shapes) == 7
    assert sizing.lanes_that_fit(8, 1, **shapes) == 1


@pytest.mark.parametrize("lanes", [4])
def test_the_estimate_bounds_a_grouped_programs_memory(monkeypatch, lanes):
    """Measured: the compiled round program of `lanes` seeds (temporaries, arguments, outputs) plus the
    evaluation program's temporaries, at a size where the exchange is budget-bound (the budget lowered
    to 1 MiB: 32 peers' [M=256, C=100] probabilities are 3.3 MB). The estimate stays above it and
    within 2x; counting a whole budget per lane (the old estimate) was 3.4x at 4 lanes, 4x at 8."""
    monkeypatch.setattr(sizing, "CHUNK_BYTES", MiB)
    P, M, C = 32, 256, 100
    cfg = config.apply_overrides(config.Config(), [
        "protocol.name=tally", f"peers={P}", f"probe.per_round={M}", "data.name=synthetic", f"data.num_classes={C}",
        "data.input_shape=[8]", "data.train_size=4000", "data.test_size=200", "model.name=mlp", "model.width=16",
        "batch_size=1", "distill.batch_size=1", "rounds=1", f"seeds={lanes}", "local_steps=1"])
    b = build.build(cfg)
    placement = mesh.plan(1, lanes, P)
    # the state's shapes (lowering reads nothing else): init is neither compiled nor run, as bench/memory.py
    state = jax.eval_shape(lambda: programs.initial_state(b, placement))
    data_c, values, _, k_rounds, x_test, y_test = programs.chunk_inputs(b, 0, lanes, placement)
    single, _ = programs.round_programs(b)
    rounds = single.lower(state, data_c, k_rounds, jnp.arange(1, 2, dtype=jnp.int32), values).compile().memory_analysis()
    ev = jax.jit(jax.vmap(functools.partial(evaluate, b.ctx.model.apply, classes=C, lanes=lanes),
                          in_axes=(0, 0, None, None)))
    evals = ev.lower(state.params, state.server, x_test, y_test).compile().memory_analysis()
    measured = (rounds.temp_size_in_bytes + rounds.argument_size_in_bytes + rounds.output_size_in_bytes
                + evals.temp_size_in_bytes)
    estimate = sizing.lanes_bytes(lanes, **build.lane_shapes(b))
    assert measured <= estimate <= 2 * measured, (estimate, measured, estimate / measured)
