"""Byzantine robustness wired into the protocols: fedavg.aggregate=krum|multikrum|geomed|cclip and
fedavg.pre=bucketing|nnm on a driven FedAvg round against numpy derivations from the peers' trained
models; faults.kind=sign_flip|gaussian|alie|ipm (parameters) and least_likely (predictions), each
message against its formula; fraction 0 changes nothing; one-line refusals.

Every peer takes part, so each peer's params after the round are the model it trained; an honest peer
sends it, a faulty one sends the attack of faults.py. The numpy side works in float64 on flat vectors
and uses nothing of tallysim's aggregation."""
from statistics import NormalDist
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

import tallysim
from tallysim import config, validation
from tallysim.config import ConfigError
from tallysim.sim import faults, lanes

P = 6
BASE = ["peers=6", "data.input_shape=6x6x1", "data.train_size=600", "model.width=8", "rounds=1",
        "partition.kind=dirichlet", "partition.alpha=0.5", "protocol.name=fedavg"]


def flat(tree):
    return np.concatenate([np.asarray(a, np.float64).reshape(-1) for a in jax.tree.leaves(tree)])


def flat_P(tree):
    return np.concatenate([np.asarray(a, np.float64).reshape(P, -1) for a in jax.tree.leaves(tree)], 1)


def one_round(*items):
    """(round-start server x, trained models w [P, D], the new server, faulty mask, shard weights)."""
    d = tallysim.drive(tiny(*BASE, *items))
    x = flat(d.state.server)
    d.step()
    c = np.asarray(d.built.one.count_P, np.float64)
    return x, flat_P(d.state.params), flat(d.state.server), np.asarray(d.built.one.faulty_P), c / c.sum()


# ----------------------------------------------------------------------------- numpy rules on updates

def np_krum(u, f, m):
    n = len(u)
    d = ((u[:, None] - u[None]) ** 2).sum(-1)
    score = [np.sort(np.delete(d[i], i))[:max(n - f - 2, 1)].sum() for i in range(n)]
    return u[np.argsort(score)[:m]].mean(0)


def np_geomed(u, w, iters=500):
    z = w @ u
    for _ in range(iters):
        b = w / np.maximum(1e-6, np.linalg.norm(u - z, axis=1))
        z = b @ u / b.sum()
    return z


def np_cclip(u, tau, iters):
    v = np.zeros(u.shape[1])
    for _ in range(iters):
        d = u - v
        v = v + np.mean(d * np.minimum(1, tau / np.linalg.norm(d, axis=1))[:, None], 0)
    return v


def np_nnm(u, f):
    d = ((u[:, None] - u[None]) ** 2).sum(-1)
    return np.stack([u[np.argsort(d[i], kind="stable")[:len(u) - f]].mean(0) for i in range(len(u))])


@pytest.mark.parametrize("items, rule", [
    (["protocol.name=fedavg", "fedavg.aggregate=krum", "fedavg.f=1"], lambda u, w: np_krum(u, 1, 1)),
    pytest.param(["fedavg.aggregate=multikrum", "fedavg.f=1", "fedavg.m=3"], lambda u, w: np_krum(u, 1, 3),
                 marks=pytest.mark.slow),
    (["fedavg.aggregate=geomed", "fedavg.geomed_iters=300"], lambda u, w: np_geomed(u, w)),
    (["fedavg.aggregate=cclip", "fedavg.tau=0.3", "fedavg.clip_iters=3"], lambda u, w: np_cclip(u, 0.3, 3)),
    (["fedavg.aggregate=mean", "fedavg.pre=nnm", "fedavg.f=2"], lambda u, w: np_nnm(u, 2).mean(0)),
    pytest.param(["fedavg.aggregate=mean", "fedavg.pre=bucketing", "fedavg.bucket=2"], lambda u, w: u.mean(0),
                 marks=pytest.mark.slow),
])
def test_robust_aggregate_of_a_driven_round_matches_numpy(items, rule):
    x, w, server, _, weight = one_round(*items)
    u = w - x[None]
    want = x + rule(u, weight)
    np.testing.assert_allclose(server, want, rtol=1e-4, atol=2e-5)
    assert np.abs(server - (x + weight @ u)).max() > 1e-5 or "bucketing" in items[1]   # not the mean


