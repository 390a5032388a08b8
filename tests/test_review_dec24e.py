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
