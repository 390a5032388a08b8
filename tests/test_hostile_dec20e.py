"""Hostile inputs, round 15 (hostile15): `sweep --dry-run` against folders another process writes, the
Python API's run_sweep and Results given the wrong shapes, and a dropout run in which no message can
ever arrive. Each test names what the input did before its fix; every refusal comes before anything
compiles (`no_compile`) or is written. Pure validation: milliseconds each.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from conftest import TINY, tiny

import tallysim
from tallysim import cli, outdir, run_lock, sweep, validation  # noqa: F401  (before jit is patched)
from tallysim.config import ConfigError


# ----------------------------------------------------------------------------- sweep --dry-run

class _OtherProcess:
    """A lock held as another process holds it (flock on its own open file: this process's probe fails)."""

    def __init__(self, d: Path):
        d.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(d / run_lock.LOCK, os.O_RDWR | os.O_CREAT)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self):
        os.close(self.fd)


def _dry(capsys, out: Path) -> list:
    assert cli.main(["sweep", "--dry-run", "--out", str(out), *TINY, "peers=2,3"]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_dry_run_says_another_sweep_writes_its_folder_and_which_run_another_process_writes(tmp_path, capsys):
    # --out being written by another sweep: the real sweep is refused (sweep_busy), the dry run listed
    # every run "(will run)" and said nothing; a run folder a `tallysim run --out` writes now was "(will
    # run again from round 1 (it stopped before its first checkpoint))", and the sweep records it failed
    out = tmp_path / "s"
    (out / "peers=2").mkdir(parents=True)
    outdir.mark(out / "peers=2")
    (out / "peers=2" / "metrics.jsonl").write_text("")
    sweep_lock, run_lock_ = _OtherProcess(out), _OtherProcess(out / "peers=2")
    try:
        lines = _dry(capsys, out)
    finally:
        sweep_lock.close()
        run_lock_.close()
    assert lines[0].startswith(f"note: {out} is being written by another tallysim sweep (or figure) right now"), lines
    assert lines[1].endswith("(being written by another tallysim process now; the sweep would not touch it and "
                             "would record it failed, unless that process finishes it first)"), lines
    assert lines[2].endswith("(will run)"), lines
    lines = _dry(capsys, out)        # the locks dropped: as before
    assert not lines[0].startswith("note:") and lines[0].endswith("(it stopped before its first checkpoint))"), lines


# ----------------------------------------------------------------------------- run_sweep's arguments

@pytest.mark.parametrize("runs, out, expected", [
    # "ValueError: too many values to unpack (expected 2)" from sweep.configs
    ([("a", ["peers=3"], 1)], "s", "run ('a', ['peers=3'], 1) is not a (name, [key=value overrides]) pair"),
    # a dict iterated as its keys: "not enough values to unpack (expected 2, got 1)"
    ({"a": ["peers=3"]}, "s", "run_sweep(runs={'a': ['peers=3']}): dict; allowed: a list of (name,"),
    # made the directory and an empty sweep.json, returned [] in silence
    ([], "s", "run_sweep(runs=[]): no run to do"),
    # two runs, one name: one program of two lanes writing one directory (metrics.jsonl "replaced by
    # another program during the run"), the second's config.json over the first's
    ([("a", ["peers=3"]), ("a", ["peers=4"])], "s", "two runs are named 'a' (peers=3 and peers=4), and would "
                                                    "write one directory"),
    # "TypeError: expected str, bytes or os.PathLike object, not int" from inside os.fsdecode
    ([("a", ["peers=3"])], 5, "run_sweep(out_dir=5): int; allowed: a directory path"),
])
def test_run_sweep_refuses_runs_that_are_not_named_pairs_and_an_out_that_is_no_path(runs, out, expected, tmp_path,
                                                                                    no_compile):
    where = tmp_path / out if isinstance(out, str) else out
    with pytest.raises(ConfigError) as e:
        sweep.run_sweep(tiny("rounds=1"), runs, where, progress=False)
    assert expected in str(e.value), e.value
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- Results made by hand

@pytest.mark.parametrize("kwargs, expected", [
    # rows of strings: .dead_peers was "AttributeError: 'str' object has no attribute 'get'"
    ({"rows": ["a", "b"], "config": {}}, "Results(rows=...): 'a' is str; allowed: a list of metrics rows"),
    # a row for the rows: .last was "KeyError: -1"
    ({"rows": {"round": 1}, "config": {}}, "Results(rows=...): {'round': 1} is dict"),
    ({"rows": [{"round": 1}], "config": [1]}, "Results(config=[1]): list; allowed: a dict"),
])
def test_results_made_by_hand_refuse_rows_and_config_of_the_wrong_shape(kwargs, expected, tmp_path):
    with pytest.raises(ConfigError) as e:
        tallysim.Results(tmp_path / "r", **kwargs)
    assert expected in str(e.value), e.value
    # a tuple of rows is a list of them; config=None keeps repr's plain form (test_review_dec17)
    assert tallysim.Results(tmp_path / "r", rows=({"round": 1},)).rows == [{"round": 1}]


def test_a_results_status_of_a_round_count_that_is_no_integer_is_unknown(tmp_path):
    # config={"rounds": "2"} (by hand: read_run refuses such a config.json): "TypeError: '>=' not supported
    # between instances of 'int' and 'str'" from .status, and repr fell back to its plain form
    res = tallysim.Results(tmp_path / "r", rows=[{"round": 2, "acc_mean": 0.5}], config={"rounds": "2"})
    assert res.status == "unknown"
    assert tallysim.Results(tmp_path / "r", rows=[{"round": 2}], config={"rounds": 2}).status == "done"


# ----------------------------------------------------------------------------- faults

def test_dropout_of_every_message_of_every_peer_is_warned():
    # faults.kind=dropout faults.fraction=1 (drop_prob 1, its default): every vote lost in every round; the
    # run wrote 0 bits and tally's name beside local training's accuracy, and no line said so
    said = [w for w in validation.warnings(tiny("protocol.name=tally", "faults.kind=dropout", "faults.fraction=1"))
            if "loses every message" in w]
    assert said == ["faults.kind=dropout with faults.fraction=1 makes all 4 peers faulty and faults.drop_prob=1 "
                    "loses every message they send: nothing is exchanged in any round (0 bits), so the peers "
                    "train alone (faults.fraction below 1, or faults.drop_prob below 1, leaves some messages "
                    "arriving)"], said
    for some in (["faults.fraction=0.75"], ["faults.fraction=1", "faults.drop_prob=0.5"]):
        assert not [w for w in validation.warnings(tiny("protocol.name=tally", "faults.kind=dropout", *some))
                    if "loses every message" in w]
