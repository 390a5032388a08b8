"""Hostile inputs, round 13 (hostile13): model.groups' values and JSON entries, floats the device reads as 0,
an image or text model on a named dataset of the other kind in a sweep, `table --out -` and `--metric round`,
`--out` and `--tensorboard` through links and into other runs, `prepare` lists, `tallysim.Results(dir)`, and
a protocol section given to Config.replace whose value only equals its default. Each test names what the input
did before its fix; every refusal comes before anything compiles (`no_compile`) or is written.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY, one_line, tiny

import tallysim
from tallysim import cli, config, model_groups, outdir, run, sweep, validation  # noqa: F401  (before jit is patched)
from tallysim.config import ConfigError


def _run_dir(d: Path, rows=None) -> Path:
    """A finished run's directory, written by hand: its marker, config and rows."""
    rows = rows or [{"round": r, "bits_up": 8, "bits_down": 8, "bits_per_peer": 4.0 * r, "acc_mean": 0.5,
                     "acc_peers": [0.5, 0.5], "acc_global": None} for r in (1, 2)]
    outdir.mark(d)
    (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 2, "peers": 2}))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def _listing(d: Path) -> list:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


# ----------------------------------------------------------------------------- floats the device reads as 0

@pytest.mark.parametrize("items, expected", [
    # trained nothing: accuracy at chance (0.07 where optim.lr=0.05 reaches 0.92), in silence
    (["optim.lr=1e-46"], "optim.lr=1e-46 is below float32's smallest normal number"),
    # divided by zero: a NaN loss after compiling, blamed on optim.lr ("try a smaller optim.lr")
    (["protocol.name=softlabel", "distill.temperature=1e-300"], "distill.temperature=1e-300 is below float32's"),
    # the margin vote ran with its margin off
    (["vote.min_margin=1e-40"], "allowed: 0, or a value of at least 1.18e-38 in size within [0, 1]"),
    (["model.groups=a:2:mlp,optim.lr=1e-45;b:2"], "group a: optim.lr=1e-45 is below float32's"),
])
def test_a_float_the_device_reads_as_zero_is_refused(items, expected, tmp_path, capsys, no_compile):
    line = one_line(capsys, ["run", *TINY, *items, "--out", str(tmp_path / "o"), "--quiet"])
    assert expected in line, line
    assert not (tmp_path / "o").exists()


def test_tiny_floats_read_on_the_host_stay_allowed():
    config.validate(tiny("participation=1e-300"))        # warned (one peer a round), not refused
    config.validate(tiny("optim.lr=1.2e-38", "vote.min_margin=0"))


# ----------------------------------------------------------------------------- model.groups values

@pytest.mark.parametrize("text, expected", [
    ("a:2:mlp,width=\u0663;b:2", "model.width='\u0663': expected an integer in ASCII digits 0-9"),   # ran width 3
    ("a:2:mlp,optim.lr=\u0661.\u0660;b:2", "expected a number in ASCII digits 0-9"),                  # ran lr 1.0
    ("a:2:mlp,width=abc;b:2", "model.width='abc': expected an integer, e.g. width="),                 # "is not int"
    ("a:2:mlp,width=;b:2", "model.width='': expected an integer"),
    # "group a sets model.mlp:width; a group may set name, dtype, ..."
    ("a:2:mlp:width=16;b:2", "a group's fields follow its model after commas, not colons"),
])
def test_a_groups_value_is_read_as_key_value_reads_it(text, expected):
    with pytest.raises(ConfigError, match=None) as e:
        model_groups.parse(text)
    assert expected in str(e.value), str(e.value)


@pytest.mark.parametrize("entry, expected", [
    # "model.groups='a:2:width=inf;b:2': model.width='inf' is not int": neither the file nor what it holds
    ({"model": {"width": float("inf")}}, "model.groups entry a: model.width=inf; allowed: a finite JSON integer"),
    ({"model": {"width": True}}, "model.width=True; allowed: a finite JSON integer"),
    # "model.groups='x:1'; allowed: a JSON value of the field's type"
    ({"model": {"groups": "x:1"}}, "model.groups entry a: model.groups; a group may set name, dtype"),
])
def test_a_json_group_entry_says_what_it_holds(entry, expected):
    doc = {"peers": 4, "model": {"groups": [{"name": "a", "peers": 2, **entry}, {"name": "b", "peers": 2}]}}
    with pytest.raises(ConfigError) as e:
        config.from_dict(doc)
    assert expected in str(e.value), str(e.value)


