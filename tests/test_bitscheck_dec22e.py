"""The lagged votes' bits (bitscheck, 2026-12-07), hand-checked against a per-peer ledger written here in
plain Python, with the cohorts read off the run itself (the peers whose weights moved in a round: an
inactive peer keeps its state), not from tallysim's cohort draw.

`fedct` and `bridge.vote_at=merge` train in one round on a vote formed in an earlier one. With every peer in
every round the vote goes down right after it is formed, to the peers that formed it, who are the ones that
train on it (the FedCT authors' flow; the last vote is sent too). Under participation < 1 the peers that
train on it are the next exchange's cohort, which mostly did not form it: they were charged nothing for it
(the charge went to the forming cohort, some of which never train on it), so peers trained on labels no
ledger sent them. Now (tally.lagged_vote_cost) the vote goes down to the cohort that trains on it, in that
round, before training: up this round's vote per active peer; down the pending vote per active peer, 0 in
the first exchange; the last vote is never sent; a peer that drops out between forming and receiving gets
nothing. The ledger below checks each peer received every vote it trained on, and the rows' totals."""
import math
from functools import reduce

import jax
import jax.numpy as jnp
import pytest
from conftest import read_rows, tiny
from test_round_bits import SMALL

from tallysim import run

P, M, C, L, B = 4, 64, 10, 4, 32                 # SMALL: 4 peers, 64 probes, 10 classes (4-bit votes)
W = 64 * 8 + 8 + 8 * 8 + 8 + 8 * 10 + 10         # SMALL's MLP: Dense(8), Dense(8), Dense(10) on 8x8 inputs


def _coded(n: int) -> int:                       # (value, index) pairs, bitmask + values, or dense
    return min(n * (B + math.ceil(math.log2(W))), W + n * B, W * B)


def _run(tmp_path, *items):
    """Run SMALL + items, eval_every 1: (built, rows, each round's info with `cohort`, the peers whose
    weights the round changed)."""
    b = run.build(tiny(*SMALL, "eval_every=1", *items))
    orig_round, orig_cost, infos = b.protocol.round, b.protocol.cost, []

    def round_fn(state, data, root, r):
        new, info = orig_round(state, data, root, r)
        moved = [jnp.any((a != c).reshape(a.shape[0], -1), axis=1)
                 for a, c in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params))]
        info["moved_P"] = reduce(jnp.logical_or, moved)
        return new, info

    def cost(info):
        infos.append(dict(info, cohort=frozenset(i for i, m in enumerate(info["moved_P"]) if m)))
        return orig_cost(info)
    b.protocol = b.protocol._replace(round=round_fn, cost=cost)
    run.run(b.cfg, str(tmp_path), progress=False, built=b)
    return b, read_rows(tmp_path), infos


def _lagged_ledger(cohorts, exchanges, lagged):
    """Per round (up, down) of a vote formed in each exchange round by its cohort. `lagged`: delivered to
    the next exchange's cohort in that round (before it trains); else to the forming cohort at once.
    Also checks, peer by peer, that every peer training on a vote received it when it was active."""
    got = {i: set() for i in range(P)}           # the votes each peer has received
    bits, pending = [], None
    for r, S in enumerate(cohorts, 1):
        if r not in exchanges:
            bits.append((0, 0))
            continue
        down = 0
        if pending is not None:                  # S trains on the previous exchange's vote
            if lagged:
                for i in S:
                    got[i].add(pending)
                down = len(S) * M * L
            missing = [i for i in S if pending not in got[i]]
            assert not missing, f"round {r}: peers {missing} train on vote {pending} never sent to them"
        up = len(S) * M * L
        if not lagged:
            for i in S:
                got[i].add(r)
            down = len(S) * M * L
        bits.append((up, down))
        pending = r
    return bits


def _cumulative(bits):
    out, u, d = [], 0, 0
    for up, down in bits:
        u, d = u + up, d + down
        out.append((u, d))
    return out


def _newcomer(cohorts, exchanges):
    """Whether some peer trains on a vote formed while it sat out (the case the old charge got wrong)."""
    ex = [cohorts[r - 1] for r in sorted(exchanges)]
    return any(b - a for a, b in zip(ex, ex[1:]))


# period 2: exchanges in rounds 2 and 4, nothing in 1 and 3 (period 1, every round, is the lag of the
# bridge's vote_at=merge below; a slow case here)
@pytest.mark.parametrize("period", [pytest.param(1, marks=pytest.mark.slow), 2])
def test_fedct_lagged_vote_goes_to_the_cohort_that_trains_on_it(tmp_path, period):
    b, rows, infos = _run(tmp_path, "protocol.name=fedct", f"fedct.period={period}", "rounds=4")
    cohorts = [i["cohort"] for i in infos]
    assert [len(S) for S in cohorts] == [2] * 4 and b.ctx.spec.active == 2
    exchanges = set(range(period, 5, period))
    assert _newcomer(cohorts, exchanges)              # this draw has the case the fix is about
    with pytest.raises(AssertionError, match="never sent to them"):
        _lagged_ledger(cohorts, exchanges, lagged=False)     # the old charge: to the forming cohort
    want = _cumulative(_lagged_ledger(cohorts, exchanges, lagged=True))
    assert [(r["bits_up"], r["bits_down"]) for r in rows] == want
    assert want[period - 1][1] == 0                          # the first exchange receives nothing
    assert all(r["bits_per_peer"] == pytest.approx((u + d) / P, rel=1e-12) for r, (u, d) in zip(rows, want))


