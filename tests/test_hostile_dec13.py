"""Hostile inputs, round 8 (2026-12-06): the newer rooms (text, populations, model groups, privacy,
robustness, make's variables, the Python API given the wrong types). Each test names what the input did
before its fix; none compiles a program."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tallysim
from tallysim import config, validation
from tallysim.config import ConfigError
from conftest import tiny

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- the Python API's types

def test_from_dict_takes_numpy_scalars_as_replace_does():
    """A dict built in a notebook, {"peers": np.int64(3)}, was "peers=np.int64(3) is int64; expected an
    integer" (an int64 is an integer; Config.replace took it)."""
    cfg = config.from_dict({"peers": np.int64(3), "optim": {"lr": np.float32(0.5)}, "data": {"input_shape": [np.int64(8)]}})
    assert (cfg.peers, cfg.optim.lr, cfg.data.input_shape) == (3, 0.5, (8,))
    assert type(cfg.peers) is int and type(cfg.optim.lr) is float
    with pytest.raises(ConfigError, match="peers=1.5 is a number; expected an integer"):
        config.from_dict({"peers": np.float64(1.5)})         # still refused where the value is wrong


@pytest.mark.parametrize("cfg, items, expected", [
    # each was a TypeError from inside the loop or dataclasses.replace
    (None, None, "apply_overrides(cfg, None): expected a list of key=value strings"),
    ({"peers": 3}, [], "apply_overrides: expected a tallysim.Config first, got dict; a dict of fields"),
    (None, 3, "apply_overrides(cfg, 3): expected a list"),
    (None, b"peers=3", "expected a list of key=value strings"),
])
def test_apply_overrides_of_the_wrong_types_is_one_line(cfg, items, expected):
    with pytest.raises(ConfigError) as e:
        config.apply_overrides(config.Config() if cfg is None else cfg, items)
    assert expected in str(e.value)


def test_apply_overrides_still_takes_any_iterable_of_strings():                                   # ok
    assert config.apply_overrides(config.Config(), (f"{k}=3" for k in ["peers"])).peers == 3
    assert config.apply_overrides(config.Config(), ("rounds=2",)).rounds == 2


def test_drive_takes_a_numpy_seed(monkeypatch):
    """drive(cfg, seed=np.int64(0)) said "expected an integer in 0..2147483647" of an integer."""
    from tallysim import run

    def built(cfg):
        raise RuntimeError("built")      # the seed was taken: nothing is built or compiled here
    monkeypatch.setattr(run, "build", built)
    with pytest.raises(RuntimeError, match="built"):
        tallysim.drive(tiny(), seed=np.int64(1))
    for bad in (np.int64(-1), np.float64(1.0), "1", True):
        with pytest.raises(ConfigError, match="expected an integer in 0..2147483647"):
            tallysim.drive(tiny(), seed=bad)


def test_groups_given_to_replace_as_objects_say_how_to_give_them():
    """Config.replace(model={"groups": [{...}]}) (a config file's form) said only "has the wrong type
    (list); expected a string or null"."""
    cfg = tiny().replace(model={"groups": [{"name": "a", "peers": 2}, {"name": "b", "peers": 2}]})
    with pytest.raises(ConfigError) as e:
        config.validate(cfg)
    assert "expected a string or null; Config.replace takes the groups as text" in str(e.value)
    assert "tallysim.config.from_dict({'model': {'groups': [...]}})" in str(e.value)
    # ... and the way it names works
    d = {"model": {"groups": [{"name": "a", "peers": 2}, {"name": "b", "peers": 2}]}}
    assert config.from_dict(d, base=tiny()).model.groups == "a:2;b:2"


# ----------------------------------------------------------------------------- text

def test_history_weighting_on_text_names_a_value_that_exists():
    """"use vote.weighting=uniform": no such value (none or history), so the advice was itself refused."""
    from tallysim.sim import tasks
    cfg = config.apply_overrides(config.Config(), ["data.name=shakespeare", "model.name=lstm",
                                                   "protocol.name=tally", "vote.weighting=history"])
    with pytest.raises(ConfigError) as e:
        tasks.check(cfg, tasks.make("next_token", (80,)))
    assert "allowed there: vote.weighting=none" in str(e.value)
    advice = str(e.value).split("allowed there: ")[1].split()[0]
    config.apply_overrides(config.Config(), [advice])             # the advice is a value the field takes


