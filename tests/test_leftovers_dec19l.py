"""Leftovers of 2026-12-07 (leftovers25): `sweep --dry-run`'s closing line counts what the sweep would run
and compile, not every run; a round with no vote arrived reports no agreement or wrong_confidence while the
gate reads what it did; run_sweep (and a figure, every group first) refuses eval_peers above a run's peers;
`table` reads a field an older run's config.json lacks as its default."""
import json  # noqa: F401

import pytest  # noqa: F401

from tallysim import cli, sweep  # noqa: F401 (imported before jit is patched)
from conftest import TINY
from test_hostile_dec07 import _finished_sweep


# ----------------------------------------------------------------------------- 1. sweep --dry-run's closing line

@pytest.mark.parametrize("axes, extra, said", [
    (["seed=0,1,2,3"], [], "4 runs (2 done, 2 to run); 1 compiled program"),
    # one at a time, seed=3 reuses seed=2's program from the compile cache (sweep_plan.compiles)
    (["seed=0,1,2,3"], ["--one-at-a-time"], "4 runs (2 done, 2 to run); 1 compiled program"),
    (["seed=0,1"], [], "2 runs (2 done, 0 to run); 0 compiled programs"),
])
def test_a_dry_run_into_a_sweep_directory_counts_only_the_runs_it_would_run(axes, extra, said, tmp_path, capsys,
                                                                             no_compile):
    # it said "4 runs; 1 compiled programs" (and "2 runs; 1 compiled programs" with both done): the runs
    # the real sweep skips were counted as if they would run
    out = _finished_sweep(tmp_path)                      # seed=0 and seed=1 done (written by hand)
    assert cli.main(["sweep", *TINY, *axes, "--out", str(out), "--dry-run", *extra]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == said


# ----------------------------------------------------------------------------- 2. agreement with no vote arrived

def test_a_vote_some_sent_reports_its_agreement_and_the_gate_reads_it(monkeypatch):
    # the other side of test_review_dec19j's nobody-sent round (agreement and wrong_confidence null there,
    # the gate reading 0.0): with votes arrived nothing changes, the gate reads the rows' agreement itself
    from tallysim.protocols.probe_targets import gate_agreement
    from test_review_dec19j import dropout_pair
    infos, _ = dropout_pair(monkeypatch, [False, True, False])
    for info in infos:
        assert int(info["senders"]) == 2 and 0.0 < float(info["agreement"]) <= 1.0
        assert 0.0 <= float(info["tied"]) <= 1.0                  # a number where votes arrived (leftovers26)
        assert float(gate_agreement(info)) == float(info["agreement"])


def _none_arrived_before(info, voters):
    """vote.none_arrived as it was: only vote_acc and softavg_acc NaN, agreement 0.0 read by the gate."""
    import jax
    import jax.numpy as jnp
    if isinstance(voters, jax.Array):
        info.update({k: jnp.where(voters > 0, info[k], jnp.float32(jnp.nan)) for k in ("vote_acc", "softavg_acc")})
    return info


@pytest.mark.slow   # 22 s (two runs compiled); the fast test above checks the value the gate reads, both paths
def test_a_gated_run_with_rounds_nobody_sent_trains_bit_for_bit_as_before(monkeypatch):
    # fedct keeps the gate's agreement in its PendingVote (state): a NaN there, or a gate reading it,
    # would change the state; rounds 3, 4 and 6 of this seed have every message lost
    import numpy as np
    from conftest import drive_rounds, same_leaves, tiny
    from tallysim.sim import vote
    cfg = tiny("protocol.name=fedct", "faults.kind=dropout", "faults.fraction=1", "faults.drop_prob=0.85",
               "distill.gate=0.3", "rounds=6")
    now, infos = drive_rounds(cfg)
    monkeypatch.setattr(vote, "none_arrived", _none_arrived_before)
    before, _ = drive_rounds(cfg)
    assert [int(i["senders"]) for i in infos].count(0) >= 2                  # the case is exercised
    assert all(np.isnan(float(i["agreement"])) == (int(i["senders"]) == 0) for i in infos)
    assert same_leaves(now, before)


# ----------------------------------------------------------------------------- 3. the API's sweep and eval_peers

def test_the_api_sweep_refuses_eval_peers_above_a_runs_peers_before_anything_runs(tmp_path, no_compile):
    # only `tallysim sweep` (command_configs) refused it: run_sweep ran the 4-peer run evaluating every
    # peer in silence (a sweep's run does not ask check_read), the rows beside eval_peers=6 of 10
    from conftest import tiny
    from tallysim.config import ConfigError
    out = tmp_path / "sw"
    runs = sweep.expand({}, ["peers=4,10", "eval_peers=6"])
    with pytest.raises(ConfigError, match=r"eval_peers is more than the peers of 1 of the sweep's 2 runs: peers=4 "):
        sweep.run_sweep(tiny(), runs, out, progress=False)
    assert not out.exists()


def test_a_figure_refuses_eval_peers_above_a_groups_peers_before_its_first_group_runs(tmp_path, monkeypatch):
    # run_sweep refuses it now: a figure checks every group first, or its later group was refused after
    # the earlier groups had trained
    from tallysim import figures
    from tallysim.config import ConfigError
    from test_figure_plan_dec19h import SPEC
    spec = json.loads(json.dumps(SPEC))
    spec["base"]["eval_peers"] = 3
    spec["groups"]["fedavg"]["peers"] = 2                # the second group only
    path = tmp_path / "fig.json"
    path.write_text(json.dumps(spec))
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: pytest.fail("a group ran before the refusal"))
    for go in (lambda: figures.dry_run(str(path), log=lambda m: None),
               lambda: figures.make_figure(str(path), results=str(tmp_path / "r"), out=str(tmp_path / "f"),
                                           progress=False, log=lambda m: None)):
        with pytest.raises(ConfigError, match=r"figure group 'fedavg': eval_peers is more than the peers of 2 of"):
            go()


