"""Bit accounting audit (bitsaudit, 2026-12-07): what the audit of every protocol's bits found wrong, pinned
with the expected bits computed from the formula by hand (plain Python, not tallysim's bit functions).

The audit ran all 20 protocols end to end (4 peers, 2 rounds, eval_every 1) and compared metrics.jsonl
with hand formulas under participation 0.5, dropout (some and no messages arriving), model.groups, text
(characters and words), tally.target=counts, allgather, soft_bits 16/8, sparse merges, privacy modes,
population cohorts and resumed runs; every case but the one below matched. The others are already
pinned: tests/test_comm.py, test_round_bits.py, test_spec_audit.py, test_faults.py, test_bridge.py,
test_text.py, test_text_distill.py, test_groups.py, test_population.py, test_resume.py."""
import pytest
from conftest import tiny

from tallysim import run

P, C = 4, 10
W = 784 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10          # TINY's MLP: Dense(32), Dense(32), Dense(10)
DROP = ["faults.kind=dropout", "faults.fraction=1", "faults.drop_prob=1"]


@pytest.mark.parametrize("senders,participation,want", [
    # every peer every round: up a sign per coordinate from each sender; down the vote, |W| bits to each of
    # the 4 peers, only when a sign arrived (no sign, no vote: x stays; was charged 4 * |W|)
    (0, 1.0, (0, 0)),
    (3, 1.0, (3 * W, 4 * W)),
    # participation 0.5 (A = 2): the dense model is a broadcast before training, sent whatever arrives
    (0, 0.5, (0, 2 * 32 * W)),
    (1, 0.5, (W, 2 * 32 * W)),
])
def test_signsgd_sends_no_vote_down_when_no_sign_arrived(senders, participation, want):
    b = run.build(tiny("protocol.name=signsgd", f"participation={participation}", *DROP))
    assert b.ctx.num_params == W
    assert b.protocol.cost({"senders": senders}).totals() == want