# ----------------------------------------------------------------------------- populations

@pytest.mark.parametrize("items, warned", [
    (["peers=4", "participation=1e-9"], "participation=1e-09 of peers=4 rounds to no peer: 1 peer a round takes "
                                       "part (participation 0.25)"),
    (["peers=4", "participation=0.1"], "participation=0.1 of peers=4 rounds to no peer"),
    (["peers=4", "participation=0.25"], None),                       # ok: one peer, as asked
    (["peers=4", "participation=0.125"], "rounds to no peer"),       # round(0.5) is 0: half to even
    # each group draws its own max(1, round(participation * P_g)) (docs/groups.md): 2 of 4 peers, not 0.1 of
    # them, said by group since hostile18 (tests/test_hostile_dec21j.py)
    (["peers=4", "participation=0.1", "model.groups=a:2;b:2"], "rounds to no peer of group a (2 peers), b"),
])
def test_a_participation_that_rounds_to_no_peer_is_warned(items, warned):
    """The cohort is max(1, round(participation * P)): 1e-9 of 4 peers ran a quarter of them each round,
    in silence, and config.md said "exactly round(fraction*P)"."""
    lines = validation.warnings(tiny(*items))
    hits = [w for w in lines if "rounds to no peer" in w]
    if warned is None:
        assert not hits, hits
    else:
        assert len(hits) == 1 and warned in hits[0], lines


# ----------------------------------------------------------------------------- make's variables

def _make_n(*words) -> str:
    if shutil.which("make") is None:
        pytest.skip("no make here")
    return subprocess.run(["make", "-n", *words, f"VENV={sys.prefix}"], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=30).stdout


def test_make_matched_bits_smoke_tables_the_smoke_runs():
    """`make matched-bits ARGS=--smoke` ran into OUT/matched_bits-smoke, then tabulated OUT/matched_bits
    (the full runs, or none: an error after the runs) over figures/matched_bits_table.md."""
    out = _make_n("matched-bits", "ARGS=--smoke", "OUT=/tmp/o")
    assert "table /tmp/o/matched_bits-smoke --out figures/matched_bits-smoke_table.md" in out
    assert "cat figures/matched_bits-smoke_table.md" in out and "matched_bits_table.md" not in out
    full = _make_n("matched-bits", "OUT=/tmp/o")                                                   # ok
    assert "table /tmp/o/matched_bits --out figures/matched_bits_table.md" in full


# ----------------------------------------------------------------------------- model groups

@pytest.mark.parametrize("text, values", [
    # `none` was glued to the value before it: "group 'b:2,none' is not NAME:PEERS"
    ("a:2:mlp,width=8;b:2,none", ["a:2:mlp,width=8;b:2", "none"]),
    ("None,a:2;b:2", ["None", "a:2;b:2"]),
    ("a:2;b:2,null", ["a:2;b:2", "null"]),
    ("a:2:mlp,width=8;b:2:mlp,a:3;b:1", ["a:2:mlp,width=8;b:2:mlp", "a:3;b:1"]),              # ok
])
def test_a_groups_axis_may_hold_none(text, values):
    from tallysim import sweep_axes
    assert sweep_axes.parse_axis(f"model.groups={text}") == ("model.groups", values)


# ----------------------------------------------------------------------------- data

@pytest.mark.parametrize("items, note", [
    (["data.max_train=100000"], "data.max_train=100000 is more than the 1,600 training examples of synthetic: all 1,600 are used"),
    (["data.max_test=301"], "data.max_test=301 is more than the 300 test examples of synthetic: all 300 are used"),
    (["data.max_train=1600", "data.max_test=300"], None),                                       # ok: every one
    (["data.max_train=800"], None),                                                             # ok: a subset
])
def test_a_subset_larger_than_the_data_is_said(items, note, capsys):
    """data.max_train=10**7 kept every example in silence, as if the knob had been read."""
    from tallysim import data
    cfg = tiny(*items)
    ds = data.load(cfg.data, 0)
    err = capsys.readouterr().err
    assert (note in err) if note else "note" not in err, err
    assert len(ds.y_train) == min(1600, cfg.data.max_train or 1600)


