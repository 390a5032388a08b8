"""Protocol rounds against expectations derived by hand, not by the code under test.

Every configuration here trains full-batch: `batch_size` is at least the largest shard and the probe
batch is all `M` probes, so a local epoch is exactly one step on the mean loss of the peer's whole
shard (and all probes), whatever order the code draws them in. Plain SGD (no momentum) then makes a
round's result a closed-form function of the state before it: w' = w - lr * grad(loss)(w). The
expected loss below is written from docs/protocols.md with jax.nn and jax.grad only (no tallysim loss, vote,
average or merge code); the votes, targets, weights and top-k selections are computed in numpy.
Which peers were active is read off the state (inactive peers keep their parameters exactly).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

import tallysim
from tallysim import run
from tallysim.protocols import feddf as feddf_mod
from tallysim.protocols.base import round_keys
from tallysim.sim.fed import cohort_shards

pytestmark = pytest.mark.core

LR = 0.5
FULL_BATCH = ["data.input_shape=8x8x1", "data.train_size=800", "batch_size=2000", "optim.name=sgd", "optim.momentum=0", f"optim.lr={LR}",
              "local_epochs=1", "model.width=16"]
SKEWED = ["partition.kind=dirichlet", "partition.alpha=0.5", "peers=5", "participation=0.6"]


# ---- helpers -----------------------------------------------------------------------------------

def start(*items, seed=0):
    d = tallysim.drive(tiny(*FULL_BATCH, *items), seed)
    return d.built, d.state, d.root, d.round_fn


def peer(tree, i):
    return jax.tree.map(lambda a: np.asarray(a[i]), tree)


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def close(a, b, rtol=2e-5, atol=2e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def far(a, b, atol=1e-3):
    """Some leaf differs by more than atol (a mutated round must miss the expectation clearly)."""
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))) > atol


def active_peers(before, after, P):
    return [i for i in range(P) if not same(peer(before, i), peer(after, i))]


def shard(b, i):
    """(x, y) of peer i's real examples, in numpy."""
    d = b.one
    idx = np.asarray(cohort_shards(d, None)[i])[:int(d.count_P[i])]
    return np.asarray(d.x_train)[idx], np.asarray(d.y_train)[idx]


def padded_shard(b, i):
    """(x, y, mask) of peer i padded to the largest shard, so one compiled reference serves all."""
    d = b.one
    n, S = int(d.count_P[i]), b.ctx.spec.shard_max
    idx = np.zeros(S, np.int64)
    idx[:n] = np.asarray(cohort_shards(d, None)[i])[:n]
    return np.asarray(d.x_train)[idx], np.asarray(d.y_train)[idx], (np.arange(S) < n).astype(np.float32)


def pool(b):
    d = b.one
    q = np.asarray(d.pool_Q)
    return np.asarray(d.x_train)[q], np.asarray(d.y_train)[q]


def ce_mean(apply, w, x, y, classes, m=None):
    lp = jax.nn.log_softmax(apply(w, jnp.asarray(x)))
    ce = -jnp.sum(jax.nn.one_hot(y, classes) * lp, axis=-1)
    m = jnp.ones_like(ce) if m is None else m
    return jnp.sum(m * ce) / jnp.sum(m)


def sgd_step(loss, w, lr=LR):
    g = jax.grad(loss)(w)
    return jax.tree.map(lambda a, d: a - lr * d, w, g)


_REF = {}


def reference_step(b, soft=None, temperature=1.0):
    """A compiled full-batch SGD step on the loss of docs/protocols.md, written here from jax.nn:
    masked-mean CE(private) + (mu/2)||w - anchor||^2 [+ dw * masked mean over probes of the
    distillation loss: CE against target rows (hard) or T^2 KL(target || softmax(z/T)) (soft)]."""
    apply, C = b.ctx.model.apply, b.ctx.spec.classes
    key = (id(b.ctx.model), C, soft, temperature)
    if key not in _REF:
        def loss(w, x, y, m, anchor, mu, xq, tg, wt, dw):
            total = ce_mean(apply, w, x, y, C, m)
            total += 0.5 * mu * sum(jnp.sum((a - s) ** 2) for a, s in zip(jax.tree.leaves(w),
                                                                           jax.tree.leaves(anchor)))
            if soft is not None:
                lq = jax.nn.log_softmax(apply(w, xq) / temperature)
                if soft:
                    per = temperature ** 2 * jnp.sum(jax.scipy.special.xlogy(tg, tg) - tg * lq, axis=-1)
                else:
                    per = -jnp.sum(tg * lq, axis=-1)
                total += dw * jnp.sum(wt * per) / jnp.maximum(jnp.sum(wt), 1.0)
            return total

        def step(w, *args):
            g = jax.grad(loss)(w, *args)
            return jax.tree.map(lambda a, d: a - LR * d, w, g)
        _REF[key] = (b.ctx.model, jax.jit(step))
    return _REF[key][1]


