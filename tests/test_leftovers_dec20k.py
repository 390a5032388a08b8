"""Leftovers of 2026-12-07 (leftovers27): sweep.json records a config file's `sweep` axes and tells runs an
earlier invocation finished (done_before) from runs it ran; ..."""
import json

import pytest  # noqa: F401

from tallysim import cli, sweep  # noqa: F401 (imported before jit is patched)
from tallysim.results import metrics
from conftest import TINY
from test_hostile_dec07 import _finished_sweep


# ----------------------------------------------------------------------------- 1. sweep.json's axes and statuses

def test_sweep_json_records_a_config_files_axes_and_the_runs_done_before(tmp_path, capsys, no_compile):
    # a file's `sweep` section was recorded as "axes": [] (only the command line's were), and the runs an
    # earlier invocation finished were "skipped", as if they had no results
    out = _finished_sweep(tmp_path)                      # seed=0 and seed=1 done (written by hand)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"sweep": {"seed": [0, 1]}}))
    assert cli.main(["sweep", "--config", str(cfg), *TINY, "--out", str(out), "--quiet"]) == 0
    index = metrics.read_sweep(out)
    assert index["axes"][0] == "seed=0,1" and index["axes"][1:] == TINY     # the file's first, then the line's
    assert metrics.sweep_axis_keys(index)[0] == "seed"
    assert [r["status"] for r in index["runs"]] == ["done_before", "done_before"]
    assert "0 ran, 2 done before" in capsys.readouterr().out


def test_an_old_sweep_json_still_reads():
    # files written before: "skipped" is a run done before, and "axes": [] names no axis
    assert metrics.done_before({"status": "skipped"}) and metrics.done_before({"status": "done_before"})
    assert not metrics.done_before({"status": "done"}) and not metrics.done_before({"status": "failed"})
    assert metrics.sweep_axis_keys({"axes": [], "runs": []}) == []
    assert metrics.sweep_axis_keys({"runs": []}) == [] and metrics.sweep_axis_keys({"axes": "x"}) == []
    assert metrics.sweep_axis_keys({"axes": ["optim.lr=0.1,0.2", "data.input_shape=28x28x1;8x8x1"]}) == [
        "optim.lr", "data.input_shape"]


# ----------------------------------------------------------------------------- 2. table's columns in axis order

def _sweep_runs(out, axes: list, index_axes) -> None:
    """The runs of `tallysim sweep *axes --out out`, finished (written by hand: nothing compiles); its
    sweep.json's `axes` is `index_axes` (None: no sweep.json, runs side by side)."""
    from tallysim import config, outdir
    from conftest import tiny
    runs = sweep.expand({}, axes)
    for (name, _), cfg in zip(runs, sweep.configs(tiny(), runs)):
        d = outdir.claim(out / name, False)
        (d / "config.json").write_text(json.dumps(sweep._jsonable(config.to_dict(config.validate(cfg).resolved()))))
        (d / "metrics.jsonl").write_text('{"round": 1, "bits_per_peer": 8.0, "acc_mean": 0.5}\n')
        (d / "done.json").write_text("{}")
    if index_axes is not None:
        (out / "sweep.json").write_text(json.dumps({"axes": index_axes, "runs": []}))


@pytest.mark.parametrize("axes", [["seed=0,1", "optim.lr=0.01,0.1"], ["optim.lr=0.01,0.1", "seed=0,1"]])
def test_table_shows_a_sweeps_axes_in_the_order_given(axes, tmp_path):
    # config order put seed before optim.lr whatever order the sweep's axes were typed in (the second case)
    from tallysim.results import table
    out = tmp_path / "s"
    _sweep_runs(out, axes + ["peers=3"], axes + ["peers=3"])
    columns, _ = table.table_rows([out], log=lambda m: None)
    assert columns[1:3] == [a.split("=")[0] for a in axes]


@pytest.mark.parametrize("index_axes", [None, []])       # hand-made runs; a sweep.json of before (axes [])
def test_table_keeps_config_order_without_a_sweeps_axes(index_axes, tmp_path):
    from tallysim.results import table
    out = tmp_path / "s"
    _sweep_runs(out, ["seed=0,1", "optim.lr=0.01,0.1"], index_axes)
    columns, _ = table.table_rows([out], log=lambda m: None)
    assert columns[1:3] == ["seed", "optim.lr"]            # config order, whatever the names say


# ----------------------------------------------------------------------------- 3. a figure's smoke section, checked always

def _smoke_spec(smoke: dict) -> dict:
    from test_figure_plan_dec19h import SPEC
    spec = json.loads(json.dumps(SPEC))
    spec["smoke"] = smoke
    return spec


