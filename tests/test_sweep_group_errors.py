"""What a grouped sweep (several configurations compiled as one program) does when the program stops
(sweep._run_grouped): a configuration refused while the group is built fails alone, reported once, and
the others still run as one group; out of memory runs the group as smaller groups; any other error is
the program's and fails every run of the group, reported once. No run is computed twice: before, each
of these reran every configuration of the group one at a time."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tiny

from tallysim import run, sweep


@pytest.fixture
def calls(monkeypatch):
    """Every run_group and lone run the sweep starts, by run directory name."""
    seen = []
    group, alone = run.run_group, run.run

    def run_group(cfgs, outs, progress=True, warn=True, checkpoint_every=None, **kw):
        seen.append(("group", [Path(o).name for o in outs]))
        return group(cfgs, outs, progress, warn=warn, checkpoint_every=checkpoint_every, **kw)

    def run_alone(cfg, out=None, **kw):
        seen.append(("alone", Path(out).name))
        return alone(cfg, out, **kw)
    monkeypatch.setattr(run, "run_group", run_group)
    monkeypatch.setattr(run, "run", run_alone)
    return seen


def test_a_refused_configuration_fails_once_and_the_others_run_as_one_group(tmp_path, calls):
    base = tiny("protocol.name=fedavg", "rounds=1", "partition.kind=dirichlet")
    runs = sweep.expand({}, ["partition.min_size=5,1500,6"])          # 1500 of 1400 examples: impossible
    names = [n for n, _ in runs]
    logs = []
    recs = sweep.run_sweep(base, runs, tmp_path, progress=False, log=logs.append)
    assert [r["status"] for r in recs] == ["done", "failed", "done"]
    assert calls == [("group", names), ("group", [names[0], names[2]])]
    error = recs[1]["error"]
    assert "needs at least 6000 training examples" in error, error
    assert sum(error in line for line in logs) == 1, logs                # reported once
    assert f"[2/3] {names[1]}" in logs, logs                             # naming the configuration
    assert (tmp_path / names[1] / "error.txt").read_text().strip() == error
    assert all((tmp_path / n / sweep.DONE).is_file() for n in (names[0], names[2]))


def test_out_of_memory_runs_the_group_as_smaller_groups(tmp_path, calls, monkeypatch):
    real = run.run_group

    def too_big(cfgs, outs, progress=True, warn=True, checkpoint_every=None, **kw):
        if len(cfgs) > 2:
            calls.append(("too big", [Path(o).name for o in outs]))
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 9.00GiB")
        return real(cfgs, outs, progress, **kw)
    monkeypatch.setattr(run, "run_group", too_big)
    runs = sweep.expand({}, ["optim.lr=0.01,0.02,0.03,0.04"])
    names = [n for n, _ in runs]
    logs = []
    recs = sweep.run_sweep(tiny("protocol.name=fedavg", "rounds=1"), runs, tmp_path, progress=False, log=logs.append)
    assert [r["status"] for r in recs] == ["done"] * 4
    assert calls == [("too big", names), ("group", names[:2]), ("group", names[2:])]
    assert sum("did not fit in memory" in line for line in logs) == 1, logs


def test_an_error_of_the_program_fails_every_run_of_the_group_once(tmp_path, calls, monkeypatch, no_compile):
    def broken(cfgs, outs, progress=True, warn=True, checkpoint_every=None, **kw):
        calls.append(("group", [Path(o).name for o in outs]))
        raise ValueError("a bug in the compiled round\nsecond line")
    monkeypatch.setattr(run, "run_group", broken)
    runs = sweep.expand({}, ["optim.lr=0.01,0.02,0.03"])
    logs = []
    recs = sweep.run_sweep(tiny("protocol.name=fedavg", "rounds=1"), runs, tmp_path, progress=False, log=logs.append)
    assert [r["status"] for r in recs] == ["failed"] * 3
    assert [r["error"] for r in recs] == ["ValueError: a bug in the compiled round"] * 3
    assert calls == [("group", [n for n, _ in runs])]                   # nothing ran again
    assert sum("a bug in the compiled round" in line for line in logs) == 1, logs
    assert "--one-at-a-time" in next(line for line in logs if "a bug" in line)
    for name, _ in runs:
        text = (tmp_path / name / "error.txt").read_text()
        assert "Traceback" in text and "second line" in text


def test_a_directory_another_process_writes_sends_the_group_one_at_a_time(tmp_path, calls, monkeypatch):
    """Two copies of one sweep into one --out: the group's claim meets a directory the other process holds
    (outdir.Busy). Only that run fails, marked busy (done if the other process finishes it); the
    others still run. Before, every run of the group failed with the other process's lock."""
    from tallysim import outdir
    runs = sweep.expand({}, ["optim.lr=0.01,0.02,0.03"])
    names = [n for n, _ in runs]
    alone = run.run

    def held(cfgs, outs, progress=True, warn=True, checkpoint_every=None, **kw):
        calls.append(("group", [Path(o).name for o in outs]))
        raise outdir.Busy(f"{outs[1]} is being written by another tallysim process right now")

    def busy_alone(cfg, out=None, **kw):
        if Path(out).name == names[1]:
            calls.append(("alone", names[1]))
            raise outdir.Busy(f"{out} is being written by another tallysim process right now")
        return alone(cfg, out, **kw)
    monkeypatch.setattr(run, "run_group", held)
    monkeypatch.setattr(run, "run", busy_alone)
    recs = sweep.run_sweep(tiny("protocol.name=fedavg", "rounds=1"), runs, tmp_path, progress=False,
                           log=lambda _: None)
    assert [r["status"] for r in recs] == ["done", "failed", "done"]
    assert recs[1].get("busy") and "another tallysim process" in recs[1]["error"]
    assert calls == [("group", names), ("alone", names[0]), ("alone", names[1]), ("alone", names[2])]
