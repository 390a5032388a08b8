"""Hostile inputs, round 12 (hostile12): the newest features (the blocked vote under other PRNGs, code
identity, installed plugins, file_shapes' label streaming, examples/gatedvote.py, `table --metric`) and
older surfaces less tried (figures named with overrides, ...). Each test names what the input did before
its fix; refusals come before anything runs or compiles.
"""
from __future__ import annotations

import pytest
from conftest import one_line

from tallysim import figures

# ----------------------------------------------------------------------------- figure names


@pytest.fixture
def no_figure_runs(monkeypatch):
    monkeypatch.setattr(figures, "make_figure", lambda *a, **k: pytest.fail("a figure ran before every name was checked"))


@pytest.mark.parametrize("names, expected", [
    # ran fig1's runs (every group), then: "figure 'rounds=3' not found"
    (["fig1", "rounds=3"], "`tallysim figure` takes no key=value overrides; allowed: figure names"),
    (["rounds=3", "fig1"], "to change rounds, write a figure config with \"extends\""),
    # ran fig1 first, then the misspelt second name was refused
    (["fig1", "fgi2"], "figure 'fgi2' not found; allowed: fig1"),
])
def test_every_figure_named_is_checked_before_any_runs(capsys, tmp_path, no_figure_runs, names, expected):
    line = one_line(capsys, ["figure", "--smoke", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "f"),
                             *names])
    assert expected in line
    assert not (tmp_path / "r").exists() and not (tmp_path / "f").exists()


# ----------------------------------------------------------------------------- the compile cache's directory

