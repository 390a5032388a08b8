"""Hostile inputs, round 14 (hostile14): experiments/*.json figure configs and sweep sections edited by hand
(strings, booleans and null for numbers, a smoke group that is no group, a list in a panel), result folders
with a run that lost its config.json, and more. Each test names what the input did before its fix; every
refusal comes before anything compiles (`no_compile`) or is written. Pure validation: milliseconds each.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY, one_line

from tallysim import cli, config, figures, outdir, sweep  # noqa: F401  (before jit is patched)
from tallysim.config import ConfigError
from tallysim.results import metrics, table

CLASS_POOL = figures.EXPERIMENTS / "class_pool.json"


def _class_pool() -> dict:
    return config.read_file(str(CLASS_POOL))


def _run_dir(d: Path, protocol="tally", cfg=True) -> Path:
    """A finished run's directory, written by hand: its marker, config (unless cfg=False) and two rows."""
    d.mkdir(parents=True)
    outdir.mark(d)
    if cfg:
        (d / metrics.CONFIG).write_text(json.dumps({"protocol": {"name": protocol}, "rounds": 2, "peers": 4,
                                                    "optim": {"lr": 0.05}}))
    rows = [{"round": r, "bits_per_peer": 4.0 * r, "acc_mean": 0.5, "acc_global": None} for r in (1, 2)]
    (d / metrics.METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


# ----------------------------------------------------------------------------- a config file's sweep section

@pytest.mark.parametrize("axis, expected", [
    # ran as the text 'true', refused as "sweep run peers=true: peers='true': expected an integer"
    ({"peers": [4, True]}, "peers=True is a boolean; expected an integer"),
    ({"optim.lr": [False]}, "optim.lr=False is a boolean; expected a number"),
    # null was the text 'none': "protocol.name='none' is not known", a name never written
    ({"protocol.name": ["tally", None]}, "protocol.name=None is null; expected a string"),
    ({"peers": [None]}, "peers=None is null; expected an integer"),
    # "malformed override '=1'": an override never typed, the file's section unnamed
    ({"": [1]}, "the config file's `sweep` section has an axis with an empty key"),
])
def test_a_sweep_sections_values_are_typed_as_the_files_body(axis, expected):
    with pytest.raises(ConfigError, match="sweep") as e:
        sweep.expand(axis, [])
    assert expected in str(e.value), e.value


def test_a_sweep_sections_json_values_that_fit_still_run():
    runs = sweep.expand({"data.max_train": [None, 1000], "partition.cap": [True, False], "optim.lr": [1, 0.5],
                         "data.input_shape": [[28, 28, 1]], "peers": [4.0]}, [])     # 4.0: an integer
    assert len(runs) == 8, runs


# ----------------------------------------------------------------------------- figure configs edited by hand

def test_a_smoke_group_that_is_no_group_of_the_figure_is_refused():
    # a typo in smoke.groups (or a group renamed in `groups` only) added a group of its own, run in the
    # smoke version alone with the base config: class_pool's smoke ran 7 groups of 6
    spec = _class_pool()
    spec["smoke"]["groups"]["tally_800p_pool100"] = {"probe": {"per_round": 7}}
    with pytest.raises(ConfigError, match=r"`smoke.groups` names 'tally_800p_pool100', not a group of its "
                                          r"`groups`; allowed: tally_800p_pool1000, "):
        figures.group_plans(spec, True, CLASS_POOL.parent)
    spec["groups"] = {}      # `groups` emptied: its smoke groups became the figure's groups beside "all"
    with pytest.raises(ConfigError, match=r"allowed: all \(smoke.groups shrinks those"):
        figures.group_plans(spec, True, CLASS_POOL.parent)


@pytest.mark.parametrize("edit, expected", [
    # "config file: seeds='5' is a string": neither the figure nor its group named
    (lambda s: s["base"].update(seeds="5"), "figure group 'tally_800p_pool1000' (base, groups.tally_800p_pool1000): "
                                            "seeds='5' is a string"),
    (lambda s: s["groups"]["local_pool1000"].update(seed=[0, 1]), "figure group 'local_pool1000' (base, "
                                                                   "groups.local_pool1000): seed=[0, 1] is a list"),
    # "sweep run iid: partition.kind='[\"iid\", \"dirichlet\"]' is not known ... did you mean dirichlet?"
    (lambda s: s["panels"]["iid"]["partition"].update(kind=["iid", "dirichlet"]),
     "figure panel 'iid': partition.kind=['iid', 'dirichlet'] is a list; expected a string"),
    (lambda s: s["panels"]["dir0.5"].update(probe={"per_round": True}),
     "figure panel 'dir0.5': probe.per_round=True is a boolean; expected an integer"),
    # "sweep run iid: rounds=0 is out of range": the base's value, said of a run, no group named
    (lambda s: s["base"].update(rounds=0), "figure group 'tally_800p_pool1000': sweep run iid: rounds=0 is out"),
    (lambda s: s["groups"]["local_pool1000"]["protocol"].update(name="Local"),
     "figure group 'local_pool1000': sweep run iid: protocol.name='Local' is not known"),
    # "config file 'nosuch.json' does not exist": whose include it was, unsaid
    (lambda s: s["groups"].update(extra={"include": "nosuch.json"}), "figure group 'extra': config file "),
    # a run's panel is its name up to the first "__": panel "dir__x"'s runs were drawn in a panel "dir"
    (lambda s: s["panels"].update({"dir__x": {"partition": {"kind": "iid"}}}), "figure panel 'dir__x': a panel's "
                                                                               "name may not hold '__'"),
])
def test_a_figure_configs_wrong_value_names_its_group_or_panel(edit, expected):
    # (with the refusals of hostile14's group and panel names: one test, was two of the same body)
    spec = _class_pool()
    edit(spec)
    with pytest.raises(ConfigError) as e:
        figures.group_plans(spec, False, CLASS_POOL.parent)
    assert expected in str(e.value), e.value


def test_a_figure_cli_refuses_a_smoke_group_before_anything_runs(tmp_path, capsys, no_compile):
    spec = json.loads(CLASS_POOL.read_text())
    spec["extends"] = str(CLASS_POOL.parent / "base" / "smoke.json")
    spec["smoke"]["groups"]["nosuch"] = {"probe": {"per_round": 7}}
    (tmp_path / "fig.json").write_text(json.dumps(spec))
    line = one_line(capsys, ["figure", str(tmp_path / "fig.json"), "--smoke", "--results", str(tmp_path / "r"),
                             "--out", str(tmp_path / "f")])
    assert "`smoke.groups` names 'nosuch'" in line, line
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- result folders

def test_a_run_without_config_json_does_not_make_every_field_a_column(tmp_path):
    # a run directory copied without its config.json: every one of ~100 config fields read as swept
    # (unset beside a value), and `tallysim table` printed them all, one empty column each
    _run_dir(tmp_path / "r" / "t")
    _run_dir(tmp_path / "r" / "f", protocol="fedavg")
    _run_dir(tmp_path / "r" / "bare", cfg=False)
    cols, rows = table.table_rows([tmp_path / "r"], log=lambda m: None)
    assert cols[:3] == ["run", "protocol.name", "final"], cols
    assert "peers" not in cols and "optim.lr" not in cols
    assert {r["run"]: r["status"] for r in rows}["bare"] == "unknown"


def test_a_last_row_cut_short_leaves_the_rows_before_it(tmp_path):
    # a run killed while writing a row (or read while it writes one): the whole run was skipped by `table`
    # and read_rows, and Results.read refused it ("torn by a crash; remove that line or rerun")
    import tallysim
    d = _run_dir(tmp_path / "r" / "torn")
    with (d / metrics.METRICS).open("a") as f:
        f.write('{"round": 3, "bits_per_peer": 12.0, "acc_me')
    assert [r["round"] for r in metrics.read_rows(d)] == [1, 2]
    assert [r["round"] for r in tallysim.read_rows(tmp_path / "r", strict=True)] == [1, 2]
    assert tallysim.Results.read(d).rows[-1]["round"] == 2
    # a broken line with a newline after it is no row being written: still refused, named
    (d / metrics.METRICS).write_text('{"round": 1, "bits_per_peer": 4.0, "acc_me\n')
    with pytest.raises(ConfigError, match="line 1 is not valid JSON"):
        metrics.read_rows(d)


def test_smoke_panels_that_are_no_object_are_refused():
    # "panels": [] in smoke ran the full figure's three panels in silence ([] is falsy)
    spec = _class_pool()
    spec["smoke"]["panels"] = []
    with pytest.raises(ConfigError, match=r"`smoke.panels` must be an object"):
        figures.group_plans(spec, True, CLASS_POOL.parent)
    spec["smoke"]["panels"] = {"iid": {"partition": {"kind": "iid"}}}
    assert {n.split("__")[0] for n, _ in figures.group_plans(spec, True, CLASS_POOL.parent)["local_pool1000"][1]} \
        == {"iid"}


def test_tied_is_ranked_lower_better(tmp_path, capsys):
    # `table --metric tied` showed a run's most tied round as its best, pareto drew the most tied runs as
    # the frontier: the share of tied votes was ranked as a score
    d = tmp_path / "r"
    _run_dir(d)
    rows = [{"round": r, "bits_per_peer": 4.0 * r, "acc_mean": 0.5, "acc_global": None, "tied": t}
            for r, t in ((1, 0.4), (2, 0.1))]
    (d / metrics.METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert metrics.final_best(rows, "tied") == (0.1, 0.1)
    assert metrics.lower_is_better("tied@lstm") and not metrics.lower_is_better("vote_acc")
    line = one_line(capsys, ["pareto", str(d), "--metric", "tied", "--out", str(tmp_path / "p.png")])
    assert "--metric 'tied' is better lower" in line, line


@pytest.mark.parametrize("name, edit, expected", [
    # a misspelt `every_round` group: its runs gave no per-round points, in silence
    ("fig9.json", lambda s: s["every_round"].append("fedAvg"), "`every_round` names 'fedAvg', not one of the "
                                                                "figure's groups; allowed: local, fedavg"),
    # the probe panels said "no Tally runs" after the whole figure had run
    ("fig8.json", lambda s: s.update(probe_group="Tally"), "`probe_group` names 'Tally', not one of"),
    # every run drawn in one facet ("") after the whole figure had run
    ("fig8.json", lambda s: s.update(facets=["faults.kind", "partition.knd"]), "`facets`=['faults.kind', "
                                                                                "'partition.knd']; allowed: a list"),
])
def test_a_figures_group_names_and_facets_are_checked_before_it_runs(name, edit, expected, tmp_path, capsys,
                                                                    no_compile):
    spec = json.loads((figures.EXPERIMENTS / name).read_text())
    edit(spec)
    if "extends" in spec:
        spec["extends"] = str(figures.EXPERIMENTS / spec["extends"])
    (tmp_path / name).write_text(json.dumps(spec))
    line = one_line(capsys, ["figure", str(tmp_path / name), "--smoke", "--dry-run", "--results",
                             str(tmp_path / "r"), "--out", str(tmp_path / "f")])
    assert expected in line, line


# ----------------------------------------------------------------------------- the vote when none arrived

def test_a_vote_no_peer_sent_has_no_accuracy():
    # faults.kind=dropout with every peer dropped (faults.fraction=1): the argmax of no votes is class 0,
    # and its hits were written as vote_acc and softavg_acc (0.125 on a run's 64 probes), in every average
    import jax.numpy as jnp
    from tallysim.sim import vote
    logits = jnp.zeros((3, 4, 5)).at[:, :, 2].set(1.0)
    y = jnp.array([0, 0, 2, 1])
    s = vote.chunk_sums(logits, jnp.zeros((3,), bool), y)      # nobody arrived
    t = vote.tally_counts(s.counts_MxC, jnp.int32(0), "lowest", 0.0, None, 0.0)
    info = vote.finish_diagnostics(s, jnp.int32(0), y, t.winner_M, t.share_M)
    assert all(bool(jnp.isnan(info[k])) for k in ("vote_acc", "softavg_acc", "vote_acc_honest")), info
    s = vote.chunk_sums(logits, jnp.ones((3,), bool), y)       # all three arrived: scored as before
    t = vote.tally_counts(s.counts_MxC, jnp.int32(3), "lowest", 0.0, None, 0.0)
    info = vote.finish_diagnostics(s, jnp.int32(3), y, t.winner_M, t.share_M)
    assert float(info["vote_acc"]) == float(info["softavg_acc"]) == 0.25


# ----------------------------------------------------------------------------- bench --set

@pytest.mark.parametrize("items, expected", [
    # last-wins: measured at optim.lr=0.2, the 0.1 given first dropped in silence
    ("optim.lr=0.1,optim.lr=0.2", "optim.lr is given twice in --set ('optim.lr=0.1' and 'optim.lr=0.2')"),
    # the bench's FedAvg reads neither: measured as if they were set
    ("tally.target=counts", "tally.target='counts' is not read by protocol.name=fedavg"),
    ("faults.kind=dropout,vote.ties=random", "vote.ties='random' is not read by protocol.name=fedavg"),
])
def test_bench_set_refuses_a_key_twice_and_a_field_its_fedavg_ignores(items, expected, capsys, no_measure):
    line = one_line(capsys, ["bench", "--population", "--set", items])
    assert line.startswith("tallysim: error: bench --population --set: ") and expected in line, line


# ----------------------------------------------------------------------------- config files written as JSON5

@pytest.mark.parametrize("text, expected", [
    # each was "is not valid JSON: Expecting property name enclosed in double quotes: line 2 column 3"
    # (or "Expecting value"), nothing said of what to change
    ('{\n  // ten peers\n  "peers": 4\n}', "JSON has no comments: remove them"),
    ('{"peers": 4, /* x */ "rounds": 2}', "JSON has no comments"),
    ('{"peers": 4,\n}', "JSON allows no comma before a closing } or ]: remove it"),
    ('{"data": {"input_shape": [28, 28, 1,]}}', "JSON allows no comma before a closing } or ]"),
    ("{'peers': 4}", "JSON strings and keys take double quotes"),
    ('{"partition": {"cap": True}}', "JSON writes true, false and null in lower case"),
    ('{"peers": 4 "rounds": 2}', "Expecting ',' delimiter: line 1 column 13 (char 12)"),   # no hint to give
])
def test_a_config_file_in_json5_says_what_json_does_not_allow(text, expected, tmp_path, capsys, no_compile):
    (tmp_path / "c.json").write_text(text)
    line = one_line(capsys, ["run", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "o")])
    assert "is not valid JSON" in line and expected in line, line
    assert not (tmp_path / "o").exists()


def test_a_link_beside_its_run_does_not_rename_it(tmp_path):
    # `ln -s t latest` beside the run t: the link sorted first and claimed the run, which table and
    # read_rows then named "latest" (the run "t" was nowhere)
    import tallysim
    _run_dir(tmp_path / "r" / "t")
    (tmp_path / "r" / "latest").symlink_to(tmp_path / "r" / "t")
    assert [label for _, label in metrics.find_runs([tmp_path / "r"])] == ["t"]
    assert {r["run"] for r in tallysim.read_rows(tmp_path / "r")} == {"t"}
    (tmp_path / "links").mkdir()                      # a folder of links alone still finds the run
    (tmp_path / "links" / "a").symlink_to(tmp_path / "r" / "t")
    assert [label for _, label in metrics.find_runs([tmp_path / "links"])] == ["a"]


def test_results_of_a_home_relative_run_or_a_sweep_says_how_to_read_it(tmp_path, monkeypatch):
    # Results("~/runs/t") of a finished run, and Results(sweep_dir), were empty Results (0 rows) in silence;
    # Results("runs/t") was refused, and Results.read("~/runs/t") expands the ~
    import tallysim
    monkeypatch.setenv("HOME", str(tmp_path))
    _run_dir(tmp_path / "runs" / "t")
    with pytest.raises(ConfigError, match=r"to read the run in ~/runs/t: tallysim.Results.read\('~/runs/t'\)"):
        tallysim.Results("~/runs/t")
    assert len(tallysim.Results.read("~/runs/t").rows) == 2
    (tmp_path / "runs" / metrics.SWEEP).write_text(json.dumps({"runs": []}))
    with pytest.raises(ConfigError, match=r"is a sweep directory; a Results is one run .* tallysim.read_rows"):
        tallysim.Results(tmp_path / "runs")
    assert tallysim.Results(tmp_path / "new", rows=[{"round": 1}]).rows == [{"round": 1}]     # given: kept


def test_a_groups_field_it_may_not_set_is_named_as_written():
    # "group a sets model.tally.target": a key never written (tally's field, read as a model.* one)
    from tallysim import model_groups
    with pytest.raises(ConfigError, match=r"group a sets tally.target; a group may set name, "):
        model_groups.parse("a:2,tally.target=vote;b:2")
    with pytest.raises(ConfigError, match=r"group a sets optim.nesterov; a group may set"):
        model_groups.parse("a:2:mlp,optim.nesterov=1;b:2")


@pytest.mark.parametrize("include", [5, ["pareto/tally.json"], ""])
def test_a_groups_include_that_is_no_path_is_refused(include):
    # 5 or a list: "TypeError: unsupported operand type(s) for /: 'PosixPath' and 'int'", a traceback
    spec = _class_pool()
    spec["groups"]["extra"] = {"include": include}
    with pytest.raises(ConfigError, match=r"figure group 'extra': \"include\"=.*; allowed: the path of one JSON"):
        figures.group_plans(spec, False, CLASS_POOL.parent)
