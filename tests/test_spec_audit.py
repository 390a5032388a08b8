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

SIZE_RULE = ("protocol.name=fedct", "participation=0.6", "participation_rule=size", "partition.kind=dirichlet",
             "partition.alpha=0.5", "warmup_epochs=0", "rounds=1")


def test_fedct_round_traces_under_the_size_rule():
    """fedct drew its cohort without the shard sizes, so participation_rule=size failed when the round
    was traced (after the data loaded). Traced here without compiling."""
    b = build(*SIZE_RULE)
    state = jax.eval_shape(b.protocol.init, jax.random.PRNGKey(0), b.one)
    _, info = jax.eval_shape(b.protocol.round, state, b.one, jax.random.PRNGKey(1), jnp.int32(1))
    assert "exchanged" in info


@pytest.mark.slow      # one compiled round (~15 s on the loaded CPU); the trace above is the fast form
def test_fedct_takes_part_under_the_size_rule():
    """... and its active set is the size rule's draw."""
    from tallysim.protocols.base import active_set, round_keys
    d = tallysim.drive(tiny(*SMALL, *SIZE_RULE))
    before = [np.asarray(a) for a in jax.tree.leaves(d.state.params)]
    d.step()
    after = [np.asarray(a) for a in jax.tree.leaves(d.state.params)]
    trained = [i for i in range(P) if any(not np.array_equal(b[i], a[i]) for b, a in zip(before, after))]
    want = np.asarray(active_set(d.built.ctx, round_keys(d.root, 1).active, d.built.one)).tolist()
    assert trained == want and len(want) == 3
    # the first exchange: its vote up, nothing down (under participation < 1 a fedct vote goes down to the
    # cohort that trains on it, at the next exchange: tests/test_bitscheck_dec22e.py)
    assert d.bits() == comm.RoundBits(128, 0, 3)


def test_topk_soft_every_class_without_values_is_refused(no_compile):
    """k = C sends no index and value_bits = 0 no value: 0 bits, and the target was 0 / 0 (NaN loss)."""
    with pytest.raises(ConfigError) as e:
        run.build(tiny("protocol.name=topk_soft", "topk_soft.k=10", "topk_soft.value_bits=0"))
    text = str(e.value)
    assert "\n" not in text and "topk_soft.value_bits=0" in text and "allowed:" in text, text
    run.build(tiny("protocol.name=topk_soft", "topk_soft.k=9", "topk_soft.value_bits=0"))    # k < C: a vote of 9
    run.build(tiny("protocol.name=topk_soft", "topk_soft.k=10", "topk_soft.value_bits=1"))


# ---- model.groups: each group's own bits where peers send different bits -------------------------------

GROUPS = "model.groups=small:2:mlp,width=8;big:2:mlp,width=64"


