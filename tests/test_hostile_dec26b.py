"""Hostile inputs, round 23 (hostile23): `figure --only/--panel`, the text configs (vocabularies, model sizes,
per-token vote knobs), populations of 10^5 clients and their cohorts, model groups written as JSON, plugins,
config files (duplicate keys, huge numbers, booleans), TALLYSIM_* variables and `table`/`pareto`/`plot` over
hand-edited results, resumes over edited run folders. About 600 inputs were tried; those that misbehaved are here, each test naming what the
input did before its fix. Nothing here trains or compiles: refusals come first (`no_compile`), and the runs
the readers read are written by hand. Milliseconds each.
"""
from __future__ import annotations

import json
import re

import pytest
from conftest import TINY, one_line

from tallysim import cli, config, startup, validation  # noqa: F401  (before jit is patched)
from tallysim.config import ConfigError
from tallysim.results import metrics
from conftest import TINY_FIGURE

BASE = config.apply_overrides(config.Config(), TINY)


def _run(path, rows: str):
    """A finished run directory written by hand: its marker, config.json and metrics.jsonl's text."""
    path.mkdir(parents=True)
    (path / ".tallysim-run").write_text(json.dumps({"written_by": "tallysim"}))
    (path / "config.json").write_text(json.dumps(config.to_dict(BASE)))
    (path / "metrics.jsonl").write_text(rows)
    return path


# ----------------------------------------------------------------------------- 1. the results readers

BIG = "1" + "0" * 400           # an integer past a float's range, as a hand edit or another tool leaves it


@pytest.mark.parametrize("row, said", [
    ('{"round": 1, "bits_per_peer": %s, "acc_mean": 0.5}' % BIG, r"bits_per_peer=inf must be a finite number"),
    ('{"round": 1, "bits_per_peer": -%s, "acc_mean": 0.5}' % BIG, r"bits_per_peer=-inf must be a finite number"),
    ('{"round": 1, "bits_per_peer": 1, "acc_mean": %s}' % BIG, r"acc_mean=inf must be a finite number"),
    ('{"round": %s, "bits_per_peer": 1, "acc_mean": 0.5}' % BIG, r"round=inf must be an integer"),
], ids=["bits", "minus_bits", "acc", "round"])
def test_a_row_holding_an_integer_past_a_floats_range_is_refused_naming_its_column(tmp_path, capsys, row, said):
    # OverflowError: int too large to convert to float, a traceback from `table`, `pareto`, `plot` and
    # metrics.read_rows (math.isfinite of the column)
    run = _run(tmp_path / "runs" / "a", row + "\n")
    with pytest.raises(ConfigError, match=rf"metrics.jsonl line 1: {said}"):
        metrics.read_rows(run)
    assert said.split("=")[0] in one_line(capsys, ["plot", str(run), "--out", str(tmp_path / "f.png")])
    assert cli.main(["table", str(tmp_path / "runs")]) == 2
    assert "no readable run" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("key, value", [("acc_mean", 2.0), ("acc_mean", -0.1), ("acc_global", 50)])
def test_a_row_whose_accuracy_is_no_fraction_is_refused(tmp_path, capsys, key, value):
    # acc_mean=2.0 (or a percent, 50) was tabled, drawn and put on a Pareto front as it stood
    row = {"round": 1, "bits_per_peer": 1.0, "acc_mean": 0.5, key: value}
    run = _run(tmp_path / "a", json.dumps(row) + "\n")
    with pytest.raises(ConfigError, match=rf"line 1: {key}={value!r} is not an accuracy; allowed: a fraction in "
                                          r"\[0, 1\]"):
        metrics.read_rows(run)
    assert "is not an accuracy" in one_line(capsys, ["plot", str(run), "--out", str(tmp_path / "f.png")])
    assert metrics.read_rows(_run(tmp_path / "b", json.dumps({**row, key: 1}) + "\n"))[0][key] == 1   # the control


def test_a_large_integer_a_float_holds_is_still_read(tmp_path):
    # the control: 10**30 bits is a number a float holds, read as before
    run = _run(tmp_path / "a", '{"round": 1, "bits_per_peer": 1%s, "acc_mean": 0.5}\n' % ("0" * 30))
    assert metrics.read_rows(run)[0]["bits_per_peer"] == 10 ** 30


