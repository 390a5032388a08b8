"""Review of the protocols' update rules and bit counts (review8): rules against derivations written here
in numpy from the peers' trained models (nothing of tallysim's aggregation used on the numpy side), and
degenerate-case invariants that no earlier test held:

- SCAFFOLD's option II control variate with ragged shards: K_i (unequal step counts, counted here from
  the shard sizes) divides each peer's own (x - y_i); the server's c is the mean over all P peers.
- FedNova under partial participation: w_i and tau_eff over the active peers only.
- FedAdam / FedYogi: with b1 = 0 (and b2 = 0 for Adam), server_lr = tau large, the server step is FedAvg's.
- bridge's soft reset with per-coordinate averaging: what is sent (top-k of u_i), how it is merged (each
  coordinate's mean over its senders) and what a peer keeps (its unsent residual stays in its weights).
- fedct with period 1 and no XOR noise is bridge with density 0 and vote_at=merge: the same lagged vote.
- cfd's delta-coded downlink after a round in which no message arrived (a bug fixed here: the server's
  reference was overwritten by a reply that was never sent).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

import tallysim
from tallysim.protocols import server_opt
from tallysim.sim import comm

# fednova's ragged shards (and its helpers): the same programs, compiled once for both files
from test_fednova import RAGGED, flat, flat_P  # noqa: E402


def test_scaffold_control_variates_divide_by_each_peers_own_step_count():
    """Karimireddy et al. 2020, Algorithm 1, option II: c_i+ = c_i - c + (x - y_i) / (K_i lr). Round 1
    (c = c_i = 0): c_i+ = (x - y_i) / (K_i lr), K_i = epochs * ceil(n_i / B), unequal across ragged
    shards; c+ = (1/N) sum_i c_i+. A K shared by all peers (the largest, or the mean) fails here."""
    lr, epochs, B = 0.1, 2, 32
    d = tallysim.drive(tiny(*RAGGED, "optim.momentum=0", "protocol.name=scaffold", f"local_epochs={epochs}"))
    x = flat(d.state.server)
    d.step()
    y = flat_P(d.state.params)
    count = np.asarray(d.built.one.count_P)
    K = np.array([epochs * math.ceil(n / B) for n in count])
    assert len(set(K)) > 1                                    # ragged: the step counts differ
    want = (x[None] - y) / (K[:, None] * lr)
    np.testing.assert_allclose(flat_P(d.state.extra["c_P"]), want, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(flat(d.state.extra["c"]), want.mean(0), rtol=1e-4, atol=1e-7)
    W = d.built.ctx.num_params
    assert d.bits() == comm.RoundBits(2 * 32 * W, 2 * 32 * W, 4)


def test_fednova_with_partial_participation_weighs_the_active_peers_only():
    """Wang et al. 2020 with client sampling: x' = x - tau_eff sum_{i in S} w_i (x - y_i) / tau_i,
    w_i = n_i / sum_{j in S} n_j, tau_eff = sum_{i in S} w_i tau_i. Bits: FedAvg's plus 32 up for tau_i,
    for the A active peers only."""
    d = tallysim.drive(tiny(*RAGGED, "optim.momentum=0", "protocol.name=fednova", "participation=0.5"))
    count = np.asarray(d.built.one.count_P, np.float64)
    tau = np.array([math.ceil(n / 32) for n in count], np.float64)
    for _ in range(2):
        x, before = flat(d.state.server), flat_P(d.state.params)
        d.step()
        after = flat_P(d.state.params)
        S = np.flatnonzero(np.any(after != before, axis=1))       # the peers this round trained
        assert len(S) == 2
        w = count[S] / count[S].sum()
        want = x - (w @ tau[S]) * ((w / tau[S]) @ (x[None] - after[S]))
        np.testing.assert_allclose(flat(d.state.server), want, rtol=1e-4, atol=1e-6)
    W = d.built.ctx.num_params
    assert d.bits() == comm.RoundBits(32 * W + 32, 32 * W, 2)


@pytest.mark.parametrize("second", ["adam", "yogi"])
def test_adaptive_server_step_with_a_huge_tau_is_fedavg(second):
    """Reddi et al. 2021, Algorithm 2 with b1 = 0: x' = x + eta Delta / (sqrt(v) + tau). Adam with b2 = 0
    has v = Delta^2, so eta = tau gives x + Delta tau / (|Delta| + tau); Yogi keeps v within Delta^2 of
    its start tau^2, so eta = 2 tau gives about x + Delta. Both are FedAvg's avg = x + Delta to within
    |Delta| / tau: a server step that scaled or signed Delta wrongly would not be."""
    tau = 1e4
    lr = tau if second == "adam" else 2 * tau
    tx = server_opt.adaptive(lr, 0.0, 0.0 if second == "adam" else 0.99, tau, second)
    rng = np.random.default_rng(0)
    x = [jnp.asarray(rng.normal(size=(3, 4)), jnp.float32), jnp.asarray(rng.normal(size=(5,)), jnp.float32)]
    state = tx.init(x)
    for scale in (0.1, 0.01, 0.05):
        avg = [a + jnp.asarray(scale * rng.normal(size=a.shape), jnp.float32) for a in x]
        x, state = server_opt.server_step(tx, x, avg, state)
        for got, want in zip(x, avg):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=2e-5)


@pytest.mark.parametrize("reset, average", [("soft", "per_coordinate"), ("hard", "weighted")])
def test_bridge_merge_matches_numpy(reset, average):
    """One merge (bridge.merge_step, eager: no round compiled) of 4 peers with made-up models and error
    buffers, against numpy: u_i = (theta_i - ref) + e_i (soft: e_i not added, the residual already sits
    in theta_i); s_i = u_i on its k = ceil(density |W|) largest |u_i| (ties to the lower index); e_i' =
    u_i - s_i; merged = sum_i w_i s_i (shard-size weights) or, per coordinate, the sum over the peers that
    sent it divided by their number; ref' = ref + merged; peers: ref' (hard) or theta_i + merged - s_i
    (soft). Bits: the tally bits plus the cheapest coding of k entries up and of the merged nnz down."""
    from tallysim.protocols import bridge
    from tallysim.sim import sparse
    density = 0.05
    d = tallysim.drive(tiny("protocol.name=bridge", f"bridge.density={density}", "bridge.period=1",
                            f"bridge.reset={reset}", f"bridge.average={average}", "warmup_epochs=0",
                            "partition.kind=dirichlet", "partition.alpha=0.5"))
    ctx, one = d.built.ctx, d.built.one
    rng = np.random.default_rng(1)
    noisy = lambda tree, s: jax.tree.map(lambda a: a + jnp.asarray(s * rng.normal(size=a.shape), a.dtype), tree)
    state = d.state._replace(params=noisy(d.state.params, 0.1), error=noisy(d.state.error, 0.01))
    lay = sparse.layout(d.state.server)
    new, nnz, _ = bridge.merge_step(ctx, lay, state, one, None)

    theta, ref, err = flat_P(state.params), flat(state.server), flat_P(state.error)
    P, W = theta.shape
    k = math.ceil(density * W)
    u = theta - ref[None] + (0 if reset == "soft" else err)
    s = np.zeros_like(u)
    for i in range(P):
        top = np.argsort(-np.abs(u[i]), kind="stable")[:k]
        s[i, top] = u[i, top]
    if average == "weighted":
        count = np.asarray(one.count_P, np.float64)
        merged = (count / count.sum()) @ s
    else:
        merged = s.sum(0) / np.maximum((s != 0).sum(0), 1)
    np.testing.assert_allclose(flat(new.server), ref + merged, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flat_P(new.error), u - s, rtol=1e-5, atol=1e-6)
    want = np.broadcast_to(ref + merged, theta.shape) if reset == "hard" else theta + merged[None] - s
    np.testing.assert_allclose(flat_P(new.params), want, rtol=1e-5, atol=1e-6)
    assert int(nnz) == np.count_nonzero(merged) and k < int(nnz) <= P * k
    votes = 64 * 4                                         # M = 64 probes, L = 4 bits (10 classes)
    log_w = math.ceil(math.log2(W))
    up = min(k * (32 + log_w), W + 32 * k, 32 * W)
    down = min(int(nnz) * (32 + log_w), W + 32 * int(nnz), 32 * W)
    assert d.protocol.cost({"merged": 1, "nnz": int(nnz)}) == comm.RoundBits(votes + up, votes + down, 4)


def test_fedct_every_round_without_noise_is_bridges_lagged_vote():
    """fedct (Abourayya et al. 2025) with fedct.period=1 and no XOR noise: each round trains on the vote
    the trained models took in the round before, then votes. That is bridge with density 0 (no merge:
    tally) and vote_at=merge: the same votes and bits round by round, and the same models up to float
    rounding (two programs: without XLA's optimisations, conftest.py, they round differently)."""
    a = tallysim.drive(tiny("protocol.name=fedct", "init.shared=true"))
    b = tallysim.drive(tiny("protocol.name=bridge", "bridge.density=0", "bridge.vote_at=merge"))
    for r in range(2):
        sa, ia = a.step()
        sb, ib = b.step()
        np.testing.assert_allclose(flat_P(sa.params), flat_P(sb.params), rtol=1e-5, atol=1e-6)
        for x, y in zip(sa.votes, sb.votes):                  # the vote kept for the next round
            assert np.array_equal(np.asarray(x), np.asarray(y))
        assert float(ia["agreement"]) == float(ib["agreement"]) and float(ia["vote_acc"]) == float(ib["vote_acc"])
        assert a.bits() == b.bits() == comm.RoundBits(64 * 4, 64 * 4, 4)


def test_cfd_delta_downlink_after_a_round_without_messages():
    """cfd.delta=true under dropout: a round in which every message was lost sends no reply (down 0
    bits), so the peers' reference for the next downlink is still the last reply they received; the
    server must code against that one. Before the fix the server's reference became the all-zero levels
    of the reply it never sent. Two peers, both faulty with drop probability 0.6: with this seed round 3
    loses both messages (checked below)."""
    d = tallysim.drive(tiny("protocol.name=cfd", "cfd.delta=true", "probe.resample=false", "faults.kind=dropout",
                            "faults.fraction=1.0", "faults.drop_prob=0.6", "peers=2", "warmup_epochs=0"))
    sent, refs = [], []
    for _ in range(4):
        state, info = d.step()
        sent.append(int(info["senders"]))
        refs.append(np.asarray(state.extra["down"]))
        if sent[-1] == 0:
            assert d.bits().down_total == 0                       # no reply went out
    assert 0 in sent[1:3] and sent[3] > 0 and sent[0] > 0, sent
    for r in range(1, 4):
        if sent[r] == 0:
            assert np.array_equal(refs[r], refs[r - 1])           # the peers' reference: the last reply sent


def test_randk_draws_a_fresh_shared_mask_every_round():
    """rand-k (Stich et al. 2018): each round's k coordinates are a new uniform draw (the round's key),
    the same for every peer. A mask reused across rounds would train only those k coordinates forever:
    the server would still move by exactly k coordinates a round, so only comparing rounds shows it."""
    d = tallysim.drive(tiny("data.input_shape=8x8x1", "data.train_size=800", "model.width=16",
                            "protocol.name=randk", "randk.density=0.1", "rounds=3"))
    W = d.built.ctx.num_params
    k = math.ceil(0.1 * W)
    masks = []
    for _ in range(3):
        x0 = flat(d.state.server)
        d.step()
        masks.append(flat(d.state.server) != x0)
        assert masks[-1].sum() == k
    overlap = [(masks[a] & masks[b]).sum() for a, b in ((0, 1), (0, 2), (1, 2))]
    assert max(overlap) < 3 * k * k / W                       # independent draws overlap by about k^2 / W
    assert d.bits() == comm.RoundBits(32 * k, 32 * W, 4)
