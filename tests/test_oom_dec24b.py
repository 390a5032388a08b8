"""oom33 (dec24b): out-of-memory retry leftovers. (1) A group's retry ran again, from round 1, the lanes
of its runs that had finished or stopped (loss not finite): their rows were not rewritten, but the compute
was spent, their lanes widened the narrower program, and the chunk holding them started from round 1 (a
finished run keeps no checkpoint). Now the retry leaves them out (memory_retry.bounds)."""
from __future__ import annotations

from conftest import RESUMABLE, read_rows, tiny
from tallysim import run
from test_leftovers_dec22i import oom_at_round_3


def test_a_group_retry_runs_no_lane_of_a_run_finished_or_stopped(tmp_path, monkeypatch, capsys):
    """Three runs as one program (2 rounds; loss not finite at round 1; 3 rounds), a checkpoint every
    round, out of memory at round 3: the retry runs only the 3-round run's lane, from its checkpoint after
    round 2. Before, lanes 0 and 1 ran again from round 1, one at a time, then lane 2."""
    cfgs = [tiny(*RESUMABLE, *o) for o in (["rounds=2"], ["optim.lr=1e30"], [])]
    seen, written = oom_at_round_3(monkeypatch)
    outs = [tmp_path / n for n in ("two", "nan", "three")]
    got = run.run_group(cfgs, outs, progress=False, checkpoint_every=1)
    assert seen == [(0, 3, 0), (2, 3, 2)], seen
    assert "lane 2 starts again from their runs' checkpoints after round 2; lanes 0-1, of runs finished or " \
           "stopped (loss not finite), are kept and not run again" in capsys.readouterr().err
    assert got[0]["round"] == 2 and isinstance(got[1], run.NonFiniteLoss) and got[2]["round"] == 3
    assert sorted(written) == [1, 1, 2, 2, 3]       # each row once
    assert [r["round"] for r in read_rows(outs[2])] == [1, 2, 3] and read_rows(outs[1]) == []


def test_the_sweeps_fallback_keeps_a_run_stopped_by_a_non_finite_loss(tmp_path, monkeypatch):
    """Two runs as one program, a checkpoint every round; optim.lr=1e30's loss is not finite at round 1
    (the run stops, error.txt written), then out of memory at round 3 and at one lane too: the sweep
    falls back, resumes optim.lr=0.05 from its checkpoint alone and keeps the stopped run as it was (its
    error.txt, its empty metrics.jsonl, failed and diverged in sweep.json), run nowhere again. Before, the
    fallback counted it among the runs left (still `running` until the group ended) and ran it again alone
    from round 1."""
    import json
    from tallysim import sweep
    from test_oom_dec23a import OOM
    runs = sweep.expand({}, ["optim.lr=0.05,1e30"])
    alone, real_run, real_chunk, real_row, out = [], run.run, run._run_chunk, run.lane_row, tmp_path / "s"
    stop = {}

    def run_alone(cfg, o=None, **k):
        alone.append((o.rsplit("/", 1)[-1], k.get("resume", False)))
        return real_run(cfg, o, **k)

    def run_chunk(b, lo, hi, *rest):
        if len(b.cfgs) == 2 and hi - lo < 2:        # the group's narrower chunk: out of memory too
            raise RuntimeError(OOM)
        return real_chunk(b, lo, hi, *rest)

    def lane_row(ev, info, ledger, j, end, *rest):
        if end == 3 and not stop:
            stop.update({f: (out / "optim.lr=1e30" / f).read_bytes() for f in ("error.txt", "metrics.jsonl")})
            raise RuntimeError(OOM)
        return real_row(ev, info, ledger, j, end, *rest)
    monkeypatch.setattr(run, "run", run_alone)
    monkeypatch.setattr(run, "_run_chunk", run_chunk)
    monkeypatch.setattr(run, "lane_row", lane_row)
    logs = []
    recs = sweep.run_sweep(tiny(*RESUMABLE), runs, out, progress=False, log=logs.append, checkpoint_every=1)
    assert alone == [("optim.lr=0.05", True)], alone
    assert any("1 run stopped (loss not finite), kept; 1 run resumes from its checkpoint alone" in line
               for line in logs), logs
    assert [r["status"] for r in recs] == ["done", "failed"] and recs[1]["diverged"] is True
    assert sum("FAILED" in line for line in logs) == 1, logs        # its stop said once
    assert {f: (out / "optim.lr=1e30" / f).read_bytes() for f in stop} == stop and stop["metrics.jsonl"] == b""
    assert json.loads((out / "sweep.json").read_text())["runs"][1]["diverged"] is True
    assert [r["round"] for r in read_rows(out / "optim.lr=0.05")] == [1, 2, 3]


def test_the_retrys_copy_is_a_link_that_keeps_the_old_checkpoint_when_it_is_replaced(tmp_path, monkeypatch):
    """memory_retry.kept: the retry's copy (RETRY) is a hard link to the checkpoint, not a second copy of
    its bytes on disk (a copy doubled the checkpoint's disk until the retry's first save); the retry's
    save replaces checkpoint.npz by a rename, and the copy still holds, and reads as, the old one. Where
    the filesystem makes no link, a copy (same bytes, its own file)."""
    import os
    from tallysim import checkpoint, memory_retry
    from test_oom_dec23a import _saved
    _saved(tmp_path, 0, 4, 2)
    old = (tmp_path / checkpoint.FILE).read_bytes()
    kept = memory_retry.kept(tmp_path, 0, 4)
    assert (kept["lo"], kept["hi"], kept["round"]) == (0, 4, 2)
    a, b = os.stat(tmp_path / checkpoint.FILE), os.stat(tmp_path / memory_retry.RETRY)
    assert a.st_ino == b.st_ino and b.st_nlink == 2         # one file on disk
    _saved(tmp_path, 0, 2, 1)                               # the retry's first save, 2 seeds after round 1
    assert (tmp_path / memory_retry.RETRY).read_bytes() == old and os.stat(tmp_path / memory_retry.RETRY).st_nlink == 1
    assert memory_retry.on_disk(tmp_path)["round"] == 2 and checkpoint.read_meta(tmp_path)["round"] == 1
    assert {p.name for p in tmp_path.iterdir()} == {checkpoint.FILE, memory_retry.RETRY}     # no temporary left

    def no_link(*_):
        raise OSError(1, "Operation not permitted")
    monkeypatch.setattr(os, "link", no_link)
    _saved(tmp_path, 0, 4, 3)
    assert memory_retry.kept(tmp_path, 0, 4)["round"] == 3
    assert (tmp_path / memory_retry.RETRY).read_bytes() == (tmp_path / checkpoint.FILE).read_bytes()
    assert os.stat(tmp_path / memory_retry.RETRY).st_nlink == 1      # a copy of its own
