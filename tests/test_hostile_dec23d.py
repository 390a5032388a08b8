"""Hostile inputs, round 20 (hostile20): what users type most (run/sweep/figure/table/plot/pareto paths and
their combinations), configs written by hand as JSON, the Python API from a notebook, and the environment.
Each test names what the input did before its fix; refusals come before anything compiles (`no_compile`).
Milliseconds each: no test here trains or compiles anything.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY, one_line

from tallysim import build, cli, config, sweep, validation  # noqa: F401  (before jit is patched)
from tallysim.fields import ConfigError

FIG2 = Path(__file__).resolve().parent.parent / "experiments" / "fig2.json"
TB = [t for t in TINY if not t.startswith("peers=")]      # TINY for a sweep over peers


def _run_dir(path):
    """A finished-looking run directory: tallysim's marker is what every check reads."""
    path.mkdir(parents=True)
    (path / ".tallysim-run").write_text(json.dumps({"written_by": "tallysim"}))
    return path


def _sweep_dir(path):
    """A sweep's --out: its index (an object with a `runs` list) and one run."""
    path.mkdir(parents=True)
    (path / "sweep.json").write_text(json.dumps({"axes": ["peers=2,3"], "runs": [{"name": "peers=2"}]}))
    _run_dir(path / "peers=2")
    return path


# ----------------------------------------------------------------------------- paths users type

@pytest.mark.parametrize("argv, suggested", [
    (["table", "{run}", "--out", "{run}"], "r1-table.md"),
    (["plot", "{run}", "--out", "{run}"], "r1-figure.png"),
    (["pareto", "{run}", "--out", "{run}"], "r1-figure.png"),
], ids=["table", "plot", "pareto"])
def test_an_out_that_is_a_run_directory_is_told_a_file_beside_the_run(argv, suggested, tmp_path, capsys, no_compile):
    # `table runs/a --out runs/a` was told "give a file such as runs/a/table.md", which the next try
    # refused as inside the run directory: the suggestion is a file beside the run now
    run = _run_dir(tmp_path / "r1")
    line = one_line(capsys, [a.format(run=run) for a in argv])
    assert f"is a directory; give a" in line and str(tmp_path / suggested) in line, line
    assert str(run / "table.md") not in line and str(run / "figure.png") not in line
    other = tmp_path / "plain"
    other.mkdir()       # any other folder keeps the file inside it
    assert str(other / "table.md") in one_line(capsys, ["table", str(run), "--out", str(other)])


@pytest.mark.parametrize("argv", [
    ["run", "--out", "{s}/new", *TINY],
    ["run", "--out", "{s}/peers=2", "--overwrite", *TINY],
    ["sweep", "--out", "{s}/sub", "--dry-run", *TINY],
    ["figure", "fig2", "--results", "{s}", "--out", "{tmp}/figs", "--dry-run"],
], ids=["run-new", "run-overwrite-member", "sweep-inside", "figure-results"])
def test_runs_named_into_a_sweeps_folder_are_refused(argv, tmp_path, capsys, no_compile):
    # `run --out SWEEP/x` and `figure --results SWEEP` put runs among the sweep's own (its table listed a
    # figure's groups as its runs), and `run --out SWEEP/peers=2 --overwrite` replaced the sweep's run with
    # another config under the sweep's name for it, all in silence
    s = _sweep_dir(tmp_path / "s")
    line = one_line(capsys, [a.format(s=s, tmp=tmp_path) for a in argv])
    assert f"the sweep directory {s}" in line and "allowed: a directory outside any sweep's --out" in line, line
    assert sorted(p.name for p in s.iterdir()) == ["peers=2", "sweep.json"]


def test_the_python_api_refuses_a_sweeps_folder_too(tmp_path, no_compile):
    import tallysim
    s = _sweep_dir(tmp_path / "s")
    with pytest.raises(ConfigError, match=r"out .*/s/x is inside the sweep directory"):
        tallysim.run(config.apply_overrides(config.Config(), TINY), out=str(s / "x"))
    assert not (s / "x").exists()


def test_a_run_config_that_is_a_figures_is_told_so_first(tmp_path, capsys, no_compile):
    # `run --config experiments/fig2.json` said "use `tallysim sweep --config fig2.json`", which refuses
    # it as a figure config
    line = one_line(capsys, ["run", "--out", str(tmp_path / "o"), "--config", str(FIG2)])
    assert "is a figure config" in line and "tallysim figure" in line and "sweep --config" not in line, line


# ----------------------------------------------------------------------------- sweep axes and figure groups

def test_figure_groups_that_differ_only_in_case_are_refused(tmp_path, capsys, no_compile):
    # groups "tally" and "Tally" wrote results/<figure>/tally/ and .../Tally/: one folder on macOS
    spec = {"kind": "final_vs", "x": "partition.alpha", "title": "t",
            "base": {"data": {"name": "synthetic"}, "peers": 2, "rounds": 1},
            "groups": {"tally": {"protocol": {"name": "tally"}}, "Tally": {"protocol": {"name": "fedavg"}}},
            "sweep": {"partition.alpha": [0.1, 1]}}
    f = tmp_path / "f.json"
    f.write_text(json.dumps(spec))
    line = one_line(capsys, ["figure", str(f), "--results", str(tmp_path / "r"), "--dry-run"])
    assert "figure groups 'tally' and 'Tally' differ only in case" in line, line


