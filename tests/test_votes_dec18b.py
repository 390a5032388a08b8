"""tally.target=counts under comm.topology=star (the server sends each peer the vote histograms, coded as
compositions: docs/protocols.md, "tally") and the `tied` diagnostic (the share of probes whose arrived
votes' plurality is shared by two or more classes: docs/protocols.md, "What a metrics row reports").
The bit counts are checked against numbers worked out by hand, not against the formula's code."""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from tallysim import build
from tallysim.sim import comm, vote

from conftest import tiny

COUNTS = ("protocol.name=tally", "tally.target=counts", "rounds=1")


@pytest.mark.parametrize("A,C,per_probe,natural", [
    (3, 10, 8, 20),            # binom(12, 9) = 220 compositions: 128 < 220 <= 256; natural 10 x 2 bits
    (4, 10, 10, 30),           # binom(13, 9) = 715: 512 < 715 <= 1024; natural 10 x ceil(log2 5) = 30
    (10, 10, 17, 40),          # binom(19, 9) = 92,378: 65,536 < 92,378 <= 131,072; natural 10 x 4
    (9, 10, 16, 40),           # the other 9 of 10 votes (star's downlink): binom(18, 9) = 48,620 <= 65,536
    (0, 10, 0, 0),             # no other vote (one peer): one composition, nothing to send
    (1, 10, 4, 10),            # one vote: a one-hot, C = 10 compositions, the winner's 4 bits
    (1, 7, 3, 7),              # one vote in 7 classes: ceil(log2 7) = 3, tally's vote
    (2, 2, 2, 4),              # (2,0), (1,1), (0,2): 3 compositions, 2 bits
])
def test_histogram_bits_against_hand_counts(A, C, per_probe, natural):
    assert comm.histogram_composition(A, C) == per_probe
    assert comm.histogram_natural(A, C) == natural
    assert comm.vote_histograms(5, A, C) == 5 * per_probe           # the cheaper one, per message
    if A == 1:
        assert comm.vote_histograms(1, 1, C) == comm.hard_labels(1, C)


def test_histogram_bits_stay_exact_past_floats():
    # words: 10 votes in 10,004 classes; binom(10013, 10003) = binom(10013, 10) is about 2.8e33, past
    # float64's 2^53: its bit length from Python's exact int, checked against the bounds it must sit between
    n = math.comb(10013, 10)
    bits = comm.histogram_composition(10, 10004)
    assert 2 ** (bits - 1) < n <= 2 ** bits and bits == 112
    assert comm.histogram_natural(10, 10004) == 40016
    # a power of two is its own exponent: 1 vote in 8 classes is 8 compositions, 3 bits, not 4
    assert comm.histogram_composition(1, 8) == 3 and comm.exact_log2_ceil(2 ** 80) == 80


def test_star_counts_bits_up_tallys_down_the_histograms():
    star = build.build(tiny(*COUNTS))
    M, A = star.ctx.spec.probes, star.ctx.spec.active
    assert (M, A, star.ctx.spec.classes) == (64, 4, 10)
    # up: tally's 4-bit vote per probe; down: each peer the other 3 votes' histograms (it adds its own
    # back), 3 votes in 10 classes, 220 compositions, 8 bits per probe (the 4 votes' 715 would be 10)
    assert star.protocol.cost({}) == comm.RoundBits(M * 4, M * 8, A)
    gather = build.build(tiny(*COUNTS, "comm.topology=allgather"))
    assert gather.protocol.cost({}) == comm.RoundBits(M * 4, 3 * M * 4, A)      # unchanged: A - 1 votes
    # dropout: hand counts in tests/test_votes_dec19b.py (the header, then the others' histograms)
    assert star.protocol.cost({"senders": 0}).totals() == (0, 0)


# star's counts run trains as allgather's (the same histograms): tests/test_niidwhy_dec17.py,
# test_four_disagreeing_peers_train_on_something_else, which drives the allgather run already


# ------------------------------------------------------------------------------------------------ tied

def test_tied_counts_a_shared_plurality_among_the_arrived_votes():
    counts = jnp.asarray([[2, 2, 0],      # tied for first
                          [3, 1, 0],      # a clear winner
                          [1, 1, 1],      # a 3-way tie
                          [0, 2, 1],      # a runner-up below the top: not tied
                          [0, 0, 0]],     # no vote arrived: no plurality, not a tie
                         jnp.int32)
    np.testing.assert_array_equal(np.asarray(vote.tied(counts)), [True, False, True, False, False])
    y = jnp.zeros((5,), jnp.int32)
    s = vote.Sums(counts, counts.astype(jnp.float32), None, jnp.float32(0), jnp.int32(0))
    t = vote.tally_counts(counts, 4)
    assert float(vote.finish_diagnostics(s, 4, y, t.winner_M, t.share_M)["tied"]) == pytest.approx(2 / 5)
