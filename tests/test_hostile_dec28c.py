"""Hostile inputs, round 25 (hostile25): text configs (Shakespeare characters and words: vocabulary, partition,
per-token vote knobs), cross-device populations, model groups, FedCT and the matched-bits soft labels' bits,
plugins, `tallysim compare` per-seed CSV sides joined with `+`, and the Makefile's PYTEST_WORKERS and OUT.
About 360 inputs were tried; those that misbehaved are here, each test naming what the input did before its
fix. Nothing compiles: refusals before anything loads, and CSVs written by hand. Milliseconds each, but the
make test (a make process per value).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import one_line

from tallysim.config import ConfigError
from tallysim.results import compare as cmp

ROOT = Path(__file__).resolve().parent.parent
HEAD = "group,panel,seed,round,acc_mean\n"


@pytest.fixture
def csvs(tmp_path, monkeypatch):
    """a.csv: seeds 0-1 of groups t and l; b.csv: seed 2 of both; miss.csv: seed 2, t's acc_mean blank."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text(HEAD + "t,p,0,10,0.5\nt,p,1,10,0.6\nl,p,0,10,0.4\nl,p,1,10,0.45\n")
    (tmp_path / "b.csv").write_text(HEAD + "t,p,2,10,0.55\nl,p,2,10,0.41\n")
    (tmp_path / "miss.csv").write_text(HEAD + "t,p,2,10,\nl,p,2,10,0.41\n")
    return tmp_path


# ----------------------------------------------------------------------------- 1. compare: --out over an input

@pytest.mark.parametrize("argv, named", [
    (["a.csv+b.csv:group=t", "a.csv+b.csv:group=l", "--out", "a.csv"], "a.csv"),
    (["a.csv+b.csv:group=t", "a.csv+b.csv:group=l", "--format", "csv", "--out", "./b.csv"], "b.csv"),
    (["a.csv:group=t", "a.csv:group=l", "--out", "a.csv"], "a.csv"),
    (["a.csv", "--by", "group=t,l", "--out", "a.csv"], "a.csv"),
], ids=["side-md", "side-csv", "one-file", "by"])
def test_compare_out_naming_a_csv_it_reads_is_refused_and_the_file_kept(csvs, capsys, argv, named):
    # the comparison's markdown (or CSV) replaced the per-seed rows it was computed from: a user's file lost
    before = {p.name: p.read_text() for p in csvs.glob("*.csv")}
    line = one_line(capsys, ["compare", *argv])
    assert f"a per-seed CSV this comparison reads, and writing it would replace its rows" in line, line
    assert f"is {named}," in line
    assert {p.name: p.read_text() for p in csvs.glob("*.csv")} == before


def test_compare_out_over_an_input_csv_from_python_is_refused_too(csvs):
    with pytest.raises(ConfigError, match="a per-seed CSV this comparison reads"):
        cmp.compare("a.csv+b.csv:group=t", "a.csv+b.csv:group=l", out="b.csv")
    assert (csvs / "b.csv").read_text().startswith(HEAD)
    cmp.compare("a.csv+b.csv:group=t", "a.csv+b.csv:group=l", out="c.md")      # another name: written
    assert "A above B" in (csvs / "c.md").read_text()


# ----------------------------------------------------------------------------- 2. compare: a file joined twice

@pytest.mark.parametrize("argv", [
    ["a.csv+a.csv:group=t", "a.csv+a.csv:group=l"],
    ["a.csv+./a.csv:group=t", "b.csv:group=l"],
    ["a.csv+a.csv", "--by", "group=t,l"],
], ids=["same-name", "dot-slash", "by"])
def test_a_file_joined_twice_in_a_side_is_refused_naming_it(csvs, capsys, argv):
    # two-sides: its seeds agreed with themselves and were kept once, in silence; --by: "seed 0 has 2 rows at
    # round 10 (they differ in nothing: the same row twice)", naming neither the file nor the join
    line = one_line(capsys, ["compare", *argv])
    assert "are the same file, joined twice; allowed: each file once" in line, line


# ----------------------------------------------------------------------------- 3. compare: blank metric cells

@pytest.mark.parametrize("a, b", [("miss.csv:group=t", "miss.csv:group=l"),
                                  ("a.csv+miss.csv:group=t", "a.csv+miss.csv:group=l")], ids=["one", "joined"])