@pytest.mark.parametrize("name, hint", [("shakespeare_chars", "did you mean shakespeare_words or shakespeare?"),
                                        ("Shakespeare", "did you mean shakespeare?"),
                                        ("mnistt", None)])
def test_prepare_of_a_near_text_name_names_it(name, hint, monkeypatch, tmp_path):
    """`prepare shakespeare_chars` went to tfds alone: "use a tfds name like mnist, cifar10, emnist/balanced",
    with no word of the two text datasets it prepares offline."""
    import importlib
    prepare = importlib.import_module("tallysim.data.prepare")      # the module (the package exports its function)

    def unknown(n):
        raise prepare.UnknownDataset(f"cannot prepare {n!r}: tfds has no classification dataset by that name")
    monkeypatch.setattr(prepare, "_from_tfds", unknown)
    with pytest.raises(prepare.UnknownDataset) as e:
        prepare.prepare(name)
    assert (hint in str(e.value)) if hint else "did you mean" not in str(e.value)


def test_run_takes_numpy_flags_and_counts(tmp_path):
    """tallysim.run(cfg, overwrite=np.True_) / progress=np.False_ / checkpoint_every=np.int64(2) said
    "expected True or False" (or "allowed None, 0 or a number of rounds") of the values numpy hands back."""
    from tallysim import api_arguments
    overwrite, progress, kw = api_arguments.check(str(tmp_path), np.bool_(True), np.bool_(False),
                                                  {"checkpoint_every": np.int64(2)})
    assert (overwrite, progress, kw) == (True, False, {"checkpoint_every": 2})
    assert type(overwrite) is bool and type(kw["checkpoint_every"]) is int
    for bad in ({"checkpoint_every": np.float64(1.5)}, {"resume": np.int64(1)}):
        with pytest.raises(ConfigError):
            api_arguments.check(str(tmp_path), False, False, bad)


@pytest.mark.parametrize("section, key", [("data", "path"), ("log", "tensorboard")])
def test_a_path_field_takes_a_pathlib_path(section, key, tmp_path):
    """docs/api.md: every path the API takes is a str or a pathlib.Path; Config.replace(data={"path": Path(d)})
    was "data.path=PosixPath(...) has the wrong type (PosixPath); expected a string or null"."""
    from tallysim import field_checks
    cfg = tiny().replace(**{section: {key: tmp_path}})
    assert getattr(getattr(cfg, section), key) == str(tmp_path)
    field_checks.check_types(cfg)
    assert getattr(getattr(config.from_dict({section: {key: tmp_path}}), section), key) == str(tmp_path)


