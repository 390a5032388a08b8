"""The bridge's vote timing (`bridge.vote_at`) and the distillation weight's ramp and gate
(`distill.ramp_rounds`, `distill.gate`), on tiny synthetic runs (CPU).

Expectations are derived independently of the code under test: the vote with numpy from the trained
models' own predictions; the ramp against plain runs at the weight w * r / R that round r should use;
the gate against the ungated run (open) and the run without distillation (closed)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_rows_close, read_rows, run_rows, tiny

from tallysim import config, run
from tallysim.sim import lanes
from tallysim.sim.fed import to_input
from tallysim.protocols.base import round_keys
from tallysim.protocols.distill import distill_factor

# warmup_epochs=0 where a check compares one round's programs from the same starting state (the ramp's
# and the vote timing's checks hold from any state): one traced training program fewer per build
BRIDGE = ["protocol.name=bridge", "bridge.period=1", "bridge.reset=hard", "rounds=2", "warmup_epochs=0"]


def build(cfg):
    b = run.build(cfg)
    k_init, k_rounds = jax.random.split(jax.random.PRNGKey(b.cfg.seed))
    return b, jax.jit(b.protocol.init)(k_init, b.one), k_rounds


_JIT = {}


def step(b, state, k_rounds, r, protocol=None):
    fn = (protocol or b.protocol).round
    jitted = _JIT.setdefault(fn, jax.jit(fn))          # compiled once per protocol, not per round
    state, info = jitted(state, b.one, k_rounds, jnp.asarray(r, jnp.int32))
    return state, {k: np.asarray(v) for k, v in info.items()}


def plurality(params_P, b, pidx_M):
    """numpy: each peer's argmax on the probes, then the most frequent class (ties: lowest)."""
    rows = np.asarray(b.one.pool_Q)[np.asarray(pidx_M)]
    x = to_input(jnp.asarray(np.asarray(b.one.x_train)[rows]))
    pred_PxM = np.stack([np.argmax(np.asarray(b.ctx.model.apply(jax.tree.map(lambda a: a[i], params_P), x)), -1)
                         for i in range(b.ctx.spec.peers)])
    counts_MxC = np.stack([np.bincount(pred_PxM[:, m], minlength=b.ctx.spec.classes) for m in range(pred_PxM.shape[1])])
    return counts_MxC.argmax(-1), counts_MxC.max(-1) / b.ctx.spec.peers


def test_vote_at_merge_votes_with_the_locally_trained_models():
    # density 0: nothing is merged, so the round's final models are the locally trained ones
    b0, s, k_rounds = build(tiny(*BRIDGE, "bridge.density=0", "bridge.vote_at=merge"))
    assert np.all(np.asarray(s.votes.weight_M) == 0)               # round 1 has no vote to train on yet
    s1, info = step(b0, s, k_rounds, 1)
    M = b0.ctx.spec.probes
    expect_pidx = np.asarray(jax.random.permutation(round_keys(k_rounds, 1).probe, b0.ctx.spec.pool)[:M])
    np.testing.assert_array_equal(np.asarray(s1.votes.pidx_M), expect_pidx)
    winner, share = plurality(s1.params, b0, expect_pidx)
    np.testing.assert_array_equal(np.asarray(s1.votes.target_M), winner)
    np.testing.assert_allclose(float(s1.votes.agreement), share.mean(), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(s1.votes.weight_M), np.ones(M))
    # the round-start models vote differently: the merge vote is not the start vote
    assert not np.array_equal(plurality(s.params, b0, expect_pidx)[0], winner)

    # dense merge, hard reset: round 1 trains on private data only either way and the vote precedes the
    # merge, so it is the density-0 run's vote; the merged model's own argmax is a different labelling
    b1, t, _ = build(tiny(*BRIDGE, "bridge.density=1", "bridge.vote_at=merge"))
    t1, _ = step(b1, t, k_rounds, 1)
    np.testing.assert_array_equal(np.asarray(t1.votes.target_M), winner)
    assert not np.array_equal(plurality(t1.params, b1, expect_pidx)[0], winner)
    # round 2 trains on that vote: its models differ from a round 2 that ignores it (weight 0 probes)
    t2, _ = step(b1, t1, k_rounds, 2)
    u2, _ = step(b1, t1._replace(votes=t1.votes._replace(weight_M=jnp.zeros_like(t1.votes.weight_M))), k_rounds, 2)
    assert not np.allclose(np.asarray(jax.tree.leaves(t2.server)[0]), np.asarray(jax.tree.leaves(u2.server)[0]))


