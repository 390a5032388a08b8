"""Leftovers a reviewer noted on 2026-12-13, each test failing without its fix:

- validation.warnings() (a configured event that can never happen) was printed by `tallysim run` only:
  tallysim.run(cfg) and tallysim.drive(cfg) said nothing. Now validation.single_run prints them, once per
  run, where all three check a single run's config (sweeps still print none);
"""
from __future__ import annotations

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
