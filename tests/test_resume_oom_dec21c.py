"""resume28 (dec21c): run.py's retry and checkpoint path. (1) A lone run that ran out of memory after a
resume retried from round 1 with no checkpoint (`meta = None`): the rounds it resumed, the seed chunks its
checkpoint marked done and every metrics row written were thrown away and rewritten. Now the chunk under
way alone starts again, narrower; the finished chunks and the rows written stay (run._retry_point).
(2) With several processes (jax.distributed) a process that writes nothing (mesh.is_writer() False, no
directory) cut its scans at the evaluations only, process 0 at each checkpoint too: other programs, the
collectives out of step. Now every process stops at the same rounds (checkpoint.Saver.cadence)."""
from __future__ import annotations

import pytest

from conftest import RESUMABLE, read_rows, tiny
from tallysim import checkpoint, run
from tallysim.results import dead_peers
from tallysim.sim import mesh

# four seeds two at a time: the chunk of seeds 0-1 finishes (its rows wait for seeds 2-3), then seeds
# 2-3 write round 1's row and save their checkpoint after it
ITEMS = (*RESUMABLE, "seeds=4", "seed_chunk=2")


class Crash(Exception):
    pass


def test_out_of_memory_after_a_resume_keeps_the_finished_chunk_and_the_rows_written(tmp_path, monkeypatch, capsys):
    first_b = run.build(tiny(*ITEMS))       # shared by the two runs that start from round 1: compiled once
    run.run(tiny(*ITEMS), str(tmp_path / "whole"), progress=False, built=first_b)
    reference = read_rows(tmp_path / "whole")
    out = tmp_path / "run"
    orig = run._Recorder.rows

    def rows(self, r, per_seed):            # stops once round 2's row is written (chunk 2, after round 1's save)
        orig(self, r, per_seed)
        if self.lines == 2:
            raise Crash()
    with monkeypatch.context() as m:
        m.setattr(run._Recorder, "rows", rows)
        with pytest.raises(Crash):
            run.run(tiny(*ITEMS), str(out), progress=False, built=first_b, checkpoint_every=1)
    meta = checkpoint.read_meta(out)
    assert (meta["lo"], meta["round"], meta["lines"]) == (2, 1, 1)
    first = (out / "metrics.jsonl").read_bytes().split(b"\n")[0]

    b = run.build(tiny(*ITEMS))
    step, traces = b.protocol.round, []

    def round_fn(state, data, root, r):     # the resumed chunk of two does not fit: XLA's words
        traces.append(1)
        if len(traces) == 1:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB")
        return step(state, data, root, r)
    b.protocol = b.protocol._replace(round=round_fn)
    capsys.readouterr()
    saved, save = [], checkpoint.save

    def keep(d, state, meta):
        saved.append(meta)
        save(d, state, meta)
    monkeypatch.setattr(checkpoint, "save", keep)
    run.run(tiny(*ITEMS), str(out), progress=False, built=b, checkpoint_every=1, resume=True)
    # the retry's checkpoints: rows wait only for rounds not yet written (round 1's recomputed rows, seeds
    # 2-3 only, waited forever, and a resume from there read them as seeds 0-1's)
    assert saved and all(int(r) > 1 for meta in saved for r in meta["evals"])
    err = capsys.readouterr().err
    assert (out / "metrics.jsonl").read_bytes().split(b"\n")[0] == first      # not rewritten (its wall_s too)
    got = read_rows(out)
    assert sum(map(_loss, got), []) == pytest.approx(sum(map(_loss, reference), []), rel=1e-5, abs=1e-7)
    assert got == reference                 # seeds 0-1 were not run again: their waiting rows were kept
    # both retry chunks (seed 2, then seed 3) start from the checkpoint after round 1, cut from its copy in
    # memory: seed 2's chunk overwrote the file with its own (leftovers31, test_leftovers_dec22i)
    assert "retrying 1 seed at a time; seeds 2-3 start again from their checkpoint after round 1" in err
    assert "the 2 seeds before them, finished, are kept; the 1 metrics row written is kept" in err
    assert not (out / checkpoint.FILE).exists()


