"""oom30 (dec22d): out-of-memory retries. (1) A group (run.run_group: a sweep's runs as one program) that
ran out of memory reran every run from round 1 in narrower lane chunks; now the chunk under way alone is
redone, the lanes finished before it and every row written kept, and a retry chunk whose runs hold
checkpoints of one round starts from them (memory_retry.group_point). (2) With several processes, one
that ran out of memory retried alone while the others waited at a collective of the wider program:
now every process's word decides (memory_retry.retry): all out of memory, all retry; else one message."""
from __future__ import annotations

import pytest

from conftest import RESUMABLE, read_rows, tiny
from tallysim import checkpoint, memory_retry, run, sweep

OOM = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB"


@pytest.fixture(scope="module")
def group():
    """Runs a (one seed) and b (three) as one program of four lanes, built once (its programs of 4, 2
    and 1 lanes reused), and the uninterrupted group's rows."""
    import tempfile
    from pathlib import Path
    cfgs = sweep.configs(tiny(*RESUMABLE), sweep.expand({}, ["seeds=1,3"]))
    b = run.build_group(cfgs, ("a", "b"))
    d = Path(tempfile.mkdtemp(prefix="oom30-"))
    run.run_group(cfgs, [d / "a", d / "b"], progress=False, built=b, warn=False)
    return cfgs, b, [_plain(read_rows(d / n)) for n in "ab"]


def _plain(rows: list) -> list:
    for row in rows:
        row.pop("wall_s")
    return rows


def _same(got: list, reference: list) -> None:
    """Row for row, train_loss to 1e-6: the programs of 2 and 1 lanes may round the mean over peers'
    losses otherwise in float32's last bit (stepped_mean_fill, test_resume_oom_dec21c); the rest exact."""
    def losses(rows):
        return [[r.pop("train_loss"), r.pop("train_loss_std", 0.0), *r.get("per_seed", {}).pop("train_loss", [])]
                for r in rows]
    for g, r in zip(got, reference, strict=True):
        r = [dict(x, per_seed=dict(x["per_seed"])) if "per_seed" in x else dict(x) for x in r]
        assert sum(losses(g), []) == pytest.approx(sum(losses(r), []), rel=1e-6, abs=1e-7)
        assert g == r


def _chunks(monkeypatch, fail: tuple = ()) -> list:
    """(lo, hi, resumed round) of every chunk the run starts; the first of each (lo, hi) in `fail` runs
    out of memory as it starts."""
    seen, real = [], run._run_chunk

    def run_chunk(b, lo, hi, lanes_out, bar, saver, resume):
        first = (lo, hi) not in [s[:2] for s in seen]
        seen.append((lo, hi, resume["round"] if resume else 0))
        if first and (lo, hi) in fail:
            raise RuntimeError(OOM)
        return real(b, lo, hi, lanes_out, bar, saver, resume)
    monkeypatch.setattr(run, "_run_chunk", run_chunk)
    return seen


def test_a_group_retry_keeps_the_finished_lanes_and_their_waiting_rows(group, tmp_path, monkeypatch, capsys):
    """Out of memory at lanes 0-3, then again at lanes 2-3 of the retry: lanes 0-1 (run a, and run b's
    seed 0, its rows waiting for seeds 1-2) are not run again (before: the second retry began at lane 0),
    and every row is the uninterrupted group's."""
    cfgs, b, reference = group
    seen = _chunks(monkeypatch, fail=((0, 4), (2, 4)))
    outs = [tmp_path / "a", tmp_path / "b"]
    run.run_group(cfgs, outs, progress=False, built=b, warn=False)
    assert seen == [(0, 4, 0), (0, 2, 0), (2, 4, 0), (2, 3, 0), (3, 4, 0)]
    err = capsys.readouterr().err
    assert "retrying 2 lanes at a time; lanes 0-3 start again from round 1\n" in err
    assert "retrying 1 lane at a time; lanes 2-3 start again from round 1; the 2 lanes before them, " \
           "finished, are kept; the 3 metrics rows written are kept" in err
    _same([_plain(read_rows(d)) for d in outs], reference)


