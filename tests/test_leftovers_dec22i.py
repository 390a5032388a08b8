"""leftovers31 (dec22i). (1) memory_retry's words in jax.distributed's key-value store were keyed by a
count of this process's decisions: a word one process left at an earlier error (a sweep's run that
failed in it alone; the sweep goes on) was read by the other process as its word at the next decision.
Now a decision's keys name its run (memory_retry.begin, counted in every process from the first line of
run.run / run.run_group), its chunk and its width. (2) A lone run that ran out of memory restarted its
chunk from round 1 though it held a checkpoint of it: the retry's own saves overwrite the file. Now a copy
in memory starts every narrower chunk within it from its round (memory_retry.lone_point)."""
from __future__ import annotations

import threading

import pytest

from tallysim import memory_retry

OOM = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB"


class _Store:
    """jax.distributed's key-value store as memory_retry uses it: a key set once; a blocking get waits for
    it (here at most 5 s, the real one the distributed timeout) and raises at its deadline."""
    def __init__(self):
        self.kv, self.cond = {}, threading.Condition()

    def key_value_set(self, key, value):
        with self.cond:
            if key in self.kv:
                raise RuntimeError(f"ALREADY_EXISTS: {key}")
            self.kv[key] = value
            self.cond.notify_all()

    def key_value_try_get(self, key):
        with self.cond:
            if key not in self.kv:
                raise RuntimeError(f"NOT_FOUND: {key}")
            return self.kv[key]

    def blocking_key_value_get(self, key, timeout_ms):
        with self.cond:
            if not self.cond.wait_for(lambda: key in self.kv, timeout=min(timeout_ms / 1000, 5)):
                raise RuntimeError(f"DEADLINE_EXCEEDED: {key}")
            return self.kv[key]


def test_a_word_left_by_one_process_is_not_read_by_a_later_decision(monkeypatch):
    """Two processes (threads, each its own process index, one store). Run 1 of a sweep: process 0 alone
    fails with a bug (its word, not waited for, stays in the store; the sweep goes on). Run 2: both run
    out of memory at the same chunk: both retry. Before, process 1's first decision used key 0, where
    process 0's run-1 word was: it read "another error" and both raised NotTogether (here: the keys of the
    two differ, each waits for the other in vain)."""
    import jax
    from jax._src import distributed
    store, me = _Store(), threading.local()
    monkeypatch.setattr(distributed.global_state, "client", store)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: me.i)
    monkeypatch.setenv("TALLYSIM_DISTRIBUTED_TIMEOUT", "5")
    runs = [memory_retry.begin(), memory_retry.begin()]     # every process's runs 1 and 2 (one count here)
    assert runs[0] != runs[1]
    me.i = 0
    assert not memory_retry.retry(ValueError("a bug"), 4, memory_retry.decision(runs[0], [None, 0, 4], 4))
    got = {}

    def process(i):
        me.i = i
        try:
            got[i] = memory_retry.retry(RuntimeError(OOM), 4, memory_retry.decision(runs[1], [None, 2, 4], 4))
        except Exception as e:  # noqa: BLE001 - what each decided
            got[i] = e
    other = threading.Thread(target=process, args=(0,))
    other.start()
    process(1)
    other.join()
    assert got == {0: True, 1: True}
    # the same run and chunk at another width (the retry's next decision) has keys of its own
    assert memory_retry.decision(runs[1], [None, 2, 2], 2) != memory_retry.decision(runs[1], [None, 2, 4], 4)
    assert memory_retry.decision(runs[1], [], 4) != memory_retry.decision(runs[1], [None, 0, 4], 4)


def test_every_run_is_counted_before_anything_can_fail_in_one_process(tmp_path):
    """run.run and run.run_group take their run's name first: one refused at once (an --out only process
    0 checks, here a file) still counts, so the processes' counts stay in step."""
    from conftest import tiny
    from tallysim import run
    from tallysim.config import ConfigError
    (tmp_path / "f").write_text("x")
    before = memory_retry.begin()
    with pytest.raises(ConfigError):
        run.run(tiny(), str(tmp_path / "f"), progress=False)
    with pytest.raises(ConfigError):
        run.run_group([tiny()], [], progress=False)
    assert memory_retry.begin() == f"run{int(before[3:]) + 3}"