def logits_np(b, w, x):
    return np.asarray(b.ctx.model.apply(w, jnp.asarray(x)), np.float64)


def flat(w):
    return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree.leaves(w)])


def unflat(like, v):
    leaves, out, s = jax.tree.leaves(like), [], 0
    for a in leaves:
        out.append(v[s:s + a.size].reshape(a.shape).astype(np.float32))
        s += a.size
    return jax.tree.unflatten(jax.tree.structure(like), out)


# ---- FedAvg / FedProx / FedDF -------------------------------------------------------------------

def expected_fedavg_round(b, server, act, mu=0.0, epochs=1):
    """Each active peer: `epochs` full-batch SGD steps from the server on CE + (mu/2)||w - server||^2;
    the server: the shard-size weighted mean of the active peers' results."""
    step = reference_step(b)
    xq0 = jnp.zeros((1,) + b.ctx.spec.input_shape)
    trained, counts = {}, []
    for i in act:
        x, y, m = padded_shard(b, i)
        w = server
        for _ in range(epochs):
            w = step(w, x, y, m, server, mu, xq0, jnp.zeros((1, 1)), jnp.zeros(1), 0.0)
        trained[i] = w
        counts.append(m.sum())
    c = np.asarray(counts, np.float64)
    mean = jax.tree.map(lambda *ws: sum(ci / c.sum() * np.asarray(wi, np.float64) for ci, wi in zip(c, ws)),
                        *[trained[i] for i in act])
    return trained, mean


@pytest.mark.parametrize("name,mu,epochs", [("fedavg", 0.0, 1), ("fedprox", 0.7, 2)])
def test_fedavg_family_round_is_shard_weighted_mean_of_active_peers(name, mu, epochs):
    mu_item = [f"fedprox.mu={mu}"] if name == "fedprox" else []       # fedavg reads no mu (drive refuses it)
    b, state, keys, step = start(f"protocol.name={name}", *mu_item, f"local_epochs={epochs}", *SKEWED)
    counts = np.asarray(b.one.count_P)
    assert counts.max() > 1.3 * counts.min()                          # unequal shards
    P, A = b.cfg.peers, b.ctx.spec.active
    assert A == 3 < P
    for r in (1, 2):                                                   # round 2 starts from round 1's server
        new, _ = step(state, b.one, keys, jnp.int32(r))
        act = active_peers(state.params, new.params, P)
        assert len(act) == A
        trained, mean = expected_fedavg_round(b, state.server, act, mu, epochs)
        for i in act:
            close(peer(new.params, i), trained[i])
        close(new.server, mean)
        uniform = jax.tree.map(lambda *ws: sum(np.asarray(w) for w in ws) / A, *[trained[i] for i in act])
        assert far(mean, uniform, 1e-4)                                # the weighting is visible here
        state = new


def test_fedprox_gradient_is_mu_times_w_minus_anchor():
    """One peer, two identical full-batch steps with and without the proximal term: after the first
    step (w1 != anchor) the second differs by exactly -lr * mu * (w1 - anchor)."""
    from tallysim.sim import local
    b = run.build(tiny(*FULL_BATCH, "protocol.name=fedprox", "local_epochs=2"))
    ctx, mu = b.ctx, 0.8
    anchor = jax.tree.map(lambda a: a[0], jax.jit(b.protocol.init)(jax.random.PRNGKey(0), b.one).params)
    x, y = shard(b, 0)
    out = {}
    for m in (None, mu):
        spec = ctx.local_spec(prox_mu=m)
        p, _, _ = local.train_peer(spec, anchor, spec.tx.init(anchor), jax.random.PRNGKey(1),
                                   cohort_shards(b.one, None, b.ctx.spec.shard_max)[0], b.one.count_P[0],
                                   b.one, None, anchor)
        out[m] = p
    w1 = sgd_step(lambda w: ce_mean(ctx.model.apply, w, x, y, ctx.spec.classes), anchor)
    diff = jax.tree.map(lambda a, c: np.asarray(a) - np.asarray(c), out[mu], out[None])
    want = jax.tree.map(lambda a, c: -LR * mu * (np.asarray(a) - np.asarray(c)), w1, anchor)
    close(diff, want, rtol=1e-3, atol=1e-6)
    assert far(want, jax.tree.map(np.zeros_like, want), 1e-3)


