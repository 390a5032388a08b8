"""Specification audit (docs/protocols.md): the bit counts of every knob that changes them, worked out by
hand here (literal numbers, not the code's formulas re-called), the degenerate cases that had no fast
test, and the defects the audit found (each test here failed before its fix, or catches a hand
mutation that no other test caught; the report of the `spec` branch lists them).

The model is the MLP on 8x8 inputs, width 16, 10 classes:
|W| = 64*16 + 16 + 16*16 + 16 + 16*10 + 10 = 1,482 parameters, ceil(log2 1482) = 11 index bits;
M = 32 probes, L = ceil(log2 10) = 4 bits per label, P = 5 peers. Costs are static (nothing compiles)
except where a test says otherwise."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

import tallysim
from tallysim import config, protocols, run
from tallysim.config import ConfigError
from tallysim.protocols.base import Context
from tallysim.sim import comm

SMALL = ["data.input_shape=8x8x1", "data.train_size=800", "data.test_size=100", "model.width=16", "peers=5",
         "probe.per_round=32", "probe.pool_size=100"]
W, M, L, P = 1482, 32, 4, 5


def build(*items):
    b = run.build(tiny(*SMALL, *items))
    assert b.ctx.num_params == W
    return b


# ---- bits of every parameter protocol at comm.param_bits=16 ------------------------------------------

# (items, (up, down) per active peer, A); k = ceil(0.1 * 1482) = 149 where a density of 0.1 is set
PARAM_BITS_16 = {
    "fedavg": ([], (23_712, 23_712), 5),                                # 16 * 1482 each way
    "fedprox": ([], (23_712, 23_712), 5),
    "fedavgm": ([], (23_712, 23_712), 5),
    "fedadam": ([], (23_712, 23_712), 5),
    "fedyogi": ([], (23_712, 23_712), 5),
    "feddf": (["feddf.steps=2"], (23_712, 23_712), 5),
    "scaffold": (["optim.momentum=0"], (47_424, 47_424), 5),           # dy and dc up, x and c down
    "fednova": ([], (23_744, 23_712), 5),                               # + 32 bits up for tau_i
    # 149 entries: pairs 149 * (16 + 11) = 4,023; bitmask 1,482 + 149 * 16 = 3,866 (cheapest); dense 23,712
    "topk_ef": (["topk_ef.density=0.1"], (3_866, 23_712), 5),
    "randk": (["randk.density=0.1"], (2_384, 23_712), 5),               # 149 values of 16 bits, no index
    # QSGD: a 32-bit norm + 1,482 * (1 sign + ceil(log2 17) = 5 level bits), whatever param_bits
    "fedpaq": (["fedpaq.levels=16"], (8_924, 23_712), 5),
    "signsgd": ([], (1_482, 1_482), 5),                                 # one bit per coordinate each way
    # a peer that missed rounds receives x dense: 16 * 1482 down; 3 of 5 active
    "signsgd-partial": (["protocol.name=signsgd", "participation=0.6"], (1_482, 23_712), 3),
}


@pytest.mark.parametrize("case", list(PARAM_BITS_16))
def test_param_bits_16_by_hand(case):
    items, (up, down), A = PARAM_BITS_16[case]
    name = [f"protocol.name={case}"] if "-" not in case else []
    b = build(*name, "comm.param_bits=16", *items)
    assert b.protocol.cost({}) == comm.RoundBits(up, down, A)
    assert b.protocol.cost({}).totals() == (A * up, A * down)


def test_bridge_merge_bits_at_16_bit_parameters_by_hand():
    b = build("protocol.name=bridge", "comm.param_bits=16", "bridge.density=0.1", "bridge.period=1")
    votes = 32 * 4                                                      # M * L each way
    # up: 149 entries, the bitmask (3,866) beats 149 pairs (4,023); down: 40 non-zeros as pairs,
    # 40 * 27 = 1,080, beats the bitmask (1,482 + 640 = 2,122)
    assert b.protocol.cost({"merged": 1, "nnz": 40}) == comm.RoundBits(votes + 3_866, votes + 1_080, 5)
    assert b.protocol.cost({"merged": 0, "nnz": 0}) == comm.RoundBits(votes, votes, 5)


# ---- faults.kind=dropout: only the messages sent go up ----------------------------------------------

DROP = ["faults.kind=dropout", "faults.fraction=0.4"]
# (items, info of a round in which 2 of the 5 active peers' messages arrived, (bits up, bits down) totals)
DROPOUT = {
    "scaffold": (["optim.momentum=0"], {"senders": 2}, (2 * 94_848, 5 * 94_848)),   # 2 * 32 * 1482
    "fednova": ([], {"senders": 2}, (2 * 47_456, 5 * 47_424)),
    # 149 entries at 32 bits: pairs 149 * 43 = 6,407, bitmask 1,482 + 4,768 = 6,250 (cheapest)
    "topk_ef": (["topk_ef.density=0.1"], {"senders": 2}, (2 * 6_250, 5 * 47_424)),
    "randk": (["randk.density=0.1"], {"senders": 2}, (2 * 4_768, 5 * 47_424)),
    "fedpaq": (["fedpaq.levels=16"], {"senders": 2}, (2 * 8_924, 5 * 47_424)),
    "signsgd": ([], {"senders": 2}, (2 * 1_482, 5 * 1_482)),
    "feddf": (["feddf.steps=2"], {"senders": 2}, (2 * 47_424, 5 * 47_424)),
    "fedavgm": ([], {"senders": 2}, (2 * 47_424, 5 * 47_424)),
    # k = 2 classes of 4-bit index and 3-bit value per probe: 14 bits, 448 per message
    "topk_soft": (["topk_soft.k=2", "topk_soft.value_bits=3"], {"senders": 2}, (2 * 448, 5 * 448)),
    "fedct": ([], {"senders": 2, "exchanged": 1}, (2 * 128, 5 * 128)),
    "cfd": (["cfd.bits=8"], {"senders": 2}, (2 * 2_560, 5 * 2_560)),       # 32 * 10 values of 8 bits
    # peers shared on 3, 0, 32, 5, 1 probes and 7 probes were kept; messages 1 and 4 were lost:
    # up (32 + 3*320) + (32 + 32*320) + (32 + 5*320) = 12,896; down 32 + 7*320 = 2,272 to each of 5
    "selective_fd": ([], {"senders": 3, "sfd_shared_A": [3, 0, 32, 5, 1], "sfd_kept": 7,
                          "sfd_sent_A": [1, 0, 1, 1, 0]}, (12_896, 5 * 2_272)),
}


@pytest.mark.parametrize("case", list(DROPOUT))
def test_dropout_bits_by_hand(case):
    items, info, totals = DROPOUT[case]
    b = build(f"protocol.name={case}", *DROP, *items)
    assert b.protocol.cost(info).totals() == totals


@pytest.mark.parametrize("case", ["topk_soft", "fedct", "cfd"])
def test_dropout_with_no_message_arriving_costs_nothing(case):
    items, info, _ = DROPOUT[case]
    b = build(f"protocol.name={case}", *DROP, *items)
    assert b.protocol.cost({**info, "senders": 0}).totals() == (0, 0)


def test_fedct_rounds_between_exchanges_cost_nothing():
    b = build("protocol.name=fedct", "fedct.period=3", "vote.min_agreement=0.5")
    assert b.protocol.cost({"exchanged": 0}) == comm.RoundBits(0, 0, 5)
    assert b.protocol.cost({"exchanged": 1}) == comm.RoundBits(128, 128 + 32, 5)   # + the keep mask


# ---- degenerate cases without a fast test -------------------------------------------------------------

def _server_tx(monkeypatch, *items):
    """The optax transformation a server-optimizer protocol hands to server_opt.make (as test_fedopt)."""
    from tallysim.protocols import server_opt
    cfg = config.validate(tiny(*items))
    monkeypatch.setattr(server_opt, "make", lambda ctx, tx: tx)
    return protocols.make(Context(cfg=cfg, spec=None, model=None, num_params=0))


def _three_rounds(tx):
    """The server models of three rounds of made-up aggregates, and the aggregates."""
    from tallysim.protocols import server_opt
    rng = np.random.default_rng(0)
    server = [jnp.asarray(rng.normal(size=(3, 4)), jnp.float32), jnp.asarray(rng.normal(size=(5,)), jnp.float32)]
    state, out = tx.init(server), []
    for scale in (0.1, 0.003, 0.05):
        avg = [a + jnp.asarray(scale * rng.normal(size=a.shape), jnp.float32) for a in server]
        new, state = server_opt.server_step(tx, server, avg, state)
        out.append((server, avg, new))
        server = new
    return out


def test_fedavgm_without_momentum_at_server_lr_one_is_the_aggregate_bit_for_bit(monkeypatch):
    """The fast form of test_fedopt's slow run: beta = 0, server_lr = 1 gives FedAvg's model exactly."""
    tx = _server_tx(monkeypatch, "protocol.name=fedavgm", "fedavgm.beta=0", "fedavgm.server_lr=1")
    for _, avg, new in _three_rounds(tx):
        for a, n in zip(avg, new):
            assert np.array_equal(np.asarray(a), np.asarray(n))


@pytest.mark.parametrize("rule", ["reddi", "optax"])
def test_fedadam_without_moments_is_the_normalised_step(monkeypatch, rule):
    """b1 = b2 = 0: m = Delta and v = Delta^2 every round, whatever came before (bias correction divides
    by 1), so both rules step x' = x + eta * Delta / (|Delta| + tau), Delta = avg - x."""
    eta, tau = 0.05, 0.01
    tx = _server_tx(monkeypatch, "protocol.name=fedadam", "fedadam.b1=0", "fedadam.b2=0",
                    f"fedadam.server_lr={eta}", f"fedadam.tau={tau}", f"fedadam.rule={rule}")
    for x, avg, new in _three_rounds(tx):
        for xi, ai, ni in zip(x, avg, new):
            d = np.asarray(ai, np.float64) - np.asarray(xi, np.float64)
            np.testing.assert_allclose(np.asarray(ni, np.float64), np.asarray(xi, np.float64)
                                       + eta * d / (np.abs(d) + tau), rtol=1e-5, atol=1e-6)