# ----------------------------------------------------------------------------- 2. an empty data.path

@pytest.mark.parametrize("source", ["command_line", "config_file"])
def test_an_empty_data_path_is_refused_not_taken_as_unset(tmp_path, capsys, no_compile, source):
    # data.path='' trained on the prepared cache, the path given never read, where log.tensorboard='' was
    # refused; data.name=files said "needs data.path=DIR" of the path that had been given
    items = [*TINY, "data.name=fashion_mnist", "data.train_size=12000", "data.test_size=2000", "data.difficulty=1"]
    if source == "command_line":
        argv = ["run", *items, "data.path=", "--out", str(tmp_path / "o")]
    else:
        (tmp_path / "c.json").write_text(json.dumps({"data": {"path": ""}}))
        argv = ["run", "--config", str(tmp_path / "c.json"), *items, "--out", str(tmp_path / "o")]
    line = one_line(capsys, argv)
    assert line.endswith("data.path='' is empty; allowed: a directory of IDX files (or with one .npz file), an "
                         ".npz file, or none") and not (tmp_path / "o").exists()
    assert "log.tensorboard='' is empty; allowed: a directory or none" in one_line(
        capsys, ["run", *TINY, "log.tensorboard=", "--out", str(tmp_path / "o")])


# ----------------------------------------------------------------------------- 3. an LSTM's embedding

@pytest.mark.parametrize("items, lower", [
    (["model.name=lstm", "model.embed=100000000"], "lower model.embed, model.hidden, model.layers, peers"),
    (["model.groups=a:2:lstm,embed=100000000;b:2:transformer,hidden=16"],
     "lower model.groups group a's embed, hidden, layers, peers"),
    # the control: a transformer reads no model.embed, and is not told to lower it
    (["model.name=transformer", "model.hidden=100000"], "lower model.hidden, model.layers, peers"),
], ids=["lstm", "lstm_group", "transformer"])
def test_a_text_model_too_big_by_its_embedding_names_model_embed(items, lower):
    # an LSTM of model.embed=10**8 (7 TB) was told "lower model.hidden, model.layers, peers", the two fields
    # that were at their defaults, and not the one that made it large
    cfg = config.apply_overrides(config.Config(), ["data.name=shakespeare", "partition.kind=natural", "peers=4",
                                                   *items])
    with pytest.raises(ConfigError, match="more than this machine") as e:
        validation.check_memory(cfg, limit=10 * 10 ** 9)
    assert str(e.value).endswith(lower)


# ----------------------------------------------------------------------------- 4. model.groups as JSON

@pytest.mark.parametrize("entry, said", [
    ({"name": "a", "peers": 2, "model": "mlp"},
     r'"model"=\'mlp\' is not an object; allowed: an object of model.\* fields, e.g. "model": \{"name": "mlp"'),
    ({"name": "a", "peers": 2, "optim": 0.1}, r'"optim"=0.1 is not an object; allowed: an object of optim.\* fields'),
    ({"name": "a", "peers": 2, "width": 8}, r"width is not a key of a group; allowed keys are name, peers, model"),
], ids=["model_string", "optim_number", "unknown_key"])
def test_a_json_group_whose_model_is_a_string_is_told_so(entry, said):
    # "model": "mlp" (the string syntax's :MODEL) was told "allowed keys are name, peers, model (...)",
    # which it had used, not that the value must be an object
    with pytest.raises(ConfigError, match=said):
        config.from_dict({"peers": 4, "model": {"groups": [entry, {"name": "b", "peers": 2}]}})


# ----------------------------------------------------------------------------- 5. the compile cache's folder

def _unmakeable(tmp_path) -> str:
    """A folder no one can make: a component longer than the file system's 255 bytes."""
    return str(tmp_path / ("x" * 300) / "xla")


