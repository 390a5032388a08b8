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
    for row in got + reference:
        row.pop("wall_s")
    assert got == reference                 # seeds 0-1 were not run again: their waiting rows were kept
    assert "retrying 1 seeds at a time; seeds 2-3 start again from round 1 (their checkpoint after round 1" in err
    assert "the 2 seed(s) before them, finished, are kept; the 1 metrics row(s) written are kept" in err
    assert not (out / checkpoint.FILE).exists()


def _segments_of(monkeypatch, call) -> list:
    """The rounds each scan of the run's first chunk covers; the run stops there (nothing more to see)."""
    seen = []

    def segments(cfgs, r0, every):
        seen.append(run_segments(cfgs, r0, every))
        raise Crash()
    monkeypatch.setattr(run, "_segments", segments)
    with pytest.raises(Crash):
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
    other = _segments_of(monkeypatch, call("p1"))
    assert writer == other == [[(1, 1), (2, 2), (3, 3)]]
    assert not (tmp_path / "p1").exists()       # it wrote nothing


def test_the_dead_peer_watch_counts_a_recomputed_round_once():
    """A retried chunk recomputes rounds the watch has seen (run._retry_point): seen twice, round 3 made
    a streak of 3 evaluations out of 2 and named peer 0 dead."""
    watch = dead_peers.Watch(0.1, 1, streak=3)
    row = {"round": 2, "acc_mean": 0.5, "acc_peers": [0.1, 0.9]}
    assert watch.see(row, 0) is None
    assert watch.see({**row, "round": 3}, 0) is None
    assert watch.see({**row, "round": 3}, 0) is None
    assert "peer 0" in watch.see({**row, "round": 4}, 0)