def test_selected_rows_whose_metric_is_blank_say_so_not_that_the_column_is_missing(csvs, capsys, a, b):
    # "no column 'acc_mean' of numbers to compare; allowed: --metric naming one of its columns that holds numbers
    # (none)": the file has that column, with a number in another row
    line = one_line(capsys, ["compare", a, b])
    assert "miss.csv: column 'acc_mean' holds no number in the rows selected (1: '')" in line, line
    assert "(none)" not in line


# ----------------------------------------------------------------------------- 4. --plugin with its module left out

def test_plugin_flag_followed_by_a_key_value_is_refused_without_importing_anything(tmp_path, monkeypatch, capsys):
    # `--plugin data.name=synthetic`: importlib imported `data` (a folder of that name in the working directory is
    # a package: here its __init__ ran) and the error said "No module named 'data'"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "__init__.py").write_text("open('IMPORTED', 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    line = one_line(capsys, ["run", "--print-config", "--plugin", "data.name=synthetic", "peers=4"])
    assert "plugin 'data.name=synthetic' is a key=value, not a module name" in line, line
    assert "allowed: --plugin MODULE" in line
    assert not (tmp_path / "IMPORTED").exists()


# ----------------------------------------------------------------------------- 5. text: what the name tells

@pytest.mark.parametrize("argv, said", [
    (["data.name=shakespeare_words", "model.name=lstm", "partition.kind=natural", "protocol.name=topk_soft",
      "topk_soft.k=10005"], "topk_soft.k=10005 is more than the 10004 classes; allowed: 1..10004"),
    (["data.name=shakespeare", "model.name=lstm", "partition.kind=natural", "protocol.name=topk_soft",
      "topk_soft.k=81"], "topk_soft.k=81 is more than the 80 classes; allowed: 1..80"),
    (["data.name=shakespeare", "model.name=lstm", "partition.kind=natural", "protocol.name=topk_soft",
      "topk_soft.k=80", "topk_soft.value_bits=0"], "topk_soft.k=80 (every class: no index is sent) with "
                                                   "topk_soft.value_bits=0 (no value) sends nothing"),
    (["data.name=shakespeare", "model.name=lstm"], "partition.kind=dirichlet (the default when unset) splits by class "
                                                   "label, "
                                                   "and shakespeare's examples are sequences"),
    (["data.name=shakespeare_words", "model.name=lstm", "partition.kind=label_quantity"],
     "partition.kind=label_quantity splits by class label"),
    (["data.name=fashion_mnist", "partition.kind=natural"], "partition.kind=natural needs a dataset with clients "
                                                            "(shakespeare, shakespeare_words); fashion_mnist has none"),
    (["data.name=synthetic", "partition.kind=natural"], "synthetic has none; use partition.kind=iid or dirichlet"),
], ids=["k-words", "k-chars", "k-all-no-bits", "default-dirichlet-text", "label-quantity-text", "natural-fmnist",
        "natural-synthetic"])
def test_what_the_dataset_name_tells_is_refused_before_anything_loads(capsys, argv, said):
    # `run --print-config` passed these and a run refused them only once the data had loaded (2-9 s); a sweep's
    # --dry-run listed them, and the sweep ran its other runs (k=5 of `topk_soft.k=5,10005`, the iid runs of
    # `partition.kind=iid,natural`) before the run failed
    line = one_line(capsys, ["run", "--print-config", "peers=4", *argv])
    assert said in line, line


@pytest.mark.parametrize("argv, said", [
    (["data.name=synthetic", "protocol.name=local", "partition.kind=iid,natural"],
     "sweep run partition.kind=natural: partition.kind=natural needs a dataset with clients"),
    (["data.name=shakespeare_words", "model.name=lstm", "partition.kind=natural", "protocol.name=topk_soft",
      "topk_soft.k=5,10005"], "sweep run topk_soft.k=10005: topk_soft.k=10005 is more than the 10004 classes"),
], ids=["natural", "topk"])
def test_a_sweeps_dry_run_refuses_them_before_any_run(tmp_path, capsys, argv, said):
    line = one_line(capsys, ["sweep", "--dry-run", "--out", str(tmp_path / "s"), "peers=4", *argv])
    assert said in line, line
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- 6. make PYTEST_WORKERS

@pytest.mark.parametrize("workers, ok", [("abc", False), ("-1", False), ("", False), ("1.5", False), ("2 3", False),
                                         ("0", True), ("2", True), ("auto", True)])