def test_group_bits_are_each_groups_own_messages():
    """selective_fd's peers send different bits (a 1-bit mask per probe plus the vectors they share), so
    a group's bits are its own peers' messages, not A_g / A of the round's total (what the rows said)."""
    from tallysim.results.rows import group_row
    b = run.build(tiny("protocol.name=selective_fd", GROUPS))
    led = comm.Ledger(4, groups=((0, 2), (2, 4)))
    # M = 64 probes, C = 10 values of 32 bits: 320 bits a shared probe. Round 1: the small peers shared
    # on 1 and 5 probes, the big ones on 17 and 18, 20 probes kept; round 2: 20, 35 | 55, 54, 30 kept.
    for shared, kept in (([1, 5, 17, 18], 20), ([20, 35, 55, 54], 30)):
        led.add(b.protocol.cost({"sfd_shared_A": shared, "sfd_kept": kept, "sfd_sent_A": [1, 1, 1, 1]}))
    small_up = (64 + 320) + (64 + 5 * 320) + (64 + 20 * 320) + (64 + 35 * 320)         # 61 * 320 + 256
    big_up = (64 + 17 * 320) + (64 + 18 * 320) + (64 + 55 * 320) + (64 + 54 * 320)     # 144 * 320 + 256
    down = 2 * (64 + 20 * 320) + 2 * (64 + 30 * 320)                                   # each group's 2 peers
    assert [small_up, big_up] == [19_776, 46_336]
    assert (led.group_up, led.group_down) == ([small_up, big_up], [down, down])
    assert led.up == 19_776 + 46_336 and led.down == 2 * down
    row = group_row("small", np.zeros(2), led, 2, 2, 4, 0)
    assert (row["bits_up@small"], row["bits_down@small"], row["bits_per_peer@small"]) == (19_776, down, (19_776 + down) / 2)
    # a checkpoint keeps them; one written before them gives the old shares, A_g / A of the totals
    again = comm.Ledger(4, groups=((0, 2), (2, 4)))
    again.restore(led.state())
    assert (again.group_up, again.group_down, again.up) == (led.group_up, led.group_down, led.up)
    old = comm.Ledger(4, groups=((0, 2), (2, 4)))
    old.restore(led.state()[:4])
    assert old.group_up == [led.up // 2] * 2


def test_cfd_delta_group_bits_are_each_groups_own_messages():
    b = run.build(tiny("protocol.name=cfd", "cfd.delta=true", "probe.resample=false", "cfd.bits=2", GROUPS))
    n = 64 * 10                                                    # values per message: dense 1,280 bits
    led = comm.Ledger(4, groups=((0, 2), (2, 4)))
    first = {"cfd_changed_A": [-1, -1, -1, -1], "cfd_sent_A": [1, 1, 1, 1], "cfd_down_changed": -1}   # dense
    led.add(b.protocol.cost(first))
    led.add(b.protocol.cost({"cfd_changed_A": [3, 10, 600, 100], "cfd_sent_A": [1, 1, 1, 1], "cfd_down_changed": 5}))
    # round 2: min(1280, 640 + 2 * changed): 646, 660 | 1280 (dense is shorter), 840; down 640 + 10 = 650
    assert led.group_up == [2 * 2 * n + 646 + 660, 2 * 2 * n + 1_280 + 840]
    assert led.group_down == [2 * 2 * n + 2 * 650] * 2
    assert sum(led.group_up) == led.up


@pytest.mark.slow      # a grouped run (~30 s on the loaded 2-core CPU); the two tests above are the fast form
def test_grouped_selective_fd_rows_report_each_groups_own_bits(tmp_path):
    from conftest import read_rows
    cfg = tiny("protocol.name=selective_fd", GROUPS, "rounds=2", "eval_every=1",
               "selective_fd.client_threshold=0.6", "selective_fd.server_threshold=0.3")
    b = run.build(cfg)
    infos, cost = [], b.protocol.cost
    b.protocol = b.protocol._replace(cost=lambda info: infos.append(info) or cost(info))
    run.run(cfg, str(tmp_path / "r"), progress=False, built=b)
    rows = read_rows(tmp_path / "r")
    small = big = 0
    for info, row in zip(infos, rows):
        small += sum(64 + n * 320 for n in info["sfd_shared_A"][:2])
        big += sum(64 + n * 320 for n in info["sfd_shared_A"][2:])
        assert (row["bits_up@small"], row["bits_up@big"]) == (small, big)
        assert row["bits_up@small"] + row["bits_up@big"] == row["bits_up"]
    assert small != big                                             # the groups did send different bits


# ---- SCAFFOLD and FedNova under faults: what each peer really did ----------------------------------------

SGD_FULL = ["data.input_shape=8x8x1", "data.train_size=800", "batch_size=2000", "optim.name=sgd", "optim.momentum=0",
            "optim.lr=0.5", "model.width=16", "partition.kind=dirichlet", "partition.alpha=0.5", "peers=5"]


def _flat_P(tree):
    return np.concatenate([np.asarray(a, np.float64).reshape(a.shape[0], -1) for a in jax.tree.leaves(tree)], 1)


def _flat(tree):
    return np.concatenate([np.asarray(a, np.float64).reshape(-1) for a in jax.tree.leaves(tree)])


def test_scaffold_lost_messages_carry_neither_dy_nor_dc():
    """faults.kind=dropout (drop_prob 1): the 2 faulty peers' (dy_i, dc_i) never arrive. Over two rounds,
    c' = c + (1/N) sum over the arrived of (c_i+ - c_i) and x' = x + eta_g sum over the arrived of
    w_i (y_i - x), w_i their shard sizes renormalised; a lost peer still keeps its own c_i+."""
    eta = 0.8
    d = tallysim.drive(tiny(*SGD_FULL, "protocol.name=scaffold", "faults.kind=dropout", "faults.fraction=0.4",
                            "local_epochs=2", f"scaffold.server_lr={eta}"))
    lost = np.asarray(d.built.one.faulty_P)
    assert lost.sum() == 2
    count = np.asarray(d.built.one.count_P, np.float64) * ~lost
    w = count / count.sum()
    for _ in range(2):
        x, c, c_P = _flat(d.state.server), _flat(d.state.extra["c"]), _flat_P(d.state.extra["c_P"])
        d.step()
        y, c_new_P = _flat_P(d.state.params), _flat_P(d.state.extra["c_P"])
        assert int(d.info["senders"]) == 3
        np.testing.assert_allclose(_flat(d.state.extra["c"]), c + (c_new_P - c_P)[~lost].sum(0) / 5,
                                   rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(_flat(d.state.server), x + eta * (w @ (y - x[None])), rtol=1e-4, atol=1e-6)
        assert np.abs(c_new_P - c_P)[lost].max() > 1e-3                  # the lost peers updated their own


def test_scaffold_and_fednova_count_the_steps_a_capped_peer_took():
    """faults.kind=under_trained with faults.steps=1: a faulty peer takes 1 step where the others take 3
    (full batch, 3 epochs). SCAFFOLD's option II divides its drift by K_i lr with K_i = 1, and FedNova
    normalises its update by a_i = 1 (tau_eff = sum_i w_i a_i), not by the 3 steps it did not take."""
    items = ("faults.kind=under_trained", "faults.fraction=0.4", "faults.steps=1", "local_epochs=3")
    d = tallysim.drive(tiny(*SGD_FULL, "protocol.name=scaffold", *items))
    faulty = np.asarray(d.built.one.faulty_P)
    K = np.where(faulty, 1.0, 3.0)
    x = _flat(d.state.server)
    d.step()
    y = _flat_P(d.state.params)
    np.testing.assert_allclose(_flat_P(d.state.extra["c_P"]), (x[None] - y) / (K[:, None] * 0.5), rtol=1e-4, atol=1e-6)

    n = tallysim.drive(tiny(*SGD_FULL, "protocol.name=fednova", *items))
    count = np.asarray(n.built.one.count_P, np.float64)
    w = count / count.sum()
    x = _flat(n.state.server)
    n.step()
    y = _flat_P(n.state.params)
    want = x - (w @ K) * ((w / K) @ (x[None] - y))
    np.testing.assert_allclose(_flat(n.state.server), want, rtol=1e-4, atol=1e-6)
    assert np.abs(want - (x - (w @ (x[None] - y)))).max() > 1e-4        # unequal effort: not FedAvg's step


# ---- next-token prediction at C = 10,004 (words): a message per token -----------------------------------

def _text_ctx(protocol, **kw):
    """3 probe sequences of 20 word tokens (60 messages), 4 peers, C = 10,004: a 14-bit label."""
    from tallysim.sim import fed
    from tallysim.sim.models import make_model
    cfg = config.apply_overrides(config.Config(), [f"protocol.name={protocol}", "data.name=shakespeare",
                                                   "model.name=lstm", "peers=4", "probe.per_round=3",
                                                   *[f"{k}={v}" for k, v in kw.items()]])
    spec = fed.Spec(peers=4, active=4, shard_max=2, pool=10, probes=3, classes=10_004, input_shape=(20,),
                    task="next_token")
    return Context(cfg=cfg, spec=spec, model=make_model(cfg.model, 10_004), num_params=1000)


@pytest.mark.parametrize("protocol, knobs, up, down", [
    ("tally", {}, 840, 840),                                         # 60 tokens x 14 bits
    ("tally", {"vote.min_agreement": 0.5}, 840, 900),                # + a keep bit per token
    ("tally", {"vote.min_margin": 0.2}, 840, 900),
    ("tally", {"comm.topology": "allgather"}, 840, 3 * 840),          # the other 3 peers' votes
    ("fedct", {"vote.min_agreement": 0.5}, 840, 900),
    ("softlabel", {"comm.soft_bits": 16}, 60 * 10_004 * 16, 60 * 10_004 * 16),
    ("topk_soft", {"topk_soft.k": 2, "topk_soft.value_bits": 4}, 60 * 36, 60 * 36),   # 2 x 14 + 2 x 4
    ("topk_soft", {"topk_soft.k": 1, "topk_soft.value_bits": 0}, 840, 840),          # a hard vote's bits
    ("selective_fd", {"distill.weight": 0}, 0, 0),                   # no exchange: nothing sent
])
def test_bits_per_word_token_by_hand(protocol, knobs, up, down):
    from tallysim.protocols import make
    info = {"exchanged": 1, "sfd_shared_A": [0] * 4, "sfd_kept": 0, "sfd_sent_A": [1] * 4}
    bits = make(_text_ctx(protocol, **knobs)).cost(info)
    assert (bits.up, bits.down, bits.active) == (up, down, 4)


# ---- FedDF's server distillation against a hand-written loop -------------------------------------------

# probs is slow: its teacher formula alone is test_feddf.test_teacher_and_loss's (fast)
@pytest.mark.parametrize("target", ["logits", pytest.param("probs", marks=pytest.mark.slow)])
def test_feddf_server_distillation_matches_a_hand_written_adam_loop(target):
    """feddf.distill_server was checked against itself (test_protocol_rounds) and to lower the pool loss
    (test_feddf); here its steps are written out: each step draws feddf.batch_size pool examples with
    fold_in(server key, t), the teacher is softmax(mean_i z_i / T) (logits) or mean_i softmax(z_i / T)
    (probs), the loss KL(teacher || softmax(student / T)), and Adam (b1 0.9, b2 0.999, eps 1e-8, bias
    corrected) steps at lr * (1 + cos(pi t / steps)) / 2."""
    from tallysim.protocols import feddf
    from tallysim.sim.fed import pool_examples, to_input
    steps, lr, T, B = 4, 0.05, 2.0, 16
    b = run.build(tiny("protocol.name=feddf", f"feddf.steps={steps}", f"feddf.lr={lr}", f"feddf.temperature={T}",
                       f"feddf.batch_size={B}", f"feddf.target={target}", "model.width=8"))
    apply = b.ctx.model.apply
    init = jax.jit(b.protocol.init)(jax.random.PRNGKey(0), b.one)
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    params_A = jax.vmap(lambda p, k: jax.tree.map(lambda a: a + 0.3 * jax.random.normal(k, a.shape), p))(init.params, keys)
    student = jax.tree.map(lambda a: jnp.mean(a, 0), params_A)
    key = jax.random.PRNGKey(2)
    got, _ = jax.jit(lambda s, p, d, k: feddf.distill_server(b.ctx, s, p, d, k))(student, params_A, b.one, key)

    def loss(w, x):
        z = jax.vmap(apply, in_axes=(0, None))(params_A, x)
        teacher = (jax.nn.softmax(jnp.mean(z, 0) / T) if target == "logits"
                   else jnp.mean(jax.nn.softmax(z / T), 0))
        logq = jax.nn.log_softmax(apply(w, x) / T)
        return jnp.mean(jnp.sum(teacher * (jnp.log(jnp.maximum(teacher, 1e-30)) - logq), -1))
    grad = jax.jit(jax.grad(loss))
    w = jax.tree.map(lambda a: np.asarray(a, np.float64), student)
    m = jax.tree.map(np.zeros_like, w)
    v = jax.tree.map(np.zeros_like, w)
    Q = b.one.pool_Q.shape[0]
    for t in range(steps):
        pick = jax.random.choice(jax.random.fold_in(key, t), Q, (B,), replace=B > Q)
        x = to_input(pool_examples(b.one, pick)[0])
        g = jax.tree.map(lambda a: np.asarray(a, np.float64), grad(jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), w), x))
        m = jax.tree.map(lambda mi, gi: 0.9 * mi + 0.1 * gi, m, g)
        v = jax.tree.map(lambda vi, gi: 0.999 * vi + 0.001 * gi * gi, v, g)
        rate = lr * 0.5 * (1 + np.cos(np.pi * t / steps))
        w = jax.tree.map(lambda wi, mi, vi: wi - rate * (mi / (1 - 0.9 ** (t + 1)))
                         / (np.sqrt(vi / (1 - 0.999 ** (t + 1))) + 1e-8), w, m, v)
    for a, c, s in zip(jax.tree.leaves(got), jax.tree.leaves(w), jax.tree.leaves(student)):
        np.testing.assert_allclose(np.asarray(a, np.float64), c, rtol=1e-3, atol=1e-4)   # Adam divides near-zero g
    assert max(float(np.abs(np.asarray(a) - np.asarray(s)).max())
               for a, s in zip(jax.tree.leaves(got), jax.tree.leaves(student))) > 1e-2   # it moved