@pytest.mark.parametrize("var, value, expected", [
    # JAX was handed "~/xc" literally: a directory named `~` in the working directory
    ("TALLYSIM_COMPILE_CACHE", "~/xc", "home/xc"),
    ("XDG_CACHE_HOME", "~/c", "home/c/tallysim/xla"),
    # relative: taken from the working directory when asked, not wherever a later chdir goes
    ("TALLYSIM_COMPILE_CACHE", "rel", "work/rel"),
])
def test_compile_cache_directory_is_expanded_and_absolute(monkeypatch, tmp_path, var, value, expected):
    from tallysim import startup
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for v in ("TALLYSIM_COMPILE_CACHE", "XDG_CACHE_HOME", "JAX_COMPILATION_CACHE_DIR"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv(var, value)
    assert startup.cache_dir_asked() == str(tmp_path / expected)


# ----------------------------------------------------------------------------- model.groups

@pytest.mark.parametrize("written, same_as", [
    # NAME:PEERS[:MODEL][,FIELD=VALUE...] without its optional MODEL: was refused as "group 'b:2,width=8'
    # is not NAME:PEERS[:FIELDS]; expected NAME:PEERS[:MODEL][,FIELD=VALUE...]", the syntax it follows
    ("a:2;b:2,width=8", "a:2;b:2:width=8"),
    ("a:2,optim.lr=0.1;b:2", "a:2:optim.lr=0.1;b:2"),
    ("a:2;b:2,lenet,width=8", "a:2;b:2:lenet,width=8"),
])
def test_groups_without_a_model_take_fields_after_a_comma(written, same_as):
    from tallysim import model_groups
    assert model_groups.parse(written) == model_groups.parse(same_as)


# ----------------------------------------------------------------------------- run's --resume given to sweep, figure

@pytest.mark.parametrize("argv", [["sweep", "--resume", "--out", "x", "optim.lr=0.1,0.2"], ["figure", "--resume", "fig1"]])
def test_resume_given_to_a_sweep_says_how_a_sweep_resumes(capsys, argv):
    # was "unrecognized arguments: --resume (see `tallysim sweep --help`)", which says no more
    line = one_line(capsys, argv)
    assert f"a {argv[0]} resumes without it: run the same command again" in line


# ----------------------------------------------------------------------------- table --metric of counts

@pytest.mark.parametrize("column, value, shown", [
    # were 1024.0000, 2048.0000: a count of bits printed as a score, against the one bits format
    ("final bits_up", 2048.0, "2048"), ("best bits_per_peer", 59.898010199, "59.90"),
    ("final steps_real", 44.0, "44"), ("final wall_s", 39.3781, "39.3781"),
    ("final acc_mean", 0.62834, "0.6283"), ("final", 0.5, "0.5000"),                                  # ok
])
def test_table_metric_columns_of_counts_print_as_counts(column, value, shown):
    from tallysim.results import table
    assert table._cell(value, column) == shown


# ----------------------------------------------------------------------------- a sweep's partial run, config edited

def _sweep_over(capsys, monkeypatch, tmp_path, checkpointed, *items):
    import shutil

    from conftest import RESUMABLE, argv
    from tallysim import run
    out = tmp_path / "sweep"
    shutil.copytree(checkpointed, out / "seed=0")        # stopped after round 2, its checkpoint of round 1
    monkeypatch.setattr(run, "run", lambda *a, **k: pytest.fail("a run started before the sweep was refused"))
    return out, one_line(capsys, ["sweep", "--quiet", "--out", str(out), *argv(*RESUMABLE, *items), "seed=0,1"])


@pytest.mark.parametrize("items, diff", [
    # was "cannot resume (...); running it again": the run started over, its checkpoint and rows gone
    (["rounds=4"], "rounds=3->4"),
    (["optim.lr=0.3"], "optim.lr=0.05->0.3"),
])
def test_a_sweep_refuses_to_restart_a_partial_run_of_another_config(capsys, monkeypatch, tmp_path, checkpointed,
                                                                      items, diff):
    from tallysim import checkpoint
    out, line = _sweep_over(capsys, monkeypatch, tmp_path, checkpointed, *items)
    assert f"seed=0 stopped after round 1 with a checkpoint of another config than this sweep's for it ({diff}" in line
    assert f"or delete {out / 'seed=0' / checkpoint.FILE} to run it again" in line
    assert (out / "seed=0" / checkpoint.FILE).is_file() and not (out / "seed=1").exists()


def test_a_partial_run_of_the_sweeps_own_config_still_continues(tmp_path, checkpointed):
    import shutil

    from conftest import RESUMABLE, tiny
    from tallysim import config, sweep_resume
    shutil.copytree(checkpointed, tmp_path / "seed=0")
    cfg = config.validate(tiny(*RESUMABLE))
    sweep_resume.refuse_lost_checkpoints([("seed=0", [])], [cfg], tmp_path, "done.json")       # ok: it resumes
    with pytest.raises(config.ConfigError, match="another config"):
        sweep_resume.refuse_lost_checkpoints([("seed=0", [])], [config.validate(tiny(*RESUMABLE, "rounds=5"))], tmp_path,
                                              "done.json")


# ----------------------------------------------------------------------------- resume under another JAX generator

@pytest.fixture
def other_generator():
    import jax
    was = jax.config.jax_threefry_partitionable
    jax.config.update("jax_threefry_partitionable", not was)
    yield
    jax.config.update("jax_threefry_partitionable", was)


def test_resume_under_another_random_generator_is_refused(capsys, tmp_path, checkpointed, other_generator):
    # was resumed in silence: the rounds after the checkpoint drew from another generator than those before
    import shutil
    shutil.copytree(checkpointed, tmp_path / "run")
    line = one_line(capsys, ["run", "--quiet", "--out", str(tmp_path / "run"), "--resume"])
    assert "was computed with JAX's random generator JAX_DEFAULT_PRNG_IMPL=threefry2x32 JAX_THREEFRY_PARTITIONABLE=" \
           in line and "allowed: resume with JAX_DEFAULT_PRNG_IMPL=threefry2x32" in line


def test_a_sweep_refuses_to_restart_a_partial_run_of_another_generator(capsys, monkeypatch, tmp_path, checkpointed,
                                                                       other_generator):
    # was "cannot resume (...); running it again": its rounds lost
    from tallysim import checkpoint
    out, line = _sweep_over(capsys, monkeypatch, tmp_path, checkpointed)
    assert "was computed with JAX's random generator" in line and "(or delete it to run seed=0 again)" in line
    assert (out / "seed=0" / checkpoint.FILE).is_file()


# ----------------------------------------------------------------------------- the estimate of a small cohort

@pytest.mark.parametrize("extra", [[], ["vote.weighting=history"]])
def test_the_estimates_probe_outputs_are_the_cohorts(extra):
    # were all `peers`' (the per-seed estimate after the build counted the active ones): a cohort of 2 of
    # 10^5 clients estimated at 512 MB of probe outputs
    from conftest import tiny
    from tallysim import sizing

    def outputs(*items):
        return dict((what, b) for what, b, _ in sizing.estimate_bytes(tiny(*items, *extra)))["the probe outputs"]
    assert outputs("peers=1000", "participation=0.002", "partition.min_size=1") == outputs("peers=2")
    assert outputs("peers=1000", "partition.min_size=1") > outputs("peers=2")                                # ok
