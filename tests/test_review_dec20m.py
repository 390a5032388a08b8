"""review23 (dec20m): a group's checkpoints (checkpoint.GroupSaver, run.run_group's checkpoint_every) as a
user could leave them: a group of one configuration, and a group retried in smaller lane chunks after
running out of memory (its checkpoints kept since oom30)."""
from __future__ import annotations

import pytest

from conftest import crash_after_row, RESUMABLE, read_rows, tiny
from tallysim import checkpoint, config, run, sweep


class Crash(Exception):
    pass


class FakeOOM(Exception):
    pass


def crash_in_round(monkeypatch, stop: int) -> None:
    """Every run stops in round `stop`, after its row is written and before that round's checkpoint."""
    crash_after_row(monkeypatch, stop, Crash)


def test_a_group_of_one_configuration_saves_its_meta_not_a_key_of_it(tmp_path, monkeypatch):
    """run.run_group([cfg], ...) with a cadence: Lanes.meta gives one configuration's meta as a dict (as
    for a lone run), and GroupSaver.save zipped the directories with that dict's keys, writing a
    checkpoint whose meta was the string "version", which --resume refused as "not an object"."""
    cfg = config.validate(tiny(*RESUMABLE))
    crash_in_round(monkeypatch, 2)
    with pytest.raises(Crash):
        run.run_group([cfg], [tmp_path / "one"], progress=False, warn=False, checkpoint_every=1)
    meta = checkpoint.read_meta(tmp_path / "one", cfg)
    assert (meta["round"], meta["chunk"], meta["lo"], meta["lines"]) == (1, 1, 0, 1)
    assert [r["round"] for r in read_rows(tmp_path / "one")] == [1, 2]


def test_an_out_of_memory_retry_keeps_the_first_attempts_checkpoints(tmp_path, monkeypatch):
    """A group that saved each run's checkpoint at round K and then ran out of memory is retried in
    smaller lane chunks, which save none. The retry rewrote every run's rows from round 1, so the
    checkpoints went when it started (review23: a sweep killed during the retry resumed each run from a
    state whose rows the retry had replaced). Since oom30 the retry keeps the rows written and starts
    from those checkpoints (test_oom_dec22d): they stay true and stay, for a sweep killed during it."""
    from tallysim import jax_check
    cfgs = sweep.configs(tiny(*RESUMABLE), sweep.expand({}, ["optim.lr=0.02,0.05"]))
    outs = [tmp_path / "a", tmp_path / "b"]
    seen = []

    def run_all(b, out_dirs, chunk, progress, saver, resume, at=None, on_final=None):
        seen.append((chunk, saver.every))
        if len(seen) == 1:          # the first attempt: both checkpoints saved, then out of memory
            for d in out_dirs:
                checkpoint.save(d, {"x": [0]}, {"version": 1})
            raise FakeOOM()
        assert all((d / checkpoint.FILE).exists() for d in out_dirs)
        raise Crash("killed during the retry")
    monkeypatch.setattr(run, "_run_all", run_all)
    monkeypatch.setattr(jax_check, "device_out_of_memory", lambda e: isinstance(e, FakeOOM))
    with pytest.raises(Crash):
        run.run_group(cfgs, outs, progress=False, warn=False, checkpoint_every=1)
    assert seen == [(2, 1), (1, 0)]


def test_each_run_of_a_group_saves_its_own_ledger(tmp_path, monkeypatch):
    """Lanes.meta hands each run its own lanes' ledgers (ledgers[j - lo] for its lanes): a group of
    seed=0,1 on Dirichlet shards counts other local steps per run, and each checkpoint's steps_real is
    its own round-1 row's. test_checkpoint_dec20d's group (optim.lr=0.02,0.05, the same steps in each
    run) passed with every run saving the first run's ledger."""
    cfgs = sweep.configs(tiny(*RESUMABLE, "partition.kind=dirichlet", "partition.alpha=0.1"),
                         sweep.expand({}, ["seed=0,1"]))
    outs = [tmp_path / "s0", tmp_path / "s1"]
    crash_in_round(monkeypatch, 2)
    with pytest.raises(Crash):
        run.run_group(cfgs, outs, progress=False, warn=False, checkpoint_every=1)
    saved = [checkpoint.read_meta(d)["ledgers"][0][2] for d in outs]     # Ledger.state: up, down, steps_real
    assert saved == [read_rows(d)[0]["steps_real"] for d in outs]
    assert saved[0] != saved[1]


def test_a_run_past_its_rounds_keeps_no_checkpoint(tmp_path, monkeypatch):
    """rounds=2,3 as one program, K=1, stopped in round 3: the 2-round run saved nothing at round 2 (its
    end; Lanes.meta's None: a round-2 one of a finished run, or one past its rounds, would be refused by
    read_meta and the run redone), and, finished, it keeps no checkpoint at all: its rows are all written
    (oom32, test_oom_dec23a; before, its round-1 checkpoint stayed until the group ended and a resume
    of it ran round 2 again)."""
    cfgs = sweep.configs(tiny(*RESUMABLE), sweep.expand({}, ["rounds=2,3"]))
    outs = [tmp_path / "r2", tmp_path / "r3"]
    crash_in_round(monkeypatch, 3)
    with pytest.raises(Crash):
        run.run_group(cfgs, outs, progress=False, warn=False, checkpoint_every=1)
    assert not (outs[0] / checkpoint.FILE).exists() and [r["round"] for r in read_rows(outs[0])] == [1, 2]
    assert checkpoint.read_meta(outs[1], cfgs[1])["round"] == 2


@pytest.mark.parametrize("mode", ["bars", "lines"])
def test_a_later_chunks_compile_reaches_the_runs_clock_in_either_mode(mode, monkeypatch):
    """RoundBar (tqdm bars) and the lines' round facts each tell the clock over runs when a later seed
    chunk compiles (progress_base.chunk_compiles): test_checkpoint_dec20d checked lines only, and bars
    passed it with the call removed (the ETA then short by that compile)."""
    from tallysim import progress
    monkeypatch.setenv(progress.MODE_ENV, mode)
    runs_bar = progress.runs_bar(2, True)
    try:
        runs_bar.batch_starts(2)
        facts = progress.round_bar(4, True, chunks=[(0, 2, 2), (2, 3, 2)])
        try:
            facts.chunk_starts(True)        # the first chunk: announced with the bar, nothing more
            assert runs_bar.clock.in_batch == 1
            facts.update(2)
            facts.chunk_starts(True)
            assert runs_bar.clock.in_batch == 0 and runs_bar.clock.compiling
        finally:
            facts.close()
    finally:
        runs_bar.close()