def _loss(row: dict) -> list:
    """A row's train_loss values, taken out of it with wall_s: seeds 2-3 retried one at a time, seeds 0-1
    two at a time, where the reference ran all four two at a time; the mean over peers' losses may then
    round otherwise in float32's last bit (stepped_mean_fill, test_review_dec21f). Every other key is exact."""
    row.pop("wall_s")
    return [row.pop("train_loss"), row.pop("train_loss_std"), *row["per_seed"].pop("train_loss")]


def _segments_of(monkeypatch, call, stop: bool = True) -> list:
    """The rounds each scan of the run's chunks covers; with `stop`, the run stops at its first."""
    seen = []

    def segments(cfgs, r0, every):
        seen.append(run_segments(cfgs, r0, every))
        if stop:
            raise Crash()
        return seen[-1]
    monkeypatch.setattr(run, "_segments", segments)
    if stop:
        with pytest.raises(Crash):
            call()
    else:
        call()
    return seen


run_segments = run._segments
ONE_SCAN = (*RESUMABLE, "eval_every=3")      # one evaluation, at round 3: checkpoints cut the scans


@pytest.mark.parametrize("group", [False, True])
def test_a_process_that_writes_nothing_scans_the_rounds_process_0_does(tmp_path, monkeypatch, group):
    cfg = tiny(*ONE_SCAN)

    def call(name):
        if group:
            return lambda: run.run_group([cfg], [tmp_path / name], progress=False, warn=False, checkpoint_every=1)
        return lambda: run.run(cfg, str(tmp_path / name), progress=False, checkpoint_every=1)
    writer = _segments_of(monkeypatch, call("p0"))
    monkeypatch.setattr(mesh, "is_writer", lambda: False)
    asked, gathered, host = [], [], mesh.host

    def agree(flag):                # process 0's word: a checkpoint is due (its `flag`: this one's own)
        asked.append(flag)
        return True

    def gather(tree, what=""):      # what: the work waited on, for the wait note (leftovers53)
        gathered.append(type(tree).__name__)
        return host(tree, what)
    monkeypatch.setattr(mesh, "agree", agree)
    monkeypatch.setattr(mesh, "host", gather)
    other = _segments_of(monkeypatch, call("p1"), stop=group)
    assert writer == other == [[(1, 1), (2, 2), (3, 3)]]
    assert not (tmp_path / "p1").exists()       # it wrote nothing
    if not group:                   # run through: at rounds 1 and 2 it gathered the state with process 0
        assert asked == [False, False]
        assert [g for g in gathered if g != "dict"] == ["State", "State"]


def test_the_dead_peer_watch_counts_a_recomputed_round_once():
    """A retried chunk recomputes rounds the watch has seen (run._retry_point): seen twice, round 3 made
    a streak of 3 evaluations out of 2 and named peer 0 dead."""
    watch = dead_peers.Watch(0.1, 1, streak=3)
    row = {"round": 2, "acc_mean": 0.5, "acc_peers": [0.1, 0.9]}
    assert watch.see(row, 0) is None
    assert watch.see({**row, "round": 3}, 0) is None
    assert watch.see({**row, "round": 3}, 0) is None
    assert "peer 0" in watch.see({**row, "round": 4}, 0)


@pytest.mark.slow
def test_two_processes_with_a_checkpoint_cadence_finish(tmp_path):
    """Two jax.distributed CPU processes (test_devices' setting) with --checkpoint-every 1 and one
    evaluation: before, process 1 scanned rounds 1-2 in one program while process 0 ran two, and
    process 0's save fetched a state spanning the other process's devices (a RuntimeError), process 1
    waiting for ever (killed after 300 s; SIGTERM caught and ignored). Fast tests of the same code:
    test_a_process_that_writes_nothing_scans_the_rounds_process_0_does."""
    from conftest import TINY
    from test_devices import _rows, _same, two_processes
    items = [*TINY, "protocol.name=tally", "seeds=4", "eval_every=2"]     # rounds=2: a checkpoint after round 1
    procs, outs = two_processes(lambda pid: ["-m", "tallysim", "run", *items, "--quiet", "--checkpoint-every", "1",
                                             "--out", str(tmp_path / f"dist{pid}")], 300)
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    run.run(tiny("protocol.name=tally", "seeds=4", "eval_every=2", "devices=1"), str(tmp_path / "one"),
            progress=False)
    _same(_rows(tmp_path / "one"), _rows(tmp_path / "dist0"), "two processes, checkpoint every round")