def test_make_figures_smoke_refuses_an_args_it_would_drop():
    """`make figures-smoke ARGS=--dry-run` dropped ARGS in silence: it removed OUT/smoke and ran every smoke."""
    if shutil.which("make") is None:
        pytest.skip("no make here")
    p = subprocess.run(["make", "-n", "figures-smoke", "ARGS=--dry-run", f"VENV={sys.prefix}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "clean" not in p.stdout and "tallysim figure" not in p.stdout
    assert "ARGS='--dry-run' is not read by figures-smoke" in p.stderr
    assert "make fig1 ARGS='--dry-run --smoke'" in p.stderr
    assert "--smoke --results results/smoke" in _make_n("figures-smoke")                           # ok


# ----------------------------------------------------------------------------- privacy

@pytest.mark.parametrize("items, warned", [
    (["protocol.name=tally", "privacy.noise=5", "privacy.delta=0.999999"], "privacy.delta=0.999999 is not below 1/peers = 0.25"),
    (["protocol.name=tally", "privacy.noise=5", "privacy.delta=0.25"], "is not below 1/peers"),
    (["protocol.name=fedct", "fedct.xor_epsilon=1", "privacy.delta=0.5"], "is not below 1/peers"),
    (["protocol.name=tally", "privacy.noise=5", "privacy.delta=0.2"], None),                  # ok: below 1/4
    (["protocol.name=tally", "privacy.noise=5"], None),                                       # ok: the default 1e-5
])
def test_a_delta_that_promises_nothing_is_warned(items, warned):
    """privacy.delta=0.999999 reported epsilon 0.0 every round, with no word that it means nothing."""
    hits = [w for w in validation.warnings(tiny(*items)) if "privacy.delta" in w]
    assert (len(hits) == 1 and warned in hits[0]) if warned else not hits, hits


def test_a_groups_model_that_does_not_fit_the_task_names_its_group():
    """`model.name=lstm model.groups=a:1:lstm;b:2:mlp` on Shakespeare said "model.name=mlp does not fit
    shakespeare" of a run whose model.name is lstm, not naming group b (a conv group on flat data did)."""
    from tallysim.model_groups import group_config, parse
    from tallysim.sim import tasks
    cfg = config.apply_overrides(config.Config(), ["data.name=shakespeare", "partition.kind=natural", "peers=3",
                                                   "model.name=lstm", "protocol.name=tally",
                                                   "model.groups=a:1:lstm;b:2:mlp"])
    g = parse(cfg.model.groups)[1]
    with pytest.raises(ConfigError, match=r"^group b: model.name=mlp does not fit shakespeare"):
        tasks.check(group_config(cfg, g), tasks.make("next_token", (80,)), g.name)


@pytest.mark.parametrize("groups, why", [
    ("a:2;b:2", "the groups share one architecture, but the FedAvg family takes no model.groups"),
    ("a:2:mlp,optim.lr=0.1;b:2:mlp,optim.lr=0.2", "the groups share one architecture"),
    ("a:2:mlp;b:2:lenet", "parameter averaging across architectures is not defined"),          # ok: as before
    ("a:2:mlp,width=8;b:2:mlp,width=16", "parameter averaging across architectures is not defined"),
])
def test_fedavg_on_groups_of_one_architecture_says_why_truly(groups, why, tmp_path, capsys, no_compile):
    """`model.groups=a:2;b:2 protocol.name=fedavg` (one MLP, two learning rates) was refused because
    "parameter averaging across architectures is not defined": there is one architecture."""
    from conftest import one_line
    line = one_line(capsys, ["run", "data.name=synthetic", "data.input_shape=28x28x1", "peers=4", "rounds=1",
                             "protocol.name=fedavg", f"model.groups={groups}", "--out", str(tmp_path / "o")])
    assert "does not work with model.groups yet" in line and why in line, line


def test_a_json_group_takes_whole_numbers_written_as_floats(tmp_path):
    """A JSON writer's 2.0: the run's "peers": 4.0 was taken, a group's "peers": 2.0 was "allowed: an integer",
    and "width": 8.0 became the text width=8.0 (then "expected an integer")."""
    import json
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"peers": 4.0, "model": {"width": 8, "groups": [
        {"name": "a", "peers": 2.0, "model": {"width": 8.0}, "optim": {"lr": 1.0}}, {"name": "b", "peers": 2}]}}))
    assert config.load_file(str(f)).model.groups == "a:2:width=8,optim.lr=1.0;b:2"
    f.write_text(json.dumps({"peers": 4, "model": {"groups": [{"name": "a", "peers": 2.5}, {"name": "b", "peers": 2}]}}))
    with pytest.raises(ConfigError, match=r'"peers"=2.5; allowed: an integer'):                 # still refused
        config.load_file(str(f))


