"""leftovers32: refusals before anything builds (a sweep axis's repeated value, a text fault target that
is never scored, a misspelt metric key, a data cache inside a run, a results folder misspelt)."""
from __future__ import annotations

import pytest

from conftest import one_line
from tallysim import cli, run, sweep  # noqa: F401  (imported before no_compile patches jax.jit)
from tallysim.config import ConfigError


# ----------------------------------------------------------------------------- 1. a sweep value listed twice

@pytest.mark.parametrize("axis, named", [
    ("seed=0,0", "sweep axis seed lists 0 twice"),              # was quietly one run
    ("peers=4,04", "sweep axis peers lists 4 twice ('4' and '04' are the same value)"),
    ("optim.lr=0.1,0.2,0.10", "sweep axis optim.lr lists 0.1 twice"),
    ("data.input_shape=28x28x1;(28,28,1)", "sweep axis data.input_shape lists 28x28x1 twice"),
])
def test_a_sweep_axis_value_listed_twice_is_refused(axis, named):
    with pytest.raises(ConfigError, match="allowed: each value once") as e:
        sweep.expand({}, [axis])
    assert named in str(e.value)


def test_a_config_file_axis_value_listed_twice_is_refused():
    with pytest.raises(ConfigError, match=r"sweep axis optim.lr lists 0.1 twice \('0.1' and '0.10'"):
        sweep.expand({"optim.lr": [0.1, "0.10", 0.2]}, [])


def test_the_sweep_command_refuses_a_repeated_seed_in_one_line(capsys, tmp_path, no_compile):
    line = one_line(capsys, ["sweep", "--out", str(tmp_path / "s"), "seed=0,0"])
    assert "sweep axis seed lists 0 twice" in line and "seed=0,1,2" in line
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- 2. a text fault target never scored

# partition.kind=natural: a text run with the default dirichlet is refused (hostile25), and the kept line below
# validates a runnable config
TEXT_FAULT = ["model.name=lstm", "partition.kind=natural", "faults.kind=confident_wrong", "faults.fraction=0.25"]


@pytest.mark.parametrize("name, target, says", [
    ("shakespeare", 0, "faults.target=0 is PAD on text (shakespeare), never a scored target (test accuracy "
                       "skips PAD, BOS, EOS and OOV); allowed: -1 (a random wrong character) or 4..79"),
    ("shakespeare_words", 1, "faults.target=1 is BOS on text (shakespeare_words), never a scored target (test "
                             "accuracy skips PAD, BOS, EOS and OOV); allowed: -1 (a random wrong word) or 4..10003"),
    # EOS, OOV and past the vocabulary (textleft33)
    ("shakespeare", 2, "faults.target=2 is EOS on text (shakespeare), never a scored target (test accuracy skips "
                       "PAD, BOS, EOS and OOV); allowed: -1 (a random wrong character) or 4..79 (a character)"),
    ("shakespeare_words", 3, "faults.target=3 is OOV on text (shakespeare_words), never a scored target"),
    ("shakespeare_words", 10_004, "faults.target=10004 is not a token of shakespeare_words (10,004: PAD, BOS, EOS, "
                                  "OOV and 10,000 words); allowed: -1 (a random wrong word) or 4..10003 (a word)"),
])
def test_a_text_fault_target_that_is_never_scored_is_refused(name, target, says):
    from tallysim import config
    cfg = config.apply_overrides(config.Config(), [f"data.name={name}", *TEXT_FAULT, f"faults.target={target}"])
    with pytest.raises(ConfigError) as e:
        config.validate(cfg)
    assert says in str(e.value)
    config.validate(config.apply_overrides(cfg, ["faults.target=4"]))      # a word (character): kept


def test_a_text_fault_target_is_refused_in_one_line_before_loading(capsys, tmp_path, no_compile):
    line = one_line(capsys, ["run", "--out", str(tmp_path / "r"), "data.name=shakespeare", *TEXT_FAULT,
                             "faults.target=0"])
    assert "faults.target=0 is PAD" in line


# ----------------------------------------------------------------------------- 3. a misspelt metric key

