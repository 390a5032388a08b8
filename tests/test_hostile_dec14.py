"""Hostile inputs, round 9 (hostile9): the results layer over odd directories (links, runs named twice,
a failed run, mixed datasets, files beside an --out), the Python API's `table(out=...)`, figure config
files of one name, a config file's sweep axis holding lists, and `prepare --path` at odd data. Each test
names what the input did before its fix; none compiles a program.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tallysim import cli, config, outdir
from tallysim.config import ConfigError
from tallysim.data import DataError
from tallysim.data.base import checked
from tallysim.results import metrics, pareto, table as table_mod
from tallysim.results.runs import read_rows
import tallysim.run  # noqa: F401,E402 - its modules' jax.jit decorators run before `no_compile` patches jit


def _run(d: Path, rounds=(1, 2), want: int = 2, protocol: str = "tally", data: str = "synthetic") -> Path:
    """A run directory written by hand (its marker, config.json, rows at `rounds` of `want`)."""
    d = outdir.claim(d, False)
    (d / "config.json").write_text(json.dumps({"protocol": {"name": protocol}, "rounds": want,
                                               "data": {"name": data}}))
    (d / "metrics.jsonl").write_text("".join(json.dumps({"round": r, "acc_mean": 0.5 + r / 100, "acc_global": None,
                                                         "bits_per_peer": 512.0 * r}) + "\n" for r in rounds))
    return d


def _err(capsys, argv) -> tuple:
    code = cli.main(argv)
    return code, capsys.readouterr().err


# ----------------------------------------------------------------------------- table(out=...) from Python

@pytest.mark.parametrize("out, fmt, expected", [
    # was: the run's rows replaced by a markdown table (the command refused it; the API did not check)
    ("run/metrics.jsonl", None, r"inside the tallysim run directory .*would replace its metrics.jsonl"),
    ("run/notes.md", None, r"inside the tallysim run directory"),
    # was: markdown written under a spreadsheet's or a CSV's name
    ("t.xlsx", None, r"table writes markdown or CSV, not .xlsx"),
    ("t.md", "csv", r"--format csv with --out .*t.md, a markdown file's name"),
    ("run", None, r"is a directory; give a file"),
])
def test_table_out_from_python_refuses_what_the_command_refuses(out, fmt, expected, tmp_path):
    d = _run(tmp_path / "run")
    before = (d / "metrics.jsonl").read_bytes()
    with pytest.raises(ConfigError, match=expected):
        table_mod.table(str(d), fmt=fmt, out=str(tmp_path / out))
    assert (d / "metrics.jsonl").read_bytes() == before


def test_table_out_from_python_takes_its_format_from_the_name(tmp_path):
    d = _run(tmp_path / "run")
    table_mod.table(d, out=tmp_path / "t.csv")                    # ok: CSV, as `--out t.csv` writes
    assert (tmp_path / "t.csv").read_text().startswith("run,")
    assert table_mod.table(d).startswith("| run |")                   # ok: markdown on its own


# ----------------------------------------------------------------------------- files beside an --out

@pytest.mark.parametrize("command, beside", [
    ("plot", "mine.csv"),                       # was: the user's mine.csv replaced by the points drawn
    ("pareto", "mine_points.csv"),              # was: replaced by pareto's tables
    ("pareto", "mine_frontier.md"),
])
def test_a_users_file_beside_the_figure_is_not_replaced(command, beside, tmp_path, capsys):
    d = _run(tmp_path / "run")
    (tmp_path / beside).write_text("my,own\n1,2\n")
    code, err = _err(capsys, [command, str(d), "--out", str(tmp_path / "mine.png")])
    assert code == 2 and f"{beside} exists but is not a file this command wrote" in err, err
    assert (tmp_path / beside).read_text() == "my,own\n1,2\n"
    assert not (tmp_path / "mine.png").exists()


@pytest.mark.parametrize("command", ["plot", "pareto"])
def test_a_figure_drawn_again_replaces_its_own_tables(command, tmp_path, capsys):
    d = _run(tmp_path / "run")
    argv = [command, str(d), "--out", str(tmp_path / "fig.png")]
    assert cli.main(argv) == 0 and cli.main(argv) == 0          # ok: the second replaces the first's files


# ----------------------------------------------------------------------------- odd run directories

def test_links_to_runs_are_found(tmp_path, capsys):
    """Was 'no run directories (with metrics.jsonl) under coll' for a folder of links to runs."""
    a, b = _run(tmp_path / "runs" / "a"), _run(tmp_path / "runs" / "b", protocol="fedavg")
    coll = tmp_path / "coll"
    coll.mkdir()
    (coll / "a").symlink_to(a)
    (coll / "b").symlink_to(b)
    (coll / "up").symlink_to(tmp_path)          # a loop: each real directory is walked once
    rows = read_rows(coll)
    assert sorted({r["run"] for r in rows}) == ["a", "b"]
    assert [r["run"] for r in table_mod.table_rows([coll])[1]] == ["a", "b"]


def test_plot_refuses_a_run_named_twice(tmp_path, capsys):
    """Was two identical lines under one legend entry, and each --label after it shifted one run on."""
    d = _run(tmp_path / "run")
    code, err = _err(capsys, ["plot", str(d), str(tmp_path / "." / "run"), "--out", str(tmp_path / "p.png")])
    assert code == 2 and "is given twice" in err, err


def test_plot_says_when_a_run_it_draws_failed_or_stopped(tmp_path, capsys):
    """Was drawn as a shorter line without a word (table: "failed"; pareto left it out, saying so)."""
    done, failed = _run(tmp_path / "done"), _run(tmp_path / "failed", rounds=(1,), want=3)
    (failed / metrics.ERROR).write_text("boom\n")
    stopped = _run(tmp_path / "stopped", rounds=(1,), want=3)
    code, err = _err(capsys, ["plot", str(done), str(failed), str(stopped), "--out", str(tmp_path / "p.png")])
    assert code == 0
    assert f"{failed} reached round 1 of 3 (failed:" in err and f"{stopped} reached round 1 of 3 (stopped" in err
    assert str(done) + " " not in err


def test_pareto_over_two_datasets_warns(tmp_path, capsys):
    """One frontier per protocol was drawn over runs of different datasets in silence."""
    _run(tmp_path / "d" / "a")
    _run(tmp_path / "d" / "b", data="fashion_mnist")
    logged = []
    pareto.collect([tmp_path / "d"], log=logged.append)
    assert any("2 datasets (fashion_mnist, synthetic)" in m for m in logged), logged
    logged.clear()
    pareto.collect([tmp_path / "d" / "a"], log=logged.append)        # ok: one dataset
    assert logged == []


# ----------------------------------------------------------------------------- figure configs

def _figure(path: Path, rounds: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"kind": "curves", "base": {"rounds": rounds},
                                "groups": {"t": {"protocol": {"name": "tally"}}}}))
    return path


def test_two_figure_files_of_one_name_are_refused(tmp_path, capsys):
    """Was: the second skipped the first's runs as its own (a note), drew them, and replaced its figure."""
    a, b = _figure(tmp_path / "a" / "x.json"), _figure(tmp_path / "b" / "x.json", rounds=3)
    code, err = _err(capsys, ["figure", "--dry-run", str(a), str(b), "--results", str(tmp_path / "R")])
    assert code == 2 and "are two files of one name, 'x'" in err, err
    assert not (tmp_path / "R").exists()


