"""Exact bit counts for every protocol and setting, as Python ints."""
import math

import pytest

from tallysim import run
from tallysim.sim import comm
from conftest import tiny

pytestmark = pytest.mark.core    # part of the `make mutation` subset


def test_label_bits():
    assert [comm.ceil_log2(c) for c in (1, 2, 3, 10, 100, 1000, 1024, 1025)] == [1, 1, 2, 4, 7, 10, 10, 11]


def test_sparse_coding_picks_cheapest():
    W = 1_000_000                                   # log2 -> 20 index bits
    assert comm.sparse_params(10, W, 32) == 10 * 52
    assert comm.sparse_params(100_000, W, 32) == W + 100_000 * 32     # bitmask cheaper
    assert comm.sparse_params(W, W, 32) == 32 * W                      # dense cheapest
    assert comm.sparse_params(0, W, 32) == 0


def test_ledger_is_python_int_and_exact_beyond_float32():
    led = comm.Ledger(peers=3)
    for _ in range(1000):
        led.add(comm.RoundBits(2**25 + 1, 2**25 + 3, 3))
    assert isinstance(led.up, int) and led.up == 1000 * 3 * (2**25 + 1)
    assert led.bits_per_peer == (led.up + led.down) / 3


def _bits(*items):
    b = run.build(tiny(*items))
    return b.ctx, b.protocol.cost({})


CASES = {
    # name: (overrides, function of (M, C, A, W) -> (up, down) per active peer)
    "local": ([], lambda M, C, A, W: (0, 0)),
    "fedavg": ([], lambda M, C, A, W: (32 * W, 32 * W)),
    "fedprox": ([], lambda M, C, A, W: (32 * W, 32 * W)),
    "fedavg16": (["protocol.name=fedavg", "comm.param_bits=16"], lambda M, C, A, W: (16 * W, 16 * W)),
    "softlabel": ([], lambda M, C, A, W: (M * C * 32, M * C * 32)),
    "softlabel16": (["protocol.name=softlabel", "comm.soft_bits=16"], lambda M, C, A, W: (M * C * 16,) * 2),
    "softlabel8": (["protocol.name=softlabel", "comm.soft_bits=8"], lambda M, C, A, W: (M * C * 8,) * 2),
    "tally": ([], lambda M, C, A, W: (M * 4, M * 4)),
    "tally_abstain": (["protocol.name=tally", "vote.min_agreement=0.5"], lambda M, C, A, W: (M * 4, M * 4 + M)),
    "tally_allgather": (["protocol.name=tally", "comm.topology=allgather"],
                        lambda M, C, A, W: (M * 4, (A - 1) * M * 4)),
    "tally_c100": (["protocol.name=tally", "data.num_classes=100"], lambda M, C, A, W: (M * 7, M * 7)),
    "tally_c1000": (["protocol.name=tally", "data.num_classes=1000", "data.train_size=3000"],
                    lambda M, C, A, W: (M * 10, M * 10)),
    "tally_partial": (["protocol.name=tally", "participation=0.5"], lambda M, C, A, W: (M * 4, M * 4)),
    "tally_no_distill": (["protocol.name=tally", "distill.weight=0"], lambda M, C, A, W: (0, 0)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_round_bits(case):
    items, expect = CASES[case]
    if not any(i.startswith("protocol.name=") for i in items):
        items = [f"protocol.name={case}"] + items
    ctx, bits = _bits(*items)
    s = ctx.spec
    up, down = expect(s.probes, s.classes, s.active, ctx.num_params)
    assert (bits.up, bits.down) == (up, down)
    assert bits.active == (2 if "partial" in case else 4)
    assert all(isinstance(v, int) for v in (*bits[:3], *bits.totals()))
    assert bits.totals() == (up * bits.active, down * bits.active)       # no dropout: per peer times A


def test_mlp_param_count_enters_fedavg_bits():
    ctx, bits = _bits("protocol.name=fedavg")
    W = 784 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10
    assert ctx.num_params == W and bits.up == 32 * W


def test_a_fedavg_type_cost_counts_the_uplink_of_the_senders_only():
    # fedavg, fedprox, fednova, scaffold and the compressed protocols (topk_ef, randk, fedpaq, signsgd) all
    # count their bits through fedavg.senders_cost: under dropout only the messages sent go up, while the
    # broadcast, sent before anyone trains, reaches every active peer
    from tallysim.protocols import fedavg
    bits = comm.RoundBits(up=10, down=7, active=5)
    cost = fedavg.senders_cost(bits)
    assert cost({}) == bits and cost({}).totals() == (50, 35)
    assert cost({"senders": 3}).totals() == (30, 35)
    assert cost({"senders": 0}).totals() == (0, 35)
