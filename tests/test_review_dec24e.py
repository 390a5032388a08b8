"""review28 (dec24e): an independent review of last session's merges. Each test here failed on the code
as it was reviewed (or on a mutation of it that the tests of that session let pass)."""
from __future__ import annotations

import pytest

from conftest import RESUMABLE, read_rows, tiny
from tallysim import checkpoint, memory_retry, run
from test_leftovers_dec22i import _spy, assert_rows_as_uninterrupted

OOM = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB"


def test_a_resume_inside_a_retry_continues_its_chunk_from_its_own_checkpoint(tmp_path, monkeypatch):
    """Seeds 0-1 as one chunk (seed_chunk=2) of three, a checkpoint every round, out of memory at round 2:
    the retry runs seed 0 alone from the copy after round 1 (memory_retry.RETRY), saves seed 0's own
    checkpoint after round 2 and is stopped (Ctrl-C) in round 3. --resume continues seed 0 from its own
    checkpoint (round 2, not the copy's round 1: its row of round 2 is waiting in the checkpoint, and would
    be counted twice), seed 1 from the copy, seed 2 from round 1, and the copy is gone before seed 2 starts
    (the retry has passed its seeds). Every row once, all as the uninterrupted run's. test_oom_dec23a's
    resume starts at a chunk's boundary (round 0) only: memory_retry.chunk_start's `lo == start` branch
    and its removal of the copy could be deleted with every test passing."""
    items = (*RESUMABLE, "seeds=3", "seed_chunk=2")
    b = run.build(tiny(*items))
    run.run(tiny(*items), str(tmp_path / "whole"), progress=False, built=b)
    out = tmp_path / "run"
    seen, calls, written = [], [], []
    real_chunk, real_row = run._run_chunk, run.lane_row

    def run_chunk(b, lo, hi, lanes_out, bar, saver, resume):
        seen.append((lo, hi, resume["round"] if resume else 0, (out / memory_retry.RETRY).exists()))
        return real_chunk(b, lo, hi, lanes_out, bar, saver, resume)

    def lane_row(ev, info, ledger, j, end, *rest):
        calls.append(end)
        if end == 2 and calls.count(2) == 1:
            raise RuntimeError(OOM)
        if end == 3 and calls.count(3) == 1:
            raise KeyboardInterrupt
        return real_row(ev, info, ledger, j, end, *rest)
    monkeypatch.setattr(run, "_run_chunk", run_chunk)
    monkeypatch.setattr(run, "lane_row", lane_row)
    monkeypatch.setattr(run._Recorder, "rows", _spy(run._Recorder.rows, written))
    with pytest.raises(KeyboardInterrupt):
        run.run(tiny(*items), str(out), progress=False, built=b, checkpoint_every=1)
    assert seen == [(0, 2, 0, False), (0, 1, 1, True)]
    assert (checkpoint.read_meta(out)["lo"], checkpoint.read_meta(out)["round"]) == (0, 2)
    assert (memory_retry.on_disk(out)["hi"], memory_retry.on_disk(out)["round"]) == (2, 1)
    run.run(tiny(*items), str(out), progress=False, built=b, checkpoint_every=1, resume=True)
    assert seen[2:] == [(0, 1, 2, True), (1, 2, 1, True), (2, 3, 0, False)]
    assert not (out / memory_retry.RETRY).exists() and not (out / checkpoint.FILE).exists()
    assert written == [1, 2, 3]
    assert_rows_as_uninterrupted(read_rows(out), read_rows(tmp_path / "whole"))


def test_a_run_finished_while_its_group_goes_on_is_recorded_once(tmp_path, monkeypatch):
    """rounds=2 and rounds=3 as one program: the 2-round run's done.json is there while the group still runs
    round 3 (run_group's on_finished), and the sweep records it once (one summary line, its done.json written
    once), though the group then runs out of memory at round 3 and retries its lanes one at a time (the
    retry's Lanes start with the runs already final, run_recorders.Lanes.final; one of them, as the group
    ended, went on to sweep._run_grouped's loop over the results, which skips it). sweep._run_grouped's skip of
    the runs `finished` recorded, and Lanes.final's start, could each be deleted with every test passing
    (such a run's done.json then written twice, its summary logged twice)."""
    from tallysim import sweep, sweep_records
    runs = sweep.expand({}, ["rounds=2,3"])
    short = tmp_path / runs[0][0]
    dones, seen_at_3, calls = [], [], []
    real_done, real_rows = sweep_records.done, run._Recorder.rows

    def done(run_dir, *a, **k):
        dones.append(run_dir.name)
        return real_done(run_dir, *a, **k)

    def rows(self, r, per_seed):
        if r == 3:
            calls.append(r)
            seen_at_3.append((short / sweep.DONE).is_file())
            if len(calls) == 1:
                raise RuntimeError(OOM)
        return real_rows(self, r, per_seed)
    monkeypatch.setattr(sweep, "_done", done)
    monkeypatch.setattr(run._Recorder, "rows", rows)
    logs = []
    recs = sweep.run_sweep(tiny(*RESUMABLE), runs, tmp_path, progress=False, log=logs.append)
    assert [r["status"] for r in recs] == ["done", "done"]
    assert seen_at_3 and all(seen_at_3)         # done before the group ended
    assert sorted(dones) == sorted(n for n, _ in runs)      # each once
    assert len([line for line in logs if line.strip().startswith("local: 2 rounds")]) == 1, logs
    assert [r["round"] for r in read_rows(tmp_path / runs[1][0])] == [1, 2, 3]


def test_a_damaged_retry_copy_is_not_started_from(tmp_path):
    """memory_retry.on_disk reads the copy through checkpoint.read_meta (every member's CRC first): one with
    a flipped byte in a later array, whose meta and first array read fine, is None (the chunks start from
    round 1), not a start that fails in the middle of a chunk's load, after compiling. Nothing checked it:
    on_disk reading the meta alone passed every test."""
    import zipfile
    import numpy as np
    meta = {"version": 1, "chunk": 2, "lo": 0, "round": 1, "ledgers": [{}] * 2, "evals": {}, "lines": 0,
            "last": {}, "elapsed": 0.0}
    checkpoint.save(tmp_path, {"a": np.arange(2, dtype=np.float32), "b": np.arange(400, dtype=np.float32)}, meta)
    (tmp_path / checkpoint.FILE).rename(tmp_path / memory_retry.RETRY)
    assert memory_retry.on_disk(tmp_path)["hi"] == 2           # intact: read
    path = tmp_path / memory_retry.RETRY
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("leaf_00001.npy")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    data[start + info.compress_size - 8] ^= 0xFF               # inside the array's values, past its header
    path.write_bytes(bytes(data))
    assert memory_retry.on_disk(tmp_path) is None
