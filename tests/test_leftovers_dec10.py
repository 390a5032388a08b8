"""Leftovers of 2026-12-05 that earlier sessions noticed but did not fix. Each test names what it catches:
`make clean OUT=$HOME` removed the home directory (any OUT: `rm -rf $(OUT)`); a test label above every
training label made a class no peer trains on, silently; `faults.fraction=0` with a fault kind ran
fault-free with no word; NaN pixels were refused without saying how many or where, and float32 pixels of
1e36 trained to NaN without a word; `tallysim sweep partition.pick=largest seed=0,1` ran every run with a
field none of them reads, which a single run refuses; the resume's "check as a single run only if its own
config passes as one" was written twice. Nothing here compiles."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, one_line
from tallysim import api_arguments, clean, config, outdir, sweep, validation
from tallysim.cli_commands import _check
from tallysim.data.base import DataError, checked

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- make clean's OUT

def _run(d: Path) -> Path:
    """A run directory as tallysim leaves it: the marker and a run's files, nothing else."""
    outdir.mark(d)
    (d / "config.json").write_text("{}\n")
    (d / "metrics.jsonl").write_text("")
    return d


def _results(root: Path) -> Path:
    """OUT as `make demo` and a figure leave it: OUT/demo/<run>, OUT/<figure>/<group>/{sweep.json, <run>}."""
    _run(root / "demo" / "tally")
    group = root / "fig1" / "main"
    _run(group / "seed=0")
    (group / "sweep.json").write_text(json.dumps({"runs": [{"name": "seed=0"}]}))
    (root / "fig1" / "empty").mkdir()                      # a sweep run directory made, never claimed
    return root