# ----------------------------------------------------------------------------- 4. table: an older run's missing fields

def test_table_reads_a_field_an_older_run_lacks_as_its_default(tmp_path):
    # an old run's config.json predates vote.ties and eval_sample: beside new runs holding their defaults,
    # both were swept columns, blank for the old run
    from tallysim import config
    from tallysim.results import table
    from test_leftovers_dec16b import _write_run
    row = [{"round": 1, "acc_mean": 0.5, "acc_global": None, "bits_per_peer": 10.0}]

    def cfg(*items):
        return json.loads(json.dumps(config.to_dict(config.validate(config.apply_overrides(
            config.Config(), ["protocol.name=tally", "rounds=1", *items])).resolved())))
    old = cfg("optim.lr=0.01")
    del old["vote"]["ties"], old["eval_sample"]
    _write_run(tmp_path / "old", row, old)
    _write_run(tmp_path / "new", row, cfg("optim.lr=0.1"))
    columns, rows = table.table_rows([tmp_path], log=lambda m: None)
    assert columns[1:2] == ["optim.lr"] and "vote.ties" not in columns and "eval_sample" not in columns, columns
    # a field the new runs do vary: the old run's cell is the default it ran under, not blank
    _write_run(tmp_path / "new2", row, cfg("optim.lr=0.1", "vote.ties=random"))
    columns, rows = table.table_rows([tmp_path], log=lambda m: None)
    assert "vote.ties" in columns and "eval_sample" not in columns
    assert {r["run"]: r["vote.ties"] for r in rows} == {"old": "lowest", "new": "lowest", "new2": "random"}
    # a key tallysim does not declare has no known default: still a value of its own
    _write_run(tmp_path / "new3", row, {**cfg("optim.lr=0.1"), "made_up": 1})
    assert "made_up" in table.table_rows([tmp_path], log=lambda m: None)[0]