def test_a_figure_config_without_kind_says_it_has_none(tmp_path, capsys):
    """Was "kind=None is not known"."""
    f = tmp_path / "f.json"
    f.write_text(json.dumps({"base": {"rounds": 2}, "groups": {"t": {"protocol": {"name": "tally"}}}}))
    code, err = _err(capsys, ["figure", "--dry-run", str(f)])
    assert code == 2 and "has no `kind`" in err and "kind=None" not in err, err


# ----------------------------------------------------------------------------- sweep axes in a config file

@pytest.mark.parametrize("axis, expected", [
    ({"optim.lr": [[0.1, 0.2]]}, r"optim.lr=\[0.1, 0.2\] is a list; expected a number"),   # was '0.1x0.2'
    ({"optim.lr": [[0.1], 0.2]}, r"optim.lr=\[0.1\] is a list"),                          # was: ran 0.1
    ({"peers": [[4]]}, r"peers=\[4\] is a list; expected an integer"),
    ({"protocol.name": [["tally"]]}, r"is a list; expected a string"),
])
def test_a_list_inside_a_sweep_axis_of_a_one_value_field_is_refused(axis, expected):
    from tallysim import sweep_axes
    with pytest.raises(ConfigError, match=expected):
        sweep_axes.file_axes(axis)


