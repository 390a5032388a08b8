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
    assert "0 ran, 2 skipped (already done)" in capsys.readouterr().out


def test_an_old_sweep_json_still_reads():
    # files written before: "skipped" is a run done before, and "axes": [] names no axis
    assert metrics.done_before({"status": "skipped"}) and metrics.done_before({"status": "done_before"})
    assert not metrics.done_before({"status": "done"}) and not metrics.done_before({"status": "failed"})
    assert metrics.sweep_axis_keys({"axes": [], "runs": []}) == []
    assert metrics.sweep_axis_keys({"runs": []}) == [] and metrics.sweep_axis_keys({"axes": "x"}) == []
    assert metrics.sweep_axis_keys({"axes": ["optim.lr=0.1,0.2", "data.input_shape=28x28x1;8x8x1"]}) == [
        "optim.lr", "data.input_shape"]
