"""The text metrics against an independent numpy computation (docs/text.md, "Metrics on text" and
"Exactly 0.0 on words"): a FedAvg server on Shakespeare words scored exactly 0.0 after one round. It
is real, not a bug (an untrained model's argmax is a rare word at almost every position); these tests
pin what would make such a number a bug instead:

- the server's or the ensemble's accuracy counting a PAD, OOV, BOS or EOS target (predicting one of
  them where it is the target must not score: the metric leaves those positions out, for the peers,
  the server and the ensemble alike);
- an argmax over the wrong axis, or the server's [B, pos] predictions flattened out of step with the
  targets (each test window's positions hold different targets and predictions);
- the ensemble's per-token vote not the plurality of the peers' argmaxes (ties: the lowest token);
- perplexity over other positions than the non-PAD targets.

A stand-in model (logits a per-window table, no training) keeps this to a few tenths of a second.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from tallysim.sim import tasks
from tallysim.sim.evaluate import evaluate

PAD, BOS, EOS, OOV = tasks.PAD, tasks.BOS, tasks.EOS, tasks.OOV
C, V, POS, P = 9, 7, 5, 3


def _case():
    rng = np.random.default_rng(21)
    y = rng.integers(4, C, (V, POS)).astype(np.int32)                # real words 4..C-1
    y[0, 3:] = PAD                                                    # a padded last window
    y[1, 0], y[2, 4], y[3, 2], y[4, 1] = BOS, EOS, OOV, OOV
    z_server = rng.standard_normal((V, POS, C)).astype(np.float32)
    z_peers = rng.standard_normal((P, V, POS, C)).astype(np.float32)
    # every model predicts the target where it is PAD, BOS, EOS or OOV (each must score nothing) and
    # is right on some real words (which must score)
    special = np.isin(y, [PAD, BOS, EOS, OOV])
    for z in (z_server, *z_peers):
        z[special, y[special]] += 10.0
    z_server[5, :3, y[5, :3]] += 10.0
    z_peers[:2, 6, :, :] = 0.0
    z_peers[:2, 6, np.arange(POS), y[6]] = 5.0                       # two of three peers right on window 6
    z_peers[:, 5, 4, :] = 0.0
    z_peers[0, 5, 4, 8], z_peers[1, 5, 4, 6], z_peers[2, 5, 4, 7] = 1.0, 1.0, 1.0   # a three-way tie: 6 wins
    return y, z_server, z_peers


def _apply(table, x):
    """A stand-in model: the logits of test window x[:, 0] (its index) from a [V, POS, C] table."""
    return table[x[:, 0].astype(jnp.int32)]


def test_server_ensemble_and_peers_score_the_same_positions_as_numpy():
    y, z_server, z_peers = _case()
    x = np.arange(V, dtype=np.int32)[:, None].repeat(POS, 1)
    task = tasks.make("next_token", (POS,))
    ev = evaluate(_apply, jnp.asarray(z_peers), jnp.asarray(z_server), jnp.asarray(x), jnp.asarray(y), C,
                  batch=3, task=task)        # 3 test windows a batch: the last one padded (target -1)
    scored = ~np.isin(y, [PAD, BOS, EOS, OOV])
    assert scored.sum() == V * POS - 6               # 2 PAD, a BOS, an EOS, 2 OOV
    acc = lambda pred: ((pred == y) & scored).sum() / scored.sum()       # noqa: E731
    np.testing.assert_allclose(float(ev["acc_global"]), acc(z_server.argmax(-1)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ev["acc_P"]), [acc(z.argmax(-1)) for z in z_peers], rtol=1e-6)
    votes = z_peers.argmax(-1)                                            # [P, V, POS]
    plural = np.apply_along_axis(lambda v: np.bincount(v, minlength=C).argmax(), 0, votes)   # lowest on ties
    assert plural[5, 4] == 6 and (plural[6] == y[6]).all()
    np.testing.assert_allclose(float(ev["acc_ensemble"]), acc(plural), rtol=1e-6)
    # every model predicts every special target, and none of those is a hit: 0.0 on them alone
    assert (z_server.argmax(-1)[~scored] == y[~scored]).all() and 0 < float(ev["acc_global"]) < 1
    # perplexity: exp of the mean cross-entropy over the non-PAD targets (OOV, BOS, EOS included)
    keep = y != PAD
    zs = z_server.astype(np.float64)
    lse = np.log(np.exp(zs - zs.max(-1, keepdims=True)).sum(-1)) + zs.max(-1)
    ce = lse - np.take_along_axis(zs, y.clip(0)[..., None], -1)[..., 0]
    np.testing.assert_allclose(float(ev["ppl_global"]), np.exp(ce[keep].mean()), rtol=1e-5)


def test_a_model_right_only_on_unscored_targets_scores_exactly_zero():
    """What an untrained words model's exact 0.0 is made of, by construction: hits only where the
    target is PAD, BOS, EOS or OOV (never scored) and a rare word elsewhere. Its perplexity still moves."""
    y, z_server, _ = _case()
    z = np.zeros_like(z_server)
    special = np.isin(y, [PAD, BOS, EOS, OOV])
    z[special, y[special]] = 3.0
    z[~special, 0] = 3.0                      # elsewhere PAD, never a scored target
    x = np.arange(V, dtype=np.int32)[:, None].repeat(POS, 1)
    ev = evaluate(_apply, jnp.asarray(z)[None], jnp.asarray(z), jnp.asarray(x), jnp.asarray(y), C,
                  task=tasks.make("next_token", (POS,)))
    assert float(ev["acc_global"]) == 0.0 and float(ev["acc_P"][0]) == 0.0 and float(ev["acc_ensemble"]) == 0.0
    assert 1.0 < float(ev["ppl_global"]) < C * 10



def test_per_token_vote_at_the_words_vocabulary_unanimous_and_tied():
    """tally's per-token vote at C = 10,004 (sim/vote.tally on the flattened [A, M * pos] messages,
    as the exchange sends them): a unanimous position returns the peers' token, a tie the lowest token
    id among the tied, which is also the more frequent word (ids follow the training counts) and, when a
    peer says one, a special token (PAD, BOS, EOS, OOV: the lowest ids)."""
    from tallysim.sim import vote
    words = 10_004
    votes = np.array([[9000, 9000, 17, 9000, 5000, 2],
                      [9000, 4, 17, 8000, 6000, 7000],
                      [9000, 4, 9999, 8000, 7000, 9000]], np.int32)          # [A = 3 peers, M * pos = 6]
    t = vote.tally(jnp.asarray(votes), words)
    want = [np.bincount(v, minlength=words).argmax() for v in votes.T]     # numpy: lowest on ties
    assert list(np.asarray(t.winner_M)) == want == [9000, 4, 17, 8000, 5000, 2]
    np.testing.assert_allclose(np.asarray(t.share_M), [1, 2 / 3, 2 / 3, 2 / 3, 1 / 3, 1 / 3], rtol=1e-6)

# ------------------------------------------------------------------ the real run (slow: two words compiles)

WORDS = ["protocol.name=fedavg", "data.name=shakespeare_words", "partition.kind=natural", "peers=3",
         "model.name=lstm", "model.hidden=16", "batch_size=16", "data.max_train=600", "data.max_test=100",
         "probe.pool_size=40", "probe.per_round=4", "rounds=1", "eval_every=1", "eval_peers=3"]


def _numpy_acc(apply_fn, params, x, y):
    pred = np.asarray(apply_fn(params, jnp.asarray(x))).argmax(-1)
    scored = ~np.isin(y, [PAD, BOS, EOS, OOV])
    return ((pred == y) & scored).sum() / scored.sum(), pred


@pytest.mark.slow       # fast cover of the same metric code: test_server_ensemble_and_peers_score_the_same_positions_as_numpy
def test_words_fedavg_server_row_is_its_model_s_accuracy_and_untrained_scores_zero(tmp_path):
    """The row's acc_global is the round-1 server model's accuracy on the run's own test windows
    (numpy, the same keys through tallysim.drive): 0.0433 with SGD at lr 1, where a server never
    evaluated (0 by default) or scored on other targets would show. With Adam at lr 0.002 (one step per
    peer here: 1-2 windows each) the server is its initialisation to the argmax at most positions, a
    spread of rare words, and scores exactly 0.0 on the 1,802 scored positions, as every protocol's
    models do then (docs/text.md, "Exactly 0.0 on words")."""
    import jax
    import tallysim
    from tallysim import config
    from tallysim.run import run_results
    sgd = config.apply_overrides(config.Config(), WORDS + ["optim.momentum=0", "optim.lr=1"])
    row = run_results(sgd, str(tmp_path / "sgd")).last
    d = tallysim.drive(sgd)
    x, y = np.asarray(d.built.fed.x_test), np.asarray(d.built.fed.y_test)
    state, _ = d.step()
    want, _ = _numpy_acc(d.built.ctx.model.apply, state.server, x, y)
    assert want > 0.02
    np.testing.assert_allclose(row["acc_global"], want, atol=1.5 / 1802)     # one hit of ulps apart
    adam = tallysim.drive(config.apply_overrides(config.Config(), WORDS + ["optim.name=adam", "optim.lr=0.002"]))
    init = jax.tree.map(np.asarray, adam.state.server)
    state, _ = adam.step()
    acc, pred = _numpy_acc(adam.built.ctx.model.apply, state.server, x, y)
    _, pred0 = _numpy_acc(adam.built.ctx.model.apply, init, x, y)
    assert acc == 0.0 and (pred == pred0).mean() > 0.8      # still the init's argmax at most positions
    assert not np.isin(pred, [PAD, BOS, EOS, OOV]).any() and np.median(pred) > 1000   # rare words, no special