def test_a_shape_axis_still_takes_lists():
    from tallysim import sweep_axes
    assert sweep_axes.file_axes({"data.input_shape": [[28, 28, 1], [8, 8]]}) == {"data.input_shape": ["28x28x1", "8x8"]}
    assert sweep_axes.file_axes({"optim.lr": [0.1, 0.2]}) == {"optim.lr": ["0.1", "0.2"]}


# ----------------------------------------------------------------------------- prepare --path

def _arrays(y_train, y_test):
    r = np.random.default_rng(0)
    return dict(x_train=r.integers(0, 256, (len(y_train), 4, 4), dtype=np.uint8), y_train=np.array(y_train),
                x_test=r.integers(0, 256, (len(y_test), 4, 4), dtype=np.uint8), y_test=np.array(y_test))


def test_a_test_label_in_a_gap_of_the_training_labels_is_refused():
    """IDX training labels all 200, test labels 0..9: prepared, and the run's accuracy was 0.0 in silence."""
    with pytest.raises(DataError, match=r"test labels in d include 2 class\(es\) no training example has \(0, 1; "
                                        r"first in test example 0, label 0\); the training labels are 1 class\(es\): 5"):
        checked("d", **_arrays([5, 5, 5], [0, 1, 5]), where="d")
    with pytest.raises(DataError, match=r"include 1 class\(es\) no training example has \(2;"):
        checked("d", **_arrays([0, 1, 3, 0], [2, 0]))
    assert checked("d", **_arrays([0, 1, 3, 0], [2, 0]), num_classes=4).num_classes == 4    # declared: kept
    assert checked("d", **_arrays([0, 1, 3, 0], [3, 0])).num_classes == 4     # ok: an untested gap


def test_prepare_path_over_another_datasets_cache_says_so(tmp_path, monkeypatch, capsys):
    """`prepare --path mine.npz fashion_mnist` replaced the prepared dataset in silence."""
    from tallysim.data.prepare import prepare
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path / "cache"))
    np.savez(tmp_path / "a.npz", **_arrays([0, 1, 0, 1], [0, 1]))
    np.savez(tmp_path / "b.npz", **_arrays([0, 1, 1], [1]))
    prepare("mine", str(tmp_path / "a.npz"))
    prepare("mine", str(tmp_path / "a.npz"))                   # ok: the same data again, nothing said
    assert capsys.readouterr().err == ""
    prepare("mine", str(tmp_path / "b.npz"))
    err = capsys.readouterr().err
    assert "held mine as 4 training / 2 test examples" in err and "replaced by" in err and "3 training / 1 test" in err


def test_prepare_path_with_several_names_is_refused(tmp_path, capsys):
    """Each name got a copy of the same files."""
    code, err = _err(capsys, ["prepare", "--path", str(tmp_path / "a.npz"), "one", "two"])
    assert code == 2 and "--path imports one dataset, under one name" in err, err


# ----------------------------------------------------------------------------- an empty path ("$OUT" unset)