def test_a_lone_retry_starts_every_narrower_chunk_from_the_kept_checkpoint(tmp_path, monkeypatch, capsys):
    """Two seeds as one chunk, a checkpoint every round, out of memory at round 3: seed 0's chunk and then
    seed 1's start from the checkpoint after round 2 (seed 1's cut from the copy in memory: seed 0's
    chunk, finished, replaced the file with a state-less one). Before, both started from round 1. The
    rows: each round's once, the two written before the retry unchanged, all as the uninterrupted run's
    (train_loss to 1e-6: programs of other widths, test_oom_dec22d._same)."""
    from conftest import RESUMABLE, read_rows, tiny
    from tallysim import run
    items = (*RESUMABLE, "seeds=2")
    b = run.build(tiny(*items))
    run.run(tiny(*items), str(tmp_path / "whole"), progress=False, built=b)
    seen, written = oom_at_round_3(monkeypatch)
    out = tmp_path / "run"
    run.run(tiny(*items), str(out), progress=False, built=b, checkpoint_every=1)
    assert seen == [(0, 2, 0), (0, 1, 2), (1, 2, 2)]
    assert "seeds 0-1 start again from their checkpoint after round 2" in capsys.readouterr().err
    assert written == [1, 2, 3]                     # each round's row once
    assert_rows_as_uninterrupted(read_rows(out), read_rows(tmp_path / "whole"))


def oom_at_round_3(monkeypatch, interrupt_at=None) -> tuple[list, list]:
    """A lone run's chunks noted as (lo, hi, round resumed from) in `seen`, out of memory the first time
    a row of round 3 is made, and (given) a KeyboardInterrupt the first time a chunk `interrupt_at`
    starts; `written`: the rounds whose rows reach metrics.jsonl. Shared with test_oom_dec23a."""
    from tallysim import run
    seen, real_chunk, real_row, calls, written = [], run._run_chunk, run.lane_row, [], []

    def run_chunk(b, lo, hi, lanes_out, bar, saver, resume):
        seen.append((lo, hi, resume["round"] if resume else 0))
        if interrupt_at is not None and seen[-1] == interrupt_at and seen.count(interrupt_at) == 1:
            raise KeyboardInterrupt
        return real_chunk(b, lo, hi, lanes_out, bar, saver, resume)

    def lane_row(ev, info, ledger, j, end, *rest):
        calls.append(end)
        if end == 3 and calls.count(3) == 1:
            raise RuntimeError(OOM)
        return real_row(ev, info, ledger, j, end, *rest)
    monkeypatch.setattr(run, "_run_chunk", run_chunk)
    monkeypatch.setattr(run, "lane_row", lane_row)
    monkeypatch.setattr(run._Recorder, "rows", _spy(run._Recorder.rows, written))
    return seen, written


def assert_rows_as_uninterrupted(got: list, reference: list) -> None:
    """Every row as the uninterrupted run's, but wall time, and train_loss to 1e-6 (programs of other
    widths, test_oom_dec22d._same)."""
    for row in got + reference:
        row.pop("wall_s")
    loss = [(r.pop("train_loss"), r.pop("train_loss_std"), *r["per_seed"].pop("train_loss")) for r in got + reference]
    assert sum(map(list, loss[:3]), []) == pytest.approx(sum(map(list, loss[3:]), []), rel=1e-6, abs=1e-7)
    assert got == reference


def _spy(rows, written):
    """Recorder.rows, noting each round whose row it writes."""
    def spy(self, r, per_seed):
        before = self.lines
        rows(self, r, per_seed)
        if self.lines > before:
            written.append(r)
    return spy