# ---- distill.order=sequential with no target to digest ---------------------------------------------------

def test_digest_without_any_target_leaves_the_peer_as_private_training_does():
    """FedMD's digest passes over the probes before the private epochs. When no probe carries a target
    (fedct between exchanges: "private training only"; bridge.vote_at=merge's first round; every vote
    lost) its zero-loss steps used to run anyway, moving the weights by the momentum they carried."""
    import optax
    from tallysim.sim import local
    from tallysim.sim.fed import FedData
    from tallysim.sim.local import hard_label_loss
    from tallysim.sim.models import make_model
    from tallysim.config import ModelConfig
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (40, 4, 4, 1))
    y = jnp.arange(40) % 3
    data = FedData(x, y, None, None, jnp.arange(8), x[:8], y[:8])
    model = make_model(ModelConfig(name="mlp", width=16), 3)
    spec = local.LocalSpec(apply_fn=model.apply, tx=optax.sgd(0.1, momentum=0.9), batch_size=4, shard_max=10,
                           epochs=1, distill_loss=hard_label_loss(3, 0.0), distill_weight=1.0, probe_batch=4)
    p0 = jax.tree.map(lambda a: a[None], model.init(key, x[:1]))
    shard, count, keys = jnp.arange(10)[None], jnp.array([10]), key[None]
    # a momentum buffer carried from earlier rounds (optim.reset_each_round=false, the distillation default)
    p1, o1, _, _ = local.train_peers(spec, p0, jax.vmap(spec.tx.init)(p0), keys, shard, count, data)
    private, o_private, _, _ = local.train_peers(spec, p1, o1, keys, shard, count, data)
    probes = local.Probes(x[:8], y[:8], jnp.zeros((8,), jnp.float32))
    digest, o_digest, _, _ = local.train_peers(spec, p1, o1, keys, shard, count, data, probes, sequential_epochs=1)
    for a, b in zip(jax.tree.leaves((private, o_private)), jax.tree.leaves((digest, o_digest))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    probes = probes._replace(weight_M=jnp.ones((8,), jnp.float32))          # with targets it does run
    ran, _, _, _ = local.train_peers(spec, p1, o1, keys, shard, count, data, probes, sequential_epochs=1)
    assert max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
               for a, b in zip(jax.tree.leaves(private), jax.tree.leaves(ran))) > 1e-4


