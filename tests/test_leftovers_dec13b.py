"""Leftovers a reviewer noted on 2026-12-06, each test failing without its fix:

- validation.warnings() (a configured event that can never happen) was printed by `tallysim run` only:
  tallysim.run(cfg) and tallysim.drive(cfg) said nothing. Now validation.single_run prints them, once per
  run, where all three check a single run's config (sweeps still print none);
- the note "data.max_train=N is more than the M training examples" named no run: a sweep's or a figure's
  notes could not be told apart. It names the run (or a group's runs) whose data it is;
- `tallysim plot runs/x/*` (a shell glob over a sweep) refused the sweep's own sweep.json beside its runs:
  skipped in silence now (plot, table, pareto); any other file is still refused;
- Recorder.close (the metrics file and the tracker) was called by tests only: the run closes each through
  its ExitStack (Lanes hands it close_file and the tracker's close); removed, one way to close;
- `make test-all ARGS=...` refused ARGS ($(error) in figures-smoke's recipe) only after the whole test
  suite had run: now refused when make reads the Makefile (ARGS with a smoke goal), before anything runs.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tallysim import config

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["protocol.name=tally", "data.name=synthetic", "data.input_shape=[8]", "data.num_classes=10",
         "data.train_size=400", "data.test_size=100", "peers=2", "rounds=2", "probe.pool_size=100",
         "probe.per_round=20", "partition.kind=iid", "model.name=mlp", "model.width=8", "batch_size=16"]
WARNS = "eval_every=5"          # > rounds=2: "only the last round is evaluated"
WARNING = "eval_every=5 > rounds=2"


def _cfg(*items):
    return config.apply_overrides(config.Config(), list(SMALL) + list(items))


class _Stop(Exception):
    """Raised by a stub in place of the run: the checks before it are what is tested."""


def _stop(*a, **k):
    raise _Stop()


# ----------------------------------------------------------------------------- 1. warnings for every single run

def test_the_api_run_prints_the_warnings_once(monkeypatch, capsys, tmp_path):
    import tallysim
    from tallysim import run as runmod
    monkeypatch.setattr(runmod, "run", _stop)
    with pytest.raises(_Stop):
        tallysim.run(_cfg(WARNS), out=str(tmp_path / "r"))
    assert capsys.readouterr().err.count(WARNING) == 1


def test_drive_prints_the_warnings_once(monkeypatch, capsys):
    import tallysim
    from tallysim import run as runmod
    monkeypatch.setattr(runmod, "build", _stop)
    with pytest.raises(_Stop):
        tallysim.drive(_cfg(WARNS))
    assert capsys.readouterr().err.count(WARNING) == 1


def test_the_cli_run_still_prints_them_once(monkeypatch, capsys, tmp_path):
    from tallysim import cli
    from tallysim import run as runmod
    monkeypatch.setattr(runmod, "run", _stop)
    with pytest.raises(_Stop):
        cli.main(["run", "--out", str(tmp_path / "r"), *SMALL, WARNS])
    assert capsys.readouterr().err.count(WARNING) == 1


def test_a_sweep_prints_no_warnings(capsys):
    from tallysim import sweep
    cfgs = sweep.configs(_cfg(), [("a", [WARNS]), ("b", ["faults.kind=label_flip", "faults.fraction=0"])])
    assert len(cfgs) == 2 and capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- 2. the data's note names its run

TOO_MANY = "data.max_train=100000"      # the synthetic data has 400


@pytest.fixture
def stop_after_build(monkeypatch):
    from tallysim import run as runmod
    monkeypatch.setattr(runmod, "auto_chunk", _stop)      # the first step after the data is built
    return runmod


def test_the_max_train_note_names_the_run(stop_after_build, capsys, tmp_path):
    with pytest.raises(_Stop):
        stop_after_build.run(_cfg(TOO_MANY), str(tmp_path / "lr=0.1"), progress=False)
    err = capsys.readouterr().err
    assert "tallysim: note: run lr=0.1: data.max_train=100000 is more than the" in err, err


def test_the_max_train_note_names_a_groups_runs(stop_after_build, capsys, tmp_path):
    with pytest.raises(_Stop):
        stop_after_build.run_group([_cfg(TOO_MANY), _cfg(TOO_MANY, "seed=7")], [tmp_path / "a", tmp_path / "b"],
                                   progress=False, warn=False)
    err = capsys.readouterr().err
    assert err.count("data.max_train=100000") == 1 and "note: runs a, b: data.max_train" in err, err


def test_the_note_without_a_run_is_as_before(capsys):
    from tallysim import data
    from tallysim.data import loading
    data.load(_cfg(TOO_MANY).data, 0)
    assert capsys.readouterr().err.startswith("tallysim: note: data.max_train=100000 is more than")
    assert loading.runs_label([f"r{i}" for i in range(5)]) == "runs r0, r1, r2 and 2 more: "


# ----------------------------------------------------------------------------- 3. a glob over a sweep's directory

ROW = {"round": 1, "bits_up": 64, "bits_down": 64, "bits_per_peer": 32.0, "acc_mean": 0.5, "acc_global": None}


@pytest.fixture
def swept(tmp_path):
    """A sweep's directory written by hand: its index and two runs (nothing compiles)."""
    s = tmp_path / "x"
    for name, acc in (("a", 0.5), ("b", 0.6)):
        (s / name).mkdir(parents=True)
        (s / name / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 1}))
        (s / name / "metrics.jsonl").write_text(json.dumps({**ROW, "acc_mean": acc}) + "\n")
    (s / "sweep.json").write_text(json.dumps({"runs": []}))
    return s


