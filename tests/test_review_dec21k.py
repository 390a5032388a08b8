"""review25 (dec21k): an independent review of 2026-12-07's merges (resume28, leftovers29, hostile17,
leftovers28). Each test here failed before its fix."""
from __future__ import annotations

import pytest

from tallysim import outdir
from tallysim.config import ConfigError


def test_a_runs_out_holding_only_a_run_file_name_does_not_advise_overwrite(tmp_path):
    # hostile17 stopped advising --overwrite for a sweep's folder and a folder of one's own files, which
    # --overwrite then refused; a folder holding only names a run writes (the user's own config.json, the
    # config the run is started from) was still told "pass --overwrite to replace it", then refused as
    # "not a tallysim run directory (no .tallysim-run)"
    d = tmp_path / "exp"
    d.mkdir()
    (d / "config.json").write_text('{"rounds": 2}\n')
    with pytest.raises(ConfigError) as e:
        outdir.check(d, False)
    assert "is not empty: it holds config.json, but it is not a tallysim run directory" in str(e.value)
    assert "--overwrite does not replace" in str(e.value) and "pass --overwrite" not in str(e.value)
    with pytest.raises(ConfigError, match="not a tallysim run directory"):     # what the advice led to
        outdir.check(d, True)
    with pytest.raises(ConfigError, match="which overwrite=True does not replace"):
        outdir.check(d, False, words=outdir.PYTHON)


class _Tracker:
    """A tracker that keeps what it is given (tracking.RunTracker's row and close)."""
    def __init__(self, fresh):
        self.fresh, self.rounds = fresh, []

    def row(self, row):
        self.rounds.append(row["round"])

    def resumed(self, rows, log):
        for row in rows if log else ():
            self.row(row)

    def close(self):
        pass


def test_an_out_of_memory_retry_gives_its_tracker_the_rows_written_before_it(tmp_path, monkeypatch, capsys):
    # resume28's retry keeps the metrics rows written and does not write them again, and opened its
    # trackers as a resume's (fresh=False): an MLflow run (one per tracker opened) of the retry began at the
    # first round not yet written, rounds 1..k only in the attempt that ran out of memory. Now the retry's
    # tracker starts afresh and is given the rows written first: every round once, in order.
    from conftest import RESUMABLE, read_rows, tiny
    from tallysim import run, run_recorders, tracking
    opened = []

    def open_run(cfg, out_dir, fresh=True, name=None):
        opened.append(_Tracker(fresh))
        return opened[-1]
    monkeypatch.setattr(tracking, "open_run", open_run)
    orig, hit = run._Recorder.rows, []

    def rows(self, r, per_seed):            # the device runs out of memory once round 1's row is written
        orig(self, r, per_seed)
        if self.lines == 1 and not hit:
            hit.append(r)
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB")
    monkeypatch.setattr(run._Recorder, "rows", rows)
    assert run_recorders.tracking is tracking
    run.run(tiny(*RESUMABLE, "seeds=2", "seed_chunk=2"), str(tmp_path / "r"), progress=False)
    assert "retrying 1 seed at a time" in capsys.readouterr().err
    assert [row["round"] for row in read_rows(tmp_path / "r")] == [1, 2, 3]
    assert [t.fresh for t in opened] == [True, True] and opened[0].rounds == [1]
    assert opened[-1].rounds == [1, 2, 3]