def test_feddf_teacher_under_dropout_is_the_ensemble_of_the_models_that_arrived():
    """faults.kind=dropout (drop_prob 1): the 2 faulty peers' models never reach the server, so neither
    FedAvg's mean nor FedDF's teacher may use them. The distillation itself is checked above; here the
    round must hand it the arrived models only (a teacher over all five would land elsewhere)."""
    from tallysim.protocols import feddf
    from tallysim.protocols.base import round_keys
    d = tallysim.drive(tiny(*SGD_FULL, "protocol.name=feddf", "faults.kind=dropout", "faults.fraction=0.4",
                            "feddf.steps=3", "feddf.lr=0.05", "feddf.batch_size=32"))
    lost = np.asarray(d.built.one.faulty_P)
    d.step()
    arrived = np.flatnonzero(~lost)
    count = np.asarray(d.built.one.count_P, np.float64)[arrived]
    models = jax.tree.map(lambda a: a[arrived], d.state.params)                 # what the 3 arrived sent
    mean = jax.tree.map(lambda a: jnp.asarray(np.tensordot(count / count.sum(), np.asarray(a, np.float64), 1),
                                              jnp.float32), models)
    distil = jax.jit(lambda s, p, k: feddf.distill_server(d.built.ctx, s, p, d.built.one, k)[0])
    want = distil(mean, models, round_keys(d.root, 1).server)
    for a, b in zip(jax.tree.leaves(d.state.server), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=2e-4)
    every = distil(mean, d.state.params, round_keys(d.root, 1).server)          # the lost ones in the teacher
    assert max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
               for a, b in zip(jax.tree.leaves(every), jax.tree.leaves(want))) > 1e-3


