"""review21 on the merges b4073fe..86273d3 (leftovers23, hostile14): what the review found guarded.

- The blocked vote (protocols/blocked_vote.py) makes vote_acc and softavg_acc NaN (null in the row)
  where no vote arrived, as the all-probes vote does (vote.none_arrived): only the all-probes path was
  tested, so the blocked path's call could go without a test failing.
- A resumed run over a metrics.jsonl whose last line is torn (read_rows now reads such a file as the
  rows before it): the resumed run keeps the checkpoint's whole rows and writes the file again whole,
  never appending after the partial line. Checked end to end once by hand (a fedavg run stopped after
  round 2, 20 torn bytes appended, resumed: rows 1-4, every line whole); here at the Recorder, which
  does the keeping, without a compile.
"""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp

from tallysim import checkpoint
from tallysim.results import metrics
from tallysim.run_recorders import Recorder

from test_blockedvote_dec16 import _pair
from test_wordtally_dec15 import _image_setup


def test_a_blocked_vote_nobody_sent_has_no_accuracy(monkeypatch):
    # every peer's message lost (dropout): the argmax of no votes is class 0, whose hits the blocked path
    # would report as the vote's accuracy; it must say NaN as the all-probes path does
    from tallysim.sim import faults
    ctx, one, params = _image_setup(7, "tally", **{"faults.kind": "dropout", "faults.fraction": 0.34})
    none = jnp.zeros(3, bool)
    fr = faults.RoundFaults(none, none, jnp.ones(3, bool), None, jax.random.PRNGKey(5))
    whole, blocked = _pair(monkeypatch, ctx, one, params, block=3, fr=fr)
    for info in (whole[1], blocked[1]):
        assert int(info["senders"]) == 0
        assert all(bool(jnp.isnan(info[k])) for k in ("vote_acc", "softavg_acc", "vote_acc_honest")), info


def _row(r: int) -> dict:
    return {"round": r, "bits_per_peer": 4.0 * r, "acc_mean": 0.5, "acc_global": None}


def test_a_resume_over_a_torn_last_line_writes_whole_rows(tmp_path):
    path = tmp_path / metrics.METRICS
    path.write_text("".join(json.dumps(_row(r)) + "\n" for r in (1, 2)) + '{"round": 3, "acc_me')
    assert [r["round"] for r in metrics.read_rows(tmp_path)] == [1, 2]      # the torn row left out
    checkpoint._refuse_lost_rows(tmp_path, 2)       # the checkpoint's two rows are whole: the resume goes on
    resume = {"evals": {}, "lines": 2, "last": _row(2), "elapsed": 1.0}
    rec = Recorder([0], tmp_path, 0, None, resume)
    try:
        assert path.read_text().count("\n") == 2 and path.read_text().endswith("}\n")   # the partial line gone
        rec.rows(3, [_row(3)])
    finally:
        rec.close_file()
    assert [r["round"] for r in metrics.read_rows(tmp_path)] == [1, 2, 3]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_runs_beside_links_keep_their_name_order(tmp_path):
    # hostile14 sorted links after real directories so that `ln -s t latest` no longer claims the run t;
    # that also moved every link after the real runs in `table`, `pareto` and read_rows: a folder holding
    # the link `a` (to a run elsewhere) and the run `b` listed b, a. Real directories still claim first.
    from test_hostile_dec19e import _run_dir
    _run_dir(tmp_path / "elsewhere" / "x")
    _run_dir(tmp_path / "r" / "b")
    _run_dir(tmp_path / "r" / "t")
    (tmp_path / "r" / "a").symlink_to(tmp_path / "elsewhere" / "x")
    (tmp_path / "r" / "latest").symlink_to(tmp_path / "r" / "t")
    assert [label for _, label in metrics.find_runs([tmp_path / "r"])] == ["a", "b", "t"]