# ---- the per-peer randomness of FedPAQ ----------------------------------------------------------------

def test_fedpaq_quantises_each_peer_with_its_own_draw(monkeypatch):
    """FedPAQ's quantiser draws independently per peer: four peers with the same update send four
    different unbiased messages (one shared draw would send the same one four times)."""
    from tallysim.protocols import compressed
    cfg = config.validate(tiny("protocol.name=fedpaq", "fedpaq.levels=2"))
    monkeypatch.setattr(compressed, "make", lambda ctx, comp, **kw: comp)
    comp = protocols.make(Context(cfg=cfg, spec=None, model=None, num_params=200))
    u = np.random.default_rng(0).normal(size=200).astype(np.float32)
    sent, _ = comp.apply(jnp.asarray(np.stack([u] * 4)), None, jax.random.PRNGKey(3))
    sent = np.asarray(sent, np.float64)
    norm = np.linalg.norm(u)
    for row in sent:                                   # each on QSGD's levels: |u| * {0, 1/2, 1} * sign
        level = np.abs(row) * 2 / norm
        np.testing.assert_allclose(level, np.round(level), atol=1e-4)
    assert all(not np.array_equal(sent[0], sent[i]) for i in (1, 2, 3))


# ---- defects found by the audit -----------------------------------------------------------------------