@pytest.mark.parametrize("argv", [
    ["table", ""],                                   # was: every run below the current directory, tabled
    ["plot", "", "--out", "p.png"],                  # was: ". has no metrics.jsonl"
    ["sweep", "--dry-run", "--out", "", "rounds=1,2"],          # was: passed; the real sweep refuses it
    ["figure", "--dry-run", "--results", "", "fig1"],           # was: the runs went into ./fig1/
    ["figure", "--dry-run", "--out", " ", "fig1"],              # was: the figures went into ./
])
def test_an_empty_path_is_refused(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _run(tmp_path / "run")
    code, err = _err(capsys, argv)
    assert code == 2 and "empty" in err and len(err.strip().splitlines()) == 1, err


def test_an_empty_path_from_python_is_refused(tmp_path, monkeypatch):
    from tallysim.results.runs import Results
    monkeypatch.chdir(tmp_path)
    _run(tmp_path / "run")
    for call in (lambda: read_rows(""), lambda: Results.read(""), lambda: table_mod.table_rows([""])):
        with pytest.raises(ConfigError, match="is an empty path"):
            call()
    assert len(read_rows(".")) == 2                     # ok: the current directory, named


@pytest.mark.parametrize("item, expected", [
    ("optim.lr=0.1;0.2", r"separated by commas \(optim.lr=0.1,0.2\)"),       # was "'0.1;0.2': expected a number"
    ("rounds=1;2", r"separated by commas \(rounds=1,2\)"),
])
def test_a_numeric_sweep_axis_written_with_semicolons_says_commas(item, expected):
    from tallysim import sweep_axes
    with pytest.raises(ConfigError, match=expected):
        sweep_axes.parse_axis(item)
    assert sweep_axes.parse_axis("data.input_shape=28x28x1;8x8")[1] == ["28x28x1", "8x8"]     # ok: shapes


@pytest.mark.parametrize("where", ["itself", "another config"])
def test_a_figure_never_writes_its_record_over_a_config(where, tmp_path, capsys):
    """`tallysim figure figs/x.json --out figs` replaced the user's figure config with the figure's record
    ({"png": ..., "seconds": ...}) after the runs."""
    figs = tmp_path / "figs"
    f = _figure(figs / "x.json") if where == "itself" else _figure(tmp_path / "mine" / "x.json")
    if where != "itself":
        _figure(figs / "x.json", rounds=5)          # a config of that name in --out (e.g. one it extends)
    before = (figs / "x.json").read_text()
    code, err = _err(capsys, ["figure", "--dry-run", str(f), "--out", str(figs), "--results", str(tmp_path / "R")])
    assert code == 2 and "would replace it" in err, err
    assert (figs / "x.json").read_text() == before


def test_a_figure_replaces_its_own_record(tmp_path, capsys):
    f = _figure(tmp_path / "x.json")
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "x.json").write_text(json.dumps({"png": "figs/x.png", "seconds": 1.0}))
    argv = ["figure", "--dry-run", str(f), "--out", str(tmp_path / "figs"), "--results", str(tmp_path / "R")]
    assert cli.main(argv) == 0                      # ok: a record the figure wrote before


# ----------------------------------------------------------------------------- plugins

@pytest.mark.parametrize("body, expected", [
    ("PROTOCOLS = {}\n", r"PROTOCOLS is an empty dict"),                    # each was "defines no PROTOCOLS"
    ("PROTOCOLS = ['mine']\n", r"PROTOCOLS is list"),
    ("PROTOCOLS = {'mine': 'make'}\n", r"gives 'mine' the factory 'make', but the module has no function make"),
    ("PROTOCOLS = {'mine': 3}\ndef make(ctx): pass\n", r"entry 'mine': 3 is not a name and a factory's name"),
    ("X = 1\n", r"defines no PROTOCOLS"),                                   # ok: as before
    ("MODELS = {}\n", r"MODELS is an empty dict"),                          # the models' table: one rule
    ("MODELS = {'mine': 'make'}\n", r"MODELS gives 'mine' the factory 'make', but the module has no function"),
])
def test_a_plugins_protocols_table_says_what_is_wrong_with_it(body, expected, tmp_path, monkeypatch, request):
    from tallysim import protocols
    name = f"h9_plugin_{request.node.callspec.id.replace('-', '_')[:30]}".replace("[", "_").replace("]", "_")
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=expected):
        protocols.load_plugin(name)


def test_a_run_another_process_writes_is_running_not_incomplete(tmp_path, capsys):
    """A live run was "incomplete" in table, Results.status and pareto's note, as a killed one is."""
    import fcntl
    import os
    from tallysim.results.runs import Results
    d = _run(tmp_path / "live", rounds=(1,), want=3)
    (d / outdir.LOCK).touch()                                # as a run makes it
    fd = os.open(d / outdir.LOCK, os.O_RDONLY)             # held as another process's lock
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert Results.read(d).status == "running"
        assert table_mod.table_rows([d])[1][0]["status"] == "running"
        code, err = _err(capsys, ["plot", str(d), "--out", str(tmp_path / "p.png")])
        assert code == 0 and "still running" in err, err
    finally:
        os.close(fd)
    assert Results.read(d).status == "incomplete"                 # ok: nobody writes it


