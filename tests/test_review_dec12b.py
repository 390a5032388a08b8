"""Review of 2026-12-06's merged change (leftovers10, hostile7, review10, crossdevice, userjourney,
collapse; review11): what the read found wrong, each test failing without its fix.

- the compile ticker (progress_base.CompileTicker) went on after a run that failed before its first
  stretch: a failure opening the run's recorders (a tracker, the metrics file) left the round bar open,
  its thread saying `compiling  elapsed ...` every interval for the rest of the process (a sweep's next
  runs, a notebook), interleaved with whatever came next;
- `~` in a path: the CLI expands it, and outdir.destination does for run outputs, but
  `figures.make_figure(results="~/r")` (the notebooks' API) ran its sweeps into the home's ~/r and read
  them back from ./~/r, and wrote its figures into a directory named `~` here; `log.tensorboard="~/tb"`
  in a config file (or `log.tensorboard=~/tb` under sh) wrote ./~/tb;
- `make clean VENV=~/venvs/x` tested "~/venvs/x/pyvenv.cfg" quoted (no tilde expansion) and left the
  venv in place, in silence, where every other recipe's $(BIN) is the home's;
- the collapse warning fired on a last row of NaNs (every comparison with NaN is false).
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tallysim import config, progress
from tallysim.results import metrics

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["protocol.name=tally", "data.name=synthetic", "data.input_shape=[8]", "data.num_classes=10",
         "data.train_size=400", "data.test_size=100", "peers=2", "rounds=2", "probe.pool_size=100",
         "probe.per_round=20", "partition.kind=iid", "model.name=mlp", "model.width=8", "batch_size=16"]


def _cfg(*items):
    return config.apply_overrides(config.Config(), list(SMALL) + list(items))


def _tickers() -> list:
    return [t for t in threading.enumerate() if t.name == "tallysim-compile-ticker" and t.is_alive()]


# ----------------------------------------------------------------------------- the ticker stops with the run

@pytest.mark.parametrize("mode", ["lines", "bars"])
def test_a_run_that_fails_before_compiling_leaves_no_ticker(monkeypatch, capsys, tmp_path, mode):
    from tallysim import run as runmod
    monkeypatch.setenv(progress.MODE_ENV, mode)
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.1")
    before = set(_tickers())

    def refused(*a, **k):
        raise RuntimeError("tracker refused")
    monkeypatch.setattr(runmod.tracking, "open_run", refused)
    with pytest.raises(RuntimeError, match="tracker refused"):
        runmod.run(_cfg(), out=str(tmp_path / "r"), progress=True)
    capsys.readouterr()
    time.sleep(0.35)                        # three intervals: a live ticker would have said `compiling` again
    assert "compiling  elapsed" not in capsys.readouterr().err
    assert not set(_tickers()) - before


# ----------------------------------------------------------------------------- a leading ~ is the home

def test_make_figure_runs_and_draws_under_the_home_it_was_given(monkeypatch, tmp_path):
    """The notebooks' API: results="~/r" ran into the home's ~/r (sweep.run_sweep expands it) and was read
    back from ./~/r; out="~/f" made ./~/f."""
    from tallysim import figures, sweep
    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir(), here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    given = []

    def run_sweep(cfg, runs, out_dir, **kw):
        given.append(Path(out_dir))
        raise RuntimeError("stop before running")
    monkeypatch.setattr(sweep, "run_sweep", run_sweep)
    with pytest.raises(RuntimeError, match="stop before running"):
        figures.make_figure("fig3", smoke=True, results="~/r", out="~/f", progress=False, log=lambda *a: None)
    assert given and home / "r" in given[0].parents, given
    assert (home / "f").is_dir() and not (here / "~").exists()
    assert figures.dry_run("fig3", smoke=True, results="~/r", out="~/f", log=lambda *a: None) >= 1


def test_log_tensorboard_from_a_config_is_under_the_home(monkeypatch, tmp_path):
    pytest.importorskip("tensorboardX")
    from tallysim import tracking
    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir(), here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    cfg = _cfg("log.tensorboard=~/tb")
    assert tracking.tensorboard_dir(cfg) == home / "tb"
    with pytest.raises(config.ConfigError, match="inside the run directory"):
        tracking.check_out(_cfg("log.tensorboard=~/runs/a/tb"), str(home / "runs" / "a"))
    (w,) = tracking.writers(cfg, here / "run", fresh=True)
    try:
        assert home / "tb" in Path(w.logdir).parents
    finally:
        w.close()
    assert not (here / "~").exists()


@pytest.mark.parametrize("venv, removed", [("~/v", True), ("~", False)])
def test_make_clean_venv_with_a_tilde_is_the_homes(venv, removed, tmp_path):
    """VENV=~/v (a venv outside the checkout, as $(BIN) reads it) was looked for as ./~/v and kept in
    silence; VENV=~ alone is the home, no venv, kept with the line saying so, and a directory named `~`
    here is never what it removes. Run in a copy of the Makefile, as test_hostile_dec12's."""
    import sys
    here, home = tmp_path / "here", tmp_path / "home"
    here.mkdir(), home.mkdir()
    (here / "Makefile").write_text((ROOT / "Makefile").read_text())
    (home / "v").mkdir()
    (home / "v" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (here / "~" / "v").mkdir(parents=True)                          # a directory literally named ~, with a venv
    (here / "~" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (here / "~" / "v" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home)}
    got = subprocess.run(["make", "--no-print-directory", "clean", f"VENV={venv}", f"PY={sys.executable}"],
                         cwd=here, capture_output=True, text=True, env=env)
    assert got.returncode == 0, got.stderr
    assert (home / "v").exists() != removed, (got.stdout, got.stderr)
    assert home.exists() and (here / "~" / "v" / "pyvenv.cfg").exists()
    if not removed:
        assert f"VENV={venv} is not a virtual environment" in got.stderr


# ----------------------------------------------------------------------------- the collapse warning

def test_no_collapse_warning_from_a_row_of_nans():
    nan = math.nan
    assert metrics.collapse_warning({"round": 60, "agreement": nan, "vote_acc": nan, "acc_min": nan}, 10, 3) is None
    assert metrics.collapse_warning({"round": 60, "agreement": 1.0, "vote_acc": 0.1, "acc_min": nan,
                                     "acc_mean": 0.1}, 10, 3) is not None      # the mean where the worst is NaN


# ----------------------------------------------------------------------------- the text cache's split

def test_an_old_text_cache_is_prepared_again_with_a_line_a_user_can_read(monkeypatch, tmp_path, capsys):
    """The note named a review (`before review10`), nothing a user knows; the rebuild itself is atomic
    (data.cache.write_arrays), so a reader sees the old file or the new one."""
    import numpy as np
    from tallysim.data import cache, text
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path))
    np.savez(cache.cache_file("shakespeare"), x_train=np.zeros(1))        # a cache without `split`
    monkeypatch.setattr(text, "prepare", lambda name: (_ for _ in ()).throw(RuntimeError("prepare " + name)))
    with pytest.raises(RuntimeError, match="prepare shakespeare"):
        text.load("shakespeare")
    note = capsys.readouterr().err
    assert "preparing it again" in note and "review" not in note and "NURSE and Nurse" in note, note