# ---- the history-weighted vote: the weights decide the winner --------------------------------------------

def test_history_weighted_vote_lets_trusted_peers_outvote_a_distrusted_majority():
    """test_byzantine follows the trust over two rounds, where the weighted and the plain vote agree; a
    vote that ignored the weights passed it. By hand: trust (1, 1, 0.1, 0.1, 0.1), votes (0, 0, 1, 1, 1):
    w_i = r_i * 5 / 2.3, class 0 gets 2 * 5 / 2.3 = 4.348 of the 5 votes, class 1 0.652: 0 wins with a
    share of 0.870 (the plain vote: 1, 3 to 2). Peer 0's vote lost: w_i = r_i * 4 / 1.3, 0 wins 3.077 to
    0.923 (share 0.769) and peer 0 keeps its trust; the others move by beta = 0.9 toward agreement."""
    from tallysim.sim import trust
    r = jnp.asarray([1.0, 1.0, 0.1, 0.1, 0.1], jnp.float32)
    votes = jnp.asarray([[0], [0], [1], [1], [1]], jnp.int32)
    t, w = trust.weighted_tally(r, votes, None, 3, "lowest", 0.0, None, 0.0)
    assert int(t.winner_M[0]) == 0
    np.testing.assert_allclose(float(t.share_M[0]), 10 / 11.5, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(w), np.asarray(r) * 5 / 2.3, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(trust.updated(r, None, votes, t, None, 0.9)),
                               [1.0, 1.0, 0.09, 0.09, 0.09], rtol=1e-6)
    sent = jnp.asarray([False, True, True, True, True])
    t, _ = trust.weighted_tally(r, votes, sent, 3, "lowest", 0.0, None, 0.0)
    assert int(t.winner_M[0]) == 0
    np.testing.assert_allclose(float(t.share_M[0]), 4 / 1.3 / 4, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(trust.updated(r, None, votes, t, sent, 0.9)),
                               [1.0, 1.0, 0.09, 0.09, 0.09], rtol=1e-6)


