"""The private aggregates of a round against the paper's mechanism, computed here in numpy or scipy
(issue 30): GNMax's noise on the counts the server tallies, the soft-label noise on the clipped sum,
Confident-GNMax's unanswered probes weighing 0, the soft-label gate reading only the noised sum,
DP-FedAvg's noise and denominator under dropout, the soft-label epsilon at its tight sensitivity
against the analytic Gaussian, and tiny noise refused."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

from tallysim import privacy
from tallysim.config import ConfigError
from tallysim.sim import vote

# Each test below checks a round's private aggregate against numpy's own computation from the peers'
# models, on one eager probe exchange (nothing is compiled but a tiny init), so that a mechanism that
# forgets its noise, draws the wrong one, or trains on probes it did not answer fails.

def exchange_once(items, same_models=False, spy="tally_counts"):
    """One eager probe exchange of a tiny private run at round 1. Returns (probes, info, what
    `vote.<spy>` received first, each peer's probabilities [P, M, C] and each probe's hidden label)."""
    import tallysim
    from tallysim.protocols import base
    from tallysim.sim.fed import pool_examples, to_input
    d = tallysim.drive(tiny("warmup_epochs=0", "init.shared=false", *items))
    ctx, data, state = d.built.ctx, d.built.one, d.state
    if same_models:                     # every peer holds peer 0's model: they all vote alike
        state = state._replace(params=jax.tree.map(lambda a: jnp.broadcast_to(a[:1], a.shape), state.params))
    keys = base.round_keys(d.root, jnp.int32(1), ctx.cfg.probe.resample)
    seen, orig = [], getattr(vote, spy)

    def record(first, *a, **k):
        seen.append(np.asarray(first, np.float64))
        return orig(first, *a, **k)
    hard = ctx.cfg.protocol.name == "tally"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vote, spy, record)
        probes, info = base.probe_exchange(ctx, state, data, keys, None, hard=hard)
    x_M, y_M = pool_examples(data, base.draw_probes(ctx, data, keys.probe))
    logits = jax.vmap(ctx.model.apply, in_axes=(0, None))(state.params, to_input(x_M))
    return probes, info, seen[0], np.asarray(jax.nn.softmax(logits, -1), np.float64), np.asarray(y_M)


def assert_normal(diff, sigma, what):
    """diff: i.i.d. N(0, sigma^2)? Mean within 4 standard errors, std within 10% (at n = 640 the
    sample std's own error is 2.8%; less at larger n), and a KS test at alpha 1e-4; the seeds are fixed."""
    from scipy import stats
    diff = np.ravel(diff)
    assert abs(diff.mean()) < 4 * sigma / math.sqrt(diff.size), (what, diff.mean())
    assert abs(diff.std() / sigma - 1) < 0.10, (what, diff.std(), sigma)
    assert stats.kstest(diff / sigma, "norm").pvalue > 1e-4, what


def test_gnmax_adds_its_noise_to_the_vote_counts_the_server_tallies():
    """GNMax: the counts tallied are n_c(x) + N(0, sigma^2), n counted here from the peers' argmax."""
    sigma = 3.0
    _, _, noisy, p, _ = exchange_once(["protocol.name=tally", f"privacy.noise={sigma}"])
    clean = np.stack([np.bincount(v, minlength=10) for v in p.argmax(-1).T])      # [M, C]
    assert noisy.shape == clean.shape == (64, 10)
    assert_normal(noisy - clean, sigma, "gnmax")


def test_soft_label_noise_is_on_the_clipped_sum():
    """The soft-label server averages sum_i clip_S(p_i) + N(0, (z S)^2) per value (clipped here in numpy)."""
    z, S = 0.5, 0.8
    _, info, noisy, p, _ = exchange_once(["protocol.name=softlabel", f"privacy.noise={z}", f"privacy.clip={S}"],
                                         spy="soft_targets")
    norms = np.linalg.norm(p.reshape(p.shape[0], -1), axis=1)
    clean = (p * np.minimum(1.0, S / norms)[:, None, None]).sum(0)
    assert_normal(noisy - clean, z * S, "soft-label sum")
    # the gate reads that noised sum: its renormalised mean's top value, averaged over the probes
    mean = np.maximum(noisy / p.shape[0], 0)
    mean = mean / mean.sum(-1, keepdims=True)
    assert float(info["gate_agreement"]) == pytest.approx(mean.max(-1).mean(), rel=1e-5)


def test_confident_gnmax_trains_only_on_the_probes_it_answered():
    """T = 2.5 with a negligible sigma1: a probe is answered iff at least 3 of the 4 peers agree (counted
    here); the others must weigh 0 in the distillation loss, and `kept` is their share."""
    probes, info, _, p, _ = exchange_once(["protocol.name=tally", "privacy.noise=1e-3", "privacy.threshold=2.5",
                                           "privacy.threshold_noise=1e-6"])
    top = np.stack([np.bincount(v, minlength=10) for v in p.argmax(-1).T]).max(-1)
    answered = (top >= 3).astype(np.float32)
    assert 0 < answered.sum() < answered.size                  # the check drops some probes, not all
    np.testing.assert_array_equal(np.asarray(probes.weight_M), answered)
    assert float(info["kept"]) == pytest.approx(answered.mean())


def test_softlabel_gate_reads_the_noised_aggregate_not_the_votes():
    """At noise 1e6 (epsilon ~ 0) peers that all agree and peers that disagree must get the same gate
    bit in the round: the un-noised vote share (1 vs < 0.5) would tell every peer which it was (issue 30)."""
    import tallysim
    d = tallysim.drive(tiny("warmup_epochs=0", "init.shared=false", "rounds=1", "protocol.name=softlabel",
                            "privacy.noise=1e6", "distill.gate=0.5"))
    same = d.state._replace(params=jax.tree.map(lambda a: jnp.broadcast_to(a[:1], a.shape), d.state.params))
    got = {}
    for name, state in (("agree", same), ("disagree", d.state)):
        _, info = d.round_fn(state, d.built.one, d.root, jnp.int32(1))
        got[name] = {k: float(info[k]) for k in ("agreement", "gate_agreement", "distill_factor")}
    assert got["agree"]["agreement"] == 1.0 and got["disagree"]["agreement"] < 0.5       # the data differ ...
    assert got["agree"]["gate_agreement"] == pytest.approx(got["disagree"]["gate_agreement"], abs=1e-4)
    assert got["agree"]["distill_factor"] == got["disagree"]["distill_factor"]          # ... the gate cannot tell


def test_dp_fedavg_noise_is_z_times_clip_over_the_active_peers_under_dropout():
    """McMahan et al. 2018 with two of the four messages lost (faults.kind=dropout, the faulty half):
    x' = x + (sum over the arrived of clip_S(w_i - x) + N(0, (z S)^2)) / A, A = 4 active peers, not the
    2 that arrived. So A (x' - x) - sum_arrived clip_S(u_i), per coordinate, is N(0, (z S)^2)."""
    import tallysim
    z, S = 1.0, 0.05
    d = tallysim.drive(tiny("data.input_shape=8x8x1", "data.train_size=800", "model.width=16", "protocol.name=fedavg",
                            f"privacy.noise={z}", f"privacy.clip={S}", "faults.kind=dropout", "faults.fraction=0.5"))
    lost = np.asarray(d.built.one.faulty_P, bool)
    assert lost.sum() == 2
    flat = lambda t, lead: np.concatenate([np.asarray(a, np.float64).reshape(*lead, -1) for a in jax.tree.leaves(t)], -1)
    x0 = flat(d.state.server, ())
    d.step()
    w, x1 = flat(d.state.params, (4,)), flat(d.state.server, ())
    u = w - x0
    u = u * np.minimum(1.0, S / np.linalg.norm(u, axis=1, keepdims=True))
    residual = 4 * (x1 - x0) - u[~lost].sum(0)
    assert residual.size > 1000
    assert_normal(residual, z * S, "DP-FedAvg")


def analytic_gaussian_epsilon(mu, delta):
    """epsilon at delta of a Gaussian mechanism whose sensitivity is mu standard deviations, exactly
    (Balle and Wang, ICML 2018, Theorem 8: delta(eps) = Phi(mu/2 - eps/mu) - e^eps Phi(-mu/2 - eps/mu))."""
    from scipy.optimize import brentq
    from scipy.stats import norm
    f = lambda eps: norm.cdf(mu / 2 - eps / mu) - math.exp(eps) * norm.cdf(-mu / 2 - eps / mu) - delta
    return brentq(f, 0.0, 500.0)


def test_soft_label_epsilon_uses_the_tight_replace_one_sensitivity():
    """Soft-label messages are non-negative and clipped to S, so replacing one moves the sum by at most
    sqrt(2) S (reached by two messages on disjoint classes), not 2 S. With every peer in every round the
    rounds compose to one Gaussian of mu = sqrt(T) sqrt(2) S / (z S); the run's PLD ledger must give
    that Gaussian's exact epsilon (computed here with scipy, not dp-accounting)."""
    rng = np.random.default_rng(0)
    S, C = 0.7, 6
    a = np.abs(rng.normal(size=(20_000, 3, C))) ** 3                  # non-negative, some far from uniform
    a = a * np.minimum(1.0, S / np.linalg.norm(a.reshape(len(a), -1), axis=1))[:, None, None]
    gap = np.linalg.norm((a[::2] - a[1::2]).reshape(10_000, -1), axis=1)
    assert gap.max() <= math.sqrt(2) * S + 1e-12 and gap.max() > 1.2 * S
    disjoint = np.zeros((2, 3, C))
    disjoint[0, :, 0] = disjoint[1, :, 1] = S / math.sqrt(3)        # norm S each, on disjoint classes
    assert np.linalg.norm(disjoint[0] - disjoint[1]) == pytest.approx(math.sqrt(2) * S)
    from tallysim import config, protocols
    z, T = 1.0, 2
    cfg = config.validate(tiny("protocol.name=softlabel", f"privacy.noise={z}", f"privacy.clip={S}",
                               "privacy.accountant=pld"))
    led = privacy.ledger_for(cfg, protocols.traits("softlabel").privacy, probes=64, active=4)
    led.step(T)
    expected = analytic_gaussian_epsilon(math.sqrt(T) * math.sqrt(2) * S / (z * S), 1e-5)
    assert led.epsilon() == pytest.approx(expected, rel=2e-3)
    assert led.epsilon() < analytic_gaussian_epsilon(math.sqrt(T) * 2 / z, 1e-5)      # the old 2 S bound


@pytest.mark.parametrize("items, match", [
    (["protocol.name=tally", "privacy.noise=1e-300"], r"privacy.noise=1e-300 .*allowed: privacy.noise=0 \(off\) or >= 1e-30"),
    (["protocol.name=tally", "privacy.noise=1", "privacy.threshold=2", "privacy.threshold_noise=1e-300"],
     "privacy.threshold_noise=1e-300"),
    (["protocol.name=softlabel", "privacy.noise=1e-20", "privacy.clip=1e-20"], "privacy.noise \\* privacy.clip"),
    (["protocol.name=fedavg", "privacy.noise=5e-31"], "privacy.noise=5e-31"),
])
def test_tiny_positive_noise_is_refused(items, match):
    """privacy.noise=1e-300 used to pass validation, then divide by zero in the accountant."""
    from tallysim import config
    with pytest.raises(ConfigError, match=match):
        config.validate(tiny(*items))


def test_the_smallest_noise_allowed_is_drawn_and_accounted():
    """At privacy.MIN_NOISE float32 still draws noise and epsilon is finite and positive, sampled or not
    (below ~1e-154 RDP's 1 / z^2 overflows: inf, or 0 under sampling)."""
    assert np.float32(privacy.MIN_NOISE) >= np.finfo(np.float32).tiny           # a normal float32
    for mech in ("votes", "sum", "params"):
        z = privacy.round_noise_multiplier(mech, sigma=privacy.MIN_NOISE, probes=10**6, sigma1=privacy.MIN_NOISE,
                                           noise_multiplier=privacy.MIN_NOISE)
        for active in (10, 5):
            led = privacy.PrivacyLedger(z, 10, active, 1e-5)
            led.step(10**4)
            assert 0 < led.epsilon() < math.inf, (mech, active)