def test_a_compile_cache_folder_that_cannot_be_made_is_refused(tmp_path, monkeypatch):
    # TALLYSIM_COMPILE_CACHE=/proc/nope compiled every program uncached under JAX's own UserWarning (its
    # source line, then `warnings.warn(`), after the run had started
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("TALLYSIM_COMPILE_CACHE", _unmakeable(tmp_path))
    with pytest.raises(ConfigError, match=r"TALLYSIM_COMPILE_CACHE='.*': cannot make it: .*; allowed: a directory "
                                          r"tallysim can write \(made if missing\), or 0 to turn the cache off"):
        startup.cache_dir_asked()
    monkeypatch.setenv("TALLYSIM_COMPILE_CACHE", str(tmp_path / "ok" / "xla"))   # the control: made, used
    assert startup.cache_dir_asked() == str(tmp_path / "ok" / "xla") and (tmp_path / "ok" / "xla").is_dir()


def test_a_default_compile_cache_that_cannot_be_made_is_a_warning_and_no_cache(tmp_path, monkeypatch, capsys):
    # the default place under an XDG_CACHE_HOME (or HOME) that cannot hold it: JAX's UserWarning, as above
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("TALLYSIM_COMPILE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", _unmakeable(tmp_path))
    assert startup.cache_dir_asked() is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tallysim: warning: the compile cache ") and \
        "compiling without it (set TALLYSIM_COMPILE_CACHE to a directory you can write, or 0)" in err[0]


# ----------------------------------------------------------------------------- 6. a figure's run folders

# two groups of one run each (test_figure_only_dec25i's tiny figure, one panel)
FIGURE = TINY_FIGURE


def _later_group_blocked(tmp_path, how: str):
    """The figure file, and its results folder with the later group's (tally's) run folder unusable."""
    from tallysim import figures
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(FIGURE))
    _, _, spec, _, _ = figures.preflight(str(path), False, None, None)
    (run, _), = figures.group_plans(spec, False, tmp_path)["tally"][1]
    group = tmp_path / "res" / "tiny" / "tally"
    group.mkdir(parents=True)
    if how == "file":
        (group / run).write_text("mine")
    elif how == "foreign":
        (group / run).mkdir()
        (group / run / "notes.txt").write_text("mine")
    elif how == "index":
        (group / "sweep.json").write_text("{")
    return str(path), group


@pytest.mark.parametrize("how, said", [
    ("file", r"is not a plain directory; move it away or choose another --results"),
    ("foreign", r"holds files tallysim did not write \(notes.txt\); move them away or choose another --results"),
    ("index", r"its sweep.json is not a sweep index"),
])
@pytest.mark.parametrize("dry", [True, False], ids=["dry_run", "run"])
def test_a_later_groups_unusable_folder_is_refused_before_the_first_group_runs(tmp_path, capsys, no_compile,
                                                                                how, said, dry):
    # a file (or a folder of the user's, or a damaged sweep.json) where group tally's run goes: `figure`
    # trained group fedavg first (hours at full size) and refused only on reaching tally, and `figure
    # --dry-run` passed it; the line said "--out" of the figure's --results
    path, group = _later_group_blocked(tmp_path, how)
    line = one_line(capsys, ["figure", path, "--results", str(tmp_path / "res"), "--out", str(tmp_path / "fig"),
                             "--quiet", *(["--dry-run"] if dry else [])])
    assert line.startswith("tallysim: error: figure group 'tally': ")
    assert re.search(said, line), line
    assert not (tmp_path / "res" / "tiny" / "fedavg").exists() and not (tmp_path / "fig").exists()
    assert how != "foreign" or next(group.iterdir()).joinpath("notes.txt").read_text() == "mine"


@pytest.mark.parametrize("flag", ["--out", "--results"])
def test_a_figure_folder_under_a_file_is_refused_by_the_dry_run_too(tmp_path, capsys, flag):
    # `figure --dry-run --out /dev/null/x` passed; the real run refused it at its mkdir
    path, _ = _later_group_blocked(tmp_path, "none")
    (tmp_path / "plain").write_text("a file")
    where = {"--out": str(tmp_path / "fig"), "--results": str(tmp_path / "res"), flag: str(tmp_path / "plain" / "x")}
    line = one_line(capsys, ["figure", path, "--results", where["--results"], "--out", where["--out"], "--dry-run"])
    assert line.endswith(f"{flag} {tmp_path / 'plain' / 'x'}: {tmp_path / 'plain'} is a file, not a directory; "
                         "allowed: a directory")


# ----------------------------------------------------------------------------- 7. make_figure's own arguments