# ---- selective_fd's two thresholds are inclusive (>=) ------------------------------------------------------

def test_selective_fd_thresholds_keep_values_equal_to_them(monkeypatch):
    """A peer shares on x when max_c p_i(x) >= client_threshold; the server keeps x when someone shared and
    max_c t(x) >= server_threshold. Both at 0.75 with probabilities exactly 0.75 (nothing compiles)."""
    from tallysim.protocols import selective_fd
    from tallysim.protocols.probe_round import Messages
    from tallysim.sim import fed
    cfg = config.validate(tiny("protocol.name=selective_fd", "selective_fd.client_threshold=0.75",
                               "selective_fd.server_threshold=0.75"))
    monkeypatch.setattr(selective_fd, "make_round", lambda ctx, lspec, ex: ex)
    spec = fed.Spec(peers=2, active=2, shard_max=2, pool=10, probes=3, classes=2, input_shape=(4,))
    from tallysim.sim.models import make_model
    ex = selective_fd.make(Context(cfg=cfg, spec=spec, model=make_model(cfg.model, 2), num_params=0)).round
    probs = jnp.asarray([[[0.75, 0.25], [0.5, 0.5], [0.25, 0.75]],       # peer 0 shares on probes 0 and 2
                         [[0.6, 0.4], [0.5, 0.5], [0.25, 0.75]]])        # peer 1 on probe 2
    msgs = Messages(jnp.arange(3), None, None, probs, jnp.ones((2,), bool), 2)
    target, keep, info, _ = ex(msgs, {}, None, {})
    np.testing.assert_array_equal(np.asarray(keep), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(np.asarray(target)[[0, 2]], [[0.75, 0.25], [0.25, 0.75]], rtol=1e-6)
    assert np.asarray(info["sfd_shared_A"]).tolist() == [2, 1] and int(info["sfd_kept"]) == 2