def test_feddf_round_with_zero_server_lr_is_the_weighted_mean():
    b, state, keys, step = start("protocol.name=feddf", "feddf.steps=3", "feddf.lr=1e-12", *SKEWED)
    new, _ = step(state, b.one, keys, jnp.int32(1))
    act = active_peers(state.params, new.params, b.cfg.peers)
    trained, mean = expected_fedavg_round(b, state.server, act)
    close(new.server, mean)


def test_feddf_round_stores_the_distilled_server():
    b, state, keys, step = start("protocol.name=feddf", "feddf.steps=4", "feddf.lr=0.05",
                                 "feddf.batch_size=32", *SKEWED)
    new, info = step(state, b.one, keys, jnp.int32(1))
    act = active_peers(state.params, new.params, b.cfg.peers)
    trained, mean = expected_fedavg_round(b, state.server, act)
    mean32 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), mean)
    params_A = jax.tree.map(lambda *ws: jnp.stack(ws), *[peer(new.params, i) for i in act])
    distilled, _ = feddf_mod.distill_server(b.ctx, mean32, params_A, b.one, round_keys(keys, 1).server)
    assert far(distilled, mean, 1e-2)                                   # distillation moved it
    close(new.server, distilled, rtol=1e-3, atol=1e-4)


# ---- tally and softlabel: what reaches the loss ------------------------------------------------

DISTILL = ["warmup_epochs=0", "probe.pool_size=64", "probe.per_round=64", "distill.batch_size=64",
           "peers=5", "participation=0.8", "partition.kind=dirichlet", "partition.alpha=0.5"]


def expected_distill_round(b, before, act, targets, weight, soft, temperature=1.0, dw=1.0):
    """Each active peer: one full-batch SGD step on CE(private) + dw * masked mean over the probes of
    the distillation loss (CE against `targets` rows for hard labels; T^2 KL for soft ones)."""
    step = reference_step(b, soft, temperature)
    xq, _ = pool(b)
    out = {}
    for i in act:
        x, y, m = padded_shard(b, i)
        w = peer(before, i)
        out[i] = step(w, x, y, m, w, 0.0, xq, jnp.asarray(targets, jnp.float32),
                      jnp.asarray(weight, jnp.float32), dw)
    return out


def np_votes(b, params, act):
    xq, _ = pool(b)
    return np.stack([np.argmax(logits_np(b, peer(params, i), xq), axis=-1) for i in act])


