"""checkpoint (dec20d): `sweep --checkpoint-every K` and `figure --checkpoint-every K` (run's cadence,
passed to every run trained alone; a grouped program saves none, and says so), and the sweep's ETA
counting the compiles still to come where no compile cache keeps a program and where a run's seeds
go in chunks of two widths."""
from __future__ import annotations

import json

import pytest

from conftest import RESUMABLE, TINY, read_rows, tiny
from tallysim import checkpoint, cli, run, sweep

ALLOWED = "--checkpoint-every -1: allowed 0 (never) or a number of rounds"


class Crash(Exception):
    pass


def test_a_sweep_killed_after_round_1_resumes_each_run_from_round_1(tmp_path, monkeypatch, capsys):
    """Two runs one at a time (seed=0,1: one program, RESUMABLE's, as the shared `checkpointed` fixture
    compiles it), --checkpoint-every 1, each stopped while round 2 runs (after round 2's row, before its
    checkpoint): the sweep run again continues both from round 1's checkpoint. Without the option the
    sweep kept the default (every 5 minutes): neither tiny run saved one, and both ran again from round 1."""
    out = tmp_path / "sw"
    items = ["sweep", *TINY, *RESUMABLE, "seed=0,1", "--one-at-a-time", "--out", str(out), "--quiet"]
    orig = run._Recorder.rows

    def rows(self, r, per_seed):
        orig(self, r, per_seed)
        if r == 2:
            raise Crash(r)
    with monkeypatch.context() as m:
        m.setattr(run._Recorder, "rows", rows)
        assert cli.main([*items, "--checkpoint-every", "1"]) == 1       # both failed, each with a checkpoint
    for name in ("seed=0", "seed=1"):
        assert checkpoint.read_meta(out / name)["round"] == 1
    capsys.readouterr()
    assert cli.main([*items, "--checkpoint-every", "1"]) == 0
    for name in ("seed=0", "seed=1"):
        assert [r["round"] for r in read_rows(out / name)] == [1, 2, 3]
        resumed = json.loads((out / name / "config.json").read_text())["resumed"]
        assert [e["round"] for e in resumed] == [1]
        assert not (out / name / checkpoint.FILE).exists()       # finished: its checkpoint removed


@pytest.mark.parametrize("command", [["sweep", "seed=0,1", "--out"], ["figure", "fig1", "--smoke", "--results"]])
def test_a_negative_cadence_is_refused_before_anything_compiles(command, tmp_path, capsys, no_compile):
    """As run refuses it, in run's words (argparse took -1, and Saver's `r % -1 == 0` saved every round)."""
    assert cli.main([*command, str(tmp_path / "o"), "--checkpoint-every", "-1"]) == 2
    assert ALLOWED in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(sweep.ConfigError, match=r"run_sweep\(checkpoint_every=-1\): allowed None \(every few "
                       r"minutes\), 0 \(never\) or a number of rounds"):
        sweep.run_sweep(tiny(), [("a", [])], tmp_path / "api", checkpoint_every=-1)


def test_every_run_alone_gets_the_cadence_and_a_group_says_it_saves_none(tmp_path, monkeypatch):
    """run_sweep (runs stubbed: no training) hands the cadence to every run trained alone and to every
    group (whose lone runs, after a refusal or a halving, take it); a group saves no checkpoint
    (run.run_group), which a cadence asked for says once, naming --one-at-a-time."""
    seen = []
    monkeypatch.setattr(sweep, "_run_one", lambda *a: seen.append(("one", a[-1])))
    monkeypatch.setattr(sweep, "_run_grouped", lambda *a: seen.append(("group", a[-1])))
    runs = sweep.expand({}, ["optim.lr=0.02,0.05", "peers=4,5"])
    base = tiny("protocol.name=tally", "rounds=1")
    logs = []
    sweep.run_sweep(base, runs, tmp_path / "g", progress=False, log=logs.append, checkpoint_every=3)
    assert seen == [("group", 3), ("group", 3)]
    assert [line for line in logs if "checkpoint" in line] == [
        "note: a checkpoint every 3 rounds is saved by runs trained alone; the 4 runs trained as 2 grouped "
        "program(s) save none (an interrupted group runs again from round 1; --one-at-a-time checkpoints every run)"]
    seen.clear()
    logs.clear()
    sweep.run_sweep(base, runs, tmp_path / "a", progress=False, log=logs.append, grouped=False, checkpoint_every=3)
    assert seen == [("one", 3)] * 4 and not [line for line in logs if "checkpoint" in line]
    seen.clear()
    sweep.run_sweep(base, runs, tmp_path / "d", progress=False, log=logs.append)      # no cadence: the default
    assert seen == [("group", None), ("group", None)] and not [line for line in logs if "checkpoint" in line]
