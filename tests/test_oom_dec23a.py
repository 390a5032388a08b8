"""oom32 (dec23a): out-of-memory retry leftovers. (1) A sweep's group that ran out of memory even one lane
at a time ran as two halves, each a new group that overwrote its runs' directories: every run again from
round 1, its checkpoint and rows lost. Now its finished runs are kept (done), those with a checkpoint
resume from it alone, and only the rest run as smaller groups (sweep._run_grouped, sweep_resume.after_group).
(2) A lone retry's copy of the checkpoint it starts its narrower chunks from was held in memory only: a
retry stopped after its first narrower chunk resumed the next from round 1. Now the copy is a file in the
run directory (memory_retry.RETRY), read by --resume, removed once no chunk needs it. (3) A run that
finished while its group went on kept its old checkpoint until the group ended: a sweep stopped meanwhile
resumed it from that checkpoint. Now its done.json is written and its checkpoint removed at once
(run.run_group's on_finished)."""
from __future__ import annotations

import json

import pytest

from conftest import RESUMABLE, read_rows, tiny
from tallysim import checkpoint, run, sweep

OOM = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB"


def _stop_at(monkeypatch, r_stop: int, error: BaseException) -> None:
    """Recorder.rows raises `error` the first time a configuration reaches round r_stop, before its row."""
    real, seen = run._Recorder.rows, []

    def rows(self, r, per_seed):
        if r == r_stop and not seen:
            seen.append(r)
            raise error
        real(self, r, per_seed)
    monkeypatch.setattr(run._Recorder, "rows", rows)


def test_a_run_that_finishes_while_its_group_goes_on_is_done_at_once(tmp_path, monkeypatch):
    """Runs rounds=2 and rounds=3 as one program, a checkpoint every round, stopped (Ctrl-C) at round 3:
    the 2-round run finished at round 2, its done.json is there and its checkpoint (after round 1) gone;
    the sweep run again skips it and resumes the other from round 3. Before, its checkpoint stayed until
    the group ended, and the sweep run again resumed it from round 2 (and wrote its row 2 again)."""
    runs = sweep.expand({}, ["rounds=2,3"])
    names = [n for n, _ in runs]
    base = tiny(*RESUMABLE)
    _stop_at(monkeypatch, 3, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(base, runs, tmp_path, progress=False, log=lambda _: None, checkpoint_every=1)
    short, long = (tmp_path / n for n in names)
    assert (short / sweep.DONE).is_file() and not (short / checkpoint.FILE).exists()
    assert [r["round"] for r in read_rows(short)] == [1, 2]
    assert checkpoint.read_meta(long)["round"] == 2
    status = [r["status"] for r in json.loads((tmp_path / "sweep.json").read_text())["runs"]]
    assert status == ["done", "interrupted"]
    before = (short / "metrics.jsonl").read_bytes()
    monkeypatch.undo()
    logs = []
    recs = sweep.run_sweep(base, runs, tmp_path, progress=False, log=logs.append, checkpoint_every=1)
    assert [r["status"] for r in recs] == ["done_before", "done"]
    assert f"[1/2] skip {names[0]} (done)" in logs, logs
    assert any("resuming from round 3" in line for line in logs), logs
    assert (short / "metrics.jsonl").read_bytes() == before
    assert [r["round"] for r in read_rows(long)] == [1, 2, 3]


def test_the_sweeps_last_fallback_keeps_finished_runs_and_resumes_the_others(tmp_path, monkeypatch):
    """Four runs (rounds=2,3 x two learning rates) as one program, a checkpoint every round: out of
    memory at round 3, then at every narrower chunk (1 lane too), so the sweep falls back. The two 2-round
    runs, finished at round 2, are kept; the two 3-round runs resume alone from their checkpoints after
    round 2; no group runs again. Every row is written once and equals the uninterrupted sweep's (rows of
    rounds 1-2 unchanged, bytes). Before, the sweep ran the four as two new groups from round 1, their
    directories overwritten."""
    runs = sweep.expand({}, ["rounds=2,3", "optim.lr=0.05,0.1"])
    base = tiny(*RESUMABLE)
    sweep.run_sweep(base, runs, tmp_path / "whole", progress=False, log=lambda _: None)
    groups, alone = [], []
    real_group, real_run, real_chunk = run.run_group, run.run, run._run_chunk

    def run_group(cfgs, outs, *a, **k):
        groups.append(len(cfgs))
        return real_group(cfgs, outs, *a, **k)

    def run_alone(cfg, out=None, **k):
        alone.append((out.rsplit("/", 1)[-1], k.get("resume", False)))
        return real_run(cfg, out, **k)

    def run_chunk(b, lo, hi, lanes_out, bar, saver, resume):
        if len(b.cfgs) == 4 and hi - lo < 4:        # the group's narrower chunks: out of memory too
            raise RuntimeError(OOM)
        return real_chunk(b, lo, hi, lanes_out, bar, saver, resume)
    monkeypatch.setattr(run, "run_group", run_group)
    monkeypatch.setattr(run, "run", run_alone)
    monkeypatch.setattr(run, "_run_chunk", run_chunk)
    written = []
    real_rows = run._Recorder.rows

    def rows(self, r, per_seed):
        if r == 3 and not written.count("oom"):
            written.append("oom")
            raise RuntimeError(OOM)
        before = self.lines
        real_rows(self, r, per_seed)
        if self.lines > before:
            written.append((self.out_dir.name, r))
    monkeypatch.setattr(run._Recorder, "rows", rows)
    logs = []
    out = tmp_path / "s"
    recs = sweep.run_sweep(base, runs, out, progress=False, log=logs.append, checkpoint_every=1)
    assert [r["status"] for r in recs] == ["done"] * 4
    three = [n for n, ov in runs if "rounds=3" in ov]
    assert groups == [4] and sorted(alone) == sorted((n, True) for n in three), (groups, alone)
    assert any("2 runs finished, kept; 2 runs resume from their checkpoints, each alone" in line for line in logs), logs
    rows_written = [w for w in written if w != "oom"]
    assert len(rows_written) == len(set(rows_written)) == 2 * 2 + 2 * 3      # each row once
    for name, _ in runs:
        got, ref = read_rows(out / name), read_rows(tmp_path / "whole" / name)
        for row in got + ref:
            row.pop("wall_s")
        assert [r.pop("train_loss") for r in got] == pytest.approx([r.pop("train_loss") for r in ref], rel=1e-6)
        assert got == ref
        assert (out / name / sweep.DONE).is_file() and not (out / name / checkpoint.FILE).exists()
