"""The scalars a protocol's round computes of itself reach the metrics rows (run.ROUND_KEYS): `kept`
(abstention), `merged` and `nnz` (bridge), `feddf_loss`; null where a protocol does not compute them.
Each value is checked against what it must equal, not only for presence (CPU, tiny synthetic runs)."""
import math

import numpy as np
import pytest
from conftest import run_rows, tiny

import tallysim
from tallysim import run
from tallysim.sim import comm

M = 64          # conftest.TINY's probe.per_round
# No warm-up epoch where a check does not read how well the peers trained (one traced training program
# fewer per run); the min_agreement test below keeps it (its unanimous probes need trained peers).
COLD = "warmup_epochs=0"


def test_kept_is_one_without_abstention_and_null_without_votes(tmp_path):
    rows = run_rows(tiny("protocol.name=tally", COLD), tmp_path / "t")
    assert [r["kept"] for r in rows] == [1.0, 1.0]
    assert all(r["merged"] is None and r["nnz"] is None and r["feddf_loss"] is None for r in rows)
    rows = run_rows(tiny("protocol.name=softlabel", COLD), tmp_path / "s")
    assert all(r["kept"] is None for r in rows)             # soft targets: no abstention


def test_kept_counts_the_probes_that_clear_min_agreement(tmp_path):
    # min_agreement=1: only unanimous probes are kept. 4 peers give shares in {1/4, 1/2, 3/4, 1}, so
    # the row's mean of the keep mask is a whole number of probes out of M, and the consensus on the
    # kept probes (unanimous votes of well-trained peers) is at least as accurate as the plain vote.
    rows = run_rows(tiny("protocol.name=tally", "vote.min_agreement=1.0"), tmp_path / "t")
    for r in rows:
        kept = r["kept"]
        assert 0 < kept < 1, r
        assert kept * M == pytest.approx(round(kept * M), abs=1e-6), r
        # the winning share is 1 on kept probes and at most 3/4 elsewhere
        assert r["agreement"] <= kept + 0.75 * (1 - kept) + 1e-6, r


def test_bridge_merged_and_nnz_match_the_bit_ledger(tmp_path):
    cfg = tiny("protocol.name=bridge", "bridge.period=2", "bridge.density=0.01", COLD)
    rows = run_rows(cfg, tmp_path / "b")
    assert [r["merged"] for r in rows] == [0, 1]
    assert all(r["kept"] == 1.0 and r["feddf_loss"] is None for r in rows)
    W = run.build(cfg).ctx.num_params
    A = 4
    down = [b - a for a, b in zip([0] + [r["bits_down"] for r in rows], [r["bits_down"] for r in rows])]
    votes = down[0]                                     # round 1 sends votes only
    k = math.ceil(0.01 * W)
    for r, d in zip(rows, down):
        nnz = r["nnz"]
        assert isinstance(nnz, int) and (nnz == 0) == (r["merged"] == 0)
        assert nnz <= A * k
        # each active peer receives the merged update's nnz non-zeros, coded at comm.sparse_params
        assert d == votes + A * comm.sparse_params(nnz, W, 32), (r, d, votes)


def test_feddf_loss_is_the_rounds_distillation_loss(tmp_path):
    cfg = tiny("protocol.name=feddf", "feddf.steps=5", "feddf.batch_size=32", "rounds=1")
    rows = run_rows(cfg, tmp_path / "d")
    loss = rows[-1]["feddf_loss"]
    assert isinstance(loss, float) and math.isfinite(loss) and loss >= 0      # a KL divergence
    assert rows[-1]["kept"] is None and rows[-1]["merged"] is None and rows[-1]["nnz"] is None
    # the same round driven by hand reports the same loss
    _, info = tallysim.drive(cfg).step()
    assert loss == pytest.approx(float(np.asarray(info["feddf_loss"])), rel=1e-4, abs=1e-6)
    rows = run_rows(tiny("protocol.name=feddf", "feddf.steps=0", "rounds=1"), tmp_path / "f")
    assert rows[-1]["feddf_loss"] is None                  # steps=0 is FedAvg: no server distillation
