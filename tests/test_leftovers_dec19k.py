"""Leftovers of 2026-12-06 (leftovers24): a config file's sweep axis checks a quoted value's type, a sweep
refuses eval_peers above a run's peers as a single run does, an `extends` error names both files, a dead
peer's line says which peers were evaluated, and `sweep --dry-run` says per run what would happen.
Nothing here trains or compiles a model."""
import json
import os

import pytest

from tallysim import checkpoint, cli, config, config_reads, outdir, sweep, validation  # noqa: F401 (imported before jit is patched)
from tallysim.config import ConfigError
from tallysim.results import dead_peers
from conftest import TINY
from test_deadpeer_dec19a import _rows
from test_deadpeer_dec19h import _watch_lines
from test_hostile_dec07 import _finished_sweep


# ----------------------------------------------------------------------------- 1. quoted numbers in a sweep axis

@pytest.mark.parametrize("axis, said", [
    ({"optim.lr": ["0.1", "abc"]}, "sweep axis optim.lr in the config file: optim.lr='abc' is a string that is not "
                                   "a number; allowed: a number, written without quotes"),
    ({"seed": ["0", "1.5"]}, "sweep axis seed in the config file: seed='1.5' is a string that is not an integer"),
    ({"data.input_shape": ["2x"]}, "data.input_shape='2x' is a string that is not a list of positive integers"),
])
def test_a_quoted_value_that_is_not_the_fields_type_is_refused_naming_the_axis(axis, said):
    # it was refused only when its run was built ("sweep run optim.lr=abc: ..."), the file's axis unnamed
    with pytest.raises(ConfigError) as e:
        sweep.expand(axis, [])
    assert said in str(e.value)


def test_a_quoted_number_keeps_its_text_as_the_run_name():
    # why a string stays allowed: the directory keeps the value as typed (tests/test_hostile_dec05.py
    # deduplicates "0.10" against 0.1)
    assert [n for n, _ in sweep.expand({"optim.lr": ["0.10", 0.2]}, [])] == ["optim.lr=0.10", "optim.lr=0.2"]
    assert [n for n, _ in sweep.expand({"seed": ["0", "1"]}, [])] == ["seed=0", "seed=1"]


# ----------------------------------------------------------------------------- 2. eval_peers above a sweep run's peers

def test_a_sweep_refuses_eval_peers_above_some_runs_peers_as_a_single_run_does():
    # the 4-peer run evaluated every peer, the 10-peer one 6, in silence: the sweep refused only a field
    # no run reads, and the 10-peer run reads it
    runs = sweep.expand({}, ["peers=4,5,10", "eval_peers=6"])
    with pytest.raises(config_reads.UnreadField) as e:
        sweep.command_configs(config.Config(), runs)
    assert str(e.value).startswith("eval_peers is more than the peers of 2 of the sweep's 3 runs: peers=4 (peers=4, "
                                   "eval_peers=6), peers=5 (peers=5, eval_peers=6)")
    assert "allowed: eval_peers at most 4 (the sweep's fewest peers), none (every peer)" in str(e.value)
    with pytest.raises(ConfigError, match="eval_peers=6 is more than the 4 peers"):     # the single run's rule
        validation.single_run(config.apply_overrides(config.Config(), ["peers=4", "eval_peers=6"]))
    assert len(sweep.command_configs(config.Config(), sweep.expand({}, ["peers=4,10", "eval_peers=4"]))) == 2


# ----------------------------------------------------------------------------- 3. an `extends` error names both files

def _chain(tmp_path, base_text):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.json").write_text('{"extends": "sub/base.json", "rounds": 1}')
    (tmp_path / "sub" / "base.json").write_text(base_text)
    return str(tmp_path / "a.json")


@pytest.mark.parametrize("base, said", [
    ('{"peers": 3,}', "is not valid JSON"),                  # was the base named alone
    ("[1]", "holds a list, not a JSON object"),
])
def test_a_bad_base_file_is_named_with_the_file_that_extends_it(tmp_path, base, said):
    top = _chain(tmp_path, base)
    with pytest.raises(ConfigError) as e:
        config.load_file(top)
    assert said in str(e.value) and str(e.value).endswith(f"""(named by "extends" 'sub/base.json' in {top})""")


