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
    chunk's programs: run._programs) is back 1 s later with 0.04 runs, and its round line says
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