@pytest.mark.parametrize("kw, said", [
    ({"out": None}, r"make_figure\(out=None\): allowed: a directory as a str or pathlib.Path"),
    ({"results": None}, r"make_figure\(results=None\): allowed: a directory"),
    ({"grouped": "no"}, r"make_figure\(grouped='no'\): expected True or False"),
    ({"progress": "yes"}, r"make_figure\(progress='yes'\): expected True or False"),
    ({"checkpoint_every": -1}, r"make_figure\(checkpoint_every=-1\): allowed None \(every few minutes\), 0 \(never\)"),
    ({"checkpoint_every": 1.5}, r"make_figure\(checkpoint_every=1.5\): allowed None"),
    ({"log": None}, r"make_figure\(log=None\): NoneType; allowed: a function of one line"),
], ids=["out_none", "results_none", "grouped_str", "progress_str", "every_negative", "every_float", "log_none"])
def test_make_figure_refuses_its_own_arguments_before_anything(tmp_path, no_compile, kw, said):
    # out=None: a TypeError from inside pathlib; grouped="no" (truthy) ran the groups grouped; checkpoint_every=-1
    # was refused as run_sweep(checkpoint_every=-1), a function the caller never named, after the figure's folder
    # was made; log=None a TypeError at the first line
    from tallysim import figures
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(FIGURE))
    args = {"results": str(tmp_path / "res"), "out": str(tmp_path / "fig"), "progress": False, "log": lambda m: None,
            **kw}
    with pytest.raises(ConfigError, match=said):
        figures.make_figure(str(path), **args)
    assert not (tmp_path / "res").exists() and not (tmp_path / "fig").exists()


# ----------------------------------------------------------------------------- 8. `~user` of no such user

NOUSER = "~tallysim-no-such-user-h23"


@pytest.mark.parametrize("argv, said", [
    (["plot", f"{NOUSER}/runs/a", "--out", "f.png"], f"{NOUSER}/runs/a does not exist"),
    (["run", "data.name=files", f"data.path={NOUSER}/d", "peers=4", "--out", "o"], f"data.path={NOUSER}/d does not exist"),
], ids=["plot", "data_path"])
def test_a_tilde_of_no_such_user_is_left_as_a_shell_leaves_it(argv, said, tmp_path, monkeypatch, capsys, no_compile):
    # pathlib's expanduser raised RuntimeError("Could not determine home directory.") for `~name` of no user:
    # a traceback from `plot`, data.path's check, Results.read and the readers, where os.path (and a shell)
    # leave the path as it is, and `table` already said "does not exist"
    monkeypatch.chdir(tmp_path)
    assert said in one_line(capsys, argv)


def test_the_python_readers_take_a_tilde_of_no_such_user_as_a_plain_path():
    import tallysim
    from pathlib import Path
    from tallysim.fields import home
    with pytest.raises(ConfigError, match=f"{NOUSER}/x does not exist"):
        tallysim.Results.read(f"{NOUSER}/x")
    with pytest.raises(ConfigError, match=f"{NOUSER}/x does not exist"):
        metrics.read_rows(Path(f"{NOUSER}/x"))
    assert home(Path(f"{NOUSER}/x")) == Path(f"{NOUSER}/x") and home("~/x") != "~/x"   # the control: ~ is the home


# ----------------------------------------------------------------------------- 9. TALLYSIM_DATA under a file

def test_tallysim_data_under_a_file_is_refused(tmp_path, monkeypatch, capsys, no_compile):
    # TALLYSIM_DATA=/etc/passwd/x: the run went on from Debian's files, nothing read from it or cached in it, no
    # word, where TALLYSIM_DATA=/etc/passwd itself was refused (test_hostile_dec12)
    (tmp_path / "data").write_text("not a directory")
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path / "data" / "cache"))
    line = one_line(capsys, ["run", "peers=2", "rounds=1", "data.max_train=100", "--out", str(tmp_path / "o")])
    assert line.endswith(f"TALLYSIM_DATA={tmp_path / 'data' / 'cache'} is under the file {tmp_path / 'data'}, not a "
                         "directory; allowed: the directory that holds (or will hold) the prepared datasets, e.g. "
                         "~/.cache/tallysim (the default, when unset)"), line
    assert not (tmp_path / "o").exists()
