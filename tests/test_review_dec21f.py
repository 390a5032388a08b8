"""review24: the degenerate cases of model groups, FedCT and cross-device populations (docs/groups.md,
docs/protocols.md#fedct, docs/population.md).

One group is one model for every peer: it draws the one-model run's cohort each round (it drew
fold_in(key, 0)'s, another cohort, so a one-group run under participation < 1 was not the run without
groups). FedCT in two groups of one architecture is the one-model FedCT, its XOR flips and lagged vote
included. A population whose cohort is all of it (participation 1) under client_storage=auto is the
stacked (cross-silo) run, number for number.
"""
import jax
import numpy as np
import pytest

from conftest import read_rows, run_rows, tiny
from tallysim import run
from tallysim.protocols.base import active_set, round_keys


@pytest.mark.parametrize("draw", ["sort", "sequential"])
def test_one_group_draws_the_cohort_of_the_run_without_groups(draw):
    items = ["protocol.name=tally", "peers=6", "participation=0.5", f"cohort_draw={draw}"]
    plain = run.build(tiny(*items)).ctx
    one = run.build(tiny(*items, "model.groups=all:6")).ctx
    assert one.model_groups and plain.spec.active == one.spec.active == 3
    root = jax.random.PRNGKey(0)
    for r in range(1, 6):
        key = round_keys(root, r).active
        np.testing.assert_array_equal(np.asarray(active_set(one, key)), np.asarray(active_set(plain, key)), f"round {r}")


@pytest.mark.slow     # two runs, 4-8 s on 2 cores; the cohort it turned on is checked above without running
def test_a_one_group_run_is_the_run_without_groups(tmp_path):
    base = ["protocol.name=tally", "participation=0.5", "warmup_epochs=0"]
    plain = run_rows(tiny(*base), tmp_path / "plain")
    one = run_rows(tiny(*base, "model.groups=all:4"), tmp_path / "one")
    for a, b in zip(plain, one):
        for k in ("bits_up", "bits_down", "acc_mean", "train_loss", "agreement", "vote_acc"):
            assert a[k] == b[k], (a["round"], k)


def test_population_docs_table_sorts_every_protocol_by_its_client_state():
    """docs/population.md's stateless | stateful table names each built-in protocol in the column its
    TRAITS.client_state puts it (fedct and topk_soft, both stateful, were in neither)."""
    import re
    from pathlib import Path

    from tallysim import config, protocols
    text = (Path(__file__).resolve().parents[1] / "docs" / "population.md").read_text()
    head = "| stateless (`client_storage=auto` holds the server model only) | stateful (every client stays stacked) |"
    row = text.split(head, 1)[1].splitlines()[2]
    stateless, stateful = (set(re.findall(r"`([a-z_]+)`", cell)) for cell in row.strip("|").split("|"))
    for name in protocols.names():
        keeps = protocols.client_state(config.Config().replace(protocol={"name": name}))
        assert name in (stateful if keeps else stateless), (name, keeps)
        assert name not in (stateless if keeps else stateful), name


def test_a_grouped_sweep_over_partition_kind_builds_each_lanes_own_population():
    """partition.kind is a host field (lanes.HOST): a population lane and an iid lane of one program each
    get the shards, sizes and probe pool their configuration builds alone (its own seed, its own kind)."""
    from tallysim import config
    from tallysim.sim import fed, lanes
    items = ["protocol.name=fedavg", "peers=40", "partition.mean_size=20"]
    cfgs = [config.validate(tiny(*items, "partition.kind=population", "seed=3")),
            config.validate(tiny(*items, "partition.kind=iid"))]
    assert lanes.group(cfgs) == [[0, 1]]
    b = run.build_group(cfgs)
    for j, c in enumerate(cfgs):
        g, a = fed.seed_slice(b.fed, j), run.build(c).one
        np.testing.assert_array_equal(np.asarray(g.count_P), np.asarray(a.count_P))
        np.testing.assert_array_equal(np.asarray(g.pool_Q), np.asarray(a.pool_Q))
        for p in range(40):
            lo_g, lo_a, n = int(g.offset_P[p]), int(a.offset_P[p]), int(a.count_P[p])
            np.testing.assert_array_equal(np.asarray(g.shard_H[lo_g:lo_g + n]), np.asarray(a.shard_H[lo_a:lo_a + n]))
    sizes = np.asarray(fed.seed_slice(b.fed, 0).count_P)
    assert len(set(sizes.tolist())) > 5 and sizes.min() >= 10          # lognormal sizes, min_size's floor


