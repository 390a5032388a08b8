"""Hostile inputs, round 22 (hostile22): the Python API a notebook uses (the results readers, tallysim.run and
run_sweep's own arguments, Config's shape fields), output folders a user made by hand (a dangling link), and
the experiments/ scripts users are told to run (wordclaim, textclaim, redraw_pareto, redraw_final_vs,
memory_estimate, side_by_side). Each test names what the input did before its fix. Nothing here trains or
compiles: runs are written by hand, refusals come before anything compiles (`no_compile`) or loads."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, one_line
from test_leftovers_dec21a import _script

import tallysim
from tallysim import config
from tallysim.config import ConfigError
from tallysim.results import metrics
from tallysim.sweep import run_sweep

BASE = config.apply_overrides(config.Config(), TINY)


def _run(path: Path, rounds: int = 2) -> Path:
    """A finished run directory written by hand: its marker, config.json and metrics rows."""
    path.mkdir(parents=True)
    (path / ".tallysim-run").write_text(json.dumps({"written_by": "tallysim"}))
    (path / "config.json").write_text(json.dumps(config.to_dict(BASE)))
    (path / "metrics.jsonl").write_text("".join(json.dumps({"round": r, "bits_per_peer": 10.0 * r, "acc_mean": 0.5})
                                                + "\n" for r in range(1, rounds + 1)))
    return path


# ----------------------------------------------------------------------------- 1. the results readers

def test_the_run_directory_readers_expand_the_home_and_refuse_what_is_no_run(tmp_path, monkeypatch):
    # metrics.read_rows("~/runs/a") of a real run said "~/runs/a has no metrics.jsonl" and read_config
    # returned {} (Results.read and tallysim.read_rows expand `~`); read_config of a misspelt run, or of a
    # file, returned {} in silence
    monkeypatch.setenv("HOME", str(tmp_path))
    _run(tmp_path / "runs" / "a")
    assert len(metrics.read_rows("~/runs/a")) == 2
    assert metrics.read_config("~/runs/a")["rounds"] == 2
    with pytest.raises(ConfigError, match=r"runs/b does not exist; allowed: a run directory"):
        metrics.read_config("~/runs/b")
    with pytest.raises(ConfigError, match=r"config.json is a file, not a run directory"):
        metrics.read_config(tmp_path / "runs" / "a" / "config.json")
    (tmp_path / "plain").mkdir()
    assert metrics.read_config(tmp_path / "plain") == {}       # a directory without config.json: as before


@pytest.mark.parametrize("reader", ["read_config", "read_rows", "read_partition", "read_sweep"])
@pytest.mark.parametrize("value", [None, 123, b"runs", ["a", "b"]], ids=["None", "int", "bytes", "list"])
def test_the_readers_refuse_what_is_no_path(reader, value):
    # each was a TypeError from inside pathlib ("expected str, bytes or os.PathLike object, not NoneType")
    with pytest.raises(ConfigError, match=rf"metrics.{reader}\(.*\): {type(value).__name__}, not a path; allowed: "
                                          r"a directory as a str or pathlib.Path"):
        getattr(metrics, reader)(value)


def test_a_partition_record_that_is_no_object_is_refused(tmp_path):
    # partition.json holding [] or 5 was returned as the partition, in silence
    (tmp_path / "partition.json").write_text("[]")
    with pytest.raises(ConfigError, match=r"partition.json is not a tallysim partition record \(expected an object "
                                          r"with peers and class_counts, got list\)"):
        metrics.read_partition(tmp_path)


def test_a_sweep_index_whose_run_records_are_not_objects_is_refused(tmp_path):
    # {"runs": [1, "x", null]} was returned, and tallysim.read_rows then said none of its runs had written
    # rows yet (a sweep just started), sending the user to wait
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": [1, "x", None]}))
    with pytest.raises(ConfigError, match=r"sweep.json: run record 1 is not an object with a name"):
        metrics.read_sweep(tmp_path)
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": [{"name": "a", "status": "pending"}]}))
    assert metrics.read_sweep(tmp_path)["runs"][0]["name"] == "a"



def test_results_plot_refuses_rows_that_are_not_its_directorys(tmp_path):
    # tallysim.Results(dir, rows=[...the first round only...]).plot() drew every row of dir as its own, in silence;
    # of a folder without rows it said "has no metrics.jsonl" of a Results holding rows
    run = _run(tmp_path / "a", rounds=3)
    read = tallysim.Results.read(run)
    mine = tallysim.Results(str(run), rows=read.rows[:1], config=read.config)
    mine.rows[0] = {**mine.rows[0], "acc_mean": 0.9}
    with pytest.raises(ConfigError, match=r"Results.plot\(\) draws .*a/metrics.jsonl, whose rows are not the 1 rows this "
                                          r"Results holds \(made by hand"):
        mine.plot(str(tmp_path / "f.png"))
    with pytest.raises(ConfigError, match=r"which cannot be read \(none there, or damaged\), not the 1 rows"):
        tallysim.Results(str(tmp_path / "new"), rows=[{"round": 1}]).plot(str(tmp_path / "g.png"))
    assert not (tmp_path / "f.png").exists() and not (tmp_path / "g.png").exists()
    # a run that wrote more rows since it was read is the same run: drawn
    early = tallysim.Results(str(run), rows=read.rows[:2], config=read.config)
    early._own_rows("plot")

# ----------------------------------------------------------------------------- 2. the API's runs and sweeps

def test_an_out_that_is_a_dangling_link_is_refused_before_anything_loads(tmp_path, monkeypatch, no_compile):
    # passed as absent; after the data had loaded, mkdir said "--out ... cannot be written: File exists"
    # (tallysim.run) or "--out ... cannot be created: File exists" (run_sweep)
    import tallysim.run as runmod

    def no_build(*a, **k):
        raise AssertionError("the data loaded before the refusal")
    monkeypatch.setattr(runmod, "build", no_build)
    os.symlink(tmp_path / "gone", tmp_path / "link")
    with pytest.raises(ConfigError, match=r"^out .*link is a symbolic link to .*gone, which does not exist \(tallysim "
                                          r"never writes through a link\); allowed: the real directory, or another out$"):
        tallysim.run(BASE, out=str(tmp_path / "link"))
    with pytest.raises(ConfigError, match=r"link is a symbolic link to .*gone, which does not exist"):
        run_sweep(BASE, [("a", ["rounds=1"])], str(tmp_path / "link"), progress=False)
    assert not (tmp_path / "gone").exists()



@pytest.mark.parametrize("flag", ["--results", "--out"])
def test_a_figures_results_or_out_that_is_a_dangling_link_is_refused_first(tmp_path, capsys, flag, no_compile):
    # passed as absent (the dry run too): --out failed when the figure was drawn, after every run had run, and
    # --results at its first group's mkdir
    os.symlink(tmp_path / "gone", tmp_path / "link")
    other = {"--results": str(tmp_path / "res"), "--out": str(tmp_path / "figs")}
    other[flag] = str(tmp_path / "link")
    line = one_line(capsys, ["figure", "fig1", "--smoke", "--dry-run", "--results", other["--results"],
                             "--out", other["--out"]])
    assert f"{flag} {tmp_path / 'link'} is a symbolic link to {tmp_path / 'gone'}, which does not exist" in line, line


@pytest.mark.parametrize("where, said", [
    ("inside", "is inside the sweep directory"),
    ("~", "refusing to use ~ for a sweep: it is a home directory or above one"),
    (".", "refusing to use . for a sweep: it is the working directory or a directory above it"),
], ids=["inside-a-sweep", "home", "working-directory"])
def test_run_sweep_refuses_the_folders_tallysim_sweep_refuses(tmp_path, monkeypatch, where, said, no_compile):
    # `tallysim sweep --out` refused them; run_sweep wrote its index, lock and run folders there (run_sweep(out_dir="/")
    # into the file-system root), and a sweep inside another's folder had its runs read as the outer sweep's
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    (tmp_path / "outer").mkdir()
    (tmp_path / "outer" / "sweep.json").write_text(json.dumps({"runs": []}))
    out = str(tmp_path / "outer" / "inner") if where == "inside" else where
    with pytest.raises(ConfigError, match=said):
        run_sweep(BASE, [("a", ["rounds=1"])], out, progress=False)
    assert os.listdir(tmp_path / "home") == os.listdir(tmp_path / "work") == []
    assert os.listdir(tmp_path / "outer") == ["sweep.json"]

@pytest.mark.parametrize("name", ["sweep.json", ".tallysim-lock"])
def test_a_sweep_run_named_as_the_sweeps_own_file_is_refused(tmp_path, name, no_compile):
    # ("sweep.json", [...]) was FileExistsError from the run directory's mkdir, over the sweep's index
    with pytest.raises(ConfigError, match=rf"run_sweep: run '{name}' is named as a file the sweep writes in out_dir "
                                          r"\(.tallysim-lock, sweep.json\); allowed: any other name"):
        run_sweep(BASE, [(name, ["rounds=1"])], str(tmp_path / "s"), progress=False)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("kw, said", [
    ({"log": None}, r"run_sweep\(log=None\): NoneType; allowed: a function of one line of text"),
    ({"meta": [1]}, r"run_sweep\(meta=\[1\]\): list; allowed: None or a dict of JSON values"),
    ({"meta": {"x": object()}}, r"run_sweep\(meta=...\): Object of type object is not JSON serializable; allowed: a "
                                r"dict of JSON values"),
], ids=["log-None", "meta-list", "meta-not-json"])
def test_run_sweeps_log_and_meta_are_checked_before_anything_is_made(tmp_path, kw, said, no_compile):
    # log=None was a TypeError at the first run's line, meta=[1] an AttributeError, a meta JSON cannot hold
    # a TypeError at sweep.json's first write: each after the sweep's directory had been made
    with pytest.raises(ConfigError, match=said):
        run_sweep(BASE, [("a", ["rounds=1"])], str(tmp_path / "s"), progress=False, **kw)
    assert not (tmp_path / "s").exists()


def test_run_sweep_takes_a_numpy_checkpoint_cadence_as_tallysim_run_does():
    # checkpoint_every=np.int64(2) was refused as "allowed None, 0 or a number of rounds" (tallysim.run takes it)
    from tallysim import sweep_arguments
    assert sweep_arguments.check_hooks(print, None, np.int64(2)) == 2
    with pytest.raises(ConfigError, match=r"checkpoint_every=-1\): allowed None"):
        sweep_arguments.check_hooks(print, None, np.int64(-1))


def test_a_shape_dimension_of_the_wrong_type_is_named():
    # data.input_shape=[8, "8", 1] said "has the wrong type (tuple); expected a list of positive integers": the
    # list given was called a tuple, and the dimension at fault went unnamed
    for dim, kind in (("8", "str"), (8.0, "float"), (True, "bool")):
        with pytest.raises(ConfigError, match=rf"data.input_shape=\[8, {dim!r}, 1\] has the wrong type: its dimension {dim!r} is {kind}; "
                                              r"expected a list of positive integers"):
            config.validate(BASE.replace(data={"input_shape": [8, dim, 1]}))
    assert config.validate(BASE.replace(data={"input_shape": [8, np.int64(8), 1]})).data.input_shape == (8, 8, 1)


# ----------------------------------------------------------------------------- 3. experiments/wordclaim.py, textclaim.py

@pytest.fixture
def wordclaim(monkeypatch):
    """experiments/wordclaim.py, with any run failing the test: every refusal here comes before the first."""
    from experiments import wordclaim

    def no_run(*a, **k):
        raise AssertionError("a run started before the refusal")
    monkeypatch.setattr(wordclaim, "run_one", no_run)
    return wordclaim


@pytest.mark.parametrize("spec, panels", [("quick.json", 0), ("fig11_reduced.json", 2)])
def test_wordclaim_refuses_a_spec_that_is_no_one_panel_figure(wordclaim, capsys, spec, panels):
    # ValueError: not enough values to unpack (expected 1, got 0) / too many values, from `(panel,) = ...`
    with pytest.raises(SystemExit) as e:
        wordclaim.main([f"--spec=experiments/{spec}"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"experiments/{spec} has {panels} panels; allowed: a figure config of one panel" in err


def test_wordclaim_refuses_seeds(wordclaim):
    # `tally seeds=2` ran each "seed" as a 2-seed mean, printed in the table as one seed's number
    with pytest.raises(SystemExit, match=r"seeds=N: each seed runs alone here .*allowed: seed=N for that seed alone"):
        wordclaim.main(["--smoke", "tally", "seeds=2"])


def test_wordclaim_checks_every_groups_config_before_the_first_runs(wordclaim):
    # `softlabel local distill.temperature=2`: softlabel's runs (minutes each) ran, then local's was refused
    with pytest.raises(ConfigError, match=r"distill.temperature=2.0 is not read by protocol.name=local"):
        wordclaim.main(["softlabel", "local", "distill.temperature=2"])


@pytest.mark.parametrize("script, argv, said", [
    ("wordclaim.py", ["--smoke", "tally", "rounds=x"], "wordclaim.py: rounds='x': expected an integer"),
    ("textclaim.py", ["words", "tallly"], "textclaim.py: protocol.name='tallly' is not known"),
], ids=["wordclaim", "textclaim"])
def test_the_claim_scripts_say_a_bad_override_in_one_line(monkeypatch, capsys, script, argv, said):
    # a ConfigError traceback (tallysim.fields.ConfigError: ...) where `tallysim run` says one line
    from tallysim.protocols import distill
    from tallysim.results import rows as rows_
    if script == "wordclaim.py":
        from experiments import wordclaim     # noqa: F401  (imported once: runpy runs its file again)
    before = distill.probe_exchange, dict(rows_.ROUND_KEYS)
    code, out = _script(monkeypatch, capsys, script, *argv)
    assert code == said or said in str(code), (code, out)
    assert "Traceback" not in out, out
    # textclaim instrumented tallysim's globals before refusing: every later run in this test process had
    # its KEYS in its rows (test_run's row-key checks failed, depending on which worker ran this file)
    assert (distill.probe_exchange, dict(rows_.ROUND_KEYS)) == before


def test_textclaim_floor_takes_nothing_after_it_and_its_help_names_a_protocol(monkeypatch, capsys):
    # `floor tally rounds=2` printed the floors, the rest ignored; --help offered `local_only`, which the run
    # then refused as no protocol (it is `local`)
    code, out = _script(monkeypatch, capsys, "textclaim.py", "floor", "tally")
    assert code == 2 and "floor takes nothing after it (given: tally)" in out, out
    code, out = _script(monkeypatch, capsys, "textclaim.py", "--help")
    assert code == 0 and "local_only" not in out and "local, ..." in out, out


# ----------------------------------------------------------------------------- 4. redraw_pareto.py, redraw_final_vs.py

@pytest.mark.parametrize("script, figure", [("redraw_pareto.py", "class_pool"), ("redraw_final_vs.py", "fig2_cnn")])
def test_the_redraw_scripts_refuse_an_out_that_is_a_file_and_a_config_that_is_no_figure(monkeypatch, capsys,
                                                                                      tmp_path, script, figure):
    # --out FILE was os.mkdir's FileExistsError traceback after the CSV had been read; a run's config (no
    # kind) was "is a None figure"
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "file").write_text("mine")
    args = [str(root / "experiments" / f"{figure}.json"), str(root / "docs" / "figures" / f"{figure}.csv")]
    code, out = _script(monkeypatch, capsys, script, *args, "--out", str(tmp_path / "file"))
    assert code == 2 and "file is a file; allowed: a folder (new or existing) for the figure's files" in out, out
    assert (tmp_path / "file").read_text() == "mine"
    code, out = _script(monkeypatch, capsys, script, str(root / "experiments" / "quick.json"), args[1],
                        "--out", str(tmp_path / "o"))
    assert code == 2 and "quick.json is not a figure config (it has no kind)" in out, out
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- 5. memory_estimate.py, side_by_side.py

@pytest.mark.parametrize("argv, said", [
    (["--models", "foo"], "--models: no model foo; allowed: mlp, lenet"),                   # KeyError: 'foo'
    (["--models", "mlp", "--together", "0"], "--together 0: allowed: positive whole numbers"),   # ZeroDivisionError
    (["--models", "mlp", "--together", "3"], "3 does not divide the 4 peers; allowed: 1, 2 or 4"),   # 4 at once, as 3
    (["--models", "mlp", "--batches", "8,x"], "--batches 8,x: allowed: positive whole numbers"),     # ValueError
    (["--models", "mlp", "--protocol", "tallyy"], "protocol.name='tallyy' is not known"),           # ConfigError traceback
    (["--again", "MISSING"], "cannot read it (No such file or directory)"),                       # FileNotFoundError
    (["--again", "EMPTY"], "EMPTY: no rows; allowed: a CSV this script wrote"),                     # IndexError
    (["--again", "OTHER"], "OTHER: no column model, batch, together, protocol, probes, measured"),  # KeyError
], ids=["model", "together-0", "together-3", "batches", "protocol", "again-missing", "again-empty", "again-other"])
def test_memory_estimate_refuses_its_bad_options_in_one_line(monkeypatch, capsys, tmp_path, argv, said):
    monkeypatch.chdir(tmp_path)
    Path("EMPTY").write_text("")
    Path("OTHER").write_text("a,b\n1,2\n")
    monkeypatch.setattr("tallysim.build.build", lambda *a, **k: pytest.fail("built before refusing"))
    code, out = _script(monkeypatch, capsys, "memory_estimate.py", *argv)
    assert code == 2 and said in out and "Traceback" not in out, out


@pytest.mark.parametrize("argv, said", [
    (["--grid", "mlp"], "--grid mlp: allowed: model:P,P..."),                          # int('') ValueError
    (["--grid", "mlp:10", "foo:10"], "--grid foo:10: allowed: model:P,P..."),          # after the yardstick ran
    (["--rounds", "0"], "--rounds 0: allowed: 1 or more"),                              # an empty summary
    (["--json", "/nonexistent-h22/x.json"], "--json /nonexistent-h22/x.json: allowed: a file path in an existing "
                                            "folder"),                                 # after every round
], ids=["grid-no-peers", "grid-model", "rounds-0", "json-folder"])
def test_side_by_side_refuses_its_bad_options_before_measuring(monkeypatch, capsys, tmp_path, argv, said):
    (tmp_path / "vmap_ref.py").write_text("def main():\n    raise SystemExit('measured before refusing')\n")
    code, out = _script(monkeypatch, capsys, "side_by_side.py", "--ref", str(tmp_path), *argv)
    assert code == 2 and said in out, out



@pytest.mark.parametrize("argv, said", [
    (["--peers", "0", "99"], "--peers 99: allowed: peers 0..19 (the demo's 20)"),    # IndexError after peer 0 trained
    (["--peers", "-1"], "--peers -1: allowed: peers 0..19"),                           # trained peer 19 as "peer -1"
    (["--inits", "0"], "--inits 0: allowed: 1 or more"),                               # printed empty lists
    (["rounds=x"], "rounds='x': expected an integer"),                                  # a ConfigError traceback
], ids=["peer-99", "peer-negative", "inits-0", "override"])
def test_deadpeer_reference_refuses_its_bad_options_from_any_folder(monkeypatch, capsys, tmp_path, argv, said):
    # run from another folder than the repository's root, experiments/demo.json was not found (a traceback)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tallysim.build.build", lambda *a, **k: pytest.fail("the data loaded before refusing"))
    code, out = _script(monkeypatch, capsys, "deadpeer_reference.py", *argv)
    assert code == 2 and said in out and "Traceback" not in out, out


@pytest.mark.parametrize("argv, said", [
    (["tally", "1.5"], "participation=1.5 must be in (0, 1]"),
    (["tally", "0.5", "--seed", "-1"], "seed=-1 is out of range"),
], ids=["participation", "seed"])
def test_stale_votes_says_a_bad_value_in_one_line(monkeypatch, capsys, argv, said):
    # a ConfigError traceback from tallysim.drive
    code, out = _script(monkeypatch, capsys, "stale_votes.py", *argv)
    assert code == 2 and said in out and "Traceback" not in out, out


@pytest.mark.parametrize("value", ["x", "-1"])
def test_sigterm_compile_refuses_a_bad_delay_before_starting_the_run(monkeypatch, capsys, tmp_path, value):
    # DELAY=x was float()'s traceback; DELAY=-1 was time.sleep's ValueError once the run had started and printed
    # its first compile line, the script gone and the run left going on unwatched
    import subprocess
    monkeypatch.setenv("DELAY", value)
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("the run started before refusing"))
    code, out = _script(monkeypatch, capsys, "sigterm_compile.py", str(tmp_path / "run"))
    assert code == 2 and f"DELAY={value}: allowed: seconds, 0 or more" in out, out


@pytest.mark.parametrize("script, argv, said", [
    # 0 divided by zero after the build and the first round's compile (minutes); -1 / 0 compiled both programs
    # and timed nothing
    ("time_shakespeare_round.py", ["0"], "rounds 0: allowed: 1 or more"),
    ("time_compile.py", ["niid", "-1"], "rounds -1: allowed: 1 or more"),
    ("time_small_rounds.py", ["0"], "repeats 0: allowed: 1 or more"),
    # README.md: AttributeError 'NoneType' object has no attribute 'loader'
    ("chunk_changes.py", ["README.md"], "README.md is no .py file; allowed: the path of an earlier sizing.py"),
    ("probe_split_changes.py", ["README.md"], "README.md is no .py file"),
    # PYTHONPATH=/nowhere: the children measured the installed tallysim as if it were the code asked for
    ("scale_probe_exchange.py", ["--code", "/nonexistent-h22"], "--code /nonexistent-h22: no tallysim package there"),
    # bench's ConfigError traceback
    ("step_program.py", ["--model", "foo"], "bench: unknown model 'foo'; allowed: mlp"),
], ids=["shakespeare-round", "compile", "small-rounds", "chunk", "probe-split", "scale-code", "step-model"])
def test_the_timing_and_comparison_scripts_refuse_bad_arguments_first(monkeypatch, capsys, script, argv, said):
    import subprocess
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("a child started before refusing"))
    monkeypatch.setattr("tallysim.build.build", lambda *a, **k: pytest.fail("built before refusing"))
    code, out = _script(monkeypatch, capsys, script, *argv)
    assert code == 2 and said in out and "Traceback" not in out, out


@pytest.mark.parametrize("script, argv", [("time_shakespeare_round.py", ["1"]), ("time_compile.py", ["demo", "1"]),
                                          ("eval_batch_changes.py", [])], ids=["shakespeare-round", "compile", "eval-batch"])
def test_the_scripts_read_their_configs_beside_themselves(monkeypatch, capsys, tmp_path, script, argv):
    # config.load_file("experiments/demo.json") from the working directory: run from anywhere but the checkout's
    # root, a ConfigError traceback ("config file experiments/demo.json does not exist")
    real = config.load_file

    def read_then_stop(path, *a, **k):
        real(path, *a, **k)
        raise SystemExit(f"read {Path(path).name}")
    monkeypatch.setattr(config, "load_file", read_then_stop)
    monkeypatch.chdir(tmp_path)
    code, out = _script(monkeypatch, capsys, script, *argv)
    assert isinstance(code, str) and code.startswith("read ") and code.endswith(".json"), (code, out)

def test_summary_line_takes_a_row_without_the_ensemble_or_the_wall_time(tmp_path):
    # summary_line(res.config, res.last) of a row read back without acc_ensemble or wall_s (a run written before
    # they were, or a row trimmed by hand) was KeyError 'acc_ensemble'; one without bits_per_peer passed the
    # check that names it and was KeyError 'bits_per_peer'
    row = {"round": 2, "bits_per_peer": 8e6, "acc_mean": 0.5}
    line = metrics.summary_line(config.to_dict(BASE), row)
    assert line == "tally: 2 rounds, 4 peers on synthetic -> accuracy 0.5000 (peer mean 0.5000), 1 MB per peer", line
    full = metrics.summary_line(BASE, {**row, "acc_ensemble": 0.6, "wall_s": 3.0})
    assert "(peer mean 0.5000, ensemble 0.6000), 1 MB per peer, 3.0 s" in full, full
    with pytest.raises(ConfigError, match=r"one metrics row with an accuracy and bits_per_peer"):
        metrics.summary_line(BASE, {"round": 2, "acc_mean": 0.5})


# ----------------------------------------------------------------------------- 6. make: ARGS where no goal reads it

@pytest.mark.parametrize("goal", ["clean", "demo", "bench"])
def test_make_refuses_args_for_a_goal_that_reads_none_before_anything_runs(goal):
    # `make clean ARGS=--dry-run` removed OUT, the venv and the figures (ARGS dropped in silence); `make demo
    # ARGS=--dry-run` ran the three demo runs with --overwrite over OUT/demo
    import shutil
    import subprocess
    if shutil.which("make") is None:
        pytest.skip("no make here")
    root = Path(__file__).resolve().parents[1]
    p = subprocess.run(["make", "--no-print-directory", "-n", goal, "ARGS=--dry-run", f"VENV={sys.prefix}"], cwd=root,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and p.stdout == "", p.stdout
    assert f"ARGS='--dry-run' is not read by {goal}, which would run as if it were not given" in p.stderr, p.stderr
    ok = subprocess.run(["make", "--no-print-directory", "-n", "fig2", "ARGS=--dry-run", f"VENV={sys.prefix}"],
                        cwd=root, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "figure fig2" in ok.stdout and ok.stdout.rstrip().endswith("--dry-run"), ok.stdout
