"""Hostile inputs, round 17 (hostile17): plugins' bit counts and names, run_group's arguments (the grouped
runs a sweep's --checkpoint-every saves one by one), the Python API's helpers given the wrong thing, `table`
and `pareto` given a table column or a std as --metric, and a run's --out that is a sweep's folder. Each
test names what the input did before its fix. Pure checks or files written by hand (milliseconds), except
the Driver's, which builds one tiny FedAvg (its init compiled, no round).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line, tiny

from tallysim import cli, config, outdir  # noqa: F401  (before jit is patched)
from tallysim.config import ConfigError
from tallysim.sim.comm import RoundBits


# ----------------------------------------------------------------------------- a plugin's cost

def _cost(bits, peers=4):
    from tallysim.protocols import contract
    return contract._checked_cost("protocol 'p' (plugin 'm')", lambda info: bits, peers)({})


def test_a_plugins_bits_of_numpy_or_float_type_are_counted_as_python_ints():
    # np.int64 (a count read from info's arrays) passed the check and stopped the run at its first metrics
    # row, a json TypeError after the round had trained; 412288.0 was written to the rows as a float
    for bits in (RoundBits(np.int64(96), np.int64(32), np.int64(4)), RoundBits(96.0, np.float32(32), 4),
                 RoundBits(96, 32, 4, up_total=np.int32(384), down_total=128.0)):
        got = _cost(bits)
        assert [type(v) for v in got[:3]] == [int] * 3 and (got.up, got.down, got.active) == (96, 32, 4)
        assert json.dumps(got.totals()) in ("[384, 128]",)


@pytest.mark.parametrize("bits, expected", [
    # 999 peers of 4: the round's bits were up * 999, 250 times too many, in silence
    (RoundBits(8, 8, 999), r"RoundBits\(active=999\) in a run of 4 peers; expected the peers that took part"),
    # each active peer's own bits (selective_fd's, cfd's), which model.groups split the round by: unchecked
    (RoundBits(8, 8, 2, up_total=16, up_A=(1.5, -2)), r"RoundBits\(up_A=\(1.5, -2\)\); expected None or a tuple of 2"),
    (RoundBits(8, 8, 2, up_A="xy"), r"up_A='xy'"),
    (RoundBits(8, 8, 2, up_A=(8, 8, 0)), r"up_A=\(8, 8, 0\)"),
    (RoundBits(8, 8, 2, up_total=16, up_A=(4, 4)), r"summing to 8; expected .* summing to the round's up total, 16"),
])
def test_a_plugins_active_count_and_per_peer_bits_are_checked(bits, expected):
    with pytest.raises(ConfigError, match=expected):
        _cost(bits)
    assert _cost(RoundBits(8, 8, 2, up_total=12, up_A=(np.int64(4), 8.0))).up_A == (4, 8)     # ok, as ints


def test_a_plugin_name_that_differs_from_a_taken_one_only_in_case_is_refused(tmp_path, monkeypatch,
                                                                            registry_restored):
    # `Tally` registered beside tally: protocol.name=Tally, a slip for tally, ran the plugin with no "did you
    # mean", and a sweep over both wrote two run directories a case-insensitive file system holds as one
    from tallysim import protocols
    (tmp_path / "tally_case_dec21e.py").write_text(
        "from tallysim.protocols import local_only\nPROTOCOLS = {'Tally': 'make'}\nmake = local_only.make\n")
    (tmp_path / "mlp_case_dec21e.py").write_text("MODELS = {'MLP': 'make'}\ndef make(classes):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ConfigError, match="protocol name 'Tally' differs from the protocol 'tally' only in case"):
            protocols.load_plugin("tally_case_dec21e")
        with pytest.raises(ConfigError, match="model name 'MLP' differs from the model 'mlp' only in case"):
            protocols.load_plugin("mlp_case_dec21e")
        assert "Tally" not in protocols.names()
    finally:
        for name in ("tally_case_dec21e", "mlp_case_dec21e"):
            sys.modules.pop(name, None)


# ----------------------------------------------------------------------------- run_group's arguments

def test_run_groups_arguments_are_checked_before_anything_loads(tmp_path, no_compile, monkeypatch):
    from tallysim import build, run
    monkeypatch.setattr(build, "build_group", lambda *a, **k: pytest.fail("built before the arguments were checked"))
    a = tiny("rounds=1", "protocol.name=fedavg")
    b = a.replace(optim={"lr": 0.2})
    cases = [
        # two runs into one directory: one run's files kept, the other's results lost in silence
        (([a, b], [tmp_path / "x", tmp_path / "y" / ".." / "x"]), {}, "two configurations write one directory"),
        # an IndexError after the data had loaded
        (([a, b], [tmp_path / "x"]), {}, "2 configurations and 1 directories"),
        (([], []), {}, "0 configurations and 0 directories"),           # IndexError
        (([{"rounds": 1}], [tmp_path / "d"]), {}, "a configuration is dict; allowed: tallysim.Config"),
        (([a], [5]), {}, "directory 5 is int"),
        # -1 saved a checkpoint every round (r % -1 == 0); "2" was taken
        (([a, b], [tmp_path / "n1", tmp_path / "n2"]), {"checkpoint_every": -1}, r"run_group\(checkpoint_every=-1\)"),
        (([a, b], [tmp_path / "n1", tmp_path / "n2"]), {"checkpoint_every": "2"}, r"checkpoint_every='2'"),
    ]
    for args, kwargs, expected in cases:
        with pytest.raises(ConfigError, match=expected):
            run.run_group(*args, progress=False, **kwargs)
    assert not any(tmp_path.iterdir())                     # nothing locked or created


# ----------------------------------------------------------------------------- the Python API's helpers

def test_apply_overrides_of_a_dict_says_to_give_key_value_strings():
    # iterated as its keys: "malformed override 'rounds'; expected key=value"
    with pytest.raises(ConfigError, match=r"a dict; expected a list of key=value strings, e\.g\. \['rounds=2'\], "
                                          r"or cfg\.replace\(\*\*d\)"):
        config.apply_overrides(config.Config(), {"rounds": 2})


def test_accuracy_and_final_best_of_the_wrong_thing_say_what_they_take():
    from tallysim.results import metrics
    with pytest.raises(ConfigError, match=r"accuracy\(row=None\): a NoneType; expected one metrics row"):
        metrics.accuracy(None)                      # AttributeError: 'NoneType' object has no attribute 'get'
    with pytest.raises(KeyError, match="the row has none of acc_global, acc_mean"):
        metrics.accuracy({"round": 1})              # KeyError: 'acc_mean', as if it were the only candidate
    with pytest.raises(ConfigError, match=r"final_best\(rows=None\)"):
        metrics.final_best(None)                    # 'NoneType' object is not iterable
    with pytest.raises(ConfigError, match="expected a run's metrics rows, a list of dicts"):
        metrics.final_best({"acc_mean": 0.5})       # one row: its keys iterated as rows
    assert metrics.final_best([{"acc_mean": 0.5}, {"acc_mean": 0.4}]) == (0.4, 0.5)       # ok


def test_a_driver_refuses_bits_before_a_round_and_a_state_of_another_shape():
    import tallysim
    d = tallysim.drive(tiny("peers=2", "rounds=1", "protocol.name=fedavg", "model.width=8"))
    # the cost of an empty info: a whole round's bits, though no round had run
    with pytest.raises(ConfigError, match=r"Driver\.bits\(\): no round has run yet; call d\.step\(\)"):
        d.bits()
    # AttributeError "no attribute params" from inside the traced round
    for state in ({"w": 1}, 5):
        with pytest.raises(ConfigError, match=r"Driver\.step\(state=\.\.\.\): a \w+ of another structure"):
            d.step(state)
    assert d.r == 0


# ----------------------------------------------------------------------------- table and pareto's --metric

def _grouped_run(d: Path) -> Path:
    """A finished two-seed run with model.groups a and b, written by hand."""
    outdir.mark(d)
    (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 1, "peers": 4, "seeds": 2}))
    row = {"round": 1, "bits_up": 8, "bits_down": 8, "bits_per_peer": 4.0, "acc_mean": 0.5, "acc_mean_std": 0.1,
           "acc_global": None, "acc_mean@a": 0.4, "acc_mean@a_std": 0.2, "acc_mean@b": 0.6, "acc_mean@b_std": 0.0}
    (d / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    return d


@pytest.mark.parametrize("metric, expected", [
    # the table's own columns, copied from its header: "not a column of any run's metrics.jsonl" with every
    # key of the rows and "did you mean faulty_std"
    ("final@a", "'final@a' is a column of the table, not of the runs' metrics.jsonl: final of acc_mean@a; "
                "allowed: --metric acc_mean@a"),
    ("final_std@b", "final_std of acc_mean@b; allowed: --metric acc_mean@b"),
    ("best", "best of acc_global or acc_mean (auto); allowed: --metric auto"),
    # a std ranked as a score: its `best` the widest spread over seeds
    ("acc_mean@a_std", "'acc_mean@a_std' is a std over seeds, not a score to rank runs by; allowed: --metric acc_mean@a"),
    ("acc_mean_std", "allowed: --metric acc_mean, whose final_std column"),
])
def test_table_metric_of_a_table_column_or_a_std_names_the_metric_to_give(metric, expected, tmp_path, capsys):
    d = _grouped_run(tmp_path / "r")
    assert expected in one_line(capsys, ["table", str(d), "--metric", metric])
    assert cli.main(["table", str(d), "--metric", "acc_mean@a"]) == 0                  # ok
    assert "| 0.4000 | 0.2000 | 0.4000 |" in capsys.readouterr().out


def test_pareto_metric_of_a_std_is_refused(tmp_path, capsys):
    # a frontier of the widest spreads over seeds, drawn as if scores
    d = _grouped_run(tmp_path / "r")
    line = one_line(capsys, ["pareto", str(d), "--metric", "acc_mean_std", "--out", str(tmp_path / "p.png")])
    assert "'acc_mean_std' is a std over seeds, not a score" in line and "(acc_mean)" in line


# ----------------------------------------------------------------------------- a run's --out

def test_a_runs_out_that_is_a_sweeps_folder_or_holds_the_users_files_does_not_advise_overwrite(tmp_path, capsys):
    # "is not empty; pass --overwrite to replace it", and --overwrite was then refused: it replaces only a run
    # directory tallysim wrote (and of a sweep's runs it said "files tallysim did not write")
    sweep_dir = tmp_path / "sw"
    _grouped_run(sweep_dir / "lr=0.1")
    (sweep_dir / "sweep.json").write_text(json.dumps({"runs": [{"name": "lr=0.1"}]}))
    line = one_line(capsys, ["run", "data.name=synthetic", "--out", str(sweep_dir)])
    assert "is a sweep's directory (its sweep.json and runs), which --overwrite does not replace" in line
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    line = one_line(capsys, ["run", "data.name=synthetic", "--out", str(tmp_path / "mine")])
    assert "is not empty and not a tallysim run directory (it holds notes.txt)" in line and "pass" not in line
    with pytest.raises(ConfigError, match=r"which overwrite=True does not replace"):
        outdir.check(sweep_dir, False, words=outdir.PYTHON)


# ----------------------------------------------------------------------------- smoke sections

def test_a_config_files_smoke_section_is_checked_without_smoke_too(tmp_path, capsys):
    # a misspelt or stale key in `smoke` showed only with --smoke, after the full-size sweep had run
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"rounds": 2, "smoke": {"roundz": 1}}))
    line = one_line(capsys, ["sweep", "--config", str(f), "--out", str(tmp_path / "s"), "--dry-run", "optim.lr=0.1,0.2"])
    assert "unknown config key 'roundz'" in line and "did you mean rounds?" in line and "checked without --smoke" in line
    f.write_text(json.dumps({"rounds": 2, "smoke": {"rounds": "two"}}))
    with pytest.raises(ConfigError, match="smoke section.*rounds='two'"):
        config.load_file(str(f))
    f.write_text(json.dumps({"rounds": 2, "smoke": {"rounds": 1}}))
    assert config.load_file(str(f)).rounds == 2 and config.load_file(str(f), smoke=True).rounds == 1     # ok


@pytest.mark.parametrize("smoke", [True, False])
def test_a_figures_smoke_base_that_is_no_object_is_refused(smoke):
    # "smoke": {"base": null}: AttributeError: 'NoneType' object has no attribute 'items', --smoke or not
    from tallysim import figures
    spec = {"kind": "curves", "base": {"data": {"name": "synthetic"}, "rounds": 2},
            "groups": {"fedavg": {"protocol": {"name": "fedavg"}}}, "smoke": {"base": None}}
    with pytest.raises(ConfigError, match=r"`smoke.base` must be an object of config fields, not None"):
        figures.group_plans(spec, smoke, Path("."))


# ----------------------------------------------------------------------------- configs from Python

def test_a_runs_config_json_and_to_dict_read_back_with_from_dict(tmp_path):
    # from_dict(Results.read(d).config), a run's config.json as the docs point to it: "unknown config key
    # 'placement'" (and 'code', 'resumed': config.json's records); from_dict(to_dict(cfg)): "derived"=() must be
    # a list
    from tallysim import validation
    cfg = tiny("peers=2", "optim.lr=0.3")
    written = json.loads(json.dumps(config.to_dict(validation.validate(cfg))))
    written.update(code={"version": "0.1.0"}, placement={"devices": 1}, resumed=[{"round": 1}])
    assert validation.validate(config.from_dict(written)) == validation.validate(cfg)
    assert config.from_dict(config.to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="unknown config key 'code'"):       # a hand-written file's: still a typo
        config.from_dict({"code": 1})
    with pytest.raises(ConfigError, match=r"to_dict: expected a tallysim.Config, got dict"):
        config.to_dict({"rounds": 1})                 # dataclasses' "must be called with a dataclass type"
    with pytest.raises(ConfigError, match=r"from_dict\(base='x'\): expected a tallysim.Config"):
        config.from_dict({"rounds": 1}, base="x")     # dataclasses' "replace() should be called on dataclass"


def test_a_config_given_a_positional_value_says_fields_go_by_name():
    # Config("experiments/quick.json") was Config(peers="experiments/quick.json"), refused at run time as
    # "peers=... has the wrong type (str); expected an integer"
    import tallysim
    with pytest.raises(ConfigError, match=r"Config\('experiments/quick.json'\): fields are given by name.*"
                                          r"tallysim.config.load_file\(path\)"):
        tallysim.Config("experiments/quick.json")
    assert tallysim.Config(peers=3).peers == 3                                      # ok


def test_a_full_sweep_into_a_smoke_sweeps_out_is_refused(tmp_path, capsys):
    # the runs share their names (the axes name them): the full sweep skipped every smoke run as done, with
    # a note, and its sweep.json then said "smoke": false over a table of the smoke's 1-round results
    from tallysim import sweep
    out = tmp_path / "s"
    _grouped_run(out / "optim.lr=0.1")
    (out / "optim.lr=0.1" / "done.json").write_text("{}")
    (out / "sweep.json").write_text(json.dumps({"smoke": True, "runs": [{"name": "optim.lr=0.1"}]}))
    with pytest.raises(ConfigError, match=r"holds a --smoke sweep's \(its smoke section applied\) finished runs "
                                          r"\(optim.lr=0.1\), which this full-size sweep would skip as done"):
        sweep.run_sweep(tiny("rounds=1"), [("optim.lr=0.1", ["optim.lr=0.1"])], out, progress=False,
                        meta={"smoke": False})
    assert json.loads((out / "sweep.json").read_text())["smoke"] is True          # the index left as it was
    sweep.run_sweep(tiny("rounds=1"), [("optim.lr=0.1", ["optim.lr=0.1"])], out, progress=False,
                    meta={"smoke": True}, log=lambda m: None)                    # ok: the same kind, skipped


def test_run_group_of_configurations_one_program_cannot_hold_names_the_field(tmp_path, monkeypatch):
    # a list mixing protocols (or tasks: characters beside images) was a ValueError naming no field
    from tallysim import data, run
    monkeypatch.setattr(data, "load", lambda *a, **k: pytest.fail("data loaded before the refusal"))
    a = tiny("rounds=1", "protocol.name=fedavg")
    for b, named in ((a.replace(protocol={"name": "local"}), "protocol.name='fedavg'->'local'"),
                     (a.replace(model={"width": 64}), "model.width=32->64")):
        with pytest.raises(ConfigError, match=rf"run_group: configuration 2 differs from the first in a field one "
                                              rf"compiled program cannot vary \({named}"):
            run.run_group([a, b], [tmp_path / "a", tmp_path / "b"], progress=False)


def test_the_reading_helpers_refuse_arguments_of_the_wrong_type(tmp_path):
    # plot_curves(out=None): pathlib's TypeError; labels="ab" for two runs: the legend "a" and "b", in silence;
    # title=5: the title "5"; table_rows(metric=None): AttributeError; pareto.collect(metric=None): the same
    from tallysim.results import pareto, table
    from tallysim.results.plot import plot_curves
    runs = [str(_grouped_run(tmp_path / "a")), str(_grouped_run(tmp_path / "b"))]
    png = str(tmp_path / "p.png")
    for kwargs, expected in (({"out": None}, r"plot_curves\(out=None\): expected the figure's file path"),
                             ({"out": png, "labels": "ab"}, r"plot_curves\(labels='ab'\): expected a list of str"),
                             ({"out": png, "title": 5}, r"title=5\): expected a column name")):
        with pytest.raises(ConfigError, match=expected):
            plot_curves(runs, **kwargs)
    with pytest.raises(ConfigError, match=r"table_rows\(metric=None\): expected a column name"):
        table.table_rows(runs, metric=None)
    with pytest.raises(ConfigError, match=r"collect\(metric=None\): expected a column name"):
        pareto.collect(runs, metric=None)
    assert not list(tmp_path.glob("p.*"))