@pytest.mark.slow     # two runs, 7-14 s on 2 cores; tests/test_groups.py's fast identical-groups test is tally's
def test_fedct_in_two_groups_of_one_architecture_is_the_one_model_fedct(tmp_path):
    """The XOR flips (keyed by global peer index), the lagged vote and period 2's silent round reduce
    exactly: two identical groups are the one-model FedCT run, rows and epsilon."""
    base = ["protocol.name=fedct", "fedct.period=2", "fedct.xor_epsilon=1", "warmup_epochs=0", "eval_every=1"]
    plain = run_rows(tiny(*base), tmp_path / "plain")
    two = run_rows(tiny(*base, "model.groups=a:2;b:2"), tmp_path / "two")
    assert [r["bits_up"] for r in plain] == [0, 4 * 64 * 4]              # round 2 exchanges: A M L
    for a, b in zip(plain, two):
        for k in ("bits_up", "bits_down", "acc_mean", "agreement", "vote_acc", "epsilon"):
            assert a[k] == b[k], (a["round"], k)
        # a peer with no local step reports the others' mean (local.stepped_mean_fill), a reduction XLA
        # orders per program (one model vs two groups): equal to float32 rounding, not bit for bit
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=5e-7), a["round"]
        assert b["bits_up@a"] + b["bits_up@b"] == a["bits_up"]


def test_a_grouped_sweep_over_xor_epsilon_reports_each_runs_own_epsilon(tmp_path):
    """fedct.xor_epsilon is a lane field: two thetas run as one program, and each run's epsilon is its own
    theta's (the ledger of its configuration, not of the group's first), below the pure 2 M theta."""
    from tallysim import config, privacy
    from tallysim.sim import lanes
    cfgs = [config.validate(tiny("protocol.name=fedct", "warmup_epochs=0", "rounds=1", f"fedct.xor_epsilon={th}"))
            for th in (0.5, 2.0)]
    assert lanes.group(cfgs) == [[0, 1]]
    outs = [tmp_path / "t0", tmp_path / "t1"]
    run.run_group(cfgs, [str(o) for o in outs], progress=False)
    eps = []
    for c, o in zip(cfgs, outs):
        ledger = privacy.XorLedger(c.fedct.xor_epsilon, 64, 1, c.privacy.delta)
        ledger.step()
        row = read_rows(o)[-1]
        assert row["epsilon"] == pytest.approx(ledger.epsilon(), rel=1e-12)
        assert 0 < row["epsilon"] <= 2 * 64 * c.fedct.xor_epsilon
        eps.append(row["epsilon"])
    assert eps[0] < eps[1]


def test_groups_docs_name_exactly_the_protocols_that_take_groups():
    """docs/groups.md's "Protocols that work with groups" is model_groups.GROUP_PROTOCOLS (the ones that
    exchange only predictions), no more and no fewer."""
    import re
    from pathlib import Path

    from tallysim import model_groups
    text = (Path(__file__).resolve().parents[1] / "docs" / "groups.md").read_text()
    listed = text.split("Protocols that work with groups:", 1)[1].split(", and a plugin", 1)[0]
    assert set(re.findall(r"`([a-z_]+)`", listed)) == set(model_groups.GROUP_PROTOCOLS), listed


def test_a_cohort_of_the_whole_population_is_the_cross_silo_run():
    """participation=1 under client_storage=auto (every client of a lognormal population drawn each round,
    the cohort path without an active set) is the stacked run: the same server model and bits. The
    cohort tests elsewhere draw participation 0.5 (tests/test_population.py)."""
    from test_population import _drive
    items = ["protocol.name=fedavg", "partition.kind=population", "peers=40", "partition.mean_size=20"]
    stacked_b, stacked = _drive(tiny(*items), 1)
    cohort_b, cohort = _drive(tiny(*items, "client_storage=auto"), 1)
    assert not stacked_b.ctx.cohort and cohort_b.ctx.cohort and cohort_b.ctx.spec.active == 40
    (s, bits_s, loss_s), (c, bits_c, loss_c) = stacked[0], cohort[0]
    assert bits_s == bits_c and bits_c.active == 40
    np.testing.assert_allclose(loss_c, loss_s, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6),
                 s.server, c.server)