# ----------------------------------------------------------------------------- one rule: a figure config

def test_run_and_figure_agree_on_what_a_figure_config_is(tmp_path):
    """run/sweep/load_file called a file a figure config only with `kind` and `base` or `groups`; figure
    called it a run's only with none of the three: `groups` without `kind` was an unknown config key to
    one and a figure (of kind None) to the other."""
    import json
    from tallysim import figures
    f = tmp_path / "g.json"
    f.write_text(json.dumps({"groups": {"tally": {"protocol.name": "tally"}}, "title": "t"}))
    with pytest.raises(config.ConfigError, match=r"is a figure config \(it has `groups`\).*tallysim figure"):
        config.load_file(str(f))
    with pytest.raises(config.ConfigError, match="has no `kind`"):     # figure: it is one, say it lacks its kind
        figures.dry_run(str(f), log=lambda *a: None)


def test_load_file_reads_a_config_under_the_home(monkeypatch, tmp_path):
    """The CLI expands --config's `~`; config.load_file("~/c.json") from Python said it was not found."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "c.json").write_text('{"peers": 3}')
    assert config.load_file("~/c.json").peers == 3


def _rows_dir(tmp_path, means) -> str:
    import json
    d = tmp_path / "run"
    d.mkdir(parents=True)
    rows = [{"round": r, "bits_up": 8 * r, "bits_down": 8 * r, "bits_per_peer": 16.0 * r, "acc_mean": m,
             "acc_min": m, "agreement": 1.0, "vote_acc": 0.1} for r, m in enumerate(means, 1)]
    (d / metrics.METRICS).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(d)


def test_a_run_that_never_left_chance_did_not_collapse(tmp_path):
    """A run unanimous at chance that was never above it (a learning rate too small, a binary task too hard,
    labels that do not match their inputs) was told it had collapsed and to lower optim.lr. The collapse
    measured (docs/protocols.md, "Long runs") rose to 0.735 first."""
    import types
    spec = types.SimpleNamespace(classes=10, active=3, task="classification")
    last = {"round": 12, "agreement": 1.0, "vote_acc": 0.1, "acc_mean": 0.1, "acc_min": 0.1}
    never = _rows_dir(tmp_path / "a", [0.1, 0.11, 0.12] + [0.1] * 9)
    assert metrics.run_collapse_warning({**last, "out": never}, spec) is None
    fell = _rows_dir(tmp_path / "b", [0.5, 0.73, 0.6] + [0.1] * 9)
    assert "collapsed" in metrics.run_collapse_warning({**last, "out": fell}, spec)
    assert "collapsed" in metrics.run_collapse_warning({**last, "out": None}, spec)    # no history: as before
