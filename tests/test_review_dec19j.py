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
import pytest

import tallysim.resume
from tallysim import checkpoint
from tallysim.results import metrics
from tallysim.run_recorders import Recorder

from test_blockedvote_dec16 import _pair
from test_wordtally_dec15 import _image_setup


def dropout_pair(monkeypatch, lost):
    """The round's info on the all-probes and the blocked path of a 3-peer tally round under dropout,
    `lost` (3 bools) the messages lost; with the setup, for a second pair after monkeypatch.undo()."""
    from tallysim.sim import faults
    ctx, one, params = _image_setup(7, "tally", **{"faults.kind": "dropout", "faults.fraction": 0.34})
    none = jnp.zeros(3, bool)
    fr = faults.RoundFaults(none, none, jnp.asarray(lost), None, jax.random.PRNGKey(5))
    whole, blocked = _pair(monkeypatch, ctx, one, params, block=3, fr=fr)
    return (whole[1], blocked[1]), (ctx, one, params)


def test_a_blocked_vote_nobody_sent_has_no_accuracy(monkeypatch):
    # every peer's message lost (dropout): the argmax of no votes is class 0, whose hits the blocked path
    # would report as the vote's accuracy; it must say NaN as the all-probes path does. agreement and
    # wrong_confidence (0.0 there, pulling every average over rounds down) too (leftovers25), while
    # distill.gate (and the PendingVote bridge and fedct keep) still reads the 0.0 it read
    from tallysim.protocols.probe_targets import gate_agreement
    infos, _ = dropout_pair(monkeypatch, [True, True, True])
    for info in infos:
        assert int(info["senders"]) == 0
        # tied too (leftovers26: a tie among nobody is undefined; its 0.0 pulled the averages down)
        assert all(bool(jnp.isnan(info[k])) for k in ("vote_acc", "softavg_acc", "vote_acc_honest",
                                                      "agreement", "tied", "wrong_confidence")), info
        gate = gate_agreement(info)
        assert gate.dtype == jnp.float32 and float(gate) == 0.0       # the value the gate always saw


def _row(r: int) -> dict:
    return {"round": r, "bits_per_peer": 4.0 * r, "acc_mean": 0.5, "acc_global": None}


def test_a_resume_over_a_torn_last_line_writes_whole_rows(tmp_path):
    path = tmp_path / metrics.METRICS
    path.write_text("".join(json.dumps(_row(r)) + "\n" for r in (1, 2)) + '{"round": 3, "acc_me')
    assert [r["round"] for r in metrics.read_rows(tmp_path)] == [1, 2]      # the torn row left out
    tallysim.resume._refuse_lost_rows(tmp_path, 2)       # the checkpoint's two rows are whole: the resume goes on
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


# ----------------------------------------------------------------------------- the dead-peer watch resumed

def _peer_row(r: int, acc: list) -> dict:
    return {**_row(r), "acc_peers": acc}


def test_a_resumed_watch_reads_the_rows_before_its_checkpoint():
    # leftovers23's Watch started empty on --resume: a peer named at round 4 was named again 3 evaluations
    # after the resume ("once per run"), and a streak begun before the stop was named 3 evaluations late
    from tallysim.results import dead_peers
    dead, live = [0.1, 0.6], [0.5, 0.6]
    said = dead_peers.Watch(0.1, first=1)
    said.replay([_peer_row(r, dead) for r in (1, 2, 3, 4)], {}, [7])      # named before the stop
    assert said.said and said.see(_peer_row(5, dead), 7) is None
    going = dead_peers.Watch(0.1, first=1)
    going.replay([_peer_row(1, live), _peer_row(2, dead), _peer_row(3, dead)], {}, [7])   # 2 of 3 before it
    assert not going.said and "(rounds 2-4)" in going.see(_peer_row(4, dead), 7)
    # seed chunks: seed 1's rows wait in the checkpoint (evals) for seed 2's chunk; a multi-seed row's
    # per_seed holds each seed's
    multi = {**_row(1), "seeds": [1, 2], "acc_peers": [0.3, 0.6], "per_seed": {"acc_peers": [dead, live]}}
    chunked = dead_peers.Watch(0.1, first=1, seeds=2)
    chunked.replay([multi], {2: [_peer_row(2, dead)], 3: [_peer_row(3, dead)]}, [1, 2])
    assert "seed 1 peer 0" in chunked.see(_peer_row(4, dead), 1)


def test_lanes_replay_a_resumed_recorders_rows(tmp_path):
    # run_recorders._watch hands a resumed Recorder's kept rows and pending evals to the watch
    from types import SimpleNamespace
    from conftest import tiny
    from tallysim import run_recorders
    path = tmp_path / metrics.METRICS
    path.write_text("".join(json.dumps(_peer_row(r, [0.1, 0.6])) + "\n" for r in (1, 2, 3, 4)))
    rec = Recorder([7], tmp_path, 0, None, {"evals": {}, "lines": 4, "last": _row(4), "elapsed": 1.0})
    b = SimpleNamespace(cfgs=[tiny()], majority_facts={"majority_acc": 0.1}, lanes_of=lambda i: [0],
                        ctx=SimpleNamespace(spec=SimpleNamespace(classes=10)))
    try:
        assert run_recorders._watch(b, 0, rec).said
        assert not run_recorders._watch(b, 0).said             # a fresh run: nothing read
    finally:
        rec.close_file()


class _Crash(Exception):
    pass


@pytest.mark.slow       # a run, stopped and resumed; the two tests above cover the same code without a compile
def test_a_resumed_run_does_not_name_its_dead_peer_again(tmp_path, capsys, monkeypatch):
    # test_deadpeer_dec19h's TINY local run (peer 1's rows at 0.0), 7 rounds: named at round 4, stopped
    # after round 4's checkpoint, resumed: the end's warning, no second mid-run line
    from conftest import TINY
    from tallysim import cli, run
    from test_deadpeer_dec19a import _dead_peer_row
    monkeypatch.setattr(run, "lane_row", _dead_peer_row(run.lane_row))
    out, real = tmp_path / "local", checkpoint.save

    def save(d, state, meta):
        real(d, state, meta)
        if meta["round"] == 4:
            raise _Crash
    args = ["run", *TINY, "protocol.name=local", "rounds=7", "--out", str(out), "--quiet", "--checkpoint-every", "1"]
    monkeypatch.setattr(checkpoint, "save", save)
    with pytest.raises(_Crash):
        cli.main(args)
    mid = "local: peer 1 (1 of 4 peers) at or below the floor"
    assert capsys.readouterr().err.count(mid) == 1
    monkeypatch.setattr(checkpoint, "save", real)
    assert cli.main(args + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert mid not in err and "peer 1 (1 of 4 peers) stayed at or below the floor" in err, err
