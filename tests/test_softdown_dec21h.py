"""softlabel's downlink is charged C * comm.soft_bits bits per probe, so the peers train on the server's
target rounded to those bits (protocols/base.py soft_downlink): caught on its way into local training
(a host callback around distill.local_round) and derived in numpy from the round-start models: each of
A = 5 peers' probabilities rounded to k / 255, their mean, rounded to k / 255 again (vote.quantize_probs'
rule, round half to even; an odd A never puts a mean of levels on a half). The robust aggregators and
privacy (after renormalising) arrive on the same grid; 32 bits trains on the mean as is. The same holds
for selective_fd, whose downlink is charged C * b per kept probe."""
import jax
import numpy as np
import pytest
from conftest import tiny
from test_cfd import _probs, catch_targets

import tallysim
from tallysim.protocols import distill, probe_round
from tallysim.protocols.base import draw_probes, round_keys
from tallysim.sim.fed import pool_examples


def _caught_round(monkeypatch, module, *items):
    """One round of tiny(*items) with 5 peers: (driver, round-start params, x_M, target the peers
    trained on, the probes' labels)."""
    out = catch_targets(monkeypatch, module)
    d = tallysim.drive(tiny("peers=5", "rounds=1", "warmup_epochs=0", *items))
    start = d.state.params
    d.step()
    x_M, target = out[-1]
    ctx, data = d.built.ctx, d.built.one
    keys = round_keys(d.root, 1, d.built.cfg.probe.resample)
    _, y_M = pool_examples(data, draw_probes(ctx, data, keys.probe))
    return d, start, x_M, target, np.asarray(y_M)


def _on_grid(t):
    return np.allclose(t * 255, np.round(t * 255), rtol=0, atol=1e-3)


@pytest.mark.parametrize("bits", [8, 32])
def test_softlabel_peers_train_on_the_rounded_mean(monkeypatch, bits):
    d, start, x_M, target, y_M = _caught_round(monkeypatch, distill, "protocol.name=softlabel",
                                               f"comm.soft_bits={bits}")
    p = _probs(d, start, x_M)                                    # [A, M, C] float64, numpy's own
    if bits == 8:
        levels = np.round(p * 255)                               # what each peer sends: k / 255
        mean = levels.mean(0) / 255                              # the server's mean, on a 1/(255 A) grid
        want = np.round(mean * 255) / 255                        # what it sends down
        assert not _on_grid(mean)           # the case tells the rounded downlink from the unrounded
        assert _on_grid(target)
        np.testing.assert_allclose(target, want, rtol=0, atol=1e-6)
    else:
        np.testing.assert_allclose(target, p.mean(0), rtol=1e-5, atol=1e-6)   # the mean as is
        assert not _on_grid(target)
    # the diagnostic reads what the peers receive (a rounded target may tie: the lowest class wins)
    assert float(d.info["consensus_acc"]) == pytest.approx(np.mean(np.argmax(target, -1) == y_M))
    assert d.bits().down == 64 * 10 * bits                       # M * C * soft_bits, as before


@pytest.mark.parametrize("items", [("softlabel.aggregate=median",),
                                   ("privacy.noise=0.5", "privacy.clip=1.0")])   # mean, renormalised
def test_softlabel_robust_and_private_targets_go_down_at_8_bits(monkeypatch, items):
    # era: tests/test_exchange.py's reference (8 bits, exact); trimmed takes median's path (base.py)
    d, start, x_M, target, _ = _caught_round(monkeypatch, distill, "protocol.name=softlabel",
                                             "comm.soft_bits=8", *items)
    assert _on_grid(target)
    # within half a step of a distribution: rounded after the renormalising, not before
    assert np.all(np.abs(target.sum(-1) - 1) <= target.shape[-1] / 510 + 1e-6)


def test_selective_fd_peers_train_on_the_rounded_mean(monkeypatch):
    d, start, x_M, target, _ = _caught_round(monkeypatch, probe_round, "protocol.name=selective_fd",
                                             "comm.soft_bits=8", "selective_fd.client_threshold=0",
                                             "selective_fd.server_threshold=0")
    mean = np.round(_probs(d, start, x_M) * 255).mean(0) / 255   # every peer shares, every probe kept
    assert not _on_grid(mean)
    np.testing.assert_allclose(target, np.round(mean * 255) / 255, rtol=0, atol=1e-6)


@pytest.mark.slow   # ~25 s (two runs); test_softlabel_peers_train_on_the_rounded_mean is the quick one
def test_softlabel_8_bits_is_topk_soft_with_every_class():
    """topk_soft with k = C and 8 value bits sends softlabel's 8-bit message both ways (its own code,
    topk_soft.quantise): the same run, bit for bit, and the same bits."""
    a = tallysim.drive(tiny("protocol.name=softlabel", "comm.soft_bits=8", "rounds=1"))
    b = tallysim.drive(tiny("protocol.name=topk_soft", "topk_soft.k=10", "topk_soft.value_bits=8", "rounds=1"))
    a.step()
    b.step()
    for x, y in zip(jax.tree.leaves(a.state.params), jax.tree.leaves(b.state.params)):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    assert a.bits().totals() == b.bits().totals()
    assert float(a.info["consensus_acc"]) == float(b.info["consensus_acc"])
