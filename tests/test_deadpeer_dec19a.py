"""Dead peers (deadpeer): the demo's seed 1 (experiments/demo.json, seed=1) ran tally's 15 rounds with
peer 0 diverged in round 1 and at 0.1000, chance, in every row after it, pulling the peer mean down by
0.029, and softlabel's seed 1 stopped in round 1 on a NaN loss naming no peer; nothing printed, no summary,
`tallysim table` nor `Results` said so. Now a peer at or below the floor at every evaluation after the
first is named once on stderr at the run's end, in the summary line, `table`'s notes and `Results`, and a
run stopped on a non-finite loss names the peers whose parameters are not finite."""
import json

import jax
import jax.numpy as jnp
import numpy as np

from conftest import TINY, tiny
from tallysim import cli, run
from tallysim.results import dead_peers, metrics, table
from tallysim.results.runs import Results
from tallysim.sim import peers


def _rows(per_round, seeds=None, server=False):
    """Rows as run.py writes them: acc_peers per round (one seed), or per seed (`seeds` their numbers)."""
    rows = []
    for r, acc in enumerate(per_round, 1):
        if seeds is None:
            row = {"round": r, "acc_peers": acc, "acc_mean": sum(acc) / len(acc)}
        else:
            row = {"round": r, "seeds": seeds, "acc_peers": [sum(x) / len(x) for x in zip(*acc)],
                   "acc_mean": float(np.mean(acc)), "per_seed": {"acc_peers": acc}}
        row["acc_global"] = 0.8 if server else None
        rows.append(row)
    return rows


def test_a_peer_at_the_floor_after_the_first_evaluation_is_named():
    # the demo's seed 1: peer 0 at 0.1 from round 1; peer 2 at the floor in round 2 only (it recovers);
    # peer 3 at the floor in round 1 only (every peer starts near it: round 1 is not read)
    rows = _rows([[0.1, 0.6, 0.5, 0.1], [0.1, 0.7, 0.1019, 0.6], [0.0998, 0.8, 0.7, 0.7]])
    dead = dead_peers.find(rows, 0.1)
    assert dead.names == ["peer 0"] and dead.peers == 4 and dead.rounds == (2, 3)
    assert abs(dead.mean - 0.574950) < 1e-6 and abs(dead.without - 0.7333333) < 1e-6
    assert dead_peers.find(rows, 0.09) is None                  # 0.0998 is above 0.09 + 0.002
    assert dead_peers.find(rows[:1], 0.1) is None               # one evaluation tells nothing
    assert dead_peers.find(rows, None) is None                  # no floor known
    assert dead_peers.find(_rows([[0.1] * 4] * 3), 0.1) is None    # the whole run: floor_note's case
    assert dead_peers.find(_rows([[0.1, 0.6]] * 3, server=True), 0.1) is None   # FedAvg's drifted peers
    assert dead_peers.find(rows, 0.1, sampled=True).names == ["evaluated peer #0"]
    # a non-finite accuracy counts as at the floor
    assert dead_peers.find(_rows([[0.5, 0.6], [float("nan"), 0.6], [0.1, 0.7]]), 0.1).names == ["peer 0"]
    # several seeds: each seed's own list (per_seed), named by seed; the mean's list would hide it
    multi = _rows([[[0.5, 0.6], [0.5, 0.6]], [[0.1, 0.6], [0.5, 0.6]], [[0.1, 0.7], [0.6, 0.7]]], seeds=[0, 1])
    dead = dead_peers.find(multi, 0.1)
    assert dead.names == ["seed 0 peer 0"] and dead.peers == 4
    assert dead_peers.warning(dead).startswith("tallysim: warning: seed 0 peer 0 (1 of 4: 2 peers x 2 seeds) stayed")
    assert dead_peers.floor_of({"majority_acc": 0.0898}, 10) == 0.0898
    assert dead_peers.floor_of({}, 10) == 0.1 and dead_peers.floor_of({}, None) is None


def test_the_lines_say_who_and_what_it_cost():
    rows = _rows([[0.1, 0.6, 0.5, 0.1], [0.1, 0.7, 0.1019, 0.6], [0.0998, 0.8, 0.7, 0.7]])
    dead = dead_peers.find(rows, 0.1)
    line = dead_peers.warning(dead, "tally_seed1")
    assert line.startswith("tallysim: warning: tally_seed1: peer 0 (1 of 4 peers) stayed at or below the "
                           "floor 0.1000 (always predicting the most frequent test target) at every evaluation "
                           "after the first (rounds 2-3)"), line
    assert "the peer mean 0.5750 counts it, 0.7333 without" in line and "optim.lr" in line
    assert "never drawn" not in line
    assert "never drawn into a round (participation < 1)" in dead_peers.warning(dead._replace(partial=True))
    assert dead_peers.clause(dead) == "; 0.7333 without peer 0, at the floor all run"
    assert dead_peers.clause(None) == ""
    many = dead._replace(names=[f"peer {p}" for p in range(8)], peers=20)
    assert dead_peers.clause(many) == ("; 0.7333 without peer 0, peer 1, peer 2, peer 3, peer 4, peer 5 and 2 "
                                       "more (8 of 20), at the floor all run")


