"""Faulty peers (`faults.*`, tallysim/sim/faults.py) and the robust aggregators (median, trimmed mean).

Each fault kind is checked for what it changes and for leaving the rest alone, against expectations
computed here in numpy (votes, medians, weighted means, bit counts) rather than by the code under
test. Rounds are driven directly on tiny synthetic data so that each configuration compiles one
round; only the fault-free equivalence runs end to end.
"""
import json
import math
from dataclasses import replace
from fractions import Fraction
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY, tiny

from tallysim import cli, config, run, run_files
from tallysim.sim import comm, exchange, faults, vote
from tallysim.config import ConfigError
from tallysim.sim.fed import to_input
from tallysim.sim.peers import State
from tallysim.protocols import make as make_protocol
from tallysim.protocols.base import active_set, probe_exchange, round_keys
from tallysim.sim.fed import cohort_shards

SMALL = ["data.input_shape=8x8x1", "data.train_size=800", "data.test_size=100", "model.width=16",
         "probe.per_round=32", "probe.pool_size=64", "distill.batch_size=32", "ragged_groups=1"]
L = 4                                     # ceil(log2 10) bits per label


def build(*items):
    return run.build(tiny(*SMALL, *items))


def init(b, seed=0, shared=False):
    """(a state, the rounds' root key). The peers' models are drawn in numpy with the model's shapes
    (N(0, 1/fan_in)): a protocol's own init would compile (vmapped inits take seconds on a CPU), and
    nothing here depends on how the peers were initialised. shared: every peer holds the server's."""
    shapes = jax.eval_shape(b.ctx.model.init, jax.random.PRNGKey(0), jnp.zeros((1,) + b.ctx.spec.input_shape))
    rng = np.random.default_rng(seed)
    P = b.ctx.spec.peers
    draw = lambda s, n: rng.normal(0, 1 / math.sqrt(s.shape[0] if len(s.shape) > 1 else 4), (n,) + s.shape)
    params = jax.tree.map(lambda s: jnp.asarray(draw(s, 1 if shared else P).astype(np.float32)), shapes)
    if shared:
        params = jax.tree.map(lambda a: jnp.repeat(a, P, axis=0), params)
    server = jax.tree.map(lambda a: a[0], params) if b.protocol.has_server else None
    state = State(params=params, opt=jax.vmap(b.ctx.tx.init)(params), server=server, error=None)
    return state, jax.random.split(jax.random.PRNGKey(seed))[1]


def peer(tree, i):
    return jax.tree.map(lambda a: np.asarray(a[i]), tree)


def flat(w):
    return np.concatenate([np.ravel(np.asarray(a, np.float64)) for a in jax.tree.leaves(w)])


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def faulty_set(b):
    return np.flatnonzero(np.asarray(b.one.faulty_P)).tolist()


# ---- the configuration ----------------------------------------------------------------------------

BAD = [
    (["faults.kind=byzantine"], "faults.kind='byzantine' is not known; allowed: none, under_trained, label_flip, "
                                "confident_wrong, dropout, straggler"),
    (["faults.fraction=1.5"], "faults.fraction=1.5 is out of range; allowed: [0, 1]"),
    (["faults.fraction=nan"], "faults.fraction=nan must be a finite number; allowed: [0, 1]"),
    (["faults.drop_prob=-0.1"], "faults.drop_prob=-0.1 is out of range; allowed: [0, 1]"),
    (["faults.scale=-1"], "faults.scale=-1.0 is out of range; allowed: [0, 1e+06]"),
    (["faults.target=-2"], "faults.target=-2 is out of range; allowed: -1..2147483647"),
    (["faults.examples=-1"], "faults.examples=-1 is out of range; allowed: 0..2147483647"),
    (["faults.steps=-3"], "faults.steps=-3 is out of range; allowed: 0..2147483647"),
    (["faults.kind=under_trained"], "faults.kind=under_trained needs faults.examples=N"),
    (["faults.kind=under_trained", "faults.examples=5", "faults.redraw=true"],
     "faults.redraw=true with faults.examples=5 is not supported"),
    (["faults.kind=straggler", "protocol.name=tally"], "faults.kind=straggler is not implemented for "
                                                       "protocol.name=tally"),
    (["softlabel.aggregate=mode"], "softlabel.aggregate='mode' is not known; allowed: mean, era, median, trimmed"),
    (["softlabel.trim=0.5"], "softlabel.trim=0.5 is out of range; allowed: [0, 0.5)"),
    (["fedavg.aggregate=bulyan"], "fedavg.aggregate='bulyan' is not known; allowed: mean, median, trimmed, "
                                  "krum, multikrum, geomed, cclip"),
    (["fedavg.trim=-0.1"], "fedavg.trim=-0.1 is out of range; allowed: [0, 0.5)"),
]