@pytest.mark.slow
def test_vote_at_merge_costs_the_same_bits(tmp_path):
    # up: one vote per probe and k entries either way; down: the consensus labels and the merged
    # update, whose number of non-zeros depends on the training (density 1: all |W| of them)
    start = run_rows(tiny(*BRIDGE, "bridge.density=1"), tmp_path / "s")
    merge = run_rows(tiny(*BRIDGE, "bridge.density=1", "bridge.vote_at=merge"), tmp_path / "m")
    assert [r["nnz"] for r in merge] == [r["nnz"] for r in start]
    for k in ("bits_up", "bits_down"):
        assert [r[k] for r in start] == [r[k] for r in merge] and start[-1][k] > 0, k


@pytest.mark.parametrize("r,ramp,expected", [(1, 4, 0.25), (2, 4, 0.5), (3, 4, 0.75), (4, 4, 1.0), (9, 4, 1.0),
                                             (1, 1, 1.0), (2, 5, 0.4)])
def test_ramp_factor(r, ramp, expected):
    cfg = tiny(f"distill.ramp_rounds={ramp}")
    assert float(distill_factor(cfg, jnp.int32(r), jnp.float32(0.0))) == pytest.approx(expected, rel=1e-7)


def test_gate_factor_and_off_by_default():
    assert distill_factor(tiny(), jnp.int32(1), jnp.float32(0.1)) is None        # compiled out
    cfg = tiny("distill.gate=0.5", "distill.ramp_rounds=2")
    assert float(distill_factor(cfg, jnp.int32(1), jnp.float32(0.49))) == 0.0
    assert float(distill_factor(cfg, jnp.int32(1), jnp.float32(0.5))) == 0.5     # >= gate: open, ramped
    assert float(distill_factor(cfg, jnp.int32(3), jnp.float32(0.9))) == 1.0


# softlabel runs the same ramp code through another loss: `make test-all` only (about 30 s)
@pytest.mark.parametrize("proto", ["tally", pytest.param("softlabel", marks=pytest.mark.slow)])
def test_ramp_scales_the_distillation_weight_per_round(proto):
    """Round r of weight 1 with ramp 4 trains as a plain round with weight r / 4 (0.25, 0.5: exact in
    binary), so its gradient is the distillation gradient scaled by r / 4."""
    common = [f"protocol.name={proto}", "rounds=2", "optim.momentum=0", "warmup_epochs=0"]
    b, s, k = build(tiny(*common, "distill.weight=1", "distill.ramp_rounds=4"))
    plain = {w: run.build(tiny(*common, f"distill.weight={w}")).protocol for w in (0.25, 0.5)}
    s1, i1 = step(b, s, k, 1)
    p1, _ = step(b, s, k, 1, plain[0.25])
    s2, i2 = step(b, s1, k, 2)
    p2, _ = step(b, p1, k, 2, plain[0.5])
    assert float(i1["distill_factor"]) == 0.25 and float(i2["distill_factor"]) == 0.5
    for got, want in ((s1.params, p1.params), (s2.params, p2.params)):
        jax.tree.map(lambda a, c: np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-7), got, want)
    # and it is not the unramped run
    u1, _ = step(b, s, k, 1, run.build(tiny(*common, "distill.weight=1")).protocol)
    assert not np.allclose(np.asarray(jax.tree.leaves(u1.params)[0]), np.asarray(jax.tree.leaves(s1.params)[0]))


@pytest.mark.slow     # about 36 s; the gate's rule itself (distill_factor above) stays in `make test`
def test_gate_switches_distillation_off_below_the_threshold():
    common = ["protocol.name=tally", "rounds=2"]
    b, s, k = build(tiny(*common, "distill.gate=1"))
    s1, info = step(b, s, k, 1)
    assert float(info["agreement"]) < 1.0 and float(info["distill_factor"]) == 0.0
    # closed: the private-only round (weight 0 sends nothing, so compare the models, up to rounding:
    # the private minibatch is no longer concatenated with a probe minibatch)
    off, _ = step(b, s, k, 1, run.build(tiny(*common, "distill.weight=0")).protocol)
    jax.tree.map(lambda a, c: np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6), s1.params, off.params)
    on, _ = step(b, s, k, 1, run.build(tiny(*common)).protocol)
    assert not np.allclose(np.asarray(jax.tree.leaves(on.params)[0]), np.asarray(jax.tree.leaves(s1.params)[0]))
    # open (every share is >= 1/A >= 0.01): the ungated round, up to rounding. The weight times a
    # traced factor of exactly 1.0 is the same arithmetic, but a different program: XLA may fuse and
    # order its reductions differently (seen on an AVX-512 CPU: 1.5e-8 apart), so not bit for bit.
    g, ginfo = step(b, s, k, 1, run.build(tiny(*common, "distill.gate=0.01")).protocol)
    assert float(ginfo["distill_factor"]) == 1.0
    jax.tree.map(lambda a, c: np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-7), g.params, on.params)


