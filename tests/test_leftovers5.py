"""Leftovers noticed by earlier reviews (Dec 5, fifth pass): the distillation gate's agreement on text
counts only real probe positions, the exchange splits a peer's probes when its forward pass over all of
them exceeds the chunk budget, perplexity overflow is strict JSON in metrics.jsonl, only a command-line
ARGS reaches make's figure targets, pareto skips corrupt runs through read_runs, and the traced
per-example peak is positive for conv models."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------- make's ARGS: the command line only

def _make_n(target: str, *words: str, env_args: str | None = None) -> str:
    if shutil.which("make") is None:
        pytest.skip("no make here")
    env = {k: v for k, v in os.environ.items() if k not in ("ARGS", "MAKEFLAGS", "MFLAGS")}
    if env_args is not None:
        env["ARGS"] = env_args
    out = subprocess.run(["make", "-n", target, *words], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return next(ln for ln in out.splitlines() if " figure " in ln)


@pytest.mark.parametrize("target", ["fig1", "robustness", "matched-bits"])
def test_an_args_exported_in_the_shell_does_not_reach_a_figure_target(target):
    """`export ARGS=--foo; make fig1` passed --foo to `tallysim figure` (make reads the environment)."""
    line = _make_n(target, env_args="--foo")
    assert "--foo" not in line and line.rstrip().endswith("--quiet"), line


def test_a_command_line_args_still_reaches_it_and_wins_over_the_shells():
    assert _make_n("fig1", "ARGS=--dry-run").rstrip().endswith("--quiet --dry-run")
    line = _make_n("fig1", "ARGS=--dry-run", env_args="--foo")
    assert "--foo" not in line and line.rstrip().endswith("--dry-run"), line
    # the shell's ARGS cannot drop --quiet either (FIG_QUIET reads the same ARGS)
    assert _make_n("fig8", env_args="--progress lines").rstrip().endswith("--quiet")


# ------------------------------------------------------------------- perplexity overflow: strict JSON

import json  # noqa: E402
import math  # noqa: E402
import warnings  # noqa: E402

TEXT_ROW = {"round": 1, "bits_up": 64, "bits_down": 64, "bits_per_peer": 32.0, "acc_mean": 0.5, "acc_global": None,
            "ppl_mean": float("inf"), "ppl_global": None, "wall_s": 1.0}


def _strict_loads(text: str):
    """json.loads as jq, JavaScript's JSON.parse and pandas' strict readers read: no Infinity/NaN tokens."""
    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def _write_run(path: Path, lines: list[str], rounds: int = 2) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": rounds}))
    (path / "metrics.jsonl").write_text("".join(ln + "\n" for ln in lines))
    return path


def test_the_run_writes_an_overflowed_perplexity_as_strict_json(tmp_path):
    """run.py's recorder wrote json.dumps(row): `"ppl_mean": Infinity`, which strict readers refuse."""
    from tallysim import run
    rec = run._Recorder([0, 1], tmp_path, chunk=2, bar=None, resume=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                 # numpy's std of inf and NaN
        rec.rows(1, [{**TEXT_ROW, "train_loss": 1.0}, {**TEXT_ROW, "ppl_mean": 50.0, "train_loss": math.nan}])
    rec.close()
    line = (tmp_path / "metrics.jsonl").read_text().strip()
    row = _strict_loads(line)
    assert row["ppl_mean"] == "Infinity" and row["per_seed"]["ppl_mean"] == ["Infinity", 50.0]
    assert row["ppl_global"] is None                                  # null stays "not computed"
    from tallysim.results import metrics
    back = metrics.read_rows(tmp_path)[0]
    assert back["ppl_mean"] == math.inf and back["per_seed"]["ppl_mean"] == [math.inf, 50.0]
    assert math.isnan(back["per_seed"]["train_loss"][1])


def test_a_sweeps_done_json_is_strict_too(tmp_path):
    from tallysim import config, sweep
    rec = {"name": "r"}
    cfg = config.validate(config.apply_overrides(config.Config(), ["rounds=1"]))
    sweep._done(tmp_path, rec, None, cfg, [], {**TEXT_ROW, "seeds": 1, "acc_ensemble": 0.5}, 1.0, lambda m: None)
    assert _strict_loads((tmp_path / "done.json").read_text())["last"]["ppl_mean"] == "Infinity"


@pytest.mark.parametrize("spelling", ["new", "old"])
def test_every_reader_reads_inf_back_from_either_spelling(spelling, tmp_path, capsys):
    """New files hold "Infinity" (a string), files written before hold the bare token: both read as inf,
    by read_run, read_rows (the Python API), table, plot and pareto."""
    from tallysim import cli
    from tallysim.results import metrics, pareto
    from tallysim.results.runs import read_rows
    dump = metrics.dumps_row if spelling == "new" else json.dumps
    rows = [TEXT_ROW, {**TEXT_ROW, "round": 2, "ppl_mean": 40.0}]
    bad = _write_run(tmp_path / "s" / "diverged", [dump({**r, "ppl_mean": math.inf}) for r in rows])
    good = _write_run(tmp_path / "s" / "fine", [dump(r) for r in rows])
    assert ('"Infinity"' in (bad / "metrics.jsonl").read_text()) == (spelling == "new")
    assert [r["ppl_mean"] for r in metrics.read_run(bad)[1]] == [math.inf, math.inf]
    assert [r["ppl_mean"] for r in read_rows(tmp_path / "s") if r["run"] == "diverged"] == [math.inf, math.inf]
    assert cli.main(["table", str(tmp_path / "s"), "--metric", "ppl_mean"]) == 0
    out = capsys.readouterr().out
    assert "inf" in out.lower() and "40" in out, out
    # plot: the diverged run's perplexity is inf everywhere, so alone it is nothing to draw, as before
    assert cli.main(["plot", str(bad), "--out", str(tmp_path / "p.png"), "--metric", "ppl"]) == 2
    assert "not finite at any evaluation" in capsys.readouterr().err
    assert cli.main(["plot", str(bad), str(good), "--out", str(tmp_path / "p.png"), "--metric", "ppl"]) == 0
    points = pareto.collect([tmp_path / "s"], metric="ppl_mean", log=lambda m: None)
    assert sorted(p["accuracy"] for p in points) == [40.0, math.inf]


# ------------------------------------------------------------------- pareto reads through read_runs

def test_pareto_skips_corrupt_runs_through_read_runs_with_its_own_note(tmp_path, monkeypatch):
    """pareto.collect had its own find_runs/read_run skip loop beside metrics.read_runs (table's and
    read_rows'): one loop now, pareto's note unchanged, and no runs at all still [] (its caller words it)."""
    from tallysim.results import metrics, pareto
    good = _write_run(tmp_path / "t" / "good", [metrics.dumps_row({**TEXT_ROW, "ppl_mean": 9.0, "round": r})
                                                 for r in (1, 2)])
    bad = _write_run(tmp_path / "t" / "bad", ["{torn"])
    calls = []
    real = metrics.read_runs
    monkeypatch.setattr(metrics, "read_runs", lambda *a, **k: calls.append(a) or real(*a, **k))
    notes = []
    points = pareto.collect([tmp_path / "t"], log=notes.append)
    assert len(calls) == 1 and [p["dir"] for p in points] == [str(good)]
    assert notes == [f"pareto: skipping {bad}: {bad / 'metrics.jsonl'} line 1 is not valid JSON (corrupt or torn "
                     "by a crash); remove that line or rerun"], notes
    empty = tmp_path / "empty"
    empty.mkdir()
    assert pareto.collect([empty], log=notes.append) == [] and pareto.collect([bad], log=notes.append) == []