@pytest.mark.parametrize("items,expected", BAD, ids=[" ".join(b[0])[:40] for b in BAD])
def test_bad_fault_values_are_one_line_errors(items, expected):
    with pytest.raises(ConfigError) as e:
        config.validate(config.apply_overrides(config.Config(), items))
    assert expected in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_bad_target_class_is_refused_before_anything_compiles(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("compiled before rejecting bad input"))
    code = cli.main(["run", *TINY, "faults.kind=confident_wrong", "faults.fraction=0.5", "faults.target=10",
                     "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "faults.target=10 is not a class of synthetic (10 classes); allowed: -1 (a random wrong class) " \
           "or 0..9" in err


def test_fault_count_reads_the_fraction_as_written():
    cfg = lambda f: config.apply_overrides(config.Config(), [f"faults.fraction={f}", "faults.kind=dropout"])
    assert [faults.count(cfg(f), 10) for f in (0, 0.1, 0.29, 0.3, 0.45, 0.5, 1)] == [0, 1, 2, 3, 4, 5, 10]
    assert faults.count(cfg(0.29), 100) == 29 and faults.count(cfg(0.2), 4) == 0
    assert not faults.enabled(cfg(0.2), 4) and faults.enabled(cfg(0.25), 4)
    assert not faults.enabled(replace(cfg(1.0), faults=replace(cfg(1.0).faults, kind="none")), 4)


def test_fixed_set_is_drawn_from_the_seed_and_redraw_from_the_round():
    c = tiny("faults.kind=label_flip", "faults.fraction=0.5", "peers=10")
    sets = {s: tuple(np.flatnonzero(faults.fixed_set(c, s, 10))) for s in range(6)}
    assert all(len(v) == 5 for v in sets.values()) and len(set(sets.values())) > 1
    assert tuple(np.flatnonzero(faults.fixed_set(c, 3, 10))) == sets[3]              # deterministic
    ctx = SimpleNamespace(cfg=replace(c, faults=replace(c.faults, redraw=True)),
                          spec=SimpleNamespace(peers=10, classes=10))
    data = SimpleNamespace(faulty_P=jnp.asarray(faults.fixed_set(c, 0, 10)))
    root = jax.random.PRNGKey(1)
    per_round = [np.asarray(faults.for_round(ctx, data, root, r, None).faulty_P) for r in (1, 2, 3, 1)]
    assert all(m.sum() == 5 for m in per_round)
    assert np.array_equal(per_round[0], per_round[3]) and not np.array_equal(per_round[0], per_round[1])
    fixed = SimpleNamespace(cfg=c, spec=ctx.spec)
    assert np.array_equal(np.asarray(faults.for_round(fixed, data, root, 2, None).faulty_P), data.faulty_P)


# ---- fraction 0 is the run without faults ------------------------------------------------------------

def test_fraction_zero_equals_the_run_without_faults(tmp_path):
    base = ["protocol.name=tally", "peers=4", "rounds=2", "init.shared=true", "warmup_epochs=0"]   # compile less
    rows = {}
    for name, extra in (("none", []), ("zero", ["faults.kind=confident_wrong", "faults.fraction=0"])):
        out = tmp_path / name
        run.run(tiny(*SMALL, *base, *extra), str(out), progress=False)
        rows[name] = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        for r in rows[name]:
            r.pop("wall_s")
    assert rows["none"] == rows["zero"]
    last = rows["none"][-1]
    assert last["faulty"] == 0 and last["acc_mean_honest"] == last["acc_mean"]
    assert last["vote_acc_honest"] == last["vote_acc"] and last["softavg_acc_honest"] == last["softavg_acc"]
    part = json.loads((tmp_path / "zero" / "partition.json").read_text())
    assert part["faulty_peers"] == []


# ---- the vote: an honest majority wins whatever the rest send ---------------------------------------

def test_unanimous_honest_majority_keeps_the_label():
    """A voters, f <= ceil(A/2) - 1 of them adversarial (random classes, one wrong class, a fixed
    target), in random positions: every probe (a column, each with its own f and attack) keeps y."""
    rng = np.random.default_rng(0)
    C, M, A_MAX = 10, 20, 11
    tally = jax.jit(lambda v, a, k, ties: vote.tally_counts(vote.count_votes(v, C), a, ties, 0.5, k),
                    static_argnums=3)
    for A in range(1, A_MAX + 1):
        cols, ys = [], []
        for f in range(0, math.ceil(A / 2)):                 # up to half minus one adversarial votes
            y = rng.integers(0, C, M)
            for adv in (rng.integers(0, C, (f, M)),                           # random classes
                        np.broadcast_to((y + 1) % C, (f, M)),                 # one wrong class per probe
                        np.zeros((f, M), int)):                               # a fixed target class
                votes = np.concatenate([np.broadcast_to(y, (A - f, M)), adv])
                cols.append(np.take_along_axis(votes, np.argsort(rng.random((A, M)), axis=0), axis=0))
                ys.append(y)
        while len(cols) < 3 * math.ceil(A_MAX / 2):          # one shape for every A: one compile
            cols.append(cols[-1]), ys.append(ys[-1])
        votes, y = np.concatenate(cols, axis=1), np.concatenate(ys)
        votes = np.concatenate([votes, np.full((A_MAX - A, votes.shape[1]), C)])   # rows of C count nothing
        for ties in ("lowest", "random"):
            t = tally(jnp.asarray(votes, jnp.int32), jnp.int32(A), jax.random.PRNGKey(A), ties)
            assert np.array_equal(np.asarray(t.winner_M), y), (A, ties)
            assert np.all(np.asarray(t.keep_M) == 1)                           # share (A-f)/A > 1/2
    # ... and half of the votes can take it: two against two ties, and ties go to the lowest class
    votes = jnp.asarray([[5], [5], [0], [0]], jnp.int32)
    assert int(vote.tally(votes, C).winner_M[0]) == 0


def test_honest_majority_through_the_streamed_exchange_with_confident_wrong_peers():
    """The probe path: honest peers predict y, floor((A-1)/2) confident_wrong peers send the target
    class (one-hot); the streamed sums in chunks keep y, and the honest-only sums are the honest vote."""
    C, M, A = 10, 40, 9
    y = jnp.asarray(np.random.default_rng(1).integers(1, C, M), jnp.int32)
    cfg = tiny("faults.kind=confident_wrong", "faults.fraction=0.5", "faults.target=0")
    ctx = SimpleNamespace(cfg=cfg, spec=SimpleNamespace(classes=C, peers=A, active=A))
    faulty = jnp.asarray(np.arange(A) % 2 == 1)                        # 4 of 9
    fr = faults.RoundFaults(faulty, faulty, None, None, jax.random.PRNGKey(0))
    honest_logits = 3.0 * jax.nn.one_hot(y, C)

    def logits_fn(rows_c):
        z = jnp.broadcast_to(honest_logits, (rows_c.shape[0], M, C))
        return faults.message_logits(ctx, fr, z, rows_c, y)

    for chunk in (2, 9):                                                # 5 chunks, the last padded; one
        s = exchange.stream_sums(logits_fn, A, y, C, 32, chunk, lambda rows: faults.chunk_masks(fr, rows))
        counts = np.asarray(s.counts_MxC)
        assert np.all(counts[np.arange(M), np.asarray(y)] == 5) and np.all(counts[:, 0] == 4)
        t = vote.tally_counts(s.counts_MxC, A)
        assert np.array_equal(np.asarray(t.winner_M), np.asarray(y))
        faulty_sent = np.asarray(s.sent_MxC) - np.asarray(s.honest_probs_MxC)   # what the 4 faulty sent
        assert np.allclose(faulty_sent, 4.0 * np.eye(C)[0], atol=1e-5)          # exactly one-hot, class 0
        d = vote.finish_diagnostics(s, A, y, t.winner_M, t.share_M)
        assert float(d["vote_acc"]) == float(d["vote_acc_honest"]) == 1.0
        assert int(s.honest) == 5 and np.array_equal(np.asarray(s.honest_counts_MxC).argmax(-1), np.asarray(y))


def test_random_wrong_classes_are_never_the_true_class():
    C, M = 10, 2000
    cfg = tiny("faults.kind=confident_wrong", "faults.fraction=0.5")
    ctx = SimpleNamespace(cfg=cfg, spec=SimpleNamespace(classes=C))
    fr = faults.RoundFaults(None, None, None, None, jax.random.PRNGKey(3))
    y = jnp.asarray(np.random.default_rng(2).integers(0, C, M), jnp.int32)
    w = np.asarray(faults.wrong_classes(ctx, fr, jnp.arange(3), y))
    assert w.shape == (3, M) and not np.any(w == np.asarray(y)[None])
    assert not np.array_equal(w[0], w[1])                                   # each peer draws its own
    off = (w - np.asarray(y)[None]) % C
    assert set(np.unique(off)) == set(range(1, C))                          # every wrong class occurs


# ---- robust aggregation against numpy --------------------------------------------------------------

def np_trimmed(x, trim):
    n = x.shape[0]
    k = int(Fraction(str(trim)) * n)                                     # floor(trim * n), trim as written
    return np.sort(x, axis=0)[k:n - k].mean(axis=0)


@pytest.mark.parametrize("A", [1, 2, 5, 6, 10])
def test_coordinate_median_and_trimmed_mean_match_numpy(A):
    rng = np.random.default_rng(A)
    x = rng.normal(size=(A, 7, 3)).astype(np.float32)
    x[0, 0, 0] = 1e6                                                          # an outlier
    np.testing.assert_allclose(vote.coordinate_stat(jnp.asarray(x), None, "median"), np.median(x, 0),
                               rtol=1e-6)
    for trim in (0.0, 0.1, 0.2, 0.3, 0.49):
        np.testing.assert_allclose(vote.coordinate_stat(jnp.asarray(x), None, "trimmed", trim),
                                   np_trimmed(x, trim), rtol=1e-5, atol=1e-6)
    # masked: only the rows that arrived count (their number is traced)
    mask = rng.random(A) < 0.6
    mask[0] = True
    f = jax.jit(lambda v, m, how, t: vote.coordinate_stat(v, m, how, t), static_argnums=(2, 3))
    np.testing.assert_allclose(f(jnp.asarray(x), jnp.asarray(mask), "median", 0.1), np.median(x[mask], 0),
                               rtol=1e-6)
    np.testing.assert_allclose(f(jnp.asarray(x), jnp.asarray(mask), "trimmed", 0.2),
                               np_trimmed(x[mask], 0.2), rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(f(jnp.asarray(x), jnp.zeros(A, bool), "median", 0.1)) == 0)


def test_trim_count_and_robust_soft_labels():
    assert [vote.trim_count(0.1, n) for n in (9, 10, 19, 20, 30)] == [0, 1, 1, 2, 3]
    assert vote.trim_count(0.3, 10) == 3 and vote.trim_count(0.29, 100) == 29
    p = np.array([[[0.7, 0.2, 0.1]], [[0.6, 0.3, 0.1]], [[0.0, 0.0, 1.0]]], np.float32)    # [A=3, M=1, C=3]
    med = np.median(p, 0)
    np.testing.assert_allclose(vote.robust_soft(jnp.asarray(p), None, "median"), med / med.sum(-1, keepdims=True),
                               rtol=1e-6)
    # three peers, three different one-hot messages: every coordinate's median is 0 -> uniform
    oh = np.eye(3, dtype=np.float32)[:, None, :]
    np.testing.assert_allclose(vote.robust_soft(jnp.asarray(oh), None, "median"), np.full((1, 3), 1 / 3))
    tm = np_trimmed(p, 0.34)                                                    # cuts one from each end
    np.testing.assert_allclose(vote.robust_soft(jnp.asarray(p), None, "trimmed", 0.34),
                               tm / tm.sum(-1, keepdims=True), rtol=1e-6)


@pytest.mark.parametrize("how,extra", [("median", ["faults.kind=dropout", "faults.fraction=0.4"]),
                                       ("trimmed", ["softlabel.trim=0.2", "comm.soft_bits=8"])])
def test_softlabel_robust_targets_are_numpy_statistics_of_what_was_sent(how, extra):
    b = build("protocol.name=softlabel", f"softlabel.aggregate={how}", "peers=5", *extra)
    ctx, d = b.ctx, b.one
    state, root = init(b)

    @jax.jit
    def exchange_fn(state, d):
        keys = round_keys(root, 1)
        idx = active_set(ctx, keys.active)                      # every peer: participation 1
        fr = faults.for_round(ctx, d, root, 1, idx)
        probes, info = probe_exchange(ctx, state, d, keys, idx, hard=False, fr=fr)
        return probes, info

    probes, info = exchange_fn(state, d)
    xq = np.asarray(probes.x_M)
    sent = []
    lost = set(faulty_set(b)) if "faults.kind=dropout" in extra else set()
    for i in range(5):
        if i in lost:
            continue
        z = np.asarray(ctx.model.apply(peer(state.params, i), to_input(jnp.asarray(xq))), np.float64)
        pr = np.exp(z - z.max(-1, keepdims=True))
        pr /= pr.sum(-1, keepdims=True)
        sent.append(np.round(pr * 255) / 255 if "comm.soft_bits=8" in extra else pr)
    sent = np.stack(sent)
    stat = np.median(sent, 0) if how == "median" else np_trimmed(sent, 0.2)
    want = stat / stat.sum(-1, keepdims=True)
    got = np.asarray(probes.target_M)
    if "comm.soft_bits=8" in extra:               # and sent down at 8 bits, after the renormalising
        v = want * 255                            # a value within float32 of a half may round either way
        near_half = np.abs(v - np.floor(v) - 0.5) < 1e-4
        want = np.round(v) / 255
        got = np.where(near_half & (np.abs(got * 255 - v) <= 0.5 + 1e-4), want, got)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    if lost:
        assert len(lost) == 2 and int(info["senders"]) == 3
    mean = sent.mean(0)
    assert np.abs(mean - want).max() > 1e-3                                  # not the mean


# ---- bits -------------------------------------------------------------------------------------------

def test_dropout_bits_are_those_of_the_messages_sent():
    """cost(info) by hand for every number of senders s of A active peers (nothing compiles)."""
    P, A, M = 5, 4, 32
    for topology in ("star", "allgather"):
        b = build("protocol.name=tally", f"peers={P}", "participation=0.8", "faults.kind=dropout",
                  "faults.fraction=0.4", f"comm.topology={topology}", "vote.min_agreement=0.5")
        assert b.ctx.spec.active == A
        for s in range(A + 1):
            up, down = b.protocol.cost({"senders": s}).totals()
            assert up == s * M * L
            if topology == "star":
                assert down == (A * (M * L + M) if s else 0)                   # labels + abstention bit
            else:
                assert down == s * (A - 1) * M * L                             # each vote to the others
    b = build("protocol.name=softlabel", "peers=5", "faults.kind=dropout", "faults.fraction=0.4",
              "comm.soft_bits=8")
    assert b.protocol.cost({"senders": 3}).totals() == (3 * M * 10 * 8, 5 * M * 10 * 8)
    assert b.protocol.cost({"senders": 0}).totals() == (0, 0)
    b = build("protocol.name=fedavg", "peers=5", "faults.kind=dropout", "faults.fraction=0.4")
    W = b.ctx.num_params
    assert b.protocol.cost({"senders": 2}).totals() == (2 * 32 * W, 5 * 32 * W)   # the broadcast reached all
    b = build("protocol.name=bridge", "peers=5", "faults.kind=dropout", "faults.fraction=0.4",
              "bridge.density=0.1", "bridge.period=1")
    k = math.ceil(0.1 * W)
    code = lambda n: min(n * (32 + math.ceil(math.log2(W))), W + 32 * n, 32 * W)
    bits = b.protocol.cost({"senders": 3, "merge_senders": 3, "merged": 1, "nnz": 40})
    assert bits.totals() == (3 * M * L + 3 * code(k), 5 * M * L + 5 * code(40))
    # no dropout: the per-peer form of before, unchanged
    b = build("protocol.name=tally", "peers=5")
    assert b.protocol.cost({}) == comm.RoundBits(M * L, M * L, 5)
    assert b.protocol.cost({}).totals() == (5 * M * L, 5 * M * L)


@pytest.mark.slow
def test_dropout_run_ledger_counts_only_the_votes_sent(tmp_path):
    """A whole run: floor(0.5 * 4) = 2 peers never get a vote through (drop_prob 1, fixed set)."""
    rows = []
    out = tmp_path / "o"
    run.run(tiny(*SMALL, "protocol.name=tally", "peers=4", "rounds=3", "eval_every=3", "faults.kind=dropout",
                 "faults.fraction=0.5", "init.shared=true", "warmup_epochs=0"), str(out), progress=False)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    M = 32
    assert rows[0]["bits_up"] == 3 * 2 * M * L and rows[0]["bits_down"] == 3 * 4 * M * L
    assert rows[0]["faulty"] == 2
    assert rows[0]["vote_acc_honest"] == rows[0]["vote_acc"]                  # honest = the votes that arrived
    part = json.loads((out / "partition.json").read_text())
    assert len(part["faulty_peers"]) == 2


# ---- each kind changes what it should, and nothing else --------------------------------------------

def test_fedavg_dropout_aggregates_only_the_models_that_arrived():
    b = build("protocol.name=fedavg", "peers=5", "participation=0.8", "partition.kind=dirichlet",
              "partition.alpha=0.5", "partition.min_size=1", "faults.kind=dropout", "faults.fraction=0.4")
    state, keys = init(b, shared=True)
    step = jax.jit(b.protocol.round)
    bad = set(faulty_set(b))
    counts = np.asarray(b.one.count_P, np.float64)
    for r in (1, 2, 3):
        new, info = step(state, b.one, keys, jnp.int32(r))
        act = np.asarray(active_set(b.ctx, round_keys(keys, r).active)).tolist()
        arrived = [i for i in act if i not in bad]
        assert int(info["senders"]) == len(arrived) and int(info["faulty"]) == len(act) - len(arrived)
        if arrived:
            w = counts[arrived] / counts[arrived].sum()
            want = sum(wi * flat(peer(new.params, i)) for wi, i in zip(w, arrived))
        else:
            want = flat(state.server)
        np.testing.assert_allclose(flat(new.server), want, rtol=1e-5, atol=1e-6)
        state = new


def test_confident_wrong_fedavg_sends_the_scaled_flipped_update_and_median_resists_it(fusion_emitters):
    items = ["protocol.name=fedavg", "peers=5", "fedavg.aggregate=median", "faults.kind=confident_wrong",
             "faults.fraction=0.4", "faults.scale=3"]
    b = build(*items)
    clean = make_protocol(replace(b.ctx, cfg=replace(b.cfg, faults=replace(b.cfg.faults, kind="none"))))
    state, keys = init(b, shared=True)
    new, info = jax.jit(b.protocol.round)(state, b.one, keys, jnp.int32(1))
    ref, _ = jax.jit(clean.round)(state, b.one, keys, jnp.int32(1))
    assert same(new.params, ref.params)                       # the peers train exactly as without faults
    bad = faulty_set(b)
    assert len(bad) == 2 and int(info["faulty"]) == 2
    server = flat(state.server)
    sent = np.stack([server - 3 * (flat(peer(new.params, i)) - server) if i in bad else flat(peer(new.params, i))
                     for i in range(5)])
    np.testing.assert_allclose(flat(new.server), np.median(sent, 0), rtol=1e-5, atol=1e-6)
    trained = np.stack([flat(peer(new.params, i)) for i in range(5)])
    np.testing.assert_allclose(flat(ref.server), np.median(trained, 0), rtol=1e-5, atol=1e-6)
    # the two attackers move the median less than they would move the (unweighted) mean
    shift = lambda f: np.linalg.norm(f(sent, 0) - f(trained, 0))
    assert shift(np.median) < 0.5 * shift(np.mean)


def test_straggler_sends_its_previous_model():
    b = build("protocol.name=fedavg", "peers=4", "partition.kind=dirichlet", "partition.alpha=0.5",
              "partition.min_size=1", "faults.kind=straggler", "faults.fraction=0.5")
    state, keys = init(b, shared=True)
    step = jax.jit(b.protocol.round)
    bad = faulty_set(b)
    w = np.asarray(b.one.count_P, np.float64)
    w /= w.sum()
    for r in (1, 2):
        new, _ = step(state, b.one, keys, jnp.int32(r))
        sent = [flat(peer(state.params if i in bad else new.params, i)) for i in range(4)]
        np.testing.assert_allclose(flat(new.server), sum(wi * s for wi, s in zip(w, sent)), rtol=1e-5, atol=1e-6)
        if r == 1:          # before its first round a straggler's previous model is the shared init
            assert np.allclose(sent[bad[0]], flat(state.server))
        state = new


def test_label_flip_changes_only_the_faulty_peers_training_labels(fusion_emitters):
    b = build("protocol.name=local", "peers=4", "faults.kind=label_flip", "faults.fraction=0.5")
    bad = faulty_set(b)
    assert len(bad) == 2
    clean = make_protocol(replace(b.ctx, cfg=replace(b.cfg, faults=replace(b.cfg.faults, kind="none"))))
    d = b.one
    y = np.asarray(d.y_train).copy()
    for i in bad:                                  # the same data, the faulty shards relabelled c -> c+1
        rows = np.asarray(cohort_shards(d, None)[i])[:int(d.count_P[i])]
        y[rows] = (y[rows] + 1) % 10
    d_flipped = d._replace(y_train=jnp.asarray(y))
    state, keys = init(b)
    flipped, info = jax.jit(b.protocol.round)(state, d, keys, jnp.int32(1))
    step = jax.jit(clean.round)
    honest, _ = step(state, d, keys, jnp.int32(1))
    relabelled, _ = step(state, d_flipped, keys, jnp.int32(1))
    for i in range(4):
        assert same(peer(flipped.params, i), peer(relabelled.params, i)), i     # = training on flipped labels
        assert same(peer(flipped.params, i), peer(honest.params, i)) == (i not in bad), i
    assert int(info["faulty"]) == 2


def test_under_trained_cuts_the_faulty_shards_and_their_steps(tmp_path):
    items = ["protocol.name=local", "peers=4", "faults.fraction=0.5", "batch_size=16"]
    b = build(*items, "faults.kind=under_trained", "faults.examples=20", "faults.steps=1")
    b0 = build(*items)
    bad = faulty_set(b)
    n0, n = np.asarray(b0.one.count_P), np.asarray(b.one.count_P)
    for i in range(4):
        s0 = set(np.asarray(cohort_shards(b0.one, None)[i])[:n0[i]].tolist())
        s = set(np.asarray(cohort_shards(b.one, None)[i])[:n[i]].tolist())
        if i in bad:
            assert n[i] == 20 < n0[i] and s < s0                  # a subset of its own shard
        else:
            assert n[i] == n0[i] and s == s0
    # partition.json as a run writes it (without compiling anything)
    run_files.write_run_files(b, 0, tmp_path, 1)
    part = json.loads((tmp_path / "partition.json").read_text())
    assert part["shard_sizes"] == n.tolist() and part["faulty_peers"] == bad
    assert [sum(c) for c in part["class_counts"]] == n.tolist()
    state, keys = init(b)
    new, info = jax.jit(b.protocol.round)(state, b.one, keys, jnp.int32(1))
    steps = [1 if i in bad else -(-int(n[i]) // 16) for i in range(4)]      # one epoch, batches of 16
    assert int(info["steps_real"]) == sum(steps)
    assert int(info["faulty"]) == 2


def test_confident_wrong_votes_and_the_honest_diagnostics():
    b = build("protocol.name=tally", "peers=5", "faults.kind=confident_wrong", "faults.fraction=0.4",
              "faults.target=3", "probe.pool_size=32")
    state, keys = init(b)
    new, info = jax.jit(b.protocol.round)(state, b.one, keys, jnp.int32(1))
    bad = faulty_set(b)
    d = b.one
    xq = np.asarray(d.x_train)[np.asarray(d.pool_Q)]             # M = pool: every pool example is a probe
    yq = np.asarray(d.y_train)[np.asarray(d.pool_Q)]
    logits = np.stack([np.asarray(b.ctx.model.apply(peer(state.params, i), to_input(jnp.asarray(xq))), np.float64)
                       for i in range(5)])
    votes = logits.argmax(-1)
    sent = np.where(np.isin(np.arange(5), bad)[:, None], 3, votes)
    count = lambda v: np.stack([np.bincount(col, minlength=10) for col in v.T])
    winner, honest_winner = count(sent).argmax(1), count(votes[[i for i in range(5) if i not in bad]]).argmax(1)
    assert float(info["vote_acc"]) == pytest.approx(np.mean(winner == yq))
    assert float(info["vote_acc_honest"]) == pytest.approx(np.mean(honest_winner == yq))
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    honest_probs = probs[[i for i in range(5) if i not in bad]].sum(0)
    assert float(info["softavg_acc_honest"]) == pytest.approx(np.mean(honest_probs.argmax(-1) == yq))
    assert float(info["consensus_acc"]) == pytest.approx(np.mean(winner == yq))
    assert int(info["faulty"]) == 2