@pytest.mark.parametrize("written", ["shakespeare_words", "shakespeare"])
def test_a_text_cache_of_another_variant_is_named(written, tmp_path, monkeypatch):
    """shakespeare_words' cache saved as shakespeare.npz (a copy, a rename, another version's T) ran as the
    characters in silence: C = 10,004 and 20-word windows under data.name=shakespeare. Every earlier check
    (ids below C, one [N, T] shape, client ids) held for it."""
    from tallysim.data import text
    from tallysim.data.base import DataError
    from tallysim.data.cache import write_arrays
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path))
    speech = " ".join(["so fair and foul a day I have not seen, my lord."] * 20)
    play = "# A Play\n\n" + "".join(f"**{who}**\n{speech}\n\n" for who in ("ONE", "TWO"))
    write_arrays(text.build(text.VARIANTS[written], [("p", play)]), tmp_path / "shakespeare.npz")
    if written == "shakespeare":                                                                # ok
        assert text.load("shakespeare").x_train.shape[1] == 80
        return
    with pytest.raises(DataError, match=r"shakespeare.npz: holds windows of 20 word tokens, not shakespeare's 80 "
                                        r"char tokens .*python -m tallysim prepare shakespeare"):
        text.load("shakespeare")


@pytest.mark.parametrize("kw", [{"smoke": "no"}, {"smoke": 1}, {"sweep_base": "no"}, {"smoke": None}])
def test_load_files_flags_must_be_booleans(kw, tmp_path):
    """config.load_file(path, smoke="no") applied the smoke section ("no" is truthy), in silence, and
    sweep_base="no" let a file's sweep section pass as a single run's base."""
    f = tmp_path / "c.json"
    f.write_text('{"peers": 4, "smoke": {"peers": 2}}')
    with pytest.raises(ConfigError, match=r"^load_file\((smoke|sweep_base)=.*\): expected True or False"):
        config.load_file(str(f), **kw)
    assert config.load_file(str(f), smoke=np.bool_(True)).peers == 2                               # ok
    assert config.load_file(str(f)).peers == 4


@pytest.mark.parametrize("call", ["make_figure", "dry_run"])
def test_a_figures_smoke_flag_must_be_a_boolean(call, tmp_path, no_compile):
    """figures.make_figure("fig1", smoke="no") (the notebook's call) ran the smoke version: "no" is truthy."""
    from tallysim import figures
    with pytest.raises(ConfigError, match=r"^smoke='no': expected True or False"):
        getattr(figures, call)("fig1", smoke="no", results=str(tmp_path / "r"), out=str(tmp_path / "f"))


def test_a_list_of_seeds_is_told_that_seeds_counts_them(tmp_path, capsys, no_compile):
    """`run seeds=0,1` was told "several values are a sweep: tallysim sweep seeds=0,1", which refuses
    seeds=0 and runs one seed; Config.replace(seeds=[0, 1]) only "expected an integer"."""
    from conftest import one_line
    line = one_line(capsys, ["run", "seeds=0,1", "--out", str(tmp_path / "o")])
    assert "seeds counts them: seed=S seeds=N runs seeds S..S+N-1" in line and "sweep" not in line, line
    for value in ([0, 1], range(2), np.arange(2)):
        with pytest.raises(ConfigError, match="seeds counts them: seed=S seeds=N"):
            config.validate(tiny().replace(seeds=value))
    assert "several values are a sweep: tallysim sweep optim.lr=0.1,0.2" in one_line(                # ok
        capsys, ["run", "optim.lr=0.1,0.2", "--out", str(tmp_path / "o")])


def test_results_plot_and_column_of_the_wrong_types_are_one_line(tmp_path):
    """Results.plot(path=3) was a TypeError from inside os.path, Results.column(3) "'int' object is not
    iterable" (a run written by hand: nothing runs)."""
    import json
    from tallysim.results.runs import Results, UnknownKey
    d = tmp_path / "run"
    d.mkdir()
    (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "acc_mean": 0.5, "bits_per_peer": 8.0}) + "\n")
    r = Results.read(str(d))
    for bad in (3, b"x.png"):
        with pytest.raises(ConfigError, match=r"^Results.plot\(path=.*\): expected a file path"):
            r.plot(path=bad)
    with pytest.raises(UnknownKey, match=r"^Results.column\(3\): a metrics key is a str"):
        r.column(3)
    assert r.column("acc_mean") == [0.5]                                                          # ok
