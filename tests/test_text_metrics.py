"""Perplexity and per-client test metrics (sim/evaluate.py, results/metrics.text_row), against numpy,
on hand-made logits (no model, no data: milliseconds). Issue 32's researcher-facing numbers."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim.results.metrics import client_stats, text_row
from tallysim.sim import tasks
from tallysim.sim.evaluate import evaluate

PAD, BOS, EOS, OOV = tasks.PAD, tasks.BOS, tasks.EOS, tasks.OOV
C, V, POS, P = 9, 11, 5, 3


def _case(seed=0):
    """V test sequences of POS targets with PAD / OOV / EOS sprinkled in; per-peer and server logit
    tables indexed by the sequence number (a "model" that looks its logits up)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(4, C, (V, POS)).astype(np.int32)
    y[0, 3:] = PAD
    y[4, :] = PAD                     # a sequence with nothing to score or to predict
    y[1, 1] = OOV
    y[2, 0] = EOS
    peers = rng.standard_normal((P, V, POS, C)).astype(np.float32) * 2
    server = rng.standard_normal((V, POS, C)).astype(np.float32) * 2
    clients = np.array([0, 0, 1, 1, 1, 2, 2, 3, 4, 4, 4], np.int32)    # test examples ordered by client
    return y, peers, server, clients


def _apply(params, x):
    return params[x[:, 0].astype(jnp.int32)]


def _numpy_ce(z, y):
    """exp(mean over non-PAD targets of -log softmax(z)[y]): the perplexity, in float64."""
    z = z.astype(np.float64)
    lse = np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1)) + z.max(-1)
    ce = lse - np.take_along_axis(z, y[..., None], -1)[..., 0]
    keep = y != PAD
    return float(np.exp(ce[keep].sum() / keep.sum()))


def _run(batch, own=None, clients=True):
    y, peers, server, k = _case()
    x = jnp.asarray(np.arange(V, dtype=np.float32)[:, None].repeat(POS, 1))
    own = np.array([-1, 0, -1, 2, 1], np.int32) if own is None else own
    return evaluate(_apply, jnp.asarray(peers), jnp.asarray(server), x, jnp.asarray(y), C, batch=batch,
                    task=tasks.make("next_token", (POS,)),
                    clients_V=jnp.asarray(k) if clients else None, own_K=jnp.asarray(own) if clients else None)


@pytest.mark.parametrize("batch", [4, 11])          # 4 pads the last batch
def test_perplexity_against_numpy(batch):
    y, peers, server, _ = _case()
    ev = _run(batch)
    want = [_numpy_ce(peers[p], y) for p in range(P)]
    np.testing.assert_allclose(np.asarray(ev["ppl_P"]), want, rtol=1e-5)
    np.testing.assert_allclose(float(ev["ppl_global"]), _numpy_ce(server, y), rtol=1e-5)
    # OOV and EOS targets count in the perplexity (a model must predict them) but not in accuracy
    row = text_row(jax.tree.map(lambda a: np.asarray(a)[None], ev), 0)
    assert row["ppl_mean"] == pytest.approx(np.mean(want), rel=1e-5)
    # a uniform model: the perplexity is C exactly
    flat = evaluate(_apply, jnp.zeros((1, V, POS, C)), None, jnp.asarray(np.arange(V, dtype=np.float32)[:, None]),
                    jnp.asarray(y), C, task=tasks.make("next_token", (POS,)))
    assert float(flat["ppl_P"][0]) == pytest.approx(C, rel=1e-6) and flat["ppl_global"] is None


