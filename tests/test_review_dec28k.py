"""review36: the boundaries of this session's new refusals before loading (hostile25's partition_on_task and
pool rule, leftovers57's probe_source_checks), where the tests beside them let a hand mutation through.
Each test names the mutant it kills. Validation only: nothing loads, nothing compiles."""
from __future__ import annotations

import pytest

from tallysim import config
from tallysim.config import Config, ConfigError


def _validate(*items):
    return config.validate(config.apply_overrides(Config(), list(items)))


@pytest.mark.parametrize("name", ["shakespeare", "shakespeare_words"])
def test_a_population_of_text_sequences_is_not_refused_as_a_class_split(name):
    # partition.kind=population deals sequences (data/partition.py returns before the per-position label
    # check), and ran on text before hostile25 moved that check before loading.
    # kills: partition_on_task allowing only iid and natural on text
    _validate(f"data.name={name}", "model.name=lstm", "partition.kind=population", "peers=4")


@pytest.mark.parametrize("items, advice", [
    (("data.name=synthetic", "data.input_shape=[80]", "probe.source=shakespeare"), "(80,), not text windows, or"),
    (("data.name=shakespeare", "model.name=lstm", "partition.kind=natural", "peers=4", "probe.source=synthetic",
      "data.input_shape=[80]"), "(80,), text windows too, or"),
])
def test_text_windows_beside_inputs_of_as_many_values_are_refused_before_loading(items, advice):
    # 80 float inputs and 80-token windows: the same count of values, but the load-time check refuses them
    # (int32 token ids beside float32 inputs) only after both datasets loaded. The advice named the shape
    # alone, (80,), which the refused source already had: it says the kind too.
    # kills: probe_source_checks.check comparing the counts of values alone
    with pytest.raises(ConfigError, match=r"text windows of shape \(80,\)") as e:
        _validate(*items)
    assert f"allowed: a probe.source of the training inputs' shape {advice}" in str(e.value), str(e.value)


@pytest.mark.parametrize("items", [("data.train_size=1",), ("data.train_size=100", "data.max_train=1")])
def test_a_single_training_example_is_left_to_builds_own_words(items):
    # n = 1: no pool size leaves training data, and build_data says so ("too few ... at least 2"); the
    # pool rule's "allowed: 1..0" would be advice nobody can take.
    # kills: config_rules.check_pool_size's `>= n > 1` as `>= n > 0`
    _validate("data.name=synthetic", *items, "probe.pool_size=1", "probe.per_round=1")


@pytest.mark.parametrize("pool, ok", [(999, True), (1000, False)])
def test_a_pool_exactly_at_the_training_size_is_the_first_refused(pool, ok):
    items = ("data.name=synthetic", "data.train_size=1000", f"probe.pool_size={pool}", "probe.per_round=10")
    if ok:
        _validate(*items)
    else:
        with pytest.raises(ConfigError, match=r"probe.pool_size=1000 leaves no training data .*allowed: 1\.\.999"):
            _validate(*items)


@pytest.mark.parametrize("name, vocabulary", [("shakespeare", 80), ("shakespeare_words", 10_004)])
def test_topk_soft_k_of_the_whole_vocabulary_passes_and_one_more_is_refused(name, vocabulary):
    base = (f"data.name={name}", "model.name=lstm", "partition.kind=natural", "peers=4", "protocol.name=topk_soft")
    _validate(*base, f"topk_soft.k={vocabulary}")
    with pytest.raises(ConfigError, match=f"topk_soft.k={vocabulary + 1} is more than the {vocabulary} classes"):
        _validate(*base, f"topk_soft.k={vocabulary + 1}")


# ----------------------------------------------------------------------------- house50's sweep_command.main

SMALL = ["data.name=synthetic", "data.train_size=200", "data.test_size=50", "peers=2", "rounds=1", "probe.per_round=10"]