def _dead_peer_row(real):
    """lane_row with peer 1's accuracy 0.0 (a diverged peer, without training one to diverge)."""
    def row(*a, **k):
        out = real(*a, **k)
        out["acc_peers"][1] = 0.0
        return out
    return row


def test_a_run_names_its_dead_peer_once_and_table_and_results_too(tmp_path, capsys, monkeypatch):
    # test_floor_dec18e's TINY local run (its programs compiled already); the rows, not the training, are
    # changed: run.py's end, the summary line, table and Results all read them back
    monkeypatch.setattr(run, "lane_row", _dead_peer_row(run.lane_row))
    out = tmp_path / "local"
    assert cli.main(["run", *TINY, "protocol.name=local", "--out", str(out), "--quiet"]) == 0
    std = capsys.readouterr()
    assert std.err.count("peer 1 (1 of 4 peers) stayed at or below the floor") == 1, std.err
    assert "local: peer 1 (1 of 4 peers)" in std.err                     # named by its directory
    assert "without peer 1, at the floor all run)" in std.out, std.out
    notes = []
    table.table_rows([out], log=notes.append)
    assert any(n.startswith("table: local: peer 1 (1 of 4 peers) at or below the floor") for n in notes), notes
    res = Results.read(out)
    assert res.dead_peers == ["peer 1"] and "without peer 1, at the floor all run" in repr(res)
    assert dead_peers.of_run(out).floor == metrics.read_partition(out)["majority_acc"]
    # a run from before majority_acc was recorded: chance, 1/C, from partition.json's classes
    part = json.loads((out / metrics.PARTITION).read_text())
    (out / metrics.PARTITION).write_text(json.dumps({k: v for k, v in part.items() if not k.startswith("majority")}))
    assert dead_peers.of_run(out).floor == 0.1 and part["classes"] == 10
    # the same directory with peer 1 alive: nothing said anywhere
    rows = metrics.read_rows(out)
    (out / metrics.METRICS).write_text("".join(json.dumps({**r, "acc_peers": [0.9] * 4}) + "\n" for r in rows))
    assert Results.read(out).dead_peers == [] and dead_peers.of_run(out) is None
    notes.clear()
    table.table_rows([out], log=notes.append)
    assert not any("floor" in n for n in notes), notes


def test_nonfinite_peers_reads_each_peers_parameters():
    params = {"w": jnp.ones((2, 5, 3, 4)), "b": jnp.zeros((2, 5, 4))}        # [Z=2 lanes, P=5, ...]
    params["w"] = params["w"].at[1, 3, 2, 0].set(jnp.inf)
    params["b"] = params["b"].at[1, 0, 1].set(jnp.nan)
    assert peers.nonfinite_peers(params, 0, 5) == []
    assert peers.nonfinite_peers(params, 1, 5) == [0, 3]
    assert peers.nonfinite_peers(None, 0, 5) is None                   # client_storage=auto: no models
    assert peers.nonfinite_peers({"w": jnp.ones((2, 3, 4))}, 0, 5) is None   # not [Z, P, ...]


def test_a_run_stopped_on_a_nan_loss_names_the_peer_that_diverged(tmp_path):
    # softlabel's seed 1 on the demo stopped with "the training loss is nan" and no word of which of 20
    # peers: now "not finite: the parameters of peer 0 (1 of 20)". Here peer 2's parameters are made NaN
    # in round 1 (one small compile: TINY's local round with the poison)
    cfg = tiny("protocol.name=local", "rounds=1")
    b = run.build(cfg)
    orig = b.protocol.round

    def poisoned(state, data, root, r):
        state, info = orig(state, data, root, r)
        params = jax.tree_util.tree_map(lambda x: x.at[2].set(jnp.nan), state.params)     # [P, ...]: one lane
        return state._replace(params=params), {**info, "train_loss": jnp.nan * info["train_loss"]}
    b.protocol = b.protocol._replace(round=poisoned)
    out = tmp_path / "nan"
    try:
        run.run(cfg, str(out), progress=False, built=b)
        raise AssertionError("a NaN loss did not stop the run")
    except run.NonFiniteLoss as e:
        msg = str(e)
    assert msg.endswith("; not finite: the parameters of peer 2 (1 of 4)"), msg
    assert "peer 2 (1 of 4)" in (out / "error.txt").read_text()