@pytest.mark.parametrize("batch", [4, 11])
def test_per_client_counts_against_numpy(batch):
    y, peers, server, k = _case()
    own = np.array([-1, 0, -1, 2, 1], np.int32)       # client 1 -> peer 0, 3 -> peer 2, 4 -> peer 1
    ev = _run(batch, own)
    scored = (y != PAD) & (y != OOV) & (y != BOS) & (y != EOS)
    K = len(own)
    want_scored = np.array([scored[k == c].sum() for c in range(K)])
    want_glob = np.array([((server.argmax(-1) == y) & scored)[k == c].sum() for c in range(K)])
    want_own = np.zeros(K, int)
    for c in range(K):
        if own[c] >= 0:
            want_own[c] = ((peers[own[c]].argmax(-1) == y) & scored)[k == c].sum()
    np.testing.assert_array_equal(np.asarray(ev["client_scored_K"]), want_scored)
    np.testing.assert_array_equal(np.asarray(ev["client_global_K"]), want_glob)
    np.testing.assert_array_equal(np.asarray(ev["client_own_K"]), want_own)
    np.testing.assert_array_equal(np.asarray(ev["client_held_K"]), own >= 0)
    row = text_row(jax.tree.map(lambda a: None if a is None else np.asarray(a)[None], ev), 0)
    acc = want_glob[want_scored > 0] / want_scored[want_scored > 0]
    assert row["acc_client_mean"] == pytest.approx(acc.mean())
    assert row["acc_client_p10"] == pytest.approx(np.percentile(acc, 10))
    mine = (own >= 0) & (want_scored > 0)
    acc_own = want_own[mine] / want_scored[mine]
    assert row["acc_own_mean"] == pytest.approx(acc_own.mean())
    assert row["acc_own_p10"] == pytest.approx(np.percentile(acc_own, 10))


def test_per_client_degenerate_cases():
    y, peers, server, k = _case()
    # eval_peers=2: peer 2 is not evaluated, so client 3 (held by peer 2) leaves the own metrics
    x = jnp.asarray(np.arange(V, dtype=np.float32)[:, None].repeat(POS, 1))
    own = jnp.asarray(np.array([-1, 0, -1, 2, 1], np.int32))
    task = tasks.make("next_token", (POS,))
    two = evaluate(_apply, jnp.asarray(peers[:2]), None, x, jnp.asarray(y), C, batch=4, task=task,
                   clients_V=jnp.asarray(k), own_K=own)
    np.testing.assert_array_equal(np.asarray(two["client_held_K"]), [False, True, False, False, True])
    assert int(two["client_own_K"][3]) == 0 and "client_global_K" not in two
    # one client holding every test sequence: its accuracy is the global accuracy (mean = p10 = global)
    one = evaluate(_apply, jnp.asarray(peers), jnp.asarray(server), x, jnp.asarray(y), C, batch=4, task=task,
                   clients_V=jnp.zeros((V,), jnp.int32), own_K=jnp.asarray(np.array([1], np.int32)))
    row = text_row(jax.tree.map(lambda a: None if a is None else np.asarray(a)[None], one), 0)
    assert row["acc_client_mean"] == pytest.approx(float(one["acc_global"]))
    assert row["acc_client_p10"] == pytest.approx(float(one["acc_global"]))
    assert row["acc_own_mean"] == pytest.approx(float(one["acc_P"][1]))
    # no clients: no per-client keys; and classification rows gain no text keys
    none = _run(4, clients=False)
    assert "client_scored_K" not in none
    assert client_stats([1, 2], [0, 0]) == (None, None)
    img = evaluate(lambda p, x: p[x[:, 0].astype(jnp.int32)], jnp.zeros((2, 4, 3)), None,
                   jnp.arange(4, dtype=jnp.float32)[:, None], jnp.asarray([0, 1, 2, 0]), 3)
    assert "ppl_P" not in img and text_row(jax.tree.map(np.asarray, img), 0) == {}


def test_summary_line_and_headline_name_the_headline_models_perplexity():
    from tallysim import config
    from tallysim.results.metrics import metric, summary_line, text_headline
    row = {"acc_global": 0.5, "acc_mean": 0.4, "acc_ensemble": 0.3, "bits_per_peer": 8e6, "wall_s": 1.0,
           "ppl_global": 12.3, "ppl_mean": 20.0, "acc_client_mean": 0.45, "acc_client_p10": 0.2,
           "acc_own_mean": 0.35, "acc_own_p10": 0.1}
    assert text_headline(row) == {"ppl": 12.3, "client_mean": 0.45, "client_p10": 0.2}    # the server's
    assert "perplexity 12.3," in summary_line(config.Config(), row) and metric(row, "ppl") == 12.3
    peers = {**row, "acc_global": None, "ppl_global": None}
    assert text_headline(peers) == {"ppl": 20.0, "client_mean": 0.35, "client_p10": 0.1}  # the peers' own
    image = {k: row[k] for k in ("acc_global", "acc_mean", "acc_ensemble", "bits_per_peer", "wall_s")}
    assert "perplexity" not in summary_line(config.Config(), image) and metric(image, "ppl") is None