# ----------------------------------------------------------------------------- a model on data of the other kind

@pytest.mark.parametrize("axes, expected", [
    # ran and compiled the synthetic run first; --dry-run listed the Shakespeare run as fine
    (["data.name=synthetic,shakespeare"], "model.name=mlp does not fit shakespeare, whose examples are text"),
    (["model.name=mlp,lstm", "model.width=200"], "model.name=lstm does not fit synthetic, whose examples are images"),
    (["model.groups=a:2:lstm;b:2,none"], "group a: model.name=lstm does not fit synthetic"),
])
def test_a_sweeps_model_that_does_not_fit_its_dataset_is_refused_before_any_run(axes, expected, tmp_path, capsys,
                                                                              no_compile):
    base = [t for t in TINY if not t.startswith("model.width")]
    for dry in ([], ["--dry-run"]):
        line = one_line(capsys, ["sweep", *base, *axes, "--out", str(tmp_path / "s"), "--quiet", *dry])
        assert expected in line, line
        assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- table

def test_table_out_dash_writes_no_file_named_dash(tmp_path, capsys, monkeypatch):
    run_dir = _run_dir(tmp_path / "r")
    monkeypatch.chdir(tmp_path)
    line = one_line(capsys, ["table", str(run_dir), "--out", "-"])    # wrote ./- with the table
    assert "no --out (the table goes to stdout)" in line and not (tmp_path / "-").exists()


@pytest.mark.parametrize("metric, expected", [
    # "has no value in any run's metrics.jsonl (null in every row: not computed by these runs)"
    ("round", "--metric 'round' is not a score to rank runs by (the evaluation round each row is of)"),
    ("acc_peers", "--metric 'acc_peers' is not a score to rank runs by (its values are lists, not single numbers)"),
    ("acc_global", "has no value in any run's metrics.jsonl (null in every row"),     # null indeed: as before
])
def test_table_metric_of_a_column_that_is_no_score_says_so(metric, expected, tmp_path, capsys):
    line = one_line(capsys, ["table", str(_run_dir(tmp_path / "r")), "--metric", metric])
    assert expected in line, line


# ----------------------------------------------------------------------------- links and other runs' directories

def test_a_sweep_through_a_link_to_a_run_directory_is_refused(tmp_path, capsys, no_compile):
    run_dir = _run_dir(tmp_path / "r")
    (tmp_path / "link").symlink_to(run_dir)
    before = _listing(run_dir)
    for dry in (["--dry-run"], []):     # wrote sweep.json and each run's error.txt into the run r
        line = one_line(capsys, ["sweep", *TINY, "seed=0,1", "--out", str(tmp_path / "link"), "--quiet", *dry])
        assert f"is a `tallysim run` directory (a symbolic link to {run_dir})" in line
    assert _listing(run_dir) == before


def test_run_out_through_a_link_says_it_is_one(tmp_path, capsys, no_compile):
    (tmp_path / "link").symlink_to(_run_dir(tmp_path / "r"))
    # "is not empty; pass --overwrite to replace it", and --overwrite was then refused for the link
    line = one_line(capsys, ["run", *TINY, "--out", str(tmp_path / "link"), "--quiet"])
    assert f"is a symbolic link to {tmp_path / 'r'}, which is not empty, and tallysim never replaces through" in line


@pytest.mark.parametrize("command", ["run", "sweep", "sweep --dry-run"])
def test_tensorboard_in_another_runs_directory_is_refused(command, tmp_path, capsys, no_compile):
    run_dir = _run_dir(tmp_path / "r")
    before = _listing(run_dir)
    argv = [*command.split(), *TINY, *(["seed=0,1"] if "sweep" in command else []), "--out", str(tmp_path / "o"),
            "--tensorboard", str(run_dir / "tb"), "--quiet"]
    line = one_line(capsys, argv)
    assert f"is inside the tallysim run directory {run_dir}" in line
    assert _listing(run_dir) == before and not (tmp_path / "o").exists()


def test_tensorboard_inside_a_sweeps_own_directory_still_dry_runs(tmp_path, capsys):
    assert cli.main(["sweep", *TINY, "seed=0,1", "--out", str(tmp_path / "s"), "--tensorboard",
                     str(tmp_path / "s" / "tb"), "--dry-run"]) == 0


# ----------------------------------------------------------------------------- prepare