def test_make_refuses_a_pytest_workers_that_is_no_count_before_anything_runs(workers, ok):
    # pytest said "argument -n/--numprocesses: invalid parse_numprocesses value: 'abc'" (naming no PYTEST_WORKERS),
    # after a fresh machine had built the venv; -1 ran in one process, in silence
    if shutil.which("make") is None:
        pytest.skip("no make here")
    p = subprocess.run(["make", "--no-print-directory", "-n", "test", f"PYTEST_WORKERS={workers}",
                        f"VENV={sys.prefix}"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    if ok:
        assert p.returncode == 0 and f"-n {workers} --dist loadfile" in p.stdout, (p.stdout, p.stderr)
    else:
        assert p.returncode != 0 and p.stdout == "", p.stdout
        assert f"PYTEST_WORKERS='{workers}' is not a number of pytest workers; allowed: 0" in p.stderr, p.stderr


# ----------------------------------------------------------------------------- 7. model.groups: a field with no name

@pytest.mark.parametrize("groups", ["a:2:mlp,=3;b:2:lenet", "a:2:=3;b:2:lenet"], ids=["after-model", "as-model"])
def test_a_group_item_with_no_field_name_is_not_field_value(capsys, groups):
    # "group a sets ; a group may set name, dtype, ...": an empty field name, printed as nothing
    line = one_line(capsys, ["run", "--print-config", "peers=4", f"model.groups={groups}"])
    assert "'=3' in group a is not FIELD=VALUE; expected NAME:PEERS[:MODEL]" in line, line


@pytest.mark.parametrize("side", ["a.csv+*.csv:group=t", "b?.csv:group=t"], ids=["joined", "quoted"])
def test_a_glob_in_a_side_says_that_names_are_not_patterns(csvs, capsys, side):
    # "*.csv: no such file; allowed: a per-seed CSV ...": nothing said that the pattern was taken as a name
    line = one_line(capsys, ["compare", side, "a.csv:group=l"])
    assert "no such file, and a side's file names are not patterns" in line, line
    assert "allowed: name each file, FILE.csv+FILE2.csv" in line


# ----------------------------------------------------------------------------- 8. the work estimate on text

def test_the_step_warning_counts_the_text_splits_windows_not_a_max_train_above_them():
    # data.max_train=100000000 on shakespeare (43,041 training windows) warned of "6,250,000 training steps one
    # after another, about 1.7 h": 10^8 examples counted; with natural clients a peer's share is one client's
    from tallysim import config, work_estimate
    cfg = config.apply_overrides(config.Config(), ["data.name=shakespeare", "model.name=lstm", "partition.kind=natural",
                                                   "data.max_train=100000000"])
    assert work_estimate.warning(cfg) is None
    assert work_estimate.round_steps(cfg)[0] == ("local_epochs", 2)      # 43,041 / 715 clients / 32 a batch
    iid = cfg.replace(peers=2, rounds=100_000, partition={"kind": "iid"})    # 21,520 windows each: 673 a round
    assert work_estimate.round_steps(iid)[0] == ("local_epochs", 673)
    assert "67,300,000 training steps" in work_estimate.warning(iid)


# ----------------------------------------------------------------------------- 9. a probe pool as large as the split

@pytest.mark.parametrize("argv, said", [
    (["data.name=synthetic", "data.train_size=1000", "probe.pool_size=1000"],
     "probe.pool_size=1000 leaves no training data (synthetic has 1000 training examples); allowed: 1..999"),
    (["data.name=synthetic", "data.max_train=300", "probe.pool_size=300"], "synthetic has 300 training examples"),
    (["data.name=shakespeare", "model.name=lstm", "partition.kind=natural", "probe.pool_size=43041"],
     "probe.pool_size=43041 leaves no training data (shakespeare has 43041 training examples); allowed: 1..43040"),
], ids=["synthetic", "max-train", "text"])
def test_a_pool_the_config_shows_leaves_no_training_data_is_refused_before_loading(tmp_path, capsys, argv, said):
    # refused only at build, once the data had loaded: `run --print-config` and a sweep's --dry-run passed it, and
    # a sweep `probe.pool_size=500,1000` ran its 500 runs first
    assert said in one_line(capsys, ["run", "--print-config", "peers=2", "probe.per_round=10", *argv])
    pools = [a.replace("probe.pool_size=", "probe.pool_size=5,") for a in argv]
    line = one_line(capsys, ["sweep", "--dry-run", "--out", str(tmp_path / "s"), "peers=2", "probe.per_round=5",
                             *pools])
    assert said in line, line
