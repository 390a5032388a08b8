"""Crash-safe runs: a run killed at any point and resumed from its checkpoint writes the same
metrics.jsonl as the uninterrupted run (wall time aside), with one seed or several in chunks."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tallysim import checkpoint, cli, run, sweep
from conftest import argv, TINY, tiny, read_rows


class Crash(Exception):
    pass


def no_wall(rows):
    for r in rows:
        r.pop("wall_s")
    return rows


def crash_after_row(monkeypatch, at_round):
    """The process 'dies' right after the metrics row of `at_round` was written."""
    orig = run._Recorder.rows

    def rows(self, r, per_seed):
        orig(self, r, per_seed)
        if r == at_round and self.evals.get(r) is None:
            raise Crash(r)
    monkeypatch.setattr(run._Recorder, "rows", rows)


def crash_then_resume(cfg, tmp_path, monkeypatch, at_round: int = 3, every: int = 2) -> tuple[list, list]:
    """(the uninterrupted run's rows, the rows of the same run crashed after `at_round`'s row and
    resumed from its checkpoint saved every `every` rounds), both without wall_s."""
    ref = no_wall(read_rows(run.run(cfg, str(tmp_path / "ref"), progress=False)["out"]))
    out = tmp_path / "crashed"
    with monkeypatch.context() as m:
        crash_after_row(m, at_round)
        with pytest.raises(Crash):
            run.run(cfg, str(out), progress=False, checkpoint_every=every)
    run.run(cfg, str(out), progress=False, checkpoint_every=every, resume=True)
    return ref, no_wall(read_rows(out))


# warmup_epochs=0: one traced training program fewer per run, the checkpoint's state the same shapes; a
# resume after a warm-up (it must not run again) is checked by tests/test_trust_resume.py::
# test_resume_after_round_3_gives_the_uninterrupted_rows[bridge] and [fedct] (trust_cases.BASE warms up)
CASES = {
    "one seed": ["protocol.name=tally", "rounds=6", "warmup_epochs=0"],
    "bridge": ["protocol.name=bridge", "rounds=6", "bridge.period=2", "bridge.density=0.1", "warmup_epochs=0"],
    "seeds in chunks": ["protocol.name=fedavg", "rounds=4", "seeds=3", "seed_chunk=2", "participation=0.5"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_crash_and_resume_gives_identical_metrics(case, tmp_path, monkeypatch):
    cfg = tiny(*CASES[case], "eval_every=1")
    ref = no_wall(read_rows(run.run(cfg, str(tmp_path / "ref"), progress=False)["out"]))
    out = tmp_path / "crashed"
    crash_round = 5 if cfg.seeds == 1 else 3           # with chunks: in the second chunk
    with monkeypatch.context() as m:
        crash_after_row(m, crash_round)
        with pytest.raises(Crash):
            run.run(cfg, str(out), progress=False, checkpoint_every=2)
    assert (out / checkpoint.FILE).exists()
    if cfg.seeds == 1:      # a row past the checkpoint was written and must not appear twice
        assert len(read_rows(out)) == crash_round
    run.run(cfg, str(out), progress=False, checkpoint_every=2, resume=True)
    assert no_wall(read_rows(out)) == ref
    assert not (out / checkpoint.FILE).exists()          # a finished run keeps no checkpoint
    resumed = json.loads((out / "config.json").read_text())["resumed"]
    assert len(resumed) == 1 and resumed[0]["round"] in (0, 2, 4)


def test_resume_errors_are_one_line(tmp_path, capsys):
    out = tmp_path / "done"
    base = [*TINY, "rounds=1", "protocol.name=local", "--quiet"]
    assert cli.main(["run", *base, "--out", str(out)]) == 0
    assert cli.main(["run", *base, "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err                  # finished: where its results are, not --overwrite
    assert "is a finished run" in err and "metrics.jsonl" in err and "--overwrite" not in err
    assert cli.main(["run", *base, "--out", str(out), "--resume", "--overwrite"]) == 2
    assert "pass one" in capsys.readouterr().err
    assert cli.main(["run", "--out", str(tmp_path / "nothing"), "--resume"]) == 2
    assert "not a tallysim run" in capsys.readouterr().err
    assert cli.main(["run", *base, "--out", str(out), "--checkpoint-every", "-1"]) == 2


def test_resume_refuses_another_config(tmp_path, monkeypatch, capsys):
    cfg = tiny("protocol.name=local", "rounds=3", "eval_every=1")
    out = tmp_path / "o"
    with monkeypatch.context() as m:
        crash_after_row(m, 2)
        with pytest.raises(Crash):
            run.run(cfg, str(out), progress=False, checkpoint_every=1)
    assert cli.main(["run", *TINY, "protocol.name=local", "rounds=3", "eval_every=1", "optim.lr=0.5",
                     "--out", str(out), "--resume", "--quiet"]) == 2
    assert "optim.lr=0.05->0.5" in capsys.readouterr().err
    # with no config given, --resume uses the run's own config.json
    assert cli.main(["run", "--out", str(out), "--resume", "--quiet"]) == 0
    assert [r["round"] for r in read_rows(out)] == [1, 2, 3]


def test_sweep_resumes_a_partial_run_from_its_checkpoint(tmp_path, monkeypatch):
    base = tiny("protocol.name=tally", "rounds=4", "eval_every=1", "warmup_epochs=0")    # as CASES above
    runs = [("a", [])]
    ref = no_wall(read_rows(run.run(base, str(tmp_path / "ref"), progress=False)["out"]))
    with monkeypatch.context() as m:
        crash_after_row(m, 3)
        recs = sweep.run_sweep(base, runs, tmp_path / "sw", progress=False, log=lambda s: None, checkpoint_every=1)
    assert recs[0]["status"] == "failed" and (tmp_path / "sw" / "a" / "error.txt").is_file()
    logs = []
    recs = sweep.run_sweep(base, runs, tmp_path / "sw", progress=False, log=logs.append)
    assert recs[0]["status"] == "done" and any("resuming from round 3 (its checkpoint after round 2" in s for s in logs), logs   # the checkpoint follows the row
    assert not (tmp_path / "sw" / "a" / "error.txt").exists()     # not beside its done.json (issue 30)
    assert no_wall(read_rows(tmp_path / "sw" / "a")) == ref


@pytest.mark.slow
def test_kill_dash_9_at_a_random_point_then_resume(tmp_path):
    items = [*TINY, "protocol.name=tally", "rounds=10", "seeds=2", "eval_every=1"]
    ref = no_wall(read_rows(run.run(tiny(*items[len(TINY):]), str(tmp_path / "ref"), progress=False)["out"]))
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "tallysim", "run", *argv(*items[len(TINY):]), "--checkpoint-every", "1",
                             "--out", str(out), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not (out / checkpoint.FILE).exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(random.Random().uniform(0.0, 0.4))          # somewhere mid-run: mid-round or mid-write
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    for line in (out / "metrics.jsonl").read_text().splitlines():
        json.loads(line)                                   # never a torn line
    if killed:
        assert cli.main(["run", "--out", str(out), "--resume", "--quiet"]) == 0
    assert no_wall(read_rows(out)) == ref
