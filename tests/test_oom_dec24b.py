"""oom33 (dec24b): out-of-memory retry leftovers. (1) A group's retry ran again, from round 1, the lanes
of its runs that had finished or stopped (loss not finite): their rows were not rewritten, but the compute
was spent, their lanes widened the narrower program, and the chunk holding them started from round 1 (a
finished run keeps no checkpoint). Now the retry leaves them out (memory_retry.bounds). (2) A run of a
group stopped by a non-finite loss was recorded only when the group ended: a group then out of memory even
one lane at a time left it among the runs the sweep's fallback ran again, from round 1. Now it is final at
once (Lanes.diverged calls on_final: failed and diverged in sweep.json) and kept. (3) The lone retry's
copy of its checkpoint (RETRY) held the checkpoint's bytes twice on disk: now a hard link where the
filesystem makes one (atomic.link_or_copy). Multi-process retries keep no copy: unchanged, documented
(docs/howto/gpu.md)."""
from __future__ import annotations

from conftest import RESUMABLE, read_rows, tiny
from tallysim import run


def test_a_group_retry_and_the_sweeps_fallback_run_no_run_finished_or_stopped(tmp_path, monkeypatch):
    """Four runs (rounds=2,3 x optim.lr=0.05,1e30) as one program, a checkpoint every round: both 1e30 runs
    stop at round 1 (loss not finite), the 2-round run finishes at round 2, out of memory at round 3 and at
    every narrower chunk. (1) The group's retries run only lane 2 (the 3-round run at lr 0.05), from its
    checkpoint after round 2; before, lanes 0-1 ran again from round 1, then 2-3 from round 1 (lane 3's run
    keeps no checkpoint). (2) The sweep falls back: resumes that run alone and keeps the stopped runs as they
    were (error.txt, empty metrics.jsonl, failed and diverged in sweep.json); before, still `running` until
    the group ended, they were run again alone from round 1."""
    import json
    from tallysim import sweep
    from test_oom_dec23a import OOM
    runs = sweep.expand({}, ["rounds=2,3", "optim.lr=0.05,1e30"])
    names = [n for n, _ in runs]
    assert names[1].endswith("1e30") and names[3].endswith("1e30") and "rounds=3" in names[2]
    seen, alone, stop, out = [], [], {}, tmp_path / "s"
    real_run, real_chunk, real_row = run.run, run._run_chunk, run.lane_row

    def run_alone(cfg, o=None, **k):
        alone.append((o.rsplit("/", 1)[-1], k.get("resume", False)))
        return real_run(cfg, o, **k)

    def run_chunk(b, lo, hi, lanes_out, bar, saver, resume):
        if len(b.cfgs) == 4:
            seen.append((lo, hi, resume["round"] if resume else 0))
            if hi - lo < 4:                         # the group's narrower chunks: out of memory too
                raise RuntimeError(OOM)
        return real_chunk(b, lo, hi, lanes_out, bar, saver, resume)

    def lane_row(ev, info, ledger, j, end, *rest):
        if end == 3 and not stop:
            stop.update({(n, f): (out / n / f).read_bytes() for n in names[1::2] for f in ("error.txt", "metrics.jsonl")})
            raise RuntimeError(OOM)
        return real_row(ev, info, ledger, j, end, *rest)
    monkeypatch.setattr(run, "run", run_alone)
    monkeypatch.setattr(run, "_run_chunk", run_chunk)
    monkeypatch.setattr(run, "lane_row", lane_row)
    logs = []
    recs = sweep.run_sweep(tiny(*RESUMABLE), runs, out, progress=False, log=logs.append, checkpoint_every=1)
    assert seen == [(0, 4, 0), (2, 3, 2), (2, 3, 2)], seen      # 4 lanes, then 2 and 1 at a time: lane 2 only
    assert alone == [(names[2], True)], alone
    assert any("1 run finished, kept; 2 runs stopped (loss not finite), kept; 1 run resumes from its checkpoint "
               "alone" in line for line in logs), logs
    assert [r["status"] for r in recs] == ["done", "failed", "done", "failed"]
    assert recs[1]["diverged"] is recs[3]["diverged"] is True
    assert sum("FAILED" in line for line in logs) == 2, logs        # each stop said once
    assert {k: (out / k[0] / k[1]).read_bytes() for k in stop} == stop and stop[(names[1], "metrics.jsonl")] == b""
    assert [r["diverged"] for r in json.loads((out / "sweep.json").read_text())["runs"][1::2]] == [True, True]
    assert [r["round"] for r in read_rows(out / names[2])] == [1, 2, 3]


def test_a_run_stopped_while_its_group_goes_on_is_recorded_failed_once(tmp_path):
    """review29 (dec25h): oom33 made a run of a group stopped by a non-finite loss final at once (the sweep's
    `finished` records it failed) and _run_grouped's loop over the group's results skip it (status done or
    failed). The test above ends the group out of memory, before that loop: the skip of `failed` could go
    with every test passing, and a group that then finished logged each stopped run's FAILED line twice.
    The same four runs (the same program: in this file, compiled once), nothing out of memory: each stopped
    run said once, each finished run's summary once, no checkpoint left."""
    from tallysim import checkpoint, sweep
    runs = sweep.expand({}, ["rounds=2,3", "optim.lr=0.05,1e30"])
    logs = []
    recs = sweep.run_sweep(tiny(*RESUMABLE), runs, tmp_path, progress=False, log=logs.append, checkpoint_every=1)
    assert [r["status"] for r in recs] == ["done", "failed", "done", "failed"]
    assert sum("FAILED" in line for line in logs) == 2, logs
    assert sum(line.strip().startswith("local: ") for line in logs) == 2, logs
    assert not any((tmp_path / n / checkpoint.FILE).exists() for n, _ in runs)
    assert [r["round"] for r in read_rows(tmp_path / runs[2][0])] == [1, 2, 3]


def test_the_retry_names_the_lanes_it_leaves_out():
    """memory_retry.lane_list: runs of consecutive lanes (the retry's line, `lanes 0-1, 3, of runs finished
    or stopped (loss not finite), are kept and not run again`)."""
    from tallysim import memory_retry
    assert [memory_retry.lane_list(js) for js in ([3], [0, 1], [0, 1, 3], [0, 2, 3, 4])] == \
        ["lane 3", "lanes 0-1", "lanes 0-1, 3", "lanes 0, 2-4"]


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
