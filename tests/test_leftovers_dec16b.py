"""Leftovers today's helpers reported (leftovers16): `table --metric X`'s column names, one formatter
for fractional bits, a re-run's progress line with nothing left to run, and `consensus_acc` with
nothing scored. Each test names what the input did before its fix; nothing here compiles."""
from __future__ import annotations

import csv
import json

import pytest


def _write_run(d, rows, cfg):
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


BASE = {"protocol": {"name": "tally"}, "rounds": 1, "seeds": 1}


@pytest.fixture
def two_runs(tmp_path):
    row = {"round": 1, "acc_mean": 0.5, "acc_global": None, "vote_acc": 0.8, "vote_acc_std": 0.01,
           "bits_per_peer": 59.8980101989801}
    for lr in (0.1, 0.01):
        _write_run(tmp_path / "sw" / f"optim.lr={lr}", [row], {**BASE, "optim": {"lr": lr}})
    return tmp_path / "sw"


# ------------------------------------------------------------------ 1. table --metric X's columns

def test_table_names_its_accuracy_columns_after_the_metric(two_runs, tmp_path, capsys):
    """`table --metric vote_acc` labelled the vote's accuracy `final` and `final_std`, the names of the
    headline accuracy; the default's header is unchanged (scripts and tests read it)."""
    from tallysim import cli
    assert cli.main(["table", str(two_runs), "--metric", "vote_acc"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header == ("| run | optim.lr | final vote_acc | final_std vote_acc | best vote_acc | bits_per_peer "
                      "| MB_per_peer | round | status |"), header
    out = tmp_path / "t.csv"
    assert cli.main(["table", str(two_runs), "--metric", "vote_acc", "--out", str(out)]) == 0
    (row, _) = list(csv.DictReader(open(out)))
    capsys.readouterr()
    assert (row["final vote_acc"], row["final_std vote_acc"], row["best vote_acc"]) == ("0.8000", "0.0100", "0.8000")
    assert cli.main(["table", str(two_runs)]) == 0                            # the default: unchanged
    assert capsys.readouterr().out.splitlines()[0] == ("| run | optim.lr | final | final_std | best | bits_per_peer "
                                                       "| MB_per_peer | round | status |")


# ------------------------------------------------------------------ 2. one format for a count of bits

def test_every_table_prints_fractional_bits_one_way(two_runs, tmp_path, capsys):
    """A cohort run's bits_per_peer 59.8980101989801: `table` printed it whole before (dec16's fix gave
    9533.33 for one case), `pareto`'s tables 60, the figures' Markdown 59.9 (3.2e+09 for a large one) and
    the CSVs of `plot` and the figures every digit. Now whole numbers whole, fractions to two decimals."""
    from tallysim import cli
    from tallysim.figures import drawing
    from tallysim.results import metrics, pareto, plot
    assert [metrics.bits_text(b) for b in (59.8980101989801, 57200 / 6, 3.2e9, 0.0, 16, None)] == \
        ["59.90", "9533.33", "3200000000", "0", "16", ""]
    assert cli.main(["table", str(two_runs), "--format", "csv"]) == 0
    (row, _) = csv.DictReader(capsys.readouterr().out.splitlines())
    assert row["bits_per_peer"] == "59.90", row
    point = {"protocol": "tally", "run": "a", "bits_per_peer": 59.8980101989801, "MB_per_peer": 59.898 / 8e6,
             "accuracy": 0.5}
    assert pareto.table_row(point)["bits_per_peer"] == "59.90"
    plot.write_points(tmp_path / "p.csv", [("a", "tally", "a", 1, 59.8980101989801, "acc_mean", 0.5, "")])
    assert next(csv.DictReader(open(tmp_path / "p.csv")))["bits_per_peer"] == "59.90"
    fig = metrics.pyplot().figure()
    drawing.save(fig, tmp_path / "f", [{"round": 1, "bits_per_peer": 59.8980101989801, "bits_per_peer@a": 3.25,
                                        "bits_per_peer_to_target": None, "accuracy": 0.5}])
    row = next(csv.DictReader(open(tmp_path / "f.csv")))
    assert (row["bits_per_peer"], row["bits_per_peer@a"], row["bits_per_peer_to_target"], row["accuracy"]) == \
        ("59.90", "3.25", "", "0.5"), row


# ------------------------------------------------------------------ 3. a re-run with nothing left to run

def test_a_rerun_of_finished_runs_promises_no_eta(tmp_path, capsys):
    """A sweep (or figure) run again over runs that all finished before said `ETA after the first run`:
    there is no first run to wait for. Its line now says so; runs done before are not in the time left."""
    from conftest import tiny
    from tallysim import progress, sweep
    runs = [(f"seed={s}", [f"seed={s}"]) for s in (0, 1, 2)]
    for name, _ in runs:
        (tmp_path / "sw" / name).mkdir(parents=True)
        (tmp_path / "sw" / name / sweep.DONE).write_text("{}")
    with progress.forced("lines"):
        recs = sweep.run_sweep(tiny(), runs, tmp_path / "sw", progress=True, log=lambda m: None)
    assert [r["status"] for r in recs] == ["done_before"] * 3
    lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("runs ")]
    assert lines and not any("ETA" in l for l in lines), lines
    assert lines[0].startswith("runs 1/3") and lines[0].endswith("all 3 runs done before"), lines
    clock = progress.RunsClock(4, done_before=2)         # two to run, two done before
    assert clock.eta_text() == "ETA after the first run"
    clock.count(1, skipped=False)
    clock.count(1, skipped=True)
    assert clock.eta_text().startswith("ETA "), clock.eta_text()
    clock.count(1, skipped=False)
    assert clock.eta_text() == "the rest done before" and clock.eta() == 0.0


# ------------------------------------------------------------------ 4. consensus_acc with nothing kept

def test_consensus_acc_with_no_probe_kept_is_nan_and_its_readers_skip_it(tmp_path, capsys):
    """Every vote abstained (or no message arrived): consensus_acc read 0.0, every target wrong, where there
    was no target. It is NaN (the row's null, as vote_acc_honest with no honest peer); `table` leaves the
    final empty and takes the best over the other rounds, and `plot --metric consensus_acc` refused the run
    as "not a numeric column" for its one null round: it draws the others."""
    import jax.numpy as jnp
    import math
    from tallysim import cli
    from tallysim.protocols.probe_targets import consensus_acc
    from tallysim.results import table
    from tallysim.sim import tasks
    y = jnp.array([0, 1, 2, 1], jnp.int32)
    target = jnp.array([0, 1, 0, 0], jnp.int32)
    task = tasks.CLASSIFICATION
    assert math.isnan(float(consensus_acc(task, target, y, jnp.zeros(4))))             # nothing kept
    assert float(consensus_acc(task, target, y, jnp.array([1.0, 1.0, 1.0, 0.0]))) == pytest.approx(2 / 3)
    assert float(consensus_acc(task, target, y)) == pytest.approx(0.5)                # every probe
    rows = [{"round": r, "acc_mean": 0.5, "acc_global": None, "bits_per_peer": 100.0 * r, "consensus_acc": c}
            for r, c in ((1, 0.6), (2, 0.7), (3, None))]
    d = _write_run(tmp_path / "run", rows, {**BASE, "rounds": 3})
    (row,) = table.table_rows([d], "consensus_acc")[1]
    assert (row["final consensus_acc"], row["best consensus_acc"]) == (None, 0.7), row
    assert cli.main(["plot", str(d), "--out", str(tmp_path / "p.png"), "--metric", "consensus_acc"]) == 0, \
        capsys.readouterr().err
    drawn = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert [(r["round"], r["value"]) for r in drawn] == [("1", "0.6"), ("2", "0.7")], drawn
