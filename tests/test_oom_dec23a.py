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
from test_leftovers_dec22i import assert_rows_as_uninterrupted, oom_at_round_3

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
    runs, finished at round 2, are kept (their files untouched); the two 3-round runs resume alone from
    their checkpoints after round 2 (their rows of rounds 1-2 kept, bytes); no group runs again; every
    row is written once. Before, the sweep ran the four as two new groups from round 1, their directories
    overwritten. (A resumed run's rows equal the uninterrupted run's: test_resume, test_checkpoint_dec20d.)"""
    runs = sweep.expand({}, ["rounds=2,3", "optim.lr=0.05,0.1"])
    groups, alone, kept = [], [], {}
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
        if r == 3 and not kept:
            kept.update({n: (out / n / "metrics.jsonl").read_bytes() for n, _ in runs})
            raise RuntimeError(OOM)
        before = self.lines
        real_rows(self, r, per_seed)
        if self.lines > before:
            written.append((self.out_dir.name, r))
    monkeypatch.setattr(run._Recorder, "rows", rows)
    logs = []
    out = tmp_path / "s"
    recs = sweep.run_sweep(tiny(*RESUMABLE), runs, out, progress=False, log=logs.append, checkpoint_every=1)
    assert [r["status"] for r in recs] == ["done"] * 4
    three = [n for n, ov in runs if "rounds=3" in ov]
    assert groups == [4] and sorted(alone) == sorted((n, True) for n in three), (groups, alone)
    assert any("2 runs finished, kept; 2 runs resume from their checkpoints, each alone" in line for line in logs), logs
    assert len(written) == len(set(written)) == 2 * 2 + 2 * 3      # each row once
    for name, ov in runs:
        now = (out / name / "metrics.jsonl").read_bytes()
        assert now.startswith(kept[name]) and kept[name].count(b"\n") == 2
        assert [r["round"] for r in read_rows(out / name)] == ([1, 2, 3] if name in three else [1, 2])
        assert (out / name / sweep.DONE).is_file() and not (out / name / checkpoint.FILE).exists()


def test_a_lone_retry_stopped_after_its_first_narrower_chunk_resumes_the_next_from_its_copy(tmp_path, monkeypatch, capsys):
    """Two seeds as one chunk, a checkpoint every round, out of memory at round 3: retried one seed at a
    time from the checkpoint after round 2, stopped (Ctrl-C) as seed 1's chunk starts. The copy it starts
    from is in the run directory (memory_retry.RETRY), and --resume starts seed 1 from round 2 with it, then
    removes it; each row written once, all as the uninterrupted run's. Before, the copy was in memory
    only and the resume started seed 1 from round 1 (the checkpoint: seed 0's chunk done, no state)."""
    from tallysim import memory_retry
    items = (*RESUMABLE, "seeds=2")
    b = run.build(tiny(*items))
    run.run(tiny(*items), str(tmp_path / "whole"), progress=False, built=b)
    seen, written = oom_at_round_3(monkeypatch, interrupt_at=(1, 2, 2))
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run.run(tiny(*items), str(out), progress=False, built=b, checkpoint_every=1)
    assert seen == [(0, 2, 0), (0, 1, 2), (1, 2, 2)]
    assert checkpoint.read_meta(out)["round"] == 0 and memory_retry.on_disk(out)["round"] == 2
    capsys.readouterr()
    run.run(tiny(*items), str(out), progress=False, built=b, checkpoint_every=1, resume=True)
    assert "tallysim: seed 1 starts from the out-of-memory retry's copy of its checkpoint after round 2 " \
           "(checkpoint-retry.npz)" in capsys.readouterr().err
    assert seen[3:] == [(1, 2, 2)]                  # seed 1 from the copy's round 2, not from round 1
    assert not (out / memory_retry.RETRY).exists() and not (out / checkpoint.FILE).exists()
    assert written == [1, 2, 3]                     # each round's row once
    assert_rows_as_uninterrupted(read_rows(out), read_rows(tmp_path / "whole"))


def _saved(d, lo: int, n: int, r: int, name: str = checkpoint.FILE) -> None:
    """A checkpoint of seeds [lo, lo + n) after round r (state: one array of n lanes), as `name` in d."""
    import numpy as np
    meta = {"version": 1, "chunk": n, "lo": lo, "round": r, "ledgers": [{}] * n, "evals": {}, "lines": 0,
            "last": {}, "elapsed": 0.0}
    checkpoint.save(d, {"w": np.arange(n, dtype=np.float32)}, meta)
    if name != checkpoint.FILE:
        (d / checkpoint.FILE).rename(d / name)


def test_a_second_retry_keeps_the_wider_copy_its_chunk_lies_in(tmp_path):
    """Seeds 0-3 kept after round 1 (the first retry's copy); seeds 0-1's own checkpoint after round 3
    when they run out of memory again: the copy of 0-3 stays the one read, so seeds 2-3 still start from
    round 1 of it with their rows of round 1 waiting once (memory_retry.lone_point). Before, the narrower
    checkpoint replaced it, and seeds 2-3 started from round 1 with their row of round 1 already waiting:
    counted twice."""
    from tallysim import memory_retry

    class Lanes:
        def restart(self, lo, chunk):
            return {"lo": lo, "round": 0, "chunk": chunk, "evals": {}, "lines": 0, "retry": True}

    class B:
        seeds = list(range(6))
    _saved(tmp_path, 0, 4, 1, memory_retry.RETRY)
    _saved(tmp_path, 0, 2, 3)
    redo, said = memory_retry.lone_point(B(), [Lanes(), 0, 2], None, 1, tmp_path)
    assert (redo["wide"]["lo"], redo["wide"]["hi"], redo["wide"]["round"]) == (0, 4, 1)
    assert memory_retry.on_disk(tmp_path)["hi"] == 4 and "from their checkpoint after round 1" in said


def test_a_retrys_chunks_end_where_its_kept_seeds_end(monkeypatch):
    """Kept seeds 0-4 (a copy of a 5-seed chunk), retried 2 at a time over 6 seeds: the chunks are 0-1,
    2-3, 4 (from the copy) and 5 (from round 1). Before, 4-5 ran as one chunk across the copy's end, from
    round 1: seed 4's rows up to the copy's round, waiting already, counted twice."""
    from pathlib import Path
    b = run.build(tiny(*RESUMABLE, "seeds=6"))
    seen = []
    monkeypatch.setattr(run, "_run_chunk", lambda b, lo, hi, lanes_out, bar, saver, resume:
                        seen.append((lo, hi, resume and resume["round"])))
    wide = {"lo": 0, "hi": 5, "round": 2, "ledgers": [{}] * 5, "saved_lanes": 5, "evals": {}, "path": Path("/nonexistent")}
    resume = {"lo": 0, "round": 0, "chunk": 2, "evals": {}, "lines": 0, "last": {}, "elapsed": 0.0,
              "ledgers": [], "retry": True, "wide": wide}
    run._run_all(b, [None], 2, False, checkpoint.Saver(None, 0), resume)
    assert seen == [(0, 2, 2), (2, 4, 2), (4, 5, 2), (5, 6, None)]


def test_what_the_fallback_says_it_does_next():
    """sweep_resume.after_group_words: the old line where nothing was kept, then what is kept and how."""
    from tallysim import sweep_resume
    assert sweep_resume.after_group_words(0, 0, 4) == "running it as two smaller groups"
    assert sweep_resume.after_group_words(1, 1, 1) == \
        "1 run finished, kept; 1 run resumes from its checkpoint alone; running the other alone"
    assert sweep_resume.after_group_words(1, 0, 3) == "1 run finished, kept; running the other 3 as two smaller groups"
