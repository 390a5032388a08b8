"""FedAvg-family compression baselines (topk_ef, randk, fedpaq, signsgd; protocols/compressed.py): each
server rule against a numpy derivation from the peers' trained models, exact bits, the degenerate cases
(density 1 and 2^31 QSGD levels are FedAvg), and a grouped sweep over a knob.

The numpy side takes each peer's update from its trained params (every peer takes part, so they are what
it sent) and the round-start server model, and applies the paper's rule; nothing of tallysim's
compressors is used there."""
import functools
import math

import jax
import numpy as np
import pytest
from conftest import tiny

import tallysim
from tallysim import sweep
from tallysim.sim import comm

FULL = ["data.input_shape=8x8x1", "data.train_size=800", "model.width=16", "partition.kind=dirichlet",
        "partition.alpha=0.5"]


def flat(tree):
    return np.concatenate([np.asarray(a, np.float64).reshape(-1) for a in jax.tree.leaves(tree)])


def flat_P(tree):
    leaves = jax.tree.leaves(tree)
    return np.concatenate([np.asarray(a, np.float64).reshape(a.shape[0], -1) for a in leaves], 1)


def weights(d):
    c = np.asarray(d.built.one.count_P, np.float64)
    return c / c.sum()


def one_round(d):
    x0 = flat(d.state.server)
    d.step()
    return x0, flat_P(d.state.params) - x0[None, :], flat(d.state.server)


def test_topk_with_error_feedback_matches_numpy_over_two_rounds():
    d = tallysim.drive(tiny(*FULL, "protocol.name=topk_ef", "topk_ef.density=0.05"))
    W = d.built.ctx.num_params
    k = math.ceil(0.05 * W)
    err = np.zeros((d.built.ctx.spec.peers, W))
    for _ in range(2):
        x0, u, x1 = one_round(d)
        v = u + err
        sent = np.zeros_like(v)
        for i in range(len(v)):
            top = np.argsort(-np.abs(v[i]), kind="stable")[:k]
            sent[i, top] = v[i, top]
        err = v - sent
        np.testing.assert_allclose(x1, x0 + weights(d) @ sent, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(flat_P(d.state.error), err, rtol=1e-4, atol=1e-5)
    assert d.bits() == comm.RoundBits(comm.sparse_params(k, W, 32), 32 * W, 4)


def test_randk_sends_k_shared_coordinates_scaled():
    d = tallysim.drive(tiny(*FULL, "protocol.name=randk", "randk.density=0.1"))
    W = d.built.ctx.num_params
    k = math.ceil(0.1 * W)
    x0, u, x1 = one_round(d)
    delta = x1 - x0
    on = np.abs(delta) > 0
    assert on.sum() == k                                  # one shared mask of k coordinates
    np.testing.assert_allclose(delta[on], (W / k) * (weights(d) @ u)[on], rtol=1e-4, atol=1e-6)
    assert d.bits() == comm.RoundBits(32 * k, 32 * W, 4)


def test_fedpaq_quantises_each_update_on_qsgd_levels():
    s = 4
    d = tallysim.drive(tiny(*FULL, "protocol.name=fedpaq", f"fedpaq.levels={s}", "peers=1"))
    x0, u, x1 = one_round(d)
    u, q = u[0], x1 - x0                                  # one peer: the server adds Q_s(u) itself
    r = s * np.abs(u) / np.linalg.norm(u)
    level = np.abs(q) * s / np.linalg.norm(u)
    assert np.all((np.abs(level - np.floor(r)) < 1e-3) | (np.abs(level - np.ceil(r)) < 1e-3))
    assert np.all(np.sign(q)[level > 1e-3] == np.sign(u)[level > 1e-3])
    assert np.abs(level - np.round(level)).max() < 1e-3
    W = d.built.ctx.num_params
    assert d.bits() == comm.RoundBits(32 + W * (1 + 3), 32 * W, 1)      # ceil(log2(5)) = 3 level bits


def test_signsgd_steps_by_the_majority_sign():
    lr = 0.01
    d = tallysim.drive(tiny(*FULL, "protocol.name=signsgd", f"signsgd.server_lr={lr}"))
    x0, u, x1 = one_round(d)
    votes = np.where(u >= 0, 1.0, -1.0).sum(0)
    want = x0 + lr * np.where(votes >= 0, 1.0, -1.0)
    np.testing.assert_allclose(x1, want, rtol=0, atol=1e-6)
    W = d.built.ctx.num_params
    assert d.bits() == comm.RoundBits(W, W, 4)
    half = tallysim.drive(tiny(*FULL, "protocol.name=signsgd", "participation=0.5"))
    half.step()
    assert half.bits() == comm.RoundBits(W, 32 * W, 2)          # a peer that missed rounds needs x


@pytest.mark.parametrize("items", [["protocol.name=topk_ef", "topk_ef.density=1"],
                                   ["protocol.name=randk", "randk.density=1"],
                                   ["protocol.name=fedpaq", f"fedpaq.levels={2**31 - 1}"]])
def test_no_compression_is_fedavg(items):
    b = tallysim.drive(tiny(*FULL, *items))
    for _ in range(2):
        b.step()
    np.testing.assert_allclose(flat(b.state.server), fedavg_after_2_rounds(), rtol=1e-4, atol=1e-5)


@functools.cache
def fedavg_after_2_rounds():
    """FedAvg's server model after 2 rounds of FULL: one run for the three degenerate cases (it was run
    afresh for each, the same numbers). Read-only: a flat numpy copy."""
    a = tallysim.drive(tiny(*FULL, "protocol.name=fedavg"))
    for _ in range(2):
        a.step()
    out = flat(a.state.server)
    out.flags.writeable = False
    return out


def test_signsgd_sweeps_its_step_as_one_program(tmp_path):
    logs = []
    runs = [(f"lr={v}", [f"signsgd.server_lr={v}"]) for v in (0.001, 0.01)]
    recs = sweep.run_sweep(tiny("protocol.name=signsgd", "rounds=1"), runs, tmp_path / "sw", progress=False,
                           log=logs.append)
    assert [r["status"] for r in recs] == ["done", "done"]
    assert any("2 runs as one program" in m for m in logs), logs
