"""review20 on the merged change 9f4d074..7341f85: the runs' ETA measured a compile from every seed
chunk's first stretch (most reuse the first chunk's programs), and the dead-peer guard named every peer
of a multi-seed run wholly at the floor, where the run's floor note already speaks (a one-seed run's it
left to that note). Cheap: no run, no compile."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import Clock
from tallysim import progress
from tallysim.results import dead_peers


def test_a_seed_chunks_restart_is_not_a_compile(monkeypatch):
    """One run of 4 seed chunks, then 3 runs to come that each compile: the first chunk compiles 60 s (a
    tenth of a run back with it), 0.4 runs in 10 s (25 s a run); chunk 2's first stretch (the first
    chunk's programs: programs.chunk_programs) is back 1 s later with 0.04 runs, and its round line says
    `compiling` as every chunk's does. Each run to come adds 60 - 0.1 x 25 = 57.5 s, not the mean
    (57.5 + 0) / 2 over both stretches."""
    clock = Clock(monkeypatch)
    c = progress.RunsClock(4)
    c.expect_compiles(4)
    c.batch_starts(True)
    clock.t = 60.0
    c.report(0.1, compiled=True)
    clock.t = 70.0
    c.report(0.5)
    clock.t = 71.0
    c.report(0.54, compiled=True)           # the next chunk's first stretch: no compile of its own
    assert c.compile_s() == pytest.approx(57.5)
    assert c.eta() == pytest.approx(3.46 * 25.0 + 3 * 57.5)
    # a batch that starts on a program an earlier batch compiled: its first stretch is no compile either
    c.batch_starts(False)
    clock.t = 72.0
    c.report(0.6, compiled=True)
    assert c.compile_s() == pytest.approx(57.5)
    # the next batch that compiles is measured again: (57.5 + 37.5) / 2
    c.batch_starts(True)
    clock.t = 112.0
    c.report(0.7, compiled=True)
    assert c.compile_s() == pytest.approx((57.5 + 40.0 - 0.1 * 25.0) / 2)


def _seed_rows(per_round, seeds):
    return [{"round": r, "seeds": seeds, "acc_peers": [float(np.mean(x)) for x in zip(*acc)],
             "acc_mean": float(np.mean(acc)), "acc_global": None, "per_seed": {"acc_peers": acc}}
            for r, acc in enumerate(per_round, 1)]


def test_every_peer_of_every_seed_at_the_floor_is_the_floor_notes():
    # two seeds, every peer at chance after round 1: the run's headline is at the floor (floor_note), as
    # a one-seed run's; naming "seed 0 peer 0, ... (4 of 2 peers x 2 seeds)" beside it said it twice
    dead_all = _seed_rows([[[0.3, 0.2], [0.2, 0.3]], [[0.1, 0.1], [0.1, 0.1]], [[0.1, 0.1], [0.1, 0.1]]], [0, 1])
    assert dead_peers.find(dead_all, 0.1) is None
    # one seed wholly at the floor beside one that learnt: the headline is not at the floor, so named
    one_seed = _seed_rows([[[0.3, 0.2], [0.2, 0.3]], [[0.1, 0.1], [0.5, 0.6]], [[0.1, 0.1], [0.6, 0.7]]], [0, 1])
    dead = dead_peers.find(one_seed, 0.1)
    assert dead.names == ["seed 0 peer 0", "seed 0 peer 1"] and dead.without == pytest.approx(0.65)


def test_a_batch_compiles_unless_an_earlier_one_built_the_same_program(tmp_path):
    """sweep_plan.compiles keyed a batch by lanes.signature alone, which leaves out the lane fields and
    the lanes: one at a time, optim.lr=0.02,0.05 was said to compile once (measured: 7.9 s, then 7.7 s;
    seed=0,1 7.9 s then 1.3 s, the compile cache's), and a resumed run (a batch of one, its checkpoint)
    beside the rest of its group in one program was said to compile nothing."""
    from conftest import tiny
    from tallysim import checkpoint, sweep, sweep_plan
    base = tiny("protocol.name=tally", "rounds=1")
    runs = sweep.expand({}, ["optim.lr=0.02,0.05,0.1"])
    cfgs, dirs = sweep.configs(base, runs), [tmp_path / n for n, _ in runs]
    assert sweep_plan.compiles(cfgs, dirs, sweep_plan.plan(cfgs, dirs, False)) == [True, True, True]
    dirs[0].mkdir()
    (dirs[0] / checkpoint.FILE).write_text("")       # run 0 resumes alone; runs 1 and 2 as one program
    batches = sweep_plan.plan(cfgs, dirs, True)
    assert batches == [[0], [1, 2]] and sweep_plan.compiles(cfgs, dirs, batches) == [True, True]
    # seeds are host fields (not in the signature) but lanes of the program: seeds=1 and seeds=2 differ
    more = sweep.configs(base, sweep.expand({}, ["seeds=1,2"]))
    assert sweep_plan.compiles(more, dirs[:2], [[0], [1]]) == [True, True]
    same = sweep.configs(base, sweep.expand({}, ["seed=3,4"]))
    assert sweep_plan.compiles(same, dirs[1:], [[0], [1]]) == [True, False]


def test_star_counts_dropout_bits_by_hand_at_three_peers_in_four_classes():
    """The brief's hand check of histogram_senders (A = 3, C = 4, one message): histograms of 0..3 votes
    in 4 classes are 1, 4, 10, 20 compositions, 0 / 2 / 4 / 5 bits; the header is one of 2A-1 = 5 pairs,
    3 bits. S = 1: 3 + 0 to the arrived peer, 3 + 2 to each of 2 lost: 13; S = 2: 2 x (3 + 2) + (3 + 4)
    = 17; S = 3: 3 x (3 + 4) = 21; S = 0: nothing. A = 1 (test_votes_dec19b's A = 4 cannot tell 2A-1
    from 2A: 3 bits both): one possible pair, 0 bits, and the lone arrived vote's histogram of 0 others."""
    from types import SimpleNamespace

    from tallysim.protocols import tally
    from tallysim.sim import comm

    def down(A, S, C=4):
        ctx = SimpleNamespace(spec=SimpleNamespace(messages=1, active=A, classes=C))
        return tally.histogram_senders(ctx, comm.RoundBits(2, 0, A), S).totals()
    assert [down(3, S) for S in range(4)] == [(0, 0), (2, 13), (4, 17), (6, 21)]
    assert down(1, 1) == (2, 0) and down(1, 0) == (0, 0)


def test_a_peer_within_the_floor_margin_is_at_the_floor():
    """dead_peers reads `at or below the floor + FLOOR_MARGIN` (headline's 0.002: one position's rounding),
    as floor_note does; test_deadpeer_dec19a's rows passed with the margin removed."""
    from tallysim.results.headline import FLOOR_MARGIN
    assert FLOOR_MARGIN == 0.002

    def rows(acc0):
        return [{"round": r, "acc_peers": [a, 0.6], "acc_mean": (a + 0.6) / 2, "acc_global": None}
                for r, a in enumerate((0.3, acc0, acc0), 1)]
    assert dead_peers.find(rows(0.1015), 0.1).names == ["peer 0"]
    assert dead_peers.find(rows(0.1025), 0.1) is None
