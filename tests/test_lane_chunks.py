"""The probe exchange's chunk budget (sizing.CHUNK_BYTES, 256 MiB of one chunk's [c, M, C] float32
logits) covers every lane one compiled program vmaps together on a device (seeds, a grouped sweep's
configurations): they stream their chunks at the same time, [lanes, c, M, C], so c divides by the
lanes. Before, each lane got the whole budget: a group of L lanes held L x 256 MiB of chunk logits.

cfd and selective_fd stream through probe_round (exchange.stream), tally and softlabel through
base.probe_exchange (exchange.stream_sums); all take their chunk from Context.lanes, which
programs.round_programs sets from the lane axis it vmaps. Each configuration of a group still gets the
rows it gets alone (lanes.py's tolerance, tests/test_text_lanes.py: a traced lane value against a folded
constant), now also where the group chunks its peers and the lone run does not."""
import pytest
from conftest import tiny
from test_text_lanes import compare_runs, grouped_and_alone

from tallysim import sizing
from tallysim.sim import exchange


def test_the_chunk_divides_the_budget_by_the_lanes():
    """The note's case (C = 10,004 words, M = 256 probes): 26 peers a chunk for one lane; L lanes
    together stay within the budget (unless one peer alone exceeds it) and get the largest c that does."""
    M, C, A = 256, 10_004, 40
    per_peer = 4 * M * C
    assert sizing.peer_chunk(A, M, C) == sizing.CHUNK_BYTES // per_peer == 26
    for lanes in (1, 2, 3, 4, 7, 26, 27, 1000):
        c = sizing.peer_chunk(A, M, C, lanes=lanes)
        assert c == max(1, sizing.CHUNK_BYTES // (lanes * per_peer)), lanes
        assert lanes * c * per_peer <= sizing.CHUNK_BYTES or c == 1
        assert c == 1 or lanes * (c + 1) * per_peer > sizing.CHUNK_BYTES       # the largest that fits
    assert sizing.peer_chunk(A, M, C, lanes=4) == 6 and sizing.peer_chunk(5, M, C, lanes=2) == 5
    assert sizing.peer_chunk(A, M, C, budget=8 * per_peer, lanes=2) == 4


CASES = {
    "cfd": ["protocol.name=cfd"],
    "selective_fd": ["protocol.name=selective_fd"],
    "tally": ["protocol.name=tally"],
    "softlabel": ["protocol.name=softlabel"],
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_group_of_two_lanes_streams_half_the_chunk_and_keeps_each_configurations_rows(name, tmp_path,
                                                                                       monkeypatch):
    """A budget of 4 peers' logits (tiny: 4 active peers, 64 probes, 10 classes): a lone run streams
    its 4 peers in one chunk, a group of two configurations (optim.lr varies, one lane each) streams
    2 a chunk in each lane; every row as alone (the lanes' tolerance). Before, the group streamed 4."""
    M, C, A = 64, 10, 4
    monkeypatch.setattr(sizing, "CHUNK_BYTES", A * 4 * M * C)
    seen = []
    real = exchange.peer_chunk

    def spy(peers, probes, classes, budget=None, lanes=1, hidden=0):
        # the budget's split over the lanes, on the logits alone: the forward pass the chunk also counts
        # (`hidden`, exchange.model_chunks) is tested in tests/test_leftovers4.py
        kw = {**({} if budget is None else {"budget": budget}), **({} if lanes == 1 else {"lanes": lanes})}
        c = real(peers, probes, classes, **kw)
        seen.append((peers, probes, classes, lanes, c))
        return c
    monkeypatch.setattr(exchange, "peer_chunk", spy)
    cfgs = [tiny(*CASES[name], "optim.lr=0.05"), tiny(*CASES[name], "optim.lr=0.1")]
    g, a = grouped_and_alone(cfgs, tmp_path)
    assert seen, "no exchange chunk was sized"
    grouped = {s for s in seen if s[3] == 2}
    alone = {s for s in seen if s[3] == 1}
    assert grouped == {(A, M, C, 2, 2)} and alone == {(A, M, C, 1, 4)}, seen
    for i in range(len(cfgs)):
        compare_runs(a[i], g[i], f"{name} config {i}")