@pytest.mark.parametrize("smoke, key", [
    ({"base": {"probe": {"per_roundd": 8}}}, "per_roundd"),                 # a stale key in smoke.base
    ({"groups": {"tally": {"rounds": 0}}}, "rounds"),                        # a value out of range in a group's
    ({"sweep": {"optim.lrr": [0.1]}}, "optim.lrr"),                          # smoke.sweep
])
def test_a_figures_smoke_section_is_checked_without_smoke(smoke, key, tmp_path, capsys, monkeypatch):
    # only `--smoke` read it: the full figure's plain run and --dry-run passed, its stale key found only
    # when someone ran the smoke version (after the full figure, perhaps)
    from tallysim import figures
    from tallysim.config import ConfigError
    from tallysim.figures import plans as figure_plans
    spec = _smoke_spec(smoke)
    with pytest.raises(ConfigError, match=r"the figure's `smoke` section .*" + key.replace(".", r"\.")):
        figure_plans.group_plans(spec, False, figures.EXPERIMENTS)
    path = tmp_path / "fig.json"
    path.write_text(json.dumps(spec))
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: pytest.fail("a group ran before the refusal"))
    for argv in (["figure", str(path), "--dry-run"],
                 ["figure", str(path), "--results", str(tmp_path / "r"), "--out", str(tmp_path / "f")]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "`smoke` section" in err and key in err, err
    assert not (tmp_path / "r").exists()


def test_a_good_smoke_section_plans_as_before():
    from tallysim import figures
    from tallysim.figures import plans as figure_plans
    from test_figure_plan_dec19h import SPEC
    spec = _smoke_spec({"base": {"rounds": 1}, "sweep": {"optim.lr": [0.1]}})
    full = figure_plans.group_plans(spec, False, figures.EXPERIMENTS)
    assert full == figure_plans.group_plans(SPEC, False, figures.EXPERIMENTS)       # the smoke section unused
    assert {c.rounds for c in figure_plans.group_plans(spec, True, figures.EXPERIMENTS).configs["tally"]} == {1}


# ----------------------------------------------------------------------------- 4. a metrics.jsonl that is a directory

def test_table_names_a_run_whose_metrics_file_is_a_directory(tmp_path):
    # below the directory given, os.walk listed it among the subdirectories: the run was left out in
    # silence (given itself, it was "has no metrics.jsonl")
    from tallysim.results import table
    from tallysim.config import ConfigError
    out = tmp_path / "s"
    _sweep_runs(out, ["seed=0,1"], ["seed=0,1"])
    bad = out / "seed=1" / "metrics.jsonl"
    bad.unlink()
    bad.mkdir()
    (bad / "metrics.jsonl").write_text('{"round": 1, "bits_per_peer": 8.0, "acc_mean": 0.5}\n')   # not a run either
    said = []
    _, rows = table.table_rows([out], log=said.append)
    assert [r["run"] for r in rows] == ["seed=0"]
    assert said == [f"table: skipping {out / 'seed=1'}: {bad} is a directory, not the file of the run's rows "
                    "tallysim writes there; move it aside (or rerun the run)"]
    with pytest.raises(ConfigError, match="is a directory, not the file of the run's rows"):
        metrics.read_rows(out / "seed=1")


def test_a_figure_groups_sweep_json_names_its_axes(tmp_path, monkeypatch):
    # a figure's group is a sweep too: its sweep.json had no axes, so its table kept config order
    from tallysim import figures
    from test_figure_plan_dec19h import SPEC
    spec = json.loads(json.dumps(SPEC))
    spec["groups"]["tally"]["sweep"] = {"seed": [0, 1]}         # after the figure's own optim.lr axis
    path = tmp_path / "fig.json"
    path.write_text(json.dumps(spec))
    given = {}

    def run_sweep(cfg, runs, out_dir, meta=None, **k):
        given[out_dir.name] = meta
        return [{"name": n, "status": "failed", "error": "stub"} for n, _ in runs]
    monkeypatch.setattr(sweep, "run_sweep", run_sweep)
    with pytest.raises(figures.FigureError):
        figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(tmp_path / "fig"), progress=False,
                            log=lambda m: None)
    assert given == {"tally": {"axes": ["optim.lr=0.1,0.2", "seed=0,1"]}, "fedavg": {"axes": ["optim.lr=0.1,0.2"]}}


def test_table_names_a_run_whose_metrics_file_cannot_be_read(tmp_path, monkeypatch):
    # the other half of the case above: a metrics.jsonl the user may not read (root reads any, so the
    # refusal is simulated) is named in the same one line, not left out
    from pathlib import Path
    from tallysim.results import table
    out = tmp_path / "s"
    _sweep_runs(out, ["seed=0,1"], ["seed=0,1"])
    bad, real = out / "seed=0" / "metrics.jsonl", Path.read_text

    def read_text(self, *a, **k):
        if self == bad:
            raise PermissionError(13, "Permission denied")
        return real(self, *a, **k)
    monkeypatch.setattr(Path, "read_text", read_text)
    said = []
    _, rows = table.table_rows([out], log=said.append)
    assert [r["run"] for r in rows] == ["seed=1"]
    assert said == [f"table: skipping {out / 'seed=0'}: cannot read {bad}: Permission denied"]