def test_prepare_names_joined_by_a_comma_say_to_use_spaces(capsys, monkeypatch):
    from tallysim import data
    monkeypatch.setattr(data, "prepare", lambda *a, **k: pytest.fail("prepared before refusing"))
    # asked tfds for 'shakespeare_words,shakespeare': "tfds has no classification dataset by that name"
    line = one_line(capsys, ["prepare", "shakespeare_words,shakespeare"])
    assert "allowed: names separated by spaces, prepare shakespeare_words shakespeare" in line


def test_prepare_of_a_name_given_twice_prepares_it_once(capsys, monkeypatch):
    from tallysim import data
    calls = []
    monkeypatch.setattr(data, "prepare", lambda name, path=None: calls.append(name) or Path(f"/c/{name}.npz"))
    assert cli.main(["prepare", "shakespeare", "shakespeare_words", "shakespeare"]) == 0   # parsed the plays twice
    assert calls == ["shakespeare", "shakespeare_words"]


# ----------------------------------------------------------------------------- the Python API

def test_results_of_a_run_directory_says_to_read_it(tmp_path):
    run_dir = _run_dir(tmp_path / "r")
    with pytest.raises(ConfigError, match=r"to read the run in .*: tallysim.Results.read\("):
        tallysim.Results(str(run_dir))          # an empty Results, "0 rows", of a run with two
    assert len(tallysim.Results.read(run_dir).rows) == 2
    with pytest.raises(ConfigError, match="out is a run directory"):
        tallysim.Results(3)
    made = tallysim.Results(str(tmp_path / "new"), rows=[{"round": 1}])
    assert made.out == tmp_path / "new"         # a str kept: .plot() was "unsupported operand ... 'str' and 'str'"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    (empty / "metrics.jsonl").write_text("")
    assert tallysim.Results.read(empty).rows == []   # a run of no rows yet still reads


@pytest.mark.parametrize("section", [{"topk_soft": {"k": True}}, {"topk_soft": {"k": 1.0}},
                                     {"fedct": {"period": True}}])
def test_a_section_equal_to_its_default_only_in_value_is_still_checked(section):
    name = next(iter(section))
    cfg = tallysim.Config().replace(protocol={"name": name}, **section)   # dropped as the default: True == 1
    with pytest.raises(ConfigError, match="has the wrong type"):
        config.validate(cfg)
    assert tallysim.Config().replace(**{name: {k: 1 for k in section[name]}}) == tallysim.Config()


# ----------------------------------------------------------------------------- a text model's size

@pytest.mark.parametrize("items, lower", [
    # estimated as 100,000 + 128 C parameters whatever its size: "8.2 MB" for 8.6e9 parameters a peer, compiled
    (["model.name=lstm", "model.layers=64", "model.hidden=4096"], "lower model.embed, model.hidden, model.layers, peers"),
    (["model.name=transformer", "model.hidden=10000", "model.heads=1"], "lower model.hidden, model.layers, peers"),
])
def test_a_text_model_too_big_for_the_machine_is_refused_by_its_size(items, lower, tmp_path, capsys, no_compile):
    line = one_line(capsys, ["run", "data.name=shakespeare", "partition.kind=natural", "peers=4", *items,
                             "--out", str(tmp_path / "o"), "--quiet"])
    assert "the clients' models, as tally keeps each client's own model between rounds, alone" in line
    assert lower in line and not (tmp_path / "o").exists()


@pytest.mark.parametrize("name, embed, hidden, layers, classes, exact", [
    ("lstm", 8, 256, 2, 84, 818_932),                   # Reddi et al.'s, as tests/test_text.py counts it
    ("transformer", 8, 32, 2, 10_004, 692_116),         # docs/text.md's wordtransformer
    ("lstm", 5, 16, 3, 80, 7_392), ("transformer", 8, 16, 1, 80, 14_144),   # counted by jax.eval_shape
])
def test_the_estimates_text_model_size_is_the_models(name, embed, hidden, layers, classes, exact):
    from tallysim.file_shapes import text_model_params
    assert text_model_params(name, embed, hidden, layers, classes) == exact


@pytest.mark.parametrize("metric", ["bits_per_peer", "bits_up", "wall_s"])
def test_pareto_of_a_cost_column_is_refused(metric, tmp_path, capsys):
    # drew bits_per_peer against bits_per_peer, its "frontier" the most bits at each cost
    line = one_line(capsys, ["pareto", str(_run_dir(tmp_path / "r")), "--out", str(tmp_path / "p.png"),
                             "--metric", metric])
    assert f"--metric {metric!r} is a cost, not a score" in line and not (tmp_path / "p.png").exists()
