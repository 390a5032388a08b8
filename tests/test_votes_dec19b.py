"""Star counts (tally.target=counts, comm.topology=star) send each peer the histograms of the votes it
lacks, not of all A (protocols/tally.py, histogram_senders; docs/protocols.md, "tally"): a peer knows
its own vote and adds it back, so the downlink is the compositions of A-1 votes, 16 bits a probe at
A = C = 10 where all A's took 17. Under dropout the server first says how many votes the histograms
hold and whether the peer's own arrived (one of 2A-1 pairs), then sends the S-1 others to a peer whose
vote arrived and all S to one whose vote was lost. The target, so every parameter and info value, is
the one it was: tests/test_niidwhy_dec17.py::test_four_disagreeing_peers_train_on_something_else
checks star's state and info against allgather's, whose bits and target this change leaves alone.
Bits are checked against hand counts, not the formula's code."""
from __future__ import annotations

import math

import numpy as np

from tallysim import build
from tallysim.sim import comm

from conftest import tiny

COUNTS = ("protocol.name=tally", "tally.target=counts", "rounds=1")


def test_ten_peers_in_ten_classes_receive_16_bits_a_probe_not_17():
    b = build.build(tiny(*COUNTS, "peers=10"))
    M, A, C = b.ctx.spec.probes, b.ctx.spec.active, b.ctx.spec.classes
    assert (A, C) == (10, 10)
    # the other 9 votes: binom(18, 9) = 48,620 compositions, 32,768 < 48,620 <= 65,536: 16 bits
    assert b.protocol.cost({}) == comm.RoundBits(M * 4, M * 16, A)


def test_one_active_peer_receives_nothing():
    # participation 0.25 of 4 peers: one voter, whose own vote is the whole histogram
    b = build.build(tiny(*COUNTS, "participation=0.25"))
    assert b.ctx.spec.active == 1 and b.protocol.cost({}) == comm.RoundBits(b.ctx.spec.probes * 4, 0, 1)


def test_dropout_the_arrived_get_the_others_the_lost_get_all():
    b = build.build(tiny(*COUNTS, "faults.kind=dropout", "faults.fraction=0.5", "faults.drop_prob=0.5"))
    M, A = b.ctx.spec.probes, b.ctx.spec.active
    assert (M, A) == (64, 4)
    head = 3        # (S-1, arrived) for S-1 in 0..3, (S, lost) for S in 1..3: 7 pairs, 3 bits
    per = {0: 0, 1: 4, 2: 6, 3: 8}     # bits a probe of a histogram of n votes in 10 classes: 1, 10, 55, 220
    for S, down in ((4, 4 * (head + M * per[3])),                                 # every vote arrived
                    (3, 3 * (head + M * per[2]) + 1 * (head + M * per[3])),      # 3 arrived, 1 lost
                    (2, 2 * (head + M * per[1]) + 2 * (head + M * per[2])),
                    (1, 1 * (head + 0) + 3 * (head + M * per[1])),                # the one arrived: nothing more
                    (0, 0)):                                                      # no vote: nothing sent
        assert b.protocol.cost({"senders": S}).totals() == (S * M * 4, down), S
    assert b.protocol.cost({"senders": 3}).totals()[1] == 1676   # 3 x 387 + 515, worked out once by hand


def _rank(counts) -> int:
    """A composition's index among all compositions of sum(counts) into len(counts) parts (stars and
    bars: the bars' positions, ranked in the combinatorial number system)."""
    rank, pos = 0, -1
    for j, n in enumerate(counts[:-1]):
        pos += n + 1
        rank += math.comb(pos, j + 1)
    return rank


def test_each_peer_decodes_its_target_from_the_others_in_16_bits():
    """10 peers' votes on 200 probes in 10 classes: each peer's message, the histogram of the other 9
    votes, indexes within 2^16 (the counted bits); its own vote added back gives the histogram of all 10,
    the target. The index is one to one (checked on every composition of 3 votes in 4 classes)."""
    rng = np.random.default_rng(0)
    votes = rng.integers(0, 10, size=(10, 200))
    counts = np.stack([np.bincount(votes[:, m], minlength=10) for m in range(200)])       # [M, C]
    for i in range(10):
        others = counts - np.eye(10, dtype=int)[votes[i]]
        assert max(_rank(list(h)) for h in others) < 2 ** 16
        np.testing.assert_array_equal(others + np.eye(10, dtype=int)[votes[i]], counts)
    every = [(a, b, c, 3 - a - b - c) for a in range(4) for b in range(4 - a) for c in range(4 - a - b)]
    assert sorted(_rank(list(h)) for h in every) == list(range(math.comb(6, 3)))   # 20 compositions, 0..19