@pytest.mark.parametrize("min_agreement,smoothing", [(0.5, 0.0), (0.0, 0.3)])
def test_tally_round_trains_on_exactly_the_winners(min_agreement, smoothing):
    b, state, keys, step = start("protocol.name=tally", *DISTILL, f"vote.min_agreement={min_agreement}",
                                 f"distill.label_smoothing={smoothing}")
    C, M = b.ctx.spec.classes, b.ctx.spec.probes
    assert M == b.ctx.spec.pool                                        # every pool example is a probe
    new, info = step(state, b.one, keys, jnp.int32(1))
    act = active_peers(state.params, new.params, b.cfg.peers)
    assert len(act) == b.ctx.spec.active == 4
    votes = np_votes(b, state.params, act)                             # [A, M]
    counts = np.stack([np.bincount(v, minlength=C) for v in votes.T])  # [M, C]
    winner = np.argmax(counts, axis=1)                                 # numpy: first maximum = lowest class
    share = counts.max(axis=1) / len(act)
    keep = (share >= min_agreement).astype(np.float64)
    if min_agreement:
        assert 0 < keep.sum() < M                                      # some probes abstain, some not
    onehot = np.eye(C)[winner]
    target = onehot * (1 - smoothing) + smoothing / C                  # optax.smooth_labels' definition
    want = expected_distill_round(b, state.params, act, target, keep, soft=False)
    for i in act:
        close(peer(new.params, i), want[i])
    # The expectation is sensitive: other labels, or the abstained probes kept, land far away.
    wrong = expected_distill_round(b, state.params, act[:1], np.eye(C)[(winner + 1) % C], keep, soft=False)
    assert far(wrong[act[0]], want[act[0]], 1e-3)
    if min_agreement:
        all_kept = expected_distill_round(b, state.params, act[:1], target, np.ones(M), soft=False)
        assert far(all_kept[act[0]], want[act[0]], 1e-4)
    if smoothing:
        hard = expected_distill_round(b, state.params, act[:1], onehot, keep, soft=False)
        assert far(hard[act[0]], want[act[0]], 1e-4)
    _, yq = pool(b)
    kept = keep > 0
    assert float(info["consensus_acc"]) == pytest.approx(np.mean(winner[kept] == yq[kept]), abs=1e-6)
    assert float(info["vote_acc"]) == pytest.approx(np.mean(winner == yq), abs=1e-6)


def test_abstained_probes_contribute_zero_gradient():
    """Changing the inputs and labels of probes whose weight is 0 leaves a local round bit-identical."""
    from tallysim.sim import local
    b = run.build(tiny(*FULL_BATCH, "protocol.name=tally", *DISTILL))
    ctx = b.ctx
    spec = ctx.local_spec(distill_loss=local.hard_label_loss(ctx.spec.classes, 0.0))
    w = jax.tree.map(lambda a: a[0], jax.jit(b.protocol.init)(jax.random.PRNGKey(0), b.one).params)
    xq, _ = pool(b)
    M = xq.shape[0]
    labels = np.arange(M) % ctx.spec.classes
    keep = (np.arange(M) % 3 != 0).astype(np.float32)
    x2 = np.where(keep.reshape((-1,) + (1,) * (xq.ndim - 1)) > 0, xq, 7.0 * xq + 1.0)
    l2 = np.where(keep > 0, labels, (labels + 3) % ctx.spec.classes)

    @jax.jit
    def train_jit(x, lab, wt):
        probes = local.Probes(x, lab, wt)
        p, _, _ = local.train_peer(spec, w, spec.tx.init(w), jax.random.PRNGKey(3),
                                   cohort_shards(b.one, None, b.ctx.spec.shard_max)[0],
                                   b.one.count_P[0], b.one, probes, None)
        return p

    def train(x, lab, wt):
        return train_jit(jnp.asarray(x), jnp.asarray(lab, jnp.int32), jnp.asarray(wt, jnp.float32))
    base = train(xq, labels, keep)
    close(train(x2, l2, keep), base, rtol=1e-6, atol=1e-7)
    assert far(train(x2, l2, np.ones(M, np.float32)), base, 1e-4)     # ... and would if weighted


