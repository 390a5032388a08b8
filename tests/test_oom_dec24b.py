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
