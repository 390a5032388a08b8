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
