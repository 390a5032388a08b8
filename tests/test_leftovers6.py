"""Leftovers of 2026-12-09 whose behaviour changed. Each test names the bug it would catch:
`faults.kind=dropout faults.drop_prob=0` ran a single run with no faults and no word; `figure --results X`
with X itself a run directory said X "is inside the tallysim run directory X"."""
from __future__ import annotations

import pytest

from conftest import TINY, one_line
from tallysim import config, outdir, validation
from tallysim.cli_commands import _check

DROPOUT = ["protocol.name=tally", "faults.kind=dropout", "faults.fraction=0.5"]


def _dropout_warnings(*items):
    cfg = config.validate(config.apply_overrides(config.Config(), TINY + DROPOUT + list(items)))
    return [w for w in validation.warnings(cfg) if "drop_prob" in w]


def test_dropout_that_drops_nobody_is_said_in_a_single_run(capsys):
    assert _dropout_warnings("faults.drop_prob=0") == [
        "faults.kind=dropout with faults.drop_prob=0 drops nobody: every faulty peer's message arrives each "
        "round, so the run has no faults (faults.drop_prob in (0, 1] loses some)"]
    _check(config.apply_overrides(config.Config(), TINY + DROPOUT + ["faults.drop_prob=0"]))   # run's check
    err = capsys.readouterr().err
    assert err.startswith("tallysim: warning: faults.kind=dropout with faults.drop_prob=0 drops nobody"), err


@pytest.mark.parametrize("p", ["0.5", "1"])
def test_dropout_that_drops_some_is_not_warned_about(p):
    assert _dropout_warnings(f"faults.drop_prob={p}") == []


def test_results_that_is_itself_a_run_directory_says_so(tmp_path, capsys, no_compile):
    d = tmp_path / "a"
    d.mkdir()
    (d / outdir.MARKER).write_text('{"written_by": "tallysim"}\n')
    line = one_line(capsys, ["figure", "fig1", "--smoke", "--results", str(d), "--dry-run"])
    assert f"--results {d} is a tallysim run directory, which holds only the files a run writes" in line, line
    assert "is inside" not in line
    inside = one_line(capsys, ["figure", "fig1", "--smoke", "--results", str(d / "r"), "--dry-run"])
    assert f"is inside the tallysim run directory {d}" in inside, inside           # a folder in it: as before