def test_a_missing_file_further_up_the_chain_names_the_file_read_first(tmp_path):
    top = _chain(tmp_path, '{"extends": "nope.json"}')
    with pytest.raises(ConfigError) as e:
        config.load_file(top)
    assert f"""{tmp_path}/sub/base.json: "extends" 'nope.json' is not a file ({tmp_path}/sub/nope.json does not \
exist) (in the "extends" chain from '{top}')""" in str(e.value)


def test_a_refused_value_names_the_files_it_may_come_from(tmp_path):
    # the value was base.json's, and the error named a.json alone
    top = _chain(tmp_path, '{"peers": "3"}')
    with pytest.raises(ConfigError, match=r"a\.json \(or the file it extends: sub/base\.json\): peers='3' is a string"):
        config.load_file(top)


# ----------------------------------------------------------------------------- 4. dead peers of evaluated peers

def test_a_dead_peer_line_says_which_peers_were_evaluated(tmp_path):
    rows = _rows([[0.1, 0.6, 0.5, 0.6], [0.1, 0.7, 0.6, 0.6], [0.1, 0.8, 0.7, 0.7], [0.1, 0.8, 0.7, 0.7]])
    # a run of 20 peers with eval_peers=4 said "1 of 4 peers", as if it had four
    (tmp_path / "partition.json").write_text(json.dumps({"majority_acc": 0.1, "classes": 10}))
    dead = dead_peers.of_run(tmp_path, rows, {"peers": 20, "eval_peers": 4, "eval_sample": "first"})
    assert dead.total == 20
    assert "peer 0 (1 of 4 evaluated peers: eval_peers=4 of 20) stayed" in dead_peers.warning(dead)
    assert dead_peers.clause(dead) == "; 0.7333 without peer 0 (1 of 4 evaluated peers: eval_peers=4 of 20), " \
                                      "at the floor all run"
    assert "peer 0 (1 of 4 evaluated peers: eval_peers=4 of 20) at or below" in dead_peers.note(dead, "x")
    assert "(1 of 4 peers)" in dead_peers.warning(dead_peers.of_run(tmp_path, rows, {"peers": 4, "eval_peers": 4}))
    assert dead_peers.evaluated({"peers": 20, "eval_peers": None}) is None
    (_, line), = _watch_lines(dead_peers.Watch(0.1, first=1, total=20), rows)
    assert "peer 0 (1 of 4 evaluated peers: eval_peers=4 of 20) at or below" in line
    (_, line), = _watch_lines(dead_peers.Watch(0.1, first=1), rows)
    assert "peer 0 (1 of 4 peers) at or below" in line


# ----------------------------------------------------------------------------- 5. sweep --dry-run: each run's fate

def test_a_dry_run_says_which_runs_would_run_again_and_names_directories_of_no_run(tmp_path, capsys, no_compile,
                                                                                    monkeypatch):
    # a finished run's directory renamed by hand: the dry run listed the runs alone, and the real sweep
    # ran it again, its results left under the other name
    out = _finished_sweep(tmp_path)                      # seed=0 and seed=1 done (written by hand)
    os.rename(out / "seed=1", out / "seed1-old")
    outdir.claim(out / "seed=2", False)                  # a partial run with a checkpoint of round 1
    (out / "seed=2" / checkpoint.FILE).write_bytes(b"")
    monkeypatch.setattr(checkpoint, "read_meta", lambda d, cfg=None: {"round": 1, "lo": 0})
    assert cli.main(["sweep", *TINY, "seed=0,1,2,3", "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit(" (", 1)[-1] for line in lines[:4]] == ["done)", "will run)", "will resume from round 2, its checkpoint after round 1)",
                                                                "will run)"]
    assert lines[4] == ("not part of this sweep: seed1-old (renamed? it holds the config of run seed=1, which will "
                        "run again; rename it back to seed=1 to keep its results)")
    assert cli.main(["sweep", *TINY, "seed=0,1", "rounds=3", "--out", str(out), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert "(done; skipped, though its config.json differs (rounds=" in said
    assert "not part of this sweep: seed1-old (renamed or from another sweep?)" in said