def test_a_group_retry_starts_from_its_runs_checkpoints_and_keeps_the_rows_written(group, tmp_path, monkeypatch, capsys):
    """The group saving every round runs out of memory in round 3 (before its rows): retried 2 lanes at a
    time, lanes 0-1 (run a's, run b's seed 0) and 2-3 start from the runs' checkpoints after round 2,
    each lane cut from its own run's (before: from round 1, every row rewritten); the rows of rounds 1-2
    stay as written (bytes: wall_s too)."""
    cfgs, b, reference = group
    seen = _chunks(monkeypatch)
    orig, outs, kept = run._Recorder.rows, [tmp_path / "a", tmp_path / "b"], []

    def rows(self, r, per_seed):        # the machine runs out of memory in round 3, once
        if r == 3 and not kept:
            kept.extend((d / "metrics.jsonl").read_bytes() for d in outs)
            raise RuntimeError(OOM)
        orig(self, r, per_seed)
    monkeypatch.setattr(run._Recorder, "rows", rows)
    run.run_group(cfgs, outs, progress=False, built=b, warn=False, checkpoint_every=1)
    assert seen == [(0, 4, 0), (0, 2, 2), (2, 4, 2)]
    assert "retrying 2 lanes at a time; lanes 0-3 start again from their runs' checkpoints after round 2; " \
           "the 4 metrics rows written are kept" in capsys.readouterr().err
    for d, before in zip(outs, kept):
        assert (d / "metrics.jsonl").read_bytes().startswith(before) and before.count(b"\n") == 2
        assert not (d / checkpoint.FILE).exists()
    _same([_plain(read_rows(d)) for d in outs], reference)


def test_the_retry_decision_is_every_processes(monkeypatch):
    """memory_retry.retry with two processes (their words faked): all out of memory retry together; one
    out of memory and the other with another error or no word (stuck at a collective) both raise one
    message; a process with another error does not wait for words and raises its own unless another
    said it ran out of memory (its error that one's doing: gloo gave up on a collective it never joined).
    Before, a process out of memory retried alone (run.py's `_is_oom`): memory_retry did not exist.
    The two processes for real: test_two_processes_one_out_of_memory_fail_together (slow)."""
    import jax
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    heard, other_said = [], []

    def words(mine, wait=True, where=""):
        heard.append((mine, wait))
        return [mine, other_said[-1]]
    monkeypatch.setattr(memory_retry, "words", words)
    oom, other = RuntimeError(OOM), ValueError("a bug")
    other_said.append(memory_retry.OOM)
    assert memory_retry.retry(oom, 4) and not memory_retry.retry(oom, 1)
    message = r"process 0 of 2 ran out of memory, the others did not \(process 1: "
    other_said.append(None)
    with pytest.raises(memory_retry.NotTogether, match=message + "no word within TALLYSIM_DISTRIBUTED_TIMEOUT"):
        memory_retry.retry(oom, 4)
    other_said.append(memory_retry.OTHER)
    with pytest.raises(memory_retry.NotTogether, match=message + "another error"):
        memory_retry.retry(oom, 4)
    assert heard[-1] == (memory_retry.OOM, True)
    assert not memory_retry.retry(other, 4) and heard[-1] == ("another error (ValueError: a bug)", False)
    other_said.append(memory_retry.OOM)
    with pytest.raises(memory_retry.NotTogether, match=r"process 1 of 2 ran out of memory, the others did not "
                       r"\(process 0: another error \(ValueError: a bug\)\)"):
        memory_retry.retry(other, 4)
    monkeypatch.setattr(jax, "process_count", lambda: 1)
    assert memory_retry.retry(oom, 2) and not memory_retry.retry(other, 2) and not memory_retry.retry(MemoryError(), 2)