def test_krum_default_f_is_the_faulty_count_and_it_rejects_sign_flipped_models():
    x, w, server, faulty, _ = one_round("fedavg.aggregate=krum", "faults.kind=sign_flip",
                                        "faults.fraction=0.34", "faults.scale=4")
    assert faulty.sum() == 2
    u = w - x[None]
    sent = np.where(faulty[:, None], -4 * u, u)
    np.testing.assert_allclose(server, x + np_krum(sent, 2, 1), rtol=1e-4, atol=2e-5)
    chosen = np.argmin(np.abs(sent - (server - x)[None]).sum(1))
    assert not faulty[chosen]


# ----------------------------------------------------------------------------- attacks

def honest_moments(u, faulty):
    h = u[~faulty]
    return h.mean(0), h.std(0)


@pytest.mark.parametrize("kind, items", [("sign_flip", ["faults.scale=2"]), ("alie", []),
                                         pytest.param("alie", ["faults.z=0.7"], marks=pytest.mark.slow),
                                         ("ipm", ["faults.eps=0.5"])])
def test_parameter_attack_message_matches_its_formula(kind, items):
    x, w, server, faulty, weight = one_round(f"faults.kind={kind}", "faults.fraction=0.34", *items)
    u = w - x[None]
    mu, sd = honest_moments(u, faulty)
    if kind == "sign_flip":
        bad = -2 * u
    elif kind == "alie":
        n, f = P, int(faulty.sum())
        z = 0.7 if items else NormalDist().inv_cdf((n - (n // 2 + 1 - f)) / n)     # Baruch et al.'s z_max
        bad = np.broadcast_to(mu - z * sd, u.shape)
    else:
        bad = np.broadcast_to(-0.5 * mu, u.shape)
    sent = np.where(faulty[:, None], bad, u)
    np.testing.assert_allclose(server, x + weight @ sent, rtol=1e-4, atol=2e-5)
    assert np.abs(server - (x + weight @ u)).max() > 1e-4          # the attack did change the aggregate


def test_gaussian_attack_sends_server_plus_noise_of_sigma():
    x, w, server, faulty, weight = one_round("faults.kind=gaussian", "faults.fraction=0.34", "faults.sigma=0.5")
    u = w - x[None]
    noise = server - x - weight[~faulty] @ u[~faulty]              # sum over the faulty of w_j * n_j
    std = 0.5 * np.sqrt(np.sum(weight[faulty] ** 2))
    assert abs(noise.mean()) < 4 * std / np.sqrt(noise.size)
    assert abs(noise.std() / std - 1) < 0.15


def test_alie_default_z_is_traced_from_the_faulty_count():
    for n, f in [(6, 1), (6, 2), (20, 4), (20, 9), (5, 0)]:
        from tallysim.sim import attacks
        assert float(faults.alie_z(n, jnp.int32(f))) == pytest.approx(attacks.alie_z(n, f), abs=1e-5)


def test_least_likely_sends_a_one_hot_of_the_peers_least_likely_class():
    z = jax.random.normal(jax.random.PRNGKey(3), (4, 5, 7))
    fr = faults.RoundFaults(None, jnp.asarray([True, False, True, False]), None, None, jax.random.PRNGKey(0))
    ctx = SimpleNamespace(cfg=config.apply_overrides(config.Config(), ["faults.kind=least_likely",
                                                                       "protocol.name=tally"]),
                          spec=SimpleNamespace(classes=7))
    out = np.asarray(jax.nn.softmax(faults.message_logits(ctx, fr, z, jnp.arange(4), jnp.zeros(5, jnp.int32)), -1))
    want = np.eye(7)[np.asarray(jnp.argmin(z, -1))]
    np.testing.assert_array_equal(out[[0, 2]], want[[0, 2]])
    np.testing.assert_allclose(out[[1, 3]], np.asarray(jax.nn.softmax(z, -1))[[1, 3]], rtol=1e-6)


def test_least_likely_majority_breaks_the_vote_the_honest_vote_does_not_see():
    d = tallysim.drive(tiny("protocol.name=tally", "faults.kind=least_likely", "faults.fraction=0.75"))
    d.step()
    assert int(d.info["faulty"]) == 3
    assert float(d.info["vote_acc"]) < 0.2 < float(d.info["vote_acc_honest"])


ATTACKS = {"fedavg": faults.PARAM_ATTACKS, "tally": ("least_likely",), "softlabel": ("least_likely",),
           "bridge": ("least_likely",)}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_fraction_zero_attack_is_the_fault_free_program(name):
    none = tiny(f"protocol.name={name}", "peers=6")
    for kind in ATTACKS[name]:
        cfg = config.validate(tiny(f"protocol.name={name}", "peers=6", f"faults.kind={kind}", "faults.fraction=0.1"))
        assert not faults.enabled(cfg, 6)                          # floor(0.1 * 6) = 0
        assert lanes.signature(cfg) == lanes.signature(config.validate(none))


@pytest.mark.slow          # the signature test above already shows it is the same program
def test_fraction_zero_alie_round_equals_the_fault_free_round():
    a = tallysim.drive(tiny(*BASE, "fedavg.aggregate=krum"))
    b = tallysim.drive(tiny(*BASE, "fedavg.aggregate=krum", "faults.kind=alie", "faults.fraction=0"))
    a.step()
    b.step()
    for x, y in zip(jax.tree.leaves(a.state.server), jax.tree.leaves(b.state.server)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ----------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("items, match", [
    (["protocol.name=tally", "faults.kind=alie"], "faults.kind=alie attacks parameter updates"),
    (["protocol.name=local", "faults.kind=sign_flip"], "faults.kind=sign_flip attacks parameter updates"),
    (["protocol.name=fedavg", "faults.kind=least_likely"], "faults.kind=least_likely attacks probe"),
    (["protocol.name=feddf", "faults.kind=least_likely"], "faults.kind=least_likely attacks probe"),
    (["protocol.name=fedavg", "fedavg.f=4"], r"fedavg.f=4 .* allowed: 0..3"),
    (["protocol.name=fedavg", "fedavg.m=5"], r"fedavg.m=5 .* allowed: 1..4"),
    # the robust rules' assumptions (tallysim/robust_checks.py); tiny() has 4 peers
    (["protocol.name=fedavg", "fedavg.aggregate=krum", "peers=2"], r"Krum \(Blanchard et al. 2017\) assumes n > 2f \+ 2 models, at least 3"),
    (["protocol.name=fedavg", "fedavg.aggregate=krum", "fedavg.f=1"], r"fedavg.f=1 with 4 active peers: .*n > 2f \+ 2; allowed: fedavg.f 0..0"),
    (["protocol.name=fedprox", "fedavg.aggregate=multikrum", "fedavg.f=2", "peers=12", "participation=0.5"], r"allowed: fedavg.f 0..1"),
    (["protocol.name=fedavg", "fedavg.aggregate=krum", "fedavg.pre=bucketing", "fedavg.bucket=2"], r"2 buckets .* allowed: fedavg.bucket 1..1"),
    (["protocol.name=fedavgm", "fedavg.aggregate=multikrum", "faults.kind=sign_flip", "faults.fraction=1", "peers=6"],
     r"m = n - f models, none with every one of the 6 active peers faulty"),
    (["protocol.name=fedavg", "fedavg.aggregate=geomed", "fedavg.pre=bucketing", "fedavg.bucket=5"], r"one bucket, so .*geomed returns their "
                                                                               r"mean .* allowed: fedavg.bucket 1..3"),
    (["protocol.name=fedavg", "fedavg.aggregate=multikrum", "fedavg.pre=bucketing", "peers=6", "fedavg.m=4"], r"than the 3 buckets .* 1..3"),
    (["fedavg.aggregate=bulyan"], "fedavg.aggregate='bulyan' is not known"),
    (["fedavg.pre=clip"], "fedavg.pre='clip' is not known"),
])
def test_refusals_are_one_line(items, match):
    with pytest.raises(ConfigError, match=match) as e:
        validation.validate(tiny(*items))
    assert "\n" not in str(e.value)


def test_krum_past_its_assumption_by_the_faults_is_a_warning_and_within_it_none():
    """f read from the faults past n > 2f + 2 is allowed (a measurement past the breakdown point, the
    robustness study's fraction 0.45) with one line; within it, and the cases refused above, nothing."""
    past = validation.validate(tiny(*BASE, "fedavg.aggregate=krum", "faults.kind=ipm", "faults.fraction=0.34"))
    assert [w for w in validation.warnings(past) if "Blanchard" in w] == [
        "fedavg.aggregate=krum with f=2 faulty of n=6 models: past Krum's assumption n > 2f + 2 (Blanchard et "
        "al. 2017), so it guarantees nothing here"]
    within = validation.validate(tiny(*BASE, "peers=7", "fedavg.aggregate=krum", "faults.kind=ipm", "faults.fraction=0.2"))
    assert not [w for w in validation.warnings(within) if "Blanchard" in w]      # f = 1, n = 7 > 4
    mean = validation.validate(tiny(*BASE, "faults.kind=ipm", "faults.fraction=0.5"))
    assert not [w for w in validation.warnings(mean) if "Blanchard" in w]


# ----------------------------------------------------------------------------- the study

def test_worst_case_is_the_minimum_over_attacks_per_cell():
    from tallysim.figures import robustness
    cells = {("krum", 0.5, 0.0): {"alie": 0.8, "ipm": 0.8}, ("krum", 0.5, 0.2): {"alie": 0.3, "ipm": 0.6},
             ("mean", 0.5, 0.2): {"alie": 0.7, "ipm": 0.2}}
    worst = robustness.worst_of(cells)
    assert worst[("krum", 0.5, 0.2)] == ("alie", 0.3) and worst[("mean", 0.5, 0.2)] == ("ipm", 0.2)
    md = robustness.markdown(["krum", "mean"], [0.5], [0.0, 0.2], worst)
    assert "| krum | 0.800 | 0.300 (alie) |" in md and "| mean |  | 0.200 (ipm) |" in md


@pytest.mark.slow          # make ci-figures runs the study's smoke size
def test_tiny_robustness_study_end_to_end(tmp_path):
    import csv
    import json
    from tallysim import figures
    spec = {"kind": "robustness", "title": "tiny study",
            "base": {"peers": 3, "rounds": 1, "probe": {"per_round": 32, "pool_size": 100},
                     "data": {"name": "synthetic", "train_size": 600, "test_size": 100}, "model": {"width": 8},
                     "partition": {"kind": "dirichlet", "alpha": 0.5, "min_size": 2}},
            "groups": {"fedavg (krum)": {"protocol": {"name": "fedavg"}, "fedavg": {"aggregate": "krum"},
                                         "sweep": {"faults.kind": ["sign_flip", "ipm"]}}},
            "sweep": {"faults.fraction": [0.34], "partition.alpha": [0.5, 100]}, "smoke": {}}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(spec))
    out = figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(tmp_path / "fig"),
                              progress=False, log=lambda m: None)
    rows = list(csv.DictReader(open(out["csv"])))
    assert len(rows) == 4 and {r["attack"] for r in rows} == {"sign_flip", "ipm"}
    for alpha in ("0.5", "100.0"):
        cell = [r for r in rows if r["alpha"] == alpha]
        low = min(cell, key=lambda r: float(r["accuracy"]))
        assert all(r["worst_accuracy"] == low["accuracy"] and r["worst_attack"] == low["attack"] for r in cell)
        assert f"{float(low['accuracy']):.3f} ({low['attack']})" in open(out["table"]).read()
    assert pathlib_size(out["png"]) > 1000


def pathlib_size(p):
    from pathlib import Path
    return Path(p).stat().st_size


# ----------------------------------------------------------------------------- prediction aggregators

def test_margin_vote_abstains_where_top_minus_runner_up_is_narrow():
    from tallysim.sim import vote
    rng = np.random.default_rng(0)
    votes = rng.integers(0, 4, size=(9, 40))
    counts = np.stack([np.bincount(v, minlength=4) for v in votes.T])            # [M, C]
    s = np.sort(counts, 1)
    kept = {}
    for m in (0.0, 1 / 9, 2 / 9, 0.5):
        t = vote.tally_counts(jnp.asarray(counts, jnp.float32), 9, min_margin=m)
        want = (s[:, -1] - s[:, -2]) / 9 >= m - 1e-9
        np.testing.assert_array_equal(np.asarray(t.keep_M) > 0, want)
        np.testing.assert_array_equal(np.asarray(t.winner_M), counts.argmax(1))
        kept[m] = want.mean()
    assert kept[0.0] == 1.0 and 0 < kept[2 / 9] < kept[1 / 9] < 1     # the inputs exercise the rule


def test_margin_vote_in_a_tally_round_costs_one_abstention_bit_per_probe():
    d = tallysim.drive(tiny("protocol.name=tally", "vote.min_margin=0.5"))
    d.step()
    plain = tallysim.drive(tiny("protocol.name=tally"))
    assert d.bits().down == plain.protocol.cost({}).down + 64
    assert float(d.info["kept"]) < 1.0


def np_trust_round(trust, votes, C, beta):
    """sim/trust.py's rule in numpy: (winner, new trust) for every peer active and every vote sent."""
    A, M = votes.shape
    w = trust * A / trust.sum()
    counts = np.zeros((M, C))
    for i in range(A):
        counts[np.arange(M), votes[i]] += w[i]
    winner = counts.argmax(1)
    return winner, beta * trust + (1 - beta) * (votes == winner[None]).mean(1)


def test_history_weighted_vote_over_two_rounds_matches_numpy():
    from tallysim.protocols import base
    from tallysim.sim.fed import pool_examples
    d = tallysim.drive(tiny("protocol.name=tally", "peers=5", "vote.weighting=history", "vote.history=0.6",
                            "faults.kind=least_likely", "faults.fraction=0.4", "data.num_classes=4"))
    ctx, data = d.built.ctx, d.built.one
    faulty = np.asarray(data.faulty_P)
    trust = np.ones(5)
    np.testing.assert_array_equal(np.asarray(d.state.extra["trust_P"]), trust)
    for r in (1, 2):
        keys = base.round_keys(d.root, r, ctx.cfg.probe.resample)
        x_M, _ = pool_examples(data, base.draw_probes(ctx, data, keys.probe))
        z = np.asarray(base.predict_probes(ctx, d.state.params, x_M))
        votes = np.where(faulty[:, None], z.argmin(-1), z.argmax(-1))
        winner, trust = np_trust_round(trust, votes, 4, 0.6)
        d.step()
        np.testing.assert_allclose(np.asarray(d.state.extra["trust_P"]), trust, rtol=1e-5)
    assert trust[faulty].max() < trust[~faulty].min()          # the least-likely voters lost weight


def test_history_weighting_is_refused_outside_tally():
    with pytest.raises(ConfigError, match="vote.weighting=history is implemented for protocol.name=tally only"):
        validation.validate(tiny("protocol.name=softlabel", "vote.weighting=history"))
