"""leftovers51 (one section per item): a `figure --only/--panel` selection's sweep.json lists every run of
the group (those it left alone marked), and table / pareto / read_rows / plot name a sweep's runs that have
no rows instead of showing part of it as the whole; a run stopped on a non-finite loss runs again after a
tallysim code change (saying why) while a finished run is kept (saying its rows are the old code's);
`sweep --dry-run`'s count of runs to do leaves out those it skips as failed before."""
import json
import warnings

import pytest

import tallysim
from tallysim import cli, figures, sweep, sweep_plan
from tallysim.results import metrics, pareto, table
from conftest import tiny

# the figure-selection test's tiny figure: two groups, two panels, the smallest runs
SPEC = {"kind": "pareto", "title": "tiny",
        "panels": {"a": {"partition": {"kind": "iid"}}, "b": {"partition": {"kind": "dirichlet", "alpha": 0.5}}},
        "base": {"peers": 2, "rounds": 1, "eval_every": 1, "probe": {"per_round": 32, "pool_size": 100},
                 "data": {"name": "synthetic", "train_size": 600, "test_size": 100}, "model": {"width": 8}},
        "groups": {"fedavg": {"protocol": {"name": "fedavg"}}, "tally": {"protocol": {"name": "tally"}}}}


# ----------------------------------------------------------------------------- 1. a selection's sweep.json

@pytest.fixture(scope="module")
def selected(tmp_path_factory):
    """res/tiny after `figure --only tally --panel a`: tally's run a done, its run b and fedavg not run."""
    tmp = tmp_path_factory.mktemp("sel")
    path, res = tmp / "tiny.json", tmp / "res"
    path.write_text(json.dumps(SPEC))
    out = figures.make_figure(str(path), results=str(res), out=str(tmp / "fig"), progress=False,
                              log=lambda m: None, only="tally", panel="a")
    assert out["missing"] == {"fedavg": 2, "tally": 1}
    return res / "tiny"


def test_a_selection_lists_every_run_of_its_group(selected):
    # it listed run a alone, read as the whole group until a full pass rewrote it
    doc = metrics.read_sweep(selected / "tally")
    assert [(r["name"], r["status"]) for r in doc["runs"]] == [("a", "done"), ("b", "not_run")]
    assert "--only/--panel" in doc["runs"][1]["why"] and doc["axes"] == []
    assert not (selected / "tally" / "b").exists() and not (selected / "fedavg").exists()


def test_readers_name_the_runs_a_sweep_has_not_run(selected):
    said = []
    table.table_rows(str(selected / "tally"), log=said.append)
    want = (f"table: {selected / 'tally'}: 1 of 2 runs its sweep.json lists have no rows and are missing here: "
            "not run yet, left out by a `figure --only/--panel` selection: b; the same sweep or figure run again "
            "runs those not run yet")
    assert want in said, said
    said = []
    pareto.collect(str(selected), log=said.append)        # the figure's folder: its groups' sweeps below it
    assert any(s.startswith(f"pareto: {selected / 'tally'}: 1 of 2 runs") for s in said), said
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tallysim.read_rows(str(selected / "tally"))
    assert any(str(w.message).startswith(f"read_rows: {selected / 'tally'}: 1 of 2 runs") for w in caught), caught


def test_plot_of_a_sweeps_runs_names_those_not_run(selected, capsys):
    assert cli.main(["plot", str(selected / "tally" / "a"), "--out", str(selected.parent / "p.png")]) == 0
    err = capsys.readouterr().err
    assert f"plot: {selected / 'tally'}: 1 of 2 runs" in err and ": b;" in err, err


def test_the_notes_say_why_by_status(tmp_path):
    from tallysim.results import sweep_gaps
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.jsonl").write_text("")
    runs = [{"name": "r", "status": "done"}, {"name": "p", "status": "pending"},
            {"name": "f", "status": "failed", "diverged": True}, {"name": "g", "status": "done_before"}]
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": runs}))
    [line] = sweep_gaps.notes(str(tmp_path), "table")
    assert line == (f"table: {tmp_path}: 3 of 4 runs its sweep.json lists have no rows and are missing here: not run "
                    "yet (the sweep stopped before them, or is running): p; failed before their first row (see each "
                    "one's error.txt): f; its metrics.jsonl is gone: g; the same sweep or figure run again runs those "
                    "not run yet")
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": runs[:1]}))
    assert sweep_gaps.notes(str(tmp_path), "table") == []        # every listed run has rows: nothing to say
    assert sweep_gaps.notes(str(tmp_path / "r"), "table") == []  # a run named alone: no sweep to speak of


# ----------------------------------------------------------------------------- 2. a code change

def _other_code(run_dir, resumed_now: bool = False) -> None:
    """run_dir's config.json as if another tallysim computed it (or, resumed_now, its last rounds this one)."""
    from tallysim import code_identity
    doc = json.loads((run_dir / "config.json").read_text())
    doc["code"] = {**doc["code"], "source": "crc32:00000000"}
    if resumed_now:
        doc["resumed"] = [{"round": 1, "code": code_identity.identity()}]
    (run_dir / "config.json").write_text(json.dumps(doc))


def test_a_code_change_reruns_a_nan_stopped_run_and_keeps_a_finished_one(tmp_path, monkeypatch, capsys):
    base, out = tiny("rounds=1", "protocol.name=local"), tmp_path / "sw"
    runs = [("a", []), ("b", ["optim.lr=1e30"])]                     # one program; b diverges
    cfgs = sweep.configs(base, runs)
    first = sweep.run_sweep(base, runs, out, progress=False, log=lambda m: None)
    assert [(r["status"], r.get("diverged")) for r in first] == [("done", None), ("failed", True)]
    line = sweep_plan.diverged_before(out / "b", cfgs[1])
    assert line and sweep_plan.tallysim_change(out / "b") == ""

    # 3. the dry run's count: b is skipped (its own line says so), not "to run"
    sweep_plan.dry_run(type("A", (), {"out": str(out), "one_at_a_time": False, "smoke": False})(),
                       runs, cfgs, sweep.checked_out)
    said = capsys.readouterr().out
    assert "2 runs (1 done, 1 skipped as diverged before, 0 to run); 0 compiled programs" in said, said

    for d in (out / "a", out / "b"):
        _other_code(d)
    why = sweep_plan.tallysim_change(out / "b")
    assert why.startswith("tallysim's code has changed since it ran (it ran tallysim ") and "crc32:00000000" in why
    assert sweep_plan.diverged_before(out / "b", cfgs[1]) is None         # the NaN was the old code's
    assert sweep_plan.state(out / "b", cfgs[1]) == (
        f"will run again from round 1 (it stopped on a non-finite loss before, but {why})")
    assert sweep_plan.state(out / "a", cfgs[0]) == f"done; skipped, though {why} (its rows stay the old code's)"
    ran, said = [], []
    monkeypatch.setattr(sweep, "_run_one", lambda runmod, i, *a, **k: ran.append(i))
    again = sweep.run_sweep(base, runs, out, progress=False, log=said.append, grouped=False)
    assert ran == [1] and again[0]["status"] == "done_before"
    assert f"  note: b stopped on a non-finite loss before, and runs again from round 1: {why}, so it may not " \
           "diverge again" in said, said
    assert f"  note: {why}: its rows are the old code's, kept as a finished run is; delete {out / 'a' / 'done.json'} " \
           "to rerun it" in said, said

    _other_code(out / "b", resumed_now=True)    # its last rounds ran this code: the NaN is this code's
    assert sweep_plan.tallysim_change(out / "b") == "" and sweep_plan.diverged_before(out / "b", cfgs[1]) == line