# participation 1 keeps the authors' flow (each vote down as soon as it is formed, the first exchange's
# too): tests/test_fedct.py::test_vote_lag_period_and_bits pins its first exchange's downlink.


def _bridge_ledger(cohorts, infos, period, vote_at):
    """The bridge's rounds by hand: the votes (every round: vote_at=start's trained on in the round that
    formed it, up and down to its cohort; merge's lagged) plus, on merge rounds, up k entries coded per
    active peer, down the merged update's nnz coded per active peer, and theta_ref dense (B * W) to an
    active peer that missed a merge since the last it took part in."""
    k = math.ceil(0.01 * W)
    if vote_at == "start":
        votes = [(len(S) * M * L, len(S) * M * L) for S in cohorts]
    else:
        votes = _lagged_ledger(cohorts, set(range(1, len(cohorts) + 1)), lagged=len(cohorts[0]) < P)
    last, merges, out = [0] * P, 0, []
    for r, (S, info, (up, down)) in enumerate(zip(cohorts, infos, votes), 1):
        if r % period == 0:
            merges += 1
            stale = sum(last[i] < merges - 1 for i in S)
            for i in S:
                last[i] = merges
            up += len(S) * _coded(k)
            down += len(S) * _coded(info["nnz"]) + stale * B * W
        out.append((up, down))
    return out


# participation 1 is slow: its fast checks are tests/test_distill_knobs.py::test_vote_at_merge_costs_the_same_bits
# (merge = start, end to end) and tests/test_spec_audit.py::test_bridge_merge_bits_at_16_bit_parameters_by_hand
@pytest.mark.parametrize("vote_at,participation", [("merge", 0.5), ("start", 0.5),
                                                   pytest.param("merge", 1, marks=pytest.mark.slow),
                                                   pytest.param("start", 1, marks=pytest.mark.slow)])
def test_bridge_bits_by_hand(tmp_path, vote_at, participation):
    """period 2 over 4 rounds (merges in rounds 2 and 4), density 0.01; the merged update's nnz read off
    the round (it depends on the training). Cohorts: with a hard reset the merging peers hold theta_ref."""
    b, rows, infos = _run(tmp_path, "protocol.name=bridge", f"bridge.vote_at={vote_at}", "bridge.period=2",
                          f"participation={participation}", "rounds=4")
    A = b.ctx.spec.active
    cohorts = [i["cohort"] for i in infos]
    assert [len(S) for S in cohorts] == [A] * 4
    if A < P:
        assert _newcomer(cohorts, {1, 2, 3, 4})
    want = _cumulative(_bridge_ledger(cohorts, infos, 2, vote_at))
    assert [(r["bits_up"], r["bits_down"]) for r in rows] == want
    assert [r["nnz"] for r in rows] == [i["nnz"] for i in infos]
    if vote_at == "merge" and A < P:
        assert want[0] == (A * M * L, 0)             # round 1: a vote up, none pending to come down


DROP = ["faults.kind=dropout", "faults.fraction=0.5", "faults.drop_prob=0.9"]


@pytest.mark.parametrize("name", ["fedct", "bridge"])
@pytest.mark.parametrize("senders,pending,abstain", [(2, 1, False), (0, 1, True), (1, 0, False)])
def test_lagged_vote_cost_under_dropout_by_hand(name, senders, pending, abstain):
    """Cost only (nothing compiled), participation 0.5 (A = 2) with dropout: up the votes that were sent
    this round; down the pending vote (`vote_down`: one with a message that arrived) to both active peers,
    whatever arrives this round, plus a keep bit per probe with abstention; no pending vote, nothing down."""
    items = ["bridge.vote_at=merge", "bridge.period=2"] if name == "bridge" else []
    b = run.build(tiny(*SMALL, f"protocol.name={name}", *items, *DROP,
                       *(["vote.min_agreement=0.6"] if abstain else [])))
    assert b.ctx.spec.active == 2
    info = {"exchanged": 1, "merged": 0, "nnz": 0, "senders": senders, "vote_down": pending}
    down = 2 * (M * L + (M if abstain else 0)) if pending else 0
    assert b.protocol.cost(info).totals() == (senders * M * L, down)


def test_a_vote_of_which_nothing_arrived_is_not_sent_down(tmp_path):
    """End to end, the run's flag for the cost above: every message lost (dropout of every peer, drop
    probability 1), so no vote is ever formed, and round 2 has nothing pending to send (the flag reads the
    kept vote's agreement, 0 when nothing arrived): no bits either way in any round."""
    _, rows, infos = _run(tmp_path, "protocol.name=fedct", "rounds=2", "faults.kind=dropout", "faults.fraction=1",
                          "faults.drop_prob=1")
    assert [i["vote_down"] for i in infos] == [0, 0] and [i["senders"] for i in infos] == [0, 0]
    assert [(r["bits_up"], r["bits_down"]) for r in rows] == [(0, 0), (0, 0)]
