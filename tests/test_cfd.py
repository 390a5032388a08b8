"""Compressed Federated Distillation (`cfd`, Sattler et al. 2020; protocols/cfd.py): the server's
targets against a numpy derivation from the peers' own predictions on the round's probes (soft:
b-bit levels averaged and requantised; hard: one-hot votes averaged), delta coding's changed counts
and bits, exact bits, and the degenerate case (delta coding is lossless: the same run, fewer bits).

The targets the peers train on are caught on their way into local training (a host callback around
probe_round.local_round); the numpy side computes them from the round-start models with model.apply
and nothing of tallysim's exchange."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

import tallysim
from tallysim import build, sweep
from tallysim.fields import ConfigError
from tallysim.protocols import cfd, probe_round
from tallysim.sim import comm
from tallysim.sim.fed import to_input


def catch_targets(monkeypatch, module) -> list:
    """The (x_M, target_MxC) of each round's local training, in order, caught by a host callback around
    `module`.local_round (probe_round's; distill's for softlabel, tests/test_softdown_dec21h.py)."""
    out = []
    real = module.local_round

    def spy(ctx, lspec, state, data, keys, idx, probes=None, **kw):
        if probes is not None:
            jax.debug.callback(lambda x, t: out.append((np.asarray(x), np.asarray(t))), probes.x_M,
                               probes.target_M)
        return real(ctx, lspec, state, data, keys, idx, probes=probes, **kw)
    monkeypatch.setattr(module, "local_round", spy)
    return out


@pytest.fixture
def caught(monkeypatch):
    """The (x_M, target_MxC) of each round's local training, in order."""
    return catch_targets(monkeypatch, probe_round)


def _probs(d, params, x_M):
    """float64 softmax of every peer's logits on x_M."""
    model = d.built.ctx.model
    out = []
    for i in range(d.built.ctx.spec.peers):
        p = jax.tree.map(lambda a: a[i], params)
        z = np.asarray(model.apply(p, to_input(x_M)), np.float64)
        e = np.exp(z - z.max(-1, keepdims=True))
        out.append(e / e.sum(-1, keepdims=True))
    return np.stack(out)


def _renorm(t):
    return t / t.sum(-1, keepdims=True)


@pytest.mark.parametrize("labels", ["soft", "hard"])
def test_cfd_server_rule_matches_numpy_without_compiling_a_round(monkeypatch, labels):
    """The server's rule alone, cheaply (`make test`, both variants): cfd.make's exchange, caught on
    its way into probe_round.make_round, applied eagerly to made-up messages of 5 peers, against the
    paper's rule in numpy (soft: b-bit levels averaged; hard: vote counts * (2^b - 1) / A), requantised
    and renormalised. The driven test below covers the wiring (soft in make test)."""
    b, A, M, C = 3, 5, 16, 10
    Q = 2 ** b - 1
    caught = []
    monkeypatch.setattr(cfd, "make_round", lambda ctx, lspec, exchange: caught.append(exchange))
    ctx = build.build(tiny("protocol.name=cfd", f"cfd.labels={labels}", f"cfd.bits={b}", f"peers={A}",
                           f"probe.per_round={M}")).ctx
    assert (ctx.spec.active, ctx.spec.probes, ctx.spec.classes) == (A, M, C)
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(C, 0.3), size=(A, M))            # peaked: the votes split unevenly
    msgs = probe_round.Messages(np.arange(M), None, None, jnp.asarray(p, jnp.float32), jnp.ones((A,), bool), A)
    target, weight, _, _ = caught[-1](msgs, {}, None, {})
    if labels == "soft":
        mean_levels = np.round(p * Q).mean(0)
    else:
        mean_levels = np.eye(C)[p.argmax(-1)].sum(0) * Q / A
    want = _renorm(np.round(mean_levels) / Q)
    np.testing.assert_allclose(np.asarray(target), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(weight), np.ones(M))
    if labels == "hard":        # ties at half a level aside, the target is not one-hot: the votes are scaled
        assert ((want > 0).sum(-1) > 1).mean() > 0.5


# The driven round: hard labels differ from soft only in the exchange, tested above, so they run in make test-all.
@pytest.mark.parametrize("labels", ["soft", pytest.param("hard", marks=pytest.mark.slow)])
def test_cfd_targets_match_numpy(caught, labels):
    b = 3
    Q = 2 ** b - 1
    d = tallysim.drive(tiny("protocol.name=cfd", f"cfd.labels={labels}", f"cfd.bits={b}"))
    start = d.state.params
    d.step()
    x_M, target = caught[-1]
    p = _probs(d, start, x_M)
    if labels == "soft":
        mean_levels = np.round(p * Q).mean(0)                        # the b-bit messages averaged
    else:
        mean_levels = np.eye(p.shape[-1])[p.argmax(-1)].sum(0) * Q / len(p)   # vote counts / A
    want = _renorm(np.round(mean_levels) / Q)
    close = np.abs(target - want) < 1e-5
    assert close.mean() > 0.99 and np.abs(target - want).max() < 1.5 / Q   # float32 rounding at a boundary
    M, C = want.shape
    up = M * math.ceil(math.log2(C)) if labels == "hard" else M * C * b
    assert d.bits() == comm.RoundBits(up, M * C * b, 4, up * 4, M * C * b * 4)


def test_cfd_delta_coding_counts_the_changed_levels_and_is_lossless(caught, fusion_emitters):
    b = 2
    items = ["protocol.name=cfd", "probe.resample=false", f"cfd.bits={b}"]
    plain = tallysim.drive(tiny(*items))
    d = tallysim.drive(tiny(*items, "cfd.delta=true"))
    levels, bits = [], []
    for _ in range(2):
        start = d.state.params
        plain.step()
        _, info = d.step()
        x_M, _ = caught[-1]
        levels.append(np.round(_probs(d, start, x_M) * (2 ** b - 1)))
        bits.append(d.bits())
    M, C = levels[0].shape[1:]
    n = M * C
    assert bits[0] == comm.RoundBits(n * b, n * b, 4, 4 * n * b, 4 * n * b)       # no reference yet: dense
    changed = (levels[1] != levels[0]).sum((1, 2))
    assert np.abs(np.asarray(info["cfd_changed_A"]) - changed).max() <= 2      # float32 vs float64 levels
    per_peer = [min(n * b, n + int(ch) * b) for ch in np.asarray(info["cfd_changed_A"])]
    assert bits[1].up_total == sum(per_peer) < 4 * n * b
    assert bits[1].down < n * b
    for x, y in zip(jax.tree.leaves(plain.state.params), jax.tree.leaves(d.state.params)):
        assert np.array_equal(np.asarray(x), np.asarray(y))                  # coding changes no value
    assert plain.bits() == comm.RoundBits(n * b, n * b, 4, 4 * n * b, 4 * n * b)


def test_cfd_delta_needs_fixed_probes():
    with pytest.raises(ConfigError, match="cfd.delta=true .* probe.resample=false"):
        tallysim.drive(tiny("protocol.name=cfd", "cfd.delta=true"))


@pytest.mark.slow
def test_cfd_sweeps_its_bits(tmp_path):
    runs = [(f"b={v}", [f"cfd.bits={v}"]) for v in (2, 8)]
    recs = sweep.run_sweep(tiny("protocol.name=cfd", "rounds=1"), runs, tmp_path / "sw", progress=False)
    assert [r["status"] for r in recs] == ["done", "done"]