def test_make_clean_removes_a_results_directory_of_runs_and_sweeps(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = _results(tmp_path / "results")
    assert clean.main(["results"]) == 0 and not out.exists()
    assert clean.main(["results"]) == 0                   # missing: nothing to do


@pytest.mark.parametrize("case, expected", [
    ("home", r"refusing to remove .*home: it is a home directory or above one; allowed: a results directory"),
    ("root", r"refusing to remove /: it is the file-system root"),
    ("cwd", r"refusing to remove \. .*: it is the working directory or a directory above it"),
    ("notes", r"refusing to remove results: it holds entries tallysim did not write \(results/notes.txt\)"),
    ("in a run", r"holds entries tallysim did not write \(results/demo/tally/mine.csv\)"),
    ("outside", r"refusing to remove .*elsewhere: it is outside .* and holds no tallysim run or sweep"),
    ("link", r"refusing to remove results: it is a symbolic link"),
])
def test_make_clean_refuses_an_out_that_is_not_tallysims(case, expected, tmp_path, monkeypatch):
    work = tmp_path / "repo"
    work.mkdir()
    monkeypatch.chdir(work)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    out = {"home": str(home), "root": "/", "cwd": ".", "notes": "results", "in a run": "results",
           "outside": str(tmp_path / "elsewhere"), "link": "results"}[case]
    if case in ("notes", "in a run"):
        _results(work / "results")
        (work / ("results/notes.txt" if case == "notes" else "results/demo/tally/mine.csv")).write_text("mine")
    if case == "outside":
        (tmp_path / "elsewhere" / "sub").mkdir(parents=True)
    if case == "link":
        _results(tmp_path / "real")
        (work / "results").symlink_to(tmp_path / "real")
    (home / "keep.txt").write_text("mine")
    with pytest.raises(clean.Refused, match=expected):
        clean.check(out)
    assert (home / "keep.txt").exists() and (work / "results").exists() == (case in ("notes", "in a run", "link"))


def test_make_clean_runs_the_check_before_removing_anything(tmp_path):
    """`make clean OUT=$HOME` ran `rm -rf .venv $HOME ...`; now its first command is the check, which
    refuses (exit 2) so make stops before the second. Only the first command is run here."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "keep.txt").write_text("mine")
    got = subprocess.run(["make", "--no-print-directory", "-n", "clean", f"OUT={home}"], cwd=ROOT, capture_output=True, text=True, check=True)
    first, second = got.stdout.splitlines()[:2]
    assert first.endswith(f"-m tallysim.clean {home}") and str(home) not in second, got.stdout
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(ROOT)}
    ran = subprocess.run([sys.executable, *first.split()[1:]], cwd=ROOT, capture_output=True, text=True, env=env)
    assert ran.returncode == 2 and "it is a home directory" in ran.stderr and (home / "keep.txt").exists(), ran


# ----------------------------------------------------------------------------- the data's labels and values

def _arrays(**kw):
    rng = np.random.default_rng(0)
    a = {"x_train": rng.random((12, 4), np.float32), "y_train": np.arange(12) % 3,
         "x_test": rng.random((6, 4), np.float32), "y_test": np.array([0, 1, 2, 0, 2, 1])}
    return {**a, **kw}


BEYOND = np.array([0, 1, 2, 0, 3, 1])          # test example 4: a class the training split (0..2) lacks


def test_a_test_label_above_every_training_label_is_refused():
    # was: num_classes=4 inferred, class 3 with no training example, its test example always wrong
    with pytest.raises(DataError, match=r"test labels in d.npz reach 3 \(first in test example 4, label 3\), beyond the "
                                        r"training labels 0..2: 1 test example\(s\) of classes no peer trains on; "
                                        r"allowed: test labels in 0..2, or a num_classes saved in the .npz"):
        checked("d", **_arrays(y_test=BEYOND), where="d.npz")
    assert checked("d", **_arrays(y_test=BEYOND), num_classes=4).num_classes == 4     # declared: kept on purpose
    assert checked("d", **_arrays()).num_classes == 3


def test_labels_beyond_a_declared_num_classes_name_their_split():
    with pytest.raises(DataError, match=r"test labels reach 3 but num_classes=3; allowed: labels in 0..2"):
        checked("d", **_arrays(y_test=BEYOND), num_classes=3)


def test_non_finite_pixels_are_refused_with_their_count_and_first_example():
    x = np.zeros((12, 4), np.float32)
    x[5, 1], x[5, 2], x[9, 0] = np.nan, np.inf, -np.inf
    with pytest.raises(DataError, match=r"train images hold 3 NaN or infinite value\(s\) in 2 example\(s\), the "
                                        r"first in example 5; allowed: finite numbers"):
        checked("d", **_arrays(x_train=x))


def test_huge_float_pixels_are_warned_about(capsys):
    x = np.ones((6, 4), np.float32)
    x[2, 3] = 1e36
    checked("d", **_arrays(x_test=x))
    err = capsys.readouterr().err
    assert err.startswith("tallysim: warning: test images hold values up to 1e+36 (first above 10,000 in example 2)"), err
    checked("d", **_arrays(x_test=x * 255 / 1e36))                           # raw bytes as floats: no word
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- faults.fraction=0

FAULTY = ["protocol.name=tally", "faults.kind=label_flip"]


def test_a_fault_kind_with_no_faulty_peer_is_said_in_a_single_run(capsys):
    cfg = config.validate(config.apply_overrides(config.Config(), TINY + FAULTY + ["faults.fraction=0"]))
    assert [w for w in validation.warnings(cfg) if "faults" in w] == [
        "faults.kind=label_flip with faults.fraction=0 makes no peer faulty: the run has no faults "
        "(faults.fraction in (0, 1] makes floor(fraction * peers) of them faulty)"]
    _check(config.apply_overrides(config.Config(), TINY + FAULTY + ["faults.fraction=0"]))     # run's check
    assert capsys.readouterr().err.startswith("tallysim: warning: faults.kind=label_flip with faults.fraction=0")
    for items in (["faults.fraction=0.5"], ["faults.kind=none"]):
        cfg = config.validate(config.apply_overrides(config.Config(), TINY + FAULTY + items))
        assert not [w for w in validation.warnings(cfg) if "faults" in w]


# ----------------------------------------------------------------------------- a field no run of a sweep reads

def test_a_sweep_none_of_whose_runs_reads_a_field_is_refused(capsys, tmp_path, no_compile):
    line = one_line(capsys, ["sweep", *TINY, "partition.pick=largest", "seed=0,1", "--out", str(tmp_path / "s")])
    assert ("partition.pick is not read by any run of the sweep (each of its 2 run(s) would refuse it as a single "
            "run); sweep run seed=0: partition.pick='largest' is not read with partition.kind='iid'") in line, line
    assert not (tmp_path / "s").exists()


def _unread(items, axis):
    sweep.command_configs(config.apply_overrides(config.Config(), TINY + items), sweep.expand({}, [axis]))


def test_a_sweep_whose_base_some_run_reads_stays_allowed():
    _unread(["partition.k=3"], "partition.kind=label_quantity,iid")      # the label_quantity run reads it
    # (partition.pick with natural,iid here before hostile25: natural on synthetic is refused, it has no clients)
    _unread([], "model.name=mlp,lenet")                # TINY's model.width=32: the MLP reads it, LeNet not
    with pytest.raises(config.ConfigError, match=r"^model.width is not read by any run of the sweep .* sweep run "
                                                 r"model.name=lenet: model.width=32 is not read by model.name=lenet"):
        _unread([], "model.name=lenet,cnn")


# ----------------------------------------------------------------------------- resume: one rule, two callers

def test_both_resume_paths_ask_one_function(tmp_path, monkeypatch):
    """api_arguments.check_read and `run --resume` each wrote "check as a single run's only if the run's
    own config passes as one" over config_reads.reads_all; both now call validation.check_read_resumed."""
    import inspect
    from tallysim import cli_commands
    # since 2026-12-06 both reach it through validation.single_run (which prints the warnings too)
    calls = []
    monkeypatch.setattr(validation, "check_read_resumed", lambda cfg, own: calls.append(own))
    api_arguments.check_read(config.apply_overrides(config.Config(), TINY), None, True)
    assert calls == [None]
    assert "validation.single_run(cfg, resumed=True, own=own)" in inspect.getsource(cli_commands.cmd_run)
    assert "check_read_resumed" in inspect.getsource(validation.single_run)
    for source in (inspect.getsource(cli_commands), inspect.getsource(api_arguments)):
        assert "reads_all" not in source