@pytest.mark.parametrize("smoke", [{}, {"base": {}}, {"groups": {"t": {}}}])
def test_smoke_of_a_figure_whose_smoke_section_sets_nothing_is_refused(smoke, tmp_path, capsys):
    """Ran the full-size figure under the -smoke name, as a figure with no smoke section did before it was refused."""
    f = _figure(tmp_path / "x.json")
    f.write_text(json.dumps({**json.loads(f.read_text()), "smoke": smoke}))
    code, err = _err(capsys, ["figure", "--dry-run", "--smoke", str(f), "--results", str(tmp_path / "R")])
    assert code == 2 and "which is empty" in err, err
    f.write_text(json.dumps({**json.loads(f.read_text()), "smoke": {"base": {"rounds": 1}}}))
    assert cli.main(["figure", "--dry-run", "--smoke", str(f), "--results", str(tmp_path / "R")]) == 0     # ok


@pytest.mark.parametrize("items", [["plugins=a,b"], ["smoke=1"], ["extends=base.json"]])
def test_a_config_files_own_key_as_an_item_says_where_it_goes(items):
    """Was "unknown config key 'plugins'; see docs/config.md", as if a typo."""
    with pytest.raises(ConfigError, match=r"is a config file's own key, not a field: it goes at the top of a config file"):
        config.apply_overrides(config.Config(), items)


MODEL_PLUGIN = '''
import flax.linen as nn
import jax.numpy as jnp


class NoParams(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, x):
        return jnp.zeros((x.shape[0], self.num_classes), jnp.float32)


class Raises(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, x):
        raise ValueError("my model bug")


class IntParams(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, x):
        flat = x.reshape(x.shape[0], -1)
        w = self.param("w", lambda k, s: jnp.ones(s, jnp.int32), (flat.shape[1], self.num_classes))
        return flat @ w.astype(jnp.float32)


def no_params(num_classes):
    return NoParams(num_classes)


def raises(num_classes):
    return Raises(num_classes)


def int_params(num_classes):
    return IntParams(num_classes)


MODELS = {"h9_none": "no_params", "h9_raises": "raises", "h9_int": "int_params"}
'''


@pytest.mark.parametrize("items, expected", [
    # was: vmap's "must be passed at least one argument containing an array" traceback at init
    (["model.name=h9_none"], r"model.name=h9_none has no parameters; allowed: a model with trainable parameters"),
    # was: the model's own ValueError as a traceback from build
    (["model.name=h9_raises"], r"model.name=h9_raises \(plugin h9_models:raises\) raised ValueError initialising on "
                               r"examples of shape \[8, 8, 1\]: my model bug"),
    # was: "grad requires real- or complex-valued inputs" from inside local training
    (["model.name=h9_int"], r"parameter \['w'\] is int32; allowed: floating-point parameters"),
    (["model.groups=a:2:mlp;b:2:h9_none", "protocol.name=tally"], r"model.name=h9_none has no parameters"),
])
def test_a_plugin_model_without_trainable_parameters_or_that_raises_is_one_line(
        items, expected, tmp_path, monkeypatch, registry_restored, no_compile):
    import tallysim
    from conftest import tiny_for
    (tmp_path / "h9_models.py").write_text(MODEL_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    tallysim.load_plugin("h9_models")
    r = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=r.integers(0, 256, (400, 8, 8), dtype=np.uint8), y_train=np.arange(400) % 10,
             x_test=r.integers(0, 256, (100, 8, 8), dtype=np.uint8), y_test=np.arange(100) % 10)
    data = ["data.name=files", f"data.path={tmp_path / 'd.npz'}"]
    base = [t for t in tiny_for(data) if t not in ("model.width=32", "probe.pool_size=200")] + ["probe.pool_size=100"]
    cfg = config.apply_overrides(config.Config(), [*base, *data, *items])
    with pytest.raises(ConfigError, match=expected):
        tallysim.drive(cfg)
