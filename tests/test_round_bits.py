"""What run.run writes per row: exact cumulative bits for every protocol under participation < 1
(formulas of docs/protocols.md evaluated by hand), and the rows kept or reproduced when a run stops on a
non-finite loss at a later round or retries after an out-of-memory error."""
import json
import math

import jax.numpy as jnp
import pytest
from conftest import run_rows, tiny

from tallysim import run

# 4 peers, participation 0.5 -> A = 2 active peers per round; an 8x8 MLP of width 8, 10 classes.
SMALL = ["data.input_shape=8x8x1", "data.train_size=800", "model.width=8", "peers=4", "participation=0.5",
         "rounds=3", "probe.per_round=64", "probe.pool_size=100", "warmup_epochs=0"]
P, A, M, C, L = 4, 2, 64, 10, 4
W = 64 * 8 + 8 + 8 * 8 + 8 + 8 * 10 + 10                      # Dense(8), Dense(8), Dense(10)

# (config items, bits up and down per active peer per round)
CASES = {
    "local": ((), 0, 0),
    "fedavg": ((), 32 * W, 32 * W),
    "fedprox": ((), 32 * W, 32 * W),
    "feddf": (("feddf.steps=2",), 32 * W, 32 * W),
    "softlabel": (("comm.soft_bits=16",), M * C * 16, M * C * 16),
    "tally": ((), M * L, M * L),
    "tally-abstain": (("protocol.name=tally", "vote.min_agreement=0.6"), M * L, M * L + M),
    # Confident-GNMax drops probes as abstention does: the same keep mask, one downlink bit per probe
    "tally-confident": (("privacy.noise=1", "privacy.threshold=2", "privacy.threshold_noise=1"), M * L, M * L + M),
    "tally-allgather": (("protocol.name=tally", "comm.topology=allgather", "vote.min_agreement=0.6"),
                        M * L, (A - 1) * M * L),
    "bridge-no-merge": (("protocol.name=bridge", "bridge.period=5"), M * L, M * L),
    # every other protocol's docs/protocols.md "Bits" line (bitscheck): FedAvg's downlink (the dense
    # model) to each active peer; k = ceil(0.01 * W) = 7 entries, ceil(log2 W) = 10 index bits
    "fedavgm": ((), 32 * W, 32 * W),
    "fedadam": ((), 32 * W, 32 * W),
    "fedyogi": ((), 32 * W, 32 * W),
    "topk_ef": ((), min(7 * (32 + 10), W + 7 * 32, 32 * W), 32 * W),      # 7 (value, index) pairs: 294
    "randk": ((), 7 * 32, 32 * W),                                          # shared coordinates: no index
    "fedpaq": ((), 32 + W * (1 + 5), 32 * W),          # a norm + sign and ceil(log2 17) level bits each
    "signsgd": ((), W, 32 * W),                  # a peer that missed rounds receives the model dense
    "scaffold": (("optim.momentum=0",), 2 * 32 * W, 2 * 32 * W),           # (dy, dc) up, (x, c) down
    "fednova": ((), 32 * W + 32, 32 * W),                                   # + tau_i
    "cfd": ((), M * C * 8, M * C * 8),
    "topk_soft": ((), M * (L + 8), M * (L + 8)),                  # the top class and its 8-bit value
}


@pytest.mark.core
@pytest.mark.parametrize("case", list(CASES))
def test_bits_per_round_under_partial_participation(case):
    """The protocol's cost and the ledger's rows, without compiling a round (costs are static)."""
    from tallysim.sim import comm
    items, up, down = CASES[case]
    b = run.build(tiny(*SMALL, f"protocol.name={case.split('-')[0]}", *items))
    assert b.ctx.num_params == W and b.ctx.spec.active == A
    led = comm.Ledger(b.cfg.peers)
    for r in (1, 2, 3):
        led.add(b.protocol.cost({"merged": 0, "nnz": 0}))
        row = led.row()
        assert row["bits_up"] == r * A * up and row["bits_down"] == r * A * down, (case, row)
        assert row["bits_per_peer"] == pytest.approx(r * A * (up + down) / P, rel=1e-12)


def test_bits_per_row_of_a_run_under_partial_participation(tmp_path):
    _, up, down = CASES["tally-allgather"]
    rows = run_rows(tiny(*SMALL, *CASES["tally-allgather"][0], "eval_every=1"), tmp_path / "t")
    assert [r["round"] for r in rows] == [1, 2, 3]
    for r, row in enumerate(rows, 1):
        assert row["bits_up"] == r * A * up and row["bits_down"] == r * A * down, row
        assert row["bits_per_peer"] == pytest.approx(r * A * (up + down) / P, rel=1e-12)


def test_bridge_merge_rounds_count_their_uplink_per_active_peer(tmp_path):
    # period 2 over 3 rounds: one merge; k = ceil(0.1 W); the uplink does not depend on the data.
    k = math.ceil(W / 10)
    coded = min(k * (32 + math.ceil(math.log2(W))), W + 32 * k, 32 * W)
    rows = run_rows(tiny(*SMALL, "protocol.name=bridge", "bridge.period=2", "bridge.density=0.1",
                         "eval_every=1"), tmp_path / "b")
    assert [r["bits_up"] for r in rows] == [A * M * L, 2 * A * M * L + A * coded, 3 * A * M * L + A * coded]
    assert rows[1]["bits_down"] > 2 * A * M * L                       # the merged update went down
    assert all(r["bits_per_peer"] == pytest.approx((r["bits_up"] + r["bits_down"]) / P) for r in rows)


def test_non_finite_loss_at_round_3_keeps_rows_1_and_2(tmp_path):
    cfg = tiny(*SMALL, "protocol.name=fedavg", "rounds=4", "eval_every=1")
    clean = run_rows(cfg, tmp_path / "clean")
    b = run.build(cfg)
    orig = b.protocol.round

    def poisoned(state, data, root, r):                # the loss turns NaN from round 3 on
        state, info = orig(state, data, root, r)
        info["train_loss"] = jnp.where(r >= 3, jnp.nan, info["train_loss"])
        return state, info
    b.protocol = b.protocol._replace(round=poisoned)
    out = tmp_path / "nan"
    with pytest.raises(run.NonFiniteLoss, match="round 3"):
        run.run(cfg, str(out), progress=False, built=b)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("wall_s")
    assert rows == clean[:2]
    assert "round 3" in (out / "error.txt").read_text()


def test_out_of_memory_halves_the_seed_chunk_and_gives_identical_rows(tmp_path, capsys):
    items = (*SMALL, "protocol.name=tally", "seeds=2", "rounds=2", "eval_every=1")
    halves = run_rows(tiny(*items, "seed_chunk=1"), tmp_path / "halves")   # what the retry must reproduce
    cfg = tiny(*items, "seed_chunk=2")
    b = run.build(cfg)
    orig, traces = b.protocol.round, []

    def round_fn(state, data, root, r):               # compiling the first seed batch runs out of memory
        traces.append(1)
        if len(traces) == 1:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB")
        return orig(state, data, root, r)
    b.protocol = b.protocol._replace(round=round_fn)
    run.run(cfg, str(tmp_path / "retried"), progress=False, built=b)
    assert "retrying 1 seed at a time" in capsys.readouterr().err
    # the 2-seed batch, then one trace the two batches of 1 share (programs.chunk_programs: a run's chunks of equal width)
    assert len(traces) == 2
    retried = [json.loads(line) for line in (tmp_path / "retried" / "metrics.jsonl").read_text().splitlines()]
    for row in retried:
        row.pop("wall_s")
    assert retried == halves