def test_fedct_takes_part_under_the_size_rule():
    """fedct drew its cohort without the shard sizes, so participation_rule=size failed when the round
    was traced (after the data loaded); now its active set is the size rule's draw."""
    from tallysim.protocols.base import active_set, round_keys
    d = tallysim.drive(tiny(*SMALL, "protocol.name=fedct", "participation=0.6", "participation_rule=size",
                            "partition.kind=dirichlet", "partition.alpha=0.5", "warmup_epochs=0", "rounds=1"))
    before = [np.asarray(a) for a in jax.tree.leaves(d.state.params)]
    d.step()
    after = [np.asarray(a) for a in jax.tree.leaves(d.state.params)]
    trained = [i for i in range(P) if any(not np.array_equal(b[i], a[i]) for b, a in zip(before, after))]
    want = np.asarray(active_set(d.built.ctx, round_keys(d.root, 1).active, d.built.one)).tolist()
    assert trained == want and len(want) == 3
    assert d.bits() == comm.RoundBits(128, 128, 3)


def test_topk_soft_every_class_without_values_is_refused(no_compile):
    """k = C sends no index and value_bits = 0 no value: 0 bits, and the target was 0 / 0 (NaN loss)."""
    with pytest.raises(ConfigError) as e:
        run.build(tiny("protocol.name=topk_soft", "topk_soft.k=10", "topk_soft.value_bits=0"))
    text = str(e.value)
    assert "\n" not in text and "topk_soft.value_bits=0" in text and "allowed:" in text, text
    run.build(tiny("protocol.name=topk_soft", "topk_soft.k=9", "topk_soft.value_bits=0"))    # k < C: a vote of 9
    run.build(tiny("protocol.name=topk_soft", "topk_soft.k=10", "topk_soft.value_bits=1"))