# a process of the two below: out of memory at its first seed chunk where OOM_IN names it (or "all")
_PROCESS = """
import os, sys
from tallysim import cli, run
if os.environ["OOM_IN"] in (os.environ["TALLYSIM_PROCESS_ID"], "all"):
    real, calls = run.chunk_inputs, []
    def chunk_inputs(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB")
        return real(*a, **k)
    run.chunk_inputs = chunk_inputs
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("oom_in", ["1", "all"])
def test_two_processes_one_out_of_memory_fail_together(tmp_path, oom_in):
    """Two jax.distributed CPU processes (test_devices' setting), seeds=4. Process 1 out of memory at its
    first chunk: before, it retried 2 seeds at a time while process 0 waited at the 4-seed program's
    collective, both hung (killed after 240 s); now both stop within a minute (gloo gives up on the
    collective after 30 s) with the same one-line message. Both out of memory: both retry, and process
    0's rows are the one-process run's. Fast test of the decision: test_the_retry_decision_is_every_processes."""
    from conftest import TINY
    from test_devices import _rows, _same, two_processes
    items = [*TINY, "protocol.name=tally", "seeds=4"]
    procs, outs = two_processes(lambda pid: ["-c", _PROCESS, "run", *items, "--quiet", "--out", str(tmp_path / f"dist{pid}")],
                                400, OOM_IN=oom_in)
    errs = [err for _, err in outs]
    if oom_in == "all":
        assert [p.returncode for p in procs] == [0, 0], errs[0][-3000:] + errs[1][-3000:]
        assert all("retrying 2 seeds at a time" in err for err in errs)
        run.run(tiny("protocol.name=tally", "seeds=4", "devices=1"), str(tmp_path / "one"), progress=False)
        _same(_rows(tmp_path / "one"), _rows(tmp_path / "dist0"), "two processes, both out of memory once")
        return
    assert [p.returncode for p in procs] == [1, 1], errs[0][-3000:] + errs[1][-3000:]
    said = [[line for line in err.splitlines() if line.startswith("tallysim: error:")] for err in errs]
    assert said[0] == said[1] and len(said[0]) == 1, errs
    assert said[0][0].startswith("tallysim: error: process 1 of 2 ran out of memory, the others did not (process 0: "
                                 "another error (")
    assert not any("retrying" in err for err in errs)


def test_a_retry_without_a_run_directory_gives_its_tracker_every_row_under_the_same_name(monkeypatch, capsys):
    """No --out (tallysim.api's run without a directory, a non-writing caller): nothing to replay from, so
    the retry's tracker began at the first round not yet given, under a new random name (TensorBoard:
    rounds 1..k in one run, k+1.. in another). Now the rows given are kept in memory (Recorder.given)
    and replayed to a tracker of the same name (TensorBoard replaces the attempt's event files)."""
    from tallysim import tracking

    class Tracker:
        def __init__(self, name):
            self.name, self.rounds = name, []

        def row(self, row):
            self.rounds.append(row["round"])

        def resumed(self, rows, log):       # tracking.RunTracker's: a retry's tracker logs the rows before it
            for row in rows if log else ():
                self.row(row)

        def close(self):
            pass
    opened = []

    def open_run(cfg, out_dir, fresh=True, name=None):
        opened.append(Tracker(name or f"run-{len(opened)}"))
        return opened[-1]
    monkeypatch.setattr(tracking, "open_run", open_run)
    orig, hit = run._Recorder.rows, []

    def rows(self, r, per_seed):            # the device runs out of memory once round 1's row is given
        orig(self, r, per_seed)
        if self.last.get("round") == 1 and not hit:
            hit.append(r)
            raise RuntimeError(OOM)
    monkeypatch.setattr(run._Recorder, "rows", rows)
    last = run.run(tiny(*RESUMABLE, "seeds=2", "seed_chunk=2"), None, progress=False)
    assert "retrying 1 seed at a time" in capsys.readouterr().err and last["round"] == 3
    assert [(t.name, t.rounds) for t in opened] == [("run-0", [1]), ("run-0", [1, 2, 3])]