@pytest.mark.parametrize("soft_bits,aggregate", [(8, "mean"), (32, "median"), (8, "era")])
def test_softlabel_targets_are_the_quantised_mean(soft_bits, aggregate):
    T = 2.0
    b, state, keys, step = start("protocol.name=softlabel", *DISTILL, f"comm.soft_bits={soft_bits}",
                                 f"softlabel.aggregate={aggregate}", f"distill.temperature={T}",
                                 *(["softlabel.era_temperature=0.5"] if aggregate == "era" else []),  # era's only
                                 # 8 bits: 5 peers, so the rounded downlink's 255 x mean (a multiple of 1/5)
                                 # never lies on a half that float32 and float64 may round apart (4 would)
                                 *(["participation=1"] if soft_bits == 8 else []))
    new, info = step(state, b.one, keys, jnp.int32(1))
    act = active_peers(state.params, new.params, b.cfg.peers)
    xq, yq = pool(b)
    probs = []
    for i in act:
        z = logits_np(b, peer(state.params, i), xq)
        p = np.exp(z - z.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        probs.append(np.round(p * 255) / 255 if soft_bits == 8 else p)
    target = np.mean(probs, axis=0)
    if aggregate == "median":       # coordinate-wise median of the active peers, renormalised per probe
        target = np.median(probs, axis=0)
        target = target / target.sum(-1, keepdims=True)
    if aggregate == "era":
        s = np.exp((target - target.max(-1, keepdims=True)) / 0.5)
        target = s / s.sum(-1, keepdims=True)
    if soft_bits == 8:              # the downlink is rounded too: the bits it is charged (base.soft_downlink)
        target = np.round(target * 255) / 255
    want = expected_distill_round(b, state.params, act, target, np.ones(len(yq)), soft=True, temperature=T)
    for i in act:
        close(peer(new.params, i), want[i], rtol=1e-4, atol=1e-5)
    assert float(info["consensus_acc"]) == pytest.approx(np.mean(np.argmax(target, -1) == yq), abs=1e-6)
    if soft_bits == 8:
        raw = np.mean([np.exp(logits_np(b, peer(state.params, i), xq)) /
                       np.exp(logits_np(b, peer(state.params, i), xq)).sum(-1, keepdims=True) for i in act], 0)
        unq = expected_distill_round(b, state.params, act[:1], raw, np.ones(len(yq)), soft=True, temperature=T)
        assert far(unq[act[0]], want[act[0]], 2e-5)


def test_fixed_probes_are_used_in_every_round(monkeypatch):
    """probe.resample=false: the same probes reach every round's exchange (that resample=true draws
    new ones is checked on round_keys in test_protocols.py)."""
    from tallysim.protocols import base
    seen = []
    orig = base.draw_probes

    def spy(ctx, data, key):
        out = orig(ctx, data, key)
        jax.debug.callback(lambda v: seen.append(np.asarray(v)), out)
        return out
    monkeypatch.setattr(base, "draw_probes", spy)
    b, state, keys, step = start("protocol.name=tally", "probe.resample=false", *DISTILL, "probe.per_round=16",
                                 "distill.batch_size=16")
    for r in (1, 2, 3):
        state, _ = step(state, b.one, keys, jnp.int32(r))
    jax.block_until_ready(state)
    assert len(seen) == 3 and len(seen[0]) == 16 < b.ctx.spec.pool
    assert all(np.array_equal(seen[0], s) for s in seen[1:])


# ---- bridge: error feedback across merges, reset and averaging variants, exact bits --------------

def np_topk(u, k):
    """Mask of the k entries largest in |u|, ties to the lower index."""
    order = np.lexsort((np.arange(u.size), -np.abs(u)))
    m = np.zeros(u.size, bool)
    m[order[:k]] = True
    return m


def ceil_tenth(n, tenths):
    return -(-n * tenths // 10)          # ceil(n * tenths / 10) in integers


@pytest.mark.parametrize("variant", [
    ("bridge.reset=hard", "bridge.average=weighted", "bridge.scope=global"),
    ("bridge.reset=soft", "bridge.average=per_coordinate", "bridge.scope=per_tensor"),
])
def test_bridge_four_rounds_error_feedback_and_exact_bits(variant):
    items = ("protocol.name=bridge", *DISTILL, "participation=1", "bridge.period=2", "bridge.density=0.2",
             "probe.per_round=32", "distill.batch_size=32", *variant)
    b, state, keys, step = start(*items)
    bt = run.build(tiny(*FULL_BATCH, *items, "protocol.name=tally"))    # the same round without merges
    tally_step = jax.jit(bt.protocol.round)
    soft = "bridge.reset=soft" in variant
    per_coord = "bridge.average=per_coordinate" in variant
    per_tensor = "bridge.scope=per_tensor" in variant
    P = b.cfg.peers
    sizes = [a.size for a in jax.tree.leaves(state.server)]
    W = sum(sizes)
    k = sum(ceil_tenth(n, 2) for n in sizes) if per_tensor else ceil_tenth(W, 2)
    L, M = 4, b.ctx.spec.probes                                         # C = 10 -> 4 bits per label
    idx_bits = math.ceil(math.log2(W))
    code = lambda nnz: min(nnz * (32 + idx_bits), W + 32 * nnz, 32 * W)
    counts = np.asarray(b.one.count_P, np.float64)
    err = np.zeros((P, W), np.float32)
    merges = 0
    for r in (1, 2, 3, 4):
        ref = flat(state.server).astype(np.float32)
        t_state, _ = tally_step(state, bt.one, keys, jnp.int32(r))
        new, info = step(state, b.one, keys, jnp.int32(r))
        info = {key: np.asarray(v).tolist() for key, v in jax.device_get(info).items()}
        bits = b.protocol.cost(info)
        if r % 2:
            assert same(new.params, t_state.params) and same(new.server, state.server)
            assert same(new.error, state.error)
            assert (bits.up, bits.down) == (M * L, M * L)
        else:
            merges += 1
            theta = np.stack([flat(peer(t_state.params, i)) for i in range(P)]).astype(np.float32)
            u = (theta - ref) + (0 * err if soft else err)
            if per_tensor:
                mask, s0 = [], 0
                for n in sizes:
                    mask.append(np.stack([np_topk(ui[s0:s0 + n], ceil_tenth(n, 2)) for ui in u]))
                    s0 += n
                mask = np.concatenate(mask, axis=1)
            else:
                mask = np.stack([np_topk(ui, k) for ui in u])
            assert (mask.sum(1) == k).all()
            sent = np.where(mask, u, 0).astype(np.float64)
            err = np.where(mask, 0, u).astype(np.float32)
            if per_coord:
                merged = sent.sum(0) / np.maximum(mask.sum(0), 1)
            else:
                merged = (counts / counts.sum()) @ sent
            ref_new = ref + merged
            params = theta + merged[None] - sent if soft else np.broadcast_to(ref_new, theta.shape)
            np.testing.assert_allclose(flat(new.server), ref_new, rtol=1e-5, atol=1e-6)
            for i in range(P):
                np.testing.assert_allclose(flat(peer(new.params, i)), params[i], rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(flat(peer(new.error, i)), err[i], rtol=1e-5, atol=1e-7)
            nnz = int(np.count_nonzero(merged))
            assert (bits.up, bits.down, bits.active) == (M * L + code(k), M * L + code(nnz), P)
            if merges == 2 and not soft:
                # the buffer carried from merge 1 changes merge 2: without it the server lands elsewhere
                u0 = theta - ref
                m0 = np.stack([np_topk(ui, k) for ui in u0])
                alt = ref + (counts / counts.sum()) @ np.where(m0, u0, 0)
                assert np.max(np.abs(alt - ref_new)) > 1e-4
        state = new
    assert merges == 2


def test_bridge_merge_under_dropout_is_the_shard_weighted_mean_of_the_models_that_arrived():
    # density 1: every peer sends theta_i - theta_ref whole; with peer 1's message lost, the server
    # moves to theta_ref + sum over the arrived i of w_i (theta_i - theta_ref), w_i = n_i / sum n_j.
    from tallysim.sim import faults, sparse
    from tallysim.protocols import bridge
    b, state, _, _ = start("protocol.name=bridge", "participation=1", "bridge.density=1.0",
                           "bridge.average=weighted", "bridge.reset=hard")
    P = b.cfg.peers
    noise = jax.random.normal(jax.random.PRNGKey(7), (P,))
    spread = lambda a: (noise.reshape((P,) + (1,) * (a.ndim - 1))
                        * jnp.linspace(0.5, 1.5, a[0].size).reshape(a.shape[1:]))
    state = state._replace(params=jax.tree.map(lambda a: a + spread(a), state.params))
    lost = np.zeros(P, bool)
    lost[1] = True
    fr = faults.RoundFaults(jnp.zeros((P,), bool), jnp.zeros((P,), bool), jnp.asarray(lost), None,
                            jax.random.PRNGKey(0))
    new, _, _ = bridge.merge_step(b.ctx, sparse.layout(state.server), state, b.one, None, fr)
    flat = lambda t: np.concatenate([np.ravel(np.asarray(l, np.float64)) for l in jax.tree.leaves(t)])
    ref = flat(state.server)
    theta = np.stack([flat(jax.tree.map(lambda a: a[i], state.params)) for i in range(P)])
    n = np.asarray(b.one.count_P, np.float64) * ~lost
    want = ref + (n / n.sum()) @ (theta - ref)
    np.testing.assert_allclose(flat(new.server), want, rtol=1e-5, atol=1e-6)
    for i in range(P):                                  # hard reset: every peer restarts from the server
        np.testing.assert_allclose(flat(jax.tree.map(lambda a: a[i], new.params)), want, rtol=1e-5, atol=1e-6)