def test_the_sweep_commands_dry_run_warns_of_shared_seeds(tmp_path, capsys):
    # kills: sweep_command.main (or sweep_checks.warn_before) no longer warning before a dry run: only
    # sweep.run_sweep's own warning was tested, and a dry run never reaches it
    from tallysim import cli
    assert cli.main(["sweep", "--dry-run", "--out", str(tmp_path / "s"), *SMALL, "seeds=2", "seed=0,1"]) == 0
    assert "share seed 1: each run covers seed..seed + seeds - 1" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_the_sweep_command_exits_1_when_a_run_failed(tmp_path, capsys, monkeypatch):
    # kills: sweep_command.main returning 0 after a failed run (make and scripts read the exit status)
    from tallysim import cli, sweep
    monkeypatch.setattr(sweep, "run_sweep", lambda base, runs, out, **kw: [
        {"name": n, "status": "failed" if i else "done", "error": "boom"} for i, (n, _) in enumerate(runs)])
    assert cli.main(["sweep", "--out", str(tmp_path / "s"), *SMALL, "seed=0,1"]) == 1
    out, err = capsys.readouterr()
    assert "2 runs in" in out and "1 ran, 0 done before, 1 failed" in out and "boom" in err


# ----------------------------------------------------------------------------- hostile25's PYTEST_WORKERS check

@pytest.mark.parametrize("workers, shown", [("2 ", "-n 2 "), ("auto ", "-n auto ")])
def test_make_takes_a_worker_count_with_a_trailing_blank_as_it_did_before(workers, shown):
    # `-n 2 ` ran 2 workers before the check; the check refused it ("PYTEST_WORKERS='2 ' is not a number")
    # while it took " 2" (make drops a leading blank). kills: NOT_DIGITS reading PYTEST_WORKERS unstripped
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    if shutil.which("make") is None:
        pytest.skip("no make here")
    p = subprocess.run(["make", "--no-print-directory", "-n", "test", f"PYTEST_WORKERS={workers}", f"VENV={sys.prefix}"],
                       cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and shown in p.stdout, p.stderr


# ----------------------------------------------------------------------------- leftovers56's one join

def _seed_csv(path, rows):
    path.write_text("group,panel,seed,round,acc_mean\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def test_a_percent_read_at_best_names_the_cell_and_round_it_came_from(tmp_path):
    # --at best reads any round: the refusal quotes the cell the value was read from (round 1's 45.9), not
    # the seed's last row (round 2's 0.5, a fine accuracy). kills: seed_csv._cell skipping the value's row
    from tallysim.results import compare_csv
    f = _seed_csv(tmp_path / "a.csv", [("t", "p", 0, 1, 45.9), ("t", "p", 0, 2, 0.5), ("t", "p", 1, 2, 0.4)])
    with pytest.raises(ConfigError) as e:
        compare_csv.compare_csv(f"{f}:group=t", f"{f}:group=t", at="best")
    assert "seed 0, round 1: acc_mean='45.9' is not an accuracy" in str(e.value), str(e.value)


def test_a_verdicts_side_without_its_group_names_the_group_and_panel(tmp_path, monkeypatch):
    # kills: verdicts._values passing read_selected's refusal on without naming which verdict's side it is
    from tallysim.results import verdicts
    _seed_csv(tmp_path / "a.csv", [("t", "p", 0, 5, 0.5)])
    monkeypatch.setattr(verdicts, "FIG", tmp_path)
    with pytest.raises(ConfigError, match=r"^verdicts: 'x' / 'p': "):
        verdicts._values((("a.csv",), "x", "p", None, None))


# ----------------------------------------------------------------------------- natural on files

FMNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.parametrize("name", ["files", "fashion_mnist"])
def test_natural_on_files_is_refused_before_loading_as_on_a_named_image_dataset(name):
    # files never carry clients (only the text caches do), so partition.kind=natural on data.path failed only
    # once the 60,000 images had loaded; partition_on_task skipped any data.path. iid still passes.
    import os
    if not os.path.isdir(FMNIST):
        pytest.skip("no Fashion-MNIST IDX files here")
    with pytest.raises(ConfigError, match=f"partition.kind=natural needs a dataset with clients .*; {name} has none"):
        _validate(f"data.name={name}", f"data.path={FMNIST}", "partition.kind=natural")
    _validate(f"data.name={name}", f"data.path={FMNIST}", "partition.kind=iid")
    _validate("data.name=my_plugin_data", "partition.kind=natural")     # a plugin's may have clients: left to load