@pytest.mark.slow
def test_gated_rounds_still_send_and_count_the_votes(tmp_path):
    """distill.gate=1 closes the gate every round (a mean winning share of 1 would need unanimity on
    every probe): the peers do not train on the vote, so the runs part after round 1; the votes are
    still taken and counted: the same bits, and the vote's own statistics reported every round, equal
    in round 1 where both runs vote from the same locally trained models."""
    rows_gated = run_rows(tiny("protocol.name=tally", "distill.gate=1", "rounds=3", "eval_every=1"), tmp_path / "g")
    rows_plain = run_rows(tiny("protocol.name=tally", "rounds=3", "eval_every=1"), tmp_path / "p")
    assert [r["bits_up"] for r in rows_gated] == [r["bits_up"] for r in rows_plain] and rows_plain[-1]["bits_up"] > 0
    assert all(r["vote_acc"] is not None and r["agreement"] is not None for r in rows_gated)
    assert (rows_gated[0]["vote_acc"], rows_gated[0]["agreement"]) == (rows_plain[0]["vote_acc"], rows_plain[0]["agreement"])
    assert all(r["agreement"] < 1 for r in rows_gated)                     # so the gate was closed ...
    assert rows_gated[-1]["acc_mean"] != rows_plain[-1]["acc_mean"]        # ... and it changed the training


@pytest.mark.slow
@pytest.mark.parametrize("proto", ["tally", "softlabel", "bridge"])
def test_defaults_equal_the_explicit_off_values_and_a_ramp_of_one(proto, tmp_path):
    common = [f"protocol.name={proto}", "bridge.period=1"]
    default = run_rows(tiny(*common), tmp_path / "d")
    # the explicit off values build the default's program: equal bit for bit
    off = ["distill.ramp_rounds=0", "distill.gate=0", "bridge.vote_at=start"]
    assert run_rows(tiny(*common, *off), tmp_path / "e0") == default, off
    # a ramp of one multiplies the weight by a traced min(1, r / 1) = 1.0 every round: the same
    # arithmetic in another program, which XLA may fuse differently (last bits; see the gate test)
    ramp = run_rows(tiny(*common, "distill.ramp_rounds=1"), tmp_path / "e1")
    assert_rows_close(default, ramp, "distill.ramp_rounds=1", EXACT, COMPARE)


COMPARE = ("acc_mean", "acc_min", "acc_max", "acc_ensemble", "acc_global", "train_loss", "vote_acc",
           "softavg_acc", "agreement", "wrong_confidence", "consensus_acc")
EXACT = ("round", "bits_up", "bits_down", "bits_per_peer", "steps_real", "steps_computed")


@pytest.mark.slow
@pytest.mark.parametrize("base,variants", [
    (["protocol.name=tally", "rounds=3"],
     [["distill.ramp_rounds=2", "distill.gate=0.3"], ["distill.ramp_rounds=5", "distill.gate=0.7"]]),
    (["protocol.name=bridge", "bridge.vote_at=merge", "bridge.period=1", "bridge.density=0.1", "rounds=3"],
     [["distill.ramp_rounds=1", "distill.gate=0.2"], ["distill.ramp_rounds=3", "distill.gate=0.9"]]),
], ids=["tally", "bridge_merge"])
def test_grouped_ramp_and_gate_equal_alone(base, variants, tmp_path):
    """As tests/test_lanes.py: the traced ramp and gate give each configuration its own metrics."""
    cfgs = [config.validate(tiny(*base, *v)) for v in variants]
    assert len(lanes.group(cfgs)) == 1
    b = run.build_group(cfgs)
    assert {"distill.ramp_rounds", "distill.gate"} <= set(b.values)
    results = run.run_group(cfgs, [tmp_path / f"g{i}" for i in range(len(cfgs))], progress=False, built=b)
    for i, (cfg, res) in enumerate(zip(cfgs, results)):
        assert not isinstance(res, Exception), res
        run.run(cfg, str(tmp_path / f"a{i}"), progress=False)
        grouped, alone = read_rows(tmp_path / f"g{i}"), read_rows(tmp_path / f"a{i}")
        for r in grouped + alone:
            r.pop("wall_s")
        assert_rows_close(alone, grouped, f"config {i}", EXACT, COMPARE)


def test_zero_and_nonzero_ramp_or_gate_are_separate_programs():
    assert len(lanes.group([tiny("distill.ramp_rounds=0"), tiny("distill.ramp_rounds=3")])) == 2
    assert len(lanes.group([tiny("distill.gate=0"), tiny("distill.gate=0.5")])) == 2
    assert len(lanes.group([tiny("distill.gate=0.4"), tiny("distill.gate=0.5")])) == 1