def _glob(d):
    return sorted(str(p) for p in d.iterdir())      # as the shell expands d/*


@pytest.mark.parametrize("command", ["plot", "table", "pareto"])
def test_a_glob_over_a_sweep_skips_its_index(command, swept, tmp_path, capsys):
    from tallysim import cli
    out = ["--out", str(tmp_path / ("o.png" if command != "table" else "o.md"))]
    assert cli.main([command, *_glob(swept), *out]) == 0, capsys.readouterr().err
    assert "sweep.json" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["plot", "table"])
def test_any_other_file_is_still_refused(command, swept, tmp_path, capsys):
    from tallysim import cli
    (swept / "notes.txt").write_text("mine")
    out = ["--out", str(tmp_path / ("o.png" if command == "plot" else "o.md"))]
    assert cli.main([command, *_glob(swept), *out]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert cli.main([command, str(swept / "sweep.json"), *out]) == 2      # the index alone: no run given
    assert "sweep.json" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 4. one way to close a recorder

def test_a_recorder_closes_only_through_the_runs_exit_stack():
    from tallysim import run_recorders
    assert not hasattr(run_recorders.Recorder, "close"), "Recorder.close is back: tallysim calls close_file only"
    assert callable(run_recorders.Recorder.close_file)


# ----------------------------------------------------------------------------- 5. make's smoke goals refuse ARGS first

@pytest.mark.parametrize("goal", ["test-all", "ci-figures", "figures-smoke"])
def test_make_refuses_args_for_a_smoke_goal_before_anything_runs(goal):
    if shutil.which("make") is None:
        pytest.skip("no make here")
    p = subprocess.run(["make", "--no-print-directory", "-n", goal, "ARGS=--dry-run", f"VENV={sys.prefix}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and p.stdout == "", p.stdout        # not the test suite's command, nor anything
    assert f"ARGS='--dry-run' is not read by {goal}" in p.stderr, p.stderr
    ok = subprocess.run(["make", "--no-print-directory", "-n", "fig1", "ARGS=--dry-run", f"VENV={sys.prefix}"], cwd=ROOT,
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "figure fig1" in ok.stdout and "--dry-run" in ok.stdout      # ok: a figure's