ROWS = [{"round": 1, "acc_mean": 0.5, "acc_global": 0.6, "bits_per_peer": 3.0},
        {"round": 2, "acc_mean": 0.7, "acc_global": 0.65, "bits_per_peer": 6.0}]


def test_final_best_refuses_a_key_no_row_has_naming_close_keys():
    from tallysim.results import metrics
    with pytest.raises(ConfigError, match=r"metric 'acc_globl' is no key of these rows nor one a run writes; "
                                          r"allowed: auto, ppl or a key of the rows \(acc_global, acc_mean, "
                                          r"bits_per_peer, round\); did you mean acc_global"):
        metrics.final_best(ROWS, "acc_globl")                   # was (None, None)
    assert metrics.final_best(ROWS, "acc_global") == (0.65, 0.65)
    # keys a run writes, though these rows lack them: a group's, a seed mean's spread, a round key, a text run's
    for name in ("acc_mean@a", "acc_mean_std", "kept", "ppl_mean", "vote_acc"):
        assert metrics.final_best(ROWS, name) == (None, None), name


def test_table_still_reads_a_column_only_some_runs_have(tmp_path):
    # table's internal path (column_final_best): a plugin's column in one run, absent from the other
    import json
    from tallysim import outdir
    from tallysim.results import table
    for name, extra in (("a", {"my_score": 0.9}), ("b", {})):
        d = tmp_path / "runs" / name
        d.mkdir(parents=True)
        outdir.mark(d)
        (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 2, "peers": 2}))
        (d / "metrics.jsonl").write_text("".join(json.dumps({**r, **extra}) + "\n" for r in ROWS))
    _, out = table.table_rows([str(tmp_path / "runs")], "my_score", log=lambda _: None)
    assert sorted((r["run"], r["final my_score"], r["best my_score"]) for r in out) == [
        ("a", 0.9, 0.9), ("b", None, None)]


# ----------------------------------------------------------------------------- 4. a data cache inside a run

@pytest.mark.parametrize("inside", ["", "data", "data/deeper"])
def test_a_data_cache_inside_a_run_directory_is_refused(tmp_path, monkeypatch, inside):
    from tallysim import outdir
    from tallysim.data import cache
    from tallysim.data.base import DataError
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    outdir.mark(run)
    monkeypatch.setenv("TALLYSIM_DATA", str(run / inside))
    with pytest.raises(DataError, match=f"is inside the run directory {run}: the prepared datasets would be "
                                        "written among its results; allowed: a directory outside every run"):
        cache.cache_dir()
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path / "runs" / "cache"))    # beside the run: kept
    assert cache.cache_dir() == tmp_path / "runs" / "cache"


def test_the_run_command_refuses_a_data_cache_inside_a_run_in_one_line(capsys, tmp_path, monkeypatch, no_compile):
    from tallysim import outdir
    run = tmp_path / "old"
    run.mkdir()
    outdir.mark(run)
    monkeypatch.setenv("TALLYSIM_DATA", str(run / "data"))
    line = one_line(capsys, ["run", "--out", str(tmp_path / "new"), "data.name=fashion_mnist", "rounds=1"])
    assert f"TALLYSIM_DATA={run / 'data'} is inside the run directory {run}" in line
    assert not (run / "data").exists()


# ----------------------------------------------------------------------------- 5. a results folder misspelt

def test_table_of_a_missing_folder_names_a_close_one_beside_it(capsys, tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    (tmp_path / "plots").mkdir()
    (tmp_path / "runs.txt").write_text("")                 # a file of a close name: no folder to suggest
    monkeypatch.chdir(tmp_path)
    line = one_line(capsys, ["table", "runz"])
    assert line.endswith("runz does not exist; pass run directories or directories above them; did you mean runs?")
    line = one_line(capsys, ["table", str(tmp_path / "runz")])
    assert line.endswith(f"did you mean {tmp_path / 'runs'}?")
    assert "did you mean" not in one_line(capsys, ["table", "xyz"])             # nothing close: nothing said
    assert "runs.txt is not a directory" in one_line(capsys, ["table", "runs.txt"])
