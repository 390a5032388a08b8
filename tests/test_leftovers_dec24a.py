"""leftovers36: small user-facing gaps left by earlier sessions (one section per item): `tallysim sweep`
not refusing finished runs for data moved since, ..."""
from __future__ import annotations

import json

import pytest

from conftest import one_line  # noqa: F401
from tallysim import cli, run, sweep  # noqa: F401  (imported before no_compile patches jax.jit)
from tallysim import config, outdir


# ----------------------------------------------------------------------------- 1. sweep: finished runs' data

MOVED = ["data.name=files", "peers=2", "rounds=1"]


def _finished_sweep(tmp_path, names):
    """A sweep folder whose runs `names` finished (marker, config.json, done.json), their data since gone."""
    out = tmp_path / "s"
    for name in names:
        cfg = config.validate(config.apply_overrides(config.Config(), MOVED + [f"data.path={tmp_path / 'gone'}", name]))
        (out / name).mkdir(parents=True)
        outdir.mark(out / name)
        (out / name / "config.json").write_text(json.dumps(config.to_dict(cfg)))
        (out / name / sweep.DONE).write_text(json.dumps({"name": name}))
    return out


def test_tallysim_sweep_does_not_refuse_finished_runs_whose_data_moved(tmp_path, capsys, no_compile):
    # the CLI checked every run's data.path (command_configs), where run_sweep from Python and a figure
    # skip the finished ones: a sweep re-run over finished results was refused for data it never reads
    out = _finished_sweep(tmp_path, ["seed=0", "seed=1"])
    argv = ["sweep", "--out", str(out), *MOVED, f"data.path={tmp_path / 'gone'}", "seed=0,1"]
    assert cli.main(argv[:1] + ["--dry-run"] + argv[1:]) == 0
    assert "2 runs (2 done, 0 to run)" in capsys.readouterr().out
    assert cli.main(argv) == 0
    assert "0 ran, 2 done before, 0 failed" in capsys.readouterr().out
    # a run still to do reads the data: refused as before, in one line, nothing run
    line = one_line(capsys, argv[:-1] + ["seed=0,1,2"])
    assert "data.path=" in line and "gone does not exist" in line, line
    assert not (out / "seed=2").exists()
