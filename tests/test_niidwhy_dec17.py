"""tally's `tally.target=counts` (docs/matched-bits.md, "Why the vote loses here"): the peers train on
the vote histogram instead of the winner, on the same messages and bits (allgather: every peer has the
votes; star: the server sends the histograms, the same run but for its downlink bits). Checked against a numpy derivation; the degenerate case (a unanimous vote) is tally's target and
loss; refusals."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tallysim
from tallysim import build, config_reads
from tallysim.fields import ConfigError
from tallysim.protocols import tally
from tallysim.sim import comm, exchange
from tallysim.sim.local import hard_label_loss, soft_label_loss

from conftest import tiny


def _histogram_numpy(logits_AxMxC):
    A, M, C = logits_AxMxC.shape
    votes = logits_AxMxC.argmax(-1)                       # numpy: the lowest class on a tie, as jnp
    out = np.zeros((M, C))
    for a in range(A):
        out[np.arange(M), votes[a]] += 1.0 / A
    return out


def test_streamed_histogram_matches_numpy():
    z = np.random.default_rng(1).normal(size=(7, 20, 10)).astype(np.float32)
    z[:, 0] = 0.0                                         # every class tied: each peer votes class 0
    y = jnp.zeros((20,), jnp.int32)
    sums = exchange.stream_sums(lambda rows: jnp.asarray(z)[rows], 7, y, 10, chunk=3, sent_fn=tally.vote_message)
    want = _histogram_numpy(z)
    np.testing.assert_allclose(np.asarray(sums.sent_MxC) / 7, want, atol=1e-6)
    np.testing.assert_allclose(want[0], np.eye(10)[0])    # the tie: class 0, unanimous, one-hot
    assert (np.asarray(sums.sent_MxC) == np.asarray(sums.counts_MxC)).all()   # the vote's own counts


def test_unanimous_histogram_is_the_one_hot_vote_and_its_loss_tallys():
    z = np.random.default_rng(2).normal(size=(16, 10)).astype(np.float32)
    logits = jnp.asarray(np.random.default_rng(3).normal(size=(16, 10)), jnp.float32)
    y = jnp.asarray(z.argmax(-1))
    target = jnp.mean(jnp.stack([tally.vote_message(jax.nn.softmax(jnp.asarray(z)))] * 5), axis=0)
    np.testing.assert_array_equal(np.asarray(target), np.eye(10)[z.argmax(-1)])
    np.testing.assert_allclose(np.asarray(soft_label_loss(1.0)(logits, target)),
                               np.asarray(hard_label_loss(10, 0.0)(logits, y)), rtol=1e-6)
    split = (target + jnp.roll(target, 1, axis=-1)) / 2   # two classes at half each: not the winner's CE
    assert not np.allclose(np.asarray(soft_label_loss(1.0)(logits, split)),
                           np.asarray(hard_label_loss(10, 0.0)(logits, y)), rtol=1e-3)


def test_four_disagreeing_peers_train_on_something_else():
    """Four peers after a warm-up epoch disagree on some probes: there the histogram is not the winner,
    so the models part (the counts path is not tally's hard target under another name); star's counts
    run is allgather's but for the bits."""
    items = ("protocol.name=tally", "comm.topology=allgather", "rounds=1")
    a = tallysim.drive(tiny(*items, "tally.target=counts"))
    b = tallysim.drive(tiny(*items))
    a.step(), b.step()
    assert float(a.info["agreement"]) < 1.0          # the peers disagree somewhere
    assert not all(np.allclose(np.asarray(x), np.asarray(y), atol=1e-3)
                   for x, y in zip(jax.tree.leaves(a.state.params), jax.tree.leaves(b.state.params)))
    # star (the server sends each peer the histograms): the same target, so the same round bit for bit,
    # every parameter (so every accuracy) and every info value (losses, probe diagnostics), other bits
    # (tests/test_votes_dec18b.py counts them)
    star = tallysim.drive(tiny("protocol.name=tally", "rounds=1", "tally.target=counts"))
    star.step()
    for x, y in zip(jax.tree.leaves(star.state), jax.tree.leaves(a.state)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert set(star.info) == set(a.info)
    for k in a.info:
        np.testing.assert_array_equal(np.asarray(star.info[k]), np.asarray(a.info[k]), err_msg=k)
    # star down: each of the 4 peers gets the other 3 votes' histograms, 220 compositions, 8 bits a probe
    assert star.bits().totals() == (4 * 64 * 4, 4 * 64 * 8) != a.bits().totals() == (4 * 64 * 4, 4 * 3 * 64 * 4)


def test_one_peer_trains_as_tally_and_bits_are_allgathers():
    """One peer: its vote is unanimous, so counts trains on tally's target with tally's loss."""
    items = ("protocol.name=tally", "comm.topology=allgather", "peers=1", "rounds=1", "warmup_epochs=0")
    a = tallysim.drive(tiny(*items, "tally.target=counts"))
    b = tallysim.drive(tiny(*items))
    a.step(), b.step()
    for x, y in zip(jax.tree.leaves(a.state.params), jax.tree.leaves(b.state.params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)
    four = build.build(tiny("protocol.name=tally", "comm.topology=allgather", "tally.target=counts"))
    M, A = four.ctx.spec.probes, four.ctx.spec.active
    assert four.protocol.cost({}) == comm.RoundBits(M * 4, (A - 1) * M * 4, A)      # C = 10: 4-bit votes


@pytest.mark.parametrize("items,match", [
    (("vote.ties=random",), "not with vote.ties=random"),      # star (the default): refused for the tie rule alone
    (("comm.topology=allgather", "vote.weighting=history"), "not with vote.weighting=history"),
    (("comm.topology=allgather", "vote.min_agreement=0.5"), "not with vote.min_agreement"),
    (("comm.topology=allgather", "distill.label_smoothing=0.1"), "not with distill.label_smoothing"),
])
def test_refusals_say_what_is_allowed(items, match):
    with pytest.raises(ConfigError, match=match):
        build.build(tiny("protocol.name=tally", "tally.target=counts", *items))


def test_other_protocols_refuse_counts():
    with pytest.raises(ConfigError, match="tally.target='counts' is not read by protocol.name=softlabel \\(only by tally\\)"):
        config_reads.check_read(tiny("protocol.name=softlabel", "tally.target=counts"))    # a single run's check