def test_a_case_only_sweep_collision_names_the_two_values_not_every_item():
    # the message held both runs' whole dicts, a dozen base items each, around the two colliding values
    with pytest.raises(ConfigError) as e:
        sweep.expand({}, TB + ["peers=2", "protocol.name=tally,TALLY"])
    assert str(e.value).startswith("sweep runs 'protocol.name=tally' and 'protocol.name=TALLY' (their directories' "
                                   "names) differ only in case"), str(e.value)
    assert "data.train_size" not in str(e.value)


@pytest.mark.parametrize("section, said", [
    ({"protocol.name": ["tally"], "protocol.name ": ["fedavg"]}, "gives protocol.name twice"),
    ({"model.groups": ["a:1;b:1", " a:1; b:1"]}, "lists a:1;b:1 twice"),
    ({"data.name": ["synthetic", "synthetic "]}, "lists synthetic twice"),
], ids=["key-with-space", "groups-spacing", "value-with-space"])
def test_a_sweep_file_axis_or_value_given_twice_in_other_spacing_is_refused(section, said, tmp_path, capsys,
                                                                          no_compile):
    # "protocol.name " (a trailing space) replaced the "protocol.name" axis: the tally run vanished; values
    # that differ only in spaces (read stripped when the run is built) ran one experiment twice
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"peers": 2, "sweep": section}))
    line = one_line(capsys, ["sweep", "--config", str(f), "--out", str(tmp_path / "s"), "--dry-run", *TB])
    assert said in line, line


def test_model_groups_given_as_an_empty_list_is_named_as_written():
    # was "model.groups='' is empty", a string never written
    with pytest.raises(ConfigError, match=r"model.groups=\[\] is an empty list; allowed: a list of group objects"):
        config.from_dict({"model": {"groups": []}}, where="c.json")


# ----------------------------------------------------------------------------- the Python API

def test_config_replace_of_a_file_key_says_it_is_one():
    import tallysim
    # was "unknown config key 'smoke.rounds'; did you mean rounds or model.groups?"
    with pytest.raises(ConfigError, match=r"unknown config key 'smoke'; smoke is a config file's own key"):
        tallysim.Config().replace(smoke={"rounds": 1})


def test_reading_a_run_that_does_not_exist_or_a_row_without_its_bits(tmp_path):
    import tallysim
    # a missing folder was "has no metrics.jsonl", as if a folder were there
    with pytest.raises(ConfigError, match=r"/nope does not exist; pass directories written by"):
        tallysim.Results.read(tmp_path / "nope")
    run = _run_dir(tmp_path / "r")
    (run / "metrics.jsonl").write_text('{"round": 1, "acc_mean": 0.5}\n')
    # was "bits_per_peer=None must be a finite number", a value the row never held
    with pytest.raises(ConfigError, match=r"metrics.jsonl line 1 has no bits_per_peer"):
        tallysim.Results.read(run)


# ----------------------------------------------------------------------------- the environment

@pytest.mark.parametrize("var, value", [("TALLYSIM_NO_DEBIAN", "2"), ("TALLYSIM_NO_AUTO_PREPARE", "maybe"),
                                        ("TALLYSIM_PALLAS_INTERPRET", "sure")])
def test_an_on_off_variable_set_to_nonsense_is_refused_before_anything_runs(var, value, tmp_path, capsys,
                                                                            monkeypatch, no_compile):
    # NO_DEBIAN=2 and NO_AUTO_PREPARE=maybe counted as on, in silence, and read only where they mattered
    monkeypatch.setenv(var, value)
    line = one_line(capsys, ["run", "--out", str(tmp_path / "o"), *TINY])
    assert f"{var}={value!r}: allowed 1 (or true, yes, on)" in line, line
    assert not (tmp_path / "o").exists()


def test_pallas_interpret_reads_on_as_the_other_flags_do(monkeypatch):
    # TALLYSIM_PALLAS_INTERPRET=yes (or true) was off: only "1" was on there, where NO_DEBIAN=yes was on
    from tallysim.sim import conv_pallas
    for value, on in (("yes", True), ("true", True), ("1", True), ("0", False), ("", False), ("off", False)):
        monkeypatch.setenv("TALLYSIM_PALLAS_INTERPRET", value)
        assert conv_pallas.interpret_requested() is on, value


def test_a_sweep_into_a_home_or_the_working_directory_is_refused(tmp_path, capsys, monkeypatch, no_compile):
    # `sweep --out ~` wrote sweep.json, its lock and base/ among the home's files (`run --out ~` is refused);
    # `sweep --out .` in a checkout, the same into the checkout's root
    home, work = tmp_path / "home", tmp_path / "work"
    for d in (home, work):
        d.mkdir()
        (d / "notes.txt").write_text("mine")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    for out, why in ((str(home), "it is a home directory or above one"),
                     (".", "it is the working directory or a directory above it")):
        line = one_line(capsys, ["sweep", "--out", out, "--dry-run", *TINY])
        assert f"refusing to use {out} for a sweep: {why}" in line, line
    assert [p.name for p in home.iterdir()] == ["notes.txt"] == [p.name for p in work.iterdir()]
    (work / "sweep.json").write_text(json.dumps({"runs": []}))    # inside a sweep's own folder: it continues it
    assert cli.main(["sweep", "--out", ".", "--dry-run", *TINY]) == 0


def test_a_sweep_run_name_too_long_says_it_is_made_of_the_values():
    # eight 40-character group names: "sweep run '...' is not allowed as a directory name: use one plain name
    # of 1..200 bytes", a name the user never gave
    groups = ";".join(f"g{i:038d}:1" for i in range(8))
    with pytest.raises(ConfigError, match=r"is 348 bytes, its directory's name made of the values of its axes "
                                          r"\(model.groups\); allowed: at most 200 bytes: shorter values"):
        sweep.expand({}, [f"model.groups={groups},none"])
