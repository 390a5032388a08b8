"""Leftovers of 2026-12-07 (leftovers26): `tied` null where no vote arrived, as agreement is; a multi-seed
row averages a key over the seeds that have a value; the non-finite stop names why no peer can be named;
the mid-run dead-peer line names each peer's model group."""
import json

import jax.numpy as jnp
import pytest

from tallysim.results import metrics


# ----------------------------------------------------------------------------- 1. tied with no vote arrived
# The value itself: test_review_dec19j's nobody-sent round (both vote paths) and test_leftovers_dec19l's
# some-sent one check `tied` beside agreement. Here: what reads the rows.

def _tied_run(d, values):
    from test_hostile_dec19e import _run_dir
    _run_dir(d)
    rows = [{"round": r, "bits_per_peer": 4.0 * r, "acc_mean": 0.5, "acc_global": None, "tied": t}
            for r, t in enumerate(values, 1)]
    (d / metrics.METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def test_table_and_results_read_a_null_tied_as_no_value(tmp_path):
    from tallysim.config import ConfigError
    from tallysim.results import table
    from tallysim.results.runs import Results
    _tied_run(tmp_path / "r" / "some", [0.3, None, 0.1, None])     # rounds 2 and 4: no vote arrived
    _, rows = table.table_rows([tmp_path / "r"], metric="tied", log=lambda m: None)
    # lower is better: the best is 0.1 (a null read as 0 would be the best, the mean pulled down); the
    # last round has no value, so neither has final
    assert (rows[0]["final tied"], rows[0]["best tied"]) == (None, 0.1), rows
    res = Results.read(tmp_path / "r" / "some")
    assert [r["tied"] for r in res.rows] == [0.3, None, 0.1, None]
    # a run with no vote arrived in any round: the refusal says why the column is empty (it said "not
    # computed by these runs" of a tally run)
    _tied_run(tmp_path / "n" / "none", [None, None])
    with pytest.raises(ConfigError, match=r"--metric 'tied' has no value in any run's metrics.jsonl \(null in "
                                          r"every row: no vote arrived \(every peer dropped\)\)"):
        table.table_rows([tmp_path / "n"], metric="tied", log=lambda m: None)


@pytest.mark.slow   # 20 s (two runs compiled); test_review_dec19j's nobody-sent round covers the value
def test_a_random_tie_run_with_rounds_nobody_sent_trains_bit_for_bit_as_before(monkeypatch, fusion_emitters):
    # `tied` is a row value only: its NaN must not reach the vote's tie draw or anything trained on (the
    # default fusion emitters: the suite's older ones round the two programs' fusions differently)
    import numpy as np
    from conftest import drive_rounds, same_leaves, tiny
    from tallysim.sim import vote
    cfg = tiny("protocol.name=tally", "vote.ties=random", "faults.kind=dropout", "faults.fraction=1",
               "faults.drop_prob=0.85", "rounds=6")
    now, infos = drive_rounds(cfg)
    monkeypatch.setattr(vote, "NONE_ARRIVED_KEYS", tuple(k for k in vote.NONE_ARRIVED_KEYS if k != "tied"))
    before, old = drive_rounds(cfg)
    assert [int(i["senders"]) for i in infos].count(0) >= 2                  # the case is exercised
    assert all(np.isnan(float(i["tied"])) == (int(i["senders"]) == 0) for i in infos)
    assert all(float(i["tied"]) == 0.0 for i in old if int(i["senders"]) == 0)     # as it was
    assert same_leaves(now, before)


# ----------------------------------------------------------------------------- 2. a multi-seed row, one seed null

def test_a_multi_seed_row_averages_a_key_over_the_seeds_that_have_one():
    # seeds in lanes of one program under dropout: seed 1's round lost every message, so its vote_acc,
    # agreement and tied are null; the row's were null too, the other seeds' values dropped with it
    rows = [{"round": 4, "vote_acc": v, "tied": t, "senders": n, "consensus_acc": None, "acc_mean": 0.5,
             "bits_up": 96, "wall_s": 1.0 + i}
            for i, (v, t, n) in enumerate(((0.5, 0.25, 2), (None, None, 0), (0.7, None, 1)))]
    out = metrics.aggregate(rows, [0, 1, 2])
    assert out["vote_acc"] == pytest.approx(0.6) and out["vote_acc_std"] == pytest.approx(0.1)
    assert out["tied"] == 0.25 and out["tied_std"] == 0.0                 # one seed has it: its value
    assert out["per_seed"]["vote_acc"] == [0.5, None, 0.7] and out["per_seed"]["tied"] == [0.25, None, None]
    assert out["seeds_counted"] == {"vote_acc": 2, "tied": 1}              # how many each mean is over
    # null for every seed: null, as before, and not counted
    assert out["consensus_acc"] is None and "consensus_acc" not in out["per_seed"]
    assert "consensus_acc_std" not in out
    assert out["bits_up"] == 96 and out["acc_mean"] == 0.5 and out["wall_s"] == 3.0
    # every key over every seed: no seeds_counted at all (rows as they were)
    whole = metrics.aggregate([{**r, "vote_acc": 0.5, "tied": 0.1} for r in rows], [0, 1, 2])
    assert "seeds_counted" not in whole and whole["vote_acc"] == 0.5
    # the row's columns and strict JSON: seeds_counted is no --metric column nor a tracked scalar
    from tallysim import tracking
    from tallysim.results.rows import dumps_row, revive
    assert "seeds_counted" not in metrics.columns([out]) and "seeds_counted" not in tracking.scalars(out)
    assert revive(json.loads(dumps_row(out))) == out


def test_a_plugin_may_not_write_seeds_counted():
    from tallysim.config import ConfigError
    from tallysim.results.rows import check_own_keys
    with pytest.raises(ConfigError, match=r"names 'seeds_counted', a column tallysim writes itself"):
        check_own_keys("tally", {"seeds_counted": int})


@pytest.mark.slow   # 15 s (a 2-seed dropout run); test_a_multi_seed_row_averages_a_key_over_the_seeds_that_have_one
def test_a_two_seed_dropout_run_keeps_the_seed_whose_vote_arrived(tmp_path):
    from conftest import tiny
    from tallysim import run
    run.run(tiny("faults.kind=dropout", "faults.fraction=1", "faults.drop_prob=0.85", "rounds=6", "seeds=2"),
            str(tmp_path / "r"), progress=False)
    rows = metrics.read_rows(tmp_path / "r")
    partial = [r for r in rows if None in r["per_seed"].get("vote_acc", [None]) and r["vote_acc"] is not None]
    assert partial, [r["per_seed"].get("vote_acc") for r in rows]         # the case is exercised
    for r in partial:
        have = [v for v in r["per_seed"]["vote_acc"] if v is not None]
        assert r["vote_acc"] == pytest.approx(sum(have) / len(have)) and r["seeds_counted"]["vote_acc"] == len(have)


# ----------------------------------------------------------------------------- 3. the non-finite stop's reason

def test_a_cohort_run_stopped_on_a_nan_loss_blames_client_storage_auto():
    # the one way a built-in protocol holds no model per peer: client_storage=auto's cohort (FedAvg, 5 s)
    from conftest import tiny
    from tallysim import run
    with pytest.raises(run.NonFiniteLoss) as e:
        run.run(tiny("protocol.name=fedavg", "client_storage=auto", "optim.lr=1e30", "rounds=1"), None,
                progress=False)
    assert str(e.value).endswith("; not finite: the server model's parameters (client_storage=auto keeps no "
                                 "client's model)"), str(e.value)


def test_a_plugins_state_without_stacked_peers_is_not_blamed_on_client_storage():
    # a plugin's own state (client_storage stacked): the line blamed client_storage=auto all the same
    from test_nonfinite_dec19h import _ctx, _tree
    from types import SimpleNamespace
    from tallysim import run
    server = {"w": jnp.ones((1, 3, 2))}
    ctx = _ctx(4, protocol="myplug")
    none = SimpleNamespace(params=None, server=server)
    assert run._diverged_peers(none, 0, ctx) == ("; the server model's parameters are finite (protocol myplug's "
                                                 "state holds no parameters per peer to name the one that diverged)")
    empty = SimpleNamespace(params={}, server={"w": server["w"].at[0, 0, 0].set(jnp.nan)})
    assert run._diverged_peers(empty, 0, ctx) == ("; not finite: the server model's parameters (protocol myplug's "
                                                  "state holds no parameters per peer)")
    flat = SimpleNamespace(params={"w": jnp.ones((1, 3, 2))}, server=server)      # [Z, ...], no peer axis of 4
    assert run._diverged_peers(flat, 0, ctx).startswith(
        "; the server model's parameters are finite (protocol myplug's state.params is not stacked one model per "
        "peer ([seeds, 4, ...] each, or one such tree per model group) to name")
    # groups whose params are one stacked tree, not one per group
    grouped = SimpleNamespace(params=_tree(1, 4), server=None)
    assert run._diverged_peers(grouped, 0, _ctx(4, [("a", 0, 2), ("b", 2, 4)], protocol="myplug")) == (
        "; no model can be named: protocol myplug's state.params is not stacked one model per peer ([seeds, 4, "
        "...] each, or one such tree per model group), and it holds no server model")


# ----------------------------------------------------------------------------- 4. the mid-run line's groups

def test_the_mid_run_dead_peer_line_names_each_peers_group():
    # the end-of-run warning said "peer 3 of group server", the mid-run one "peer 3" of the same peer
    from types import SimpleNamespace
    from conftest import tiny
    from tallysim import run_recorders
    from tallysim.results import dead_peers
    from test_deadpeer_dec19h import _watch_lines
    acc = [0.5, 0.6, 0.6, 0.1]
    rows = [{"round": r, "acc_mean": 0.45, "acc_global": None, "acc_peers": acc} for r in (1, 2, 3, 4)]
    groups = (("phone", 2), ("server", 2))
    (_, line), = _watch_lines(dead_peers.Watch(0.1, first=1, groups=groups), rows)
    assert "warning: x: peer 3 of group server (1 of 4 peers) at or below" in line, line
    assert dead_peers.find(rows, 0.1, groups=groups).names == ["peer 3 of group server"]     # as at the end
    (_, line), = _watch_lines(dead_peers.Watch(0.1, first=1, groups=groups, sampled=True, total=8), rows)
    assert "evaluated peer #3 (1 of" in line and "of group" not in line    # a position, not the peer's index
    # run_recorders hands the watch the run's groups, read as of_run reads config.json's
    b = SimpleNamespace(cfgs=[tiny("model.groups=phone:2;server:2")], majority_facts={"majority_acc": 0.1},
                        lanes_of=lambda i: [0], ctx=SimpleNamespace(spec=SimpleNamespace(classes=10)))
    (_, line), = _watch_lines(run_recorders._watch(b, 0), rows)
    assert "peer 3 of group server (1 of 4 peers)" in line, line
