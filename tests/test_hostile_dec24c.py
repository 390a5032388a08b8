"""Hostile inputs, round 21 (hostile21): the paper's regime rooms, text, cross-device cohorts and model groups,
and `tallysim table/plot/pareto` over results that mix them with image runs. Each test names what the input
did before its fix. Nothing here trains or compiles: the runs are written by hand (config.json from a
Config, metrics rows as run.py writes their keys), refusals come before anything compiles (`no_compile`).
"""
from __future__ import annotations

import json

import pytest
from conftest import TINY, one_line

from tallysim import cli, config, sweep, validation  # noqa: F401  (before jit is patched)
from tallysim.config import ConfigError
from tallysim.config_reads import unread

TG = [t for t in TINY if t != "model.width=32"]         # TINY for model groups (width: one group's own)
GROUPS = "model.groups=a:2:mlp,width=8;b:2:lenet"
TEXT = ["data.name=shakespeare", "model.name=lstm", "partition.kind=natural", "partition.pick=largest", "peers=2",
        "rounds=1", "model.hidden=16", "model.layers=1", "probe.per_round=32", "data.max_train=400"]


# ----------------------------------------------------------------------------- runs written by hand

def _run(path, items, rows):
    """A finished run directory: its config.json (the Config of `items`) and metrics rows."""
    path.mkdir(parents=True)
    (path / ".tallysim-run").write_text(json.dumps({"written_by": "tallysim"}))
    cfg = config.apply_overrides(config.Config(), items)
    (path / "config.json").write_text(json.dumps(config.to_dict(cfg)))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _row(rnd, **kv):
    return {"round": rnd, "bits_per_peer": 100.0 * rnd, "acc_global": None, "acc_peers": [0.5, 0.5], **kv}


@pytest.fixture
def rooms(tmp_path):
    """An image tally run, a grouped one, a cohort FedAvg run and a Shakespeare tally run, side by side."""
    return {
        "img": _run(tmp_path / "img", TINY, [_row(1, acc_mean=0.5), _row(2, acc_mean=0.6)]),
        "grp": _run(tmp_path / "grp", TG + [GROUPS], [
            _row(r, acc_mean=0.4 + r / 10, **{"acc_mean@a": 0.3, "acc_mean@b": 0.5, "bits_per_peer@a": 100.0 * r,
                                              "bits_per_peer@b": 100.0 * r}) for r in (1, 2)]),
        "coh": _run(tmp_path / "coh", TINY + ["peers=40", "protocol.name=fedavg", "participation=0.1",
                                              "client_storage=auto"],
                    [_row(r, acc_mean=None, acc_global=0.2 * r) for r in (1, 2)]),
        "txt": _run(tmp_path / "txt", TEXT, [_row(1, acc_mean=0.02, ppl_mean=80.0, acc_own_mean=0.02, acc_own_p10=0.01,
                                                  ppl_global=None, acc_client_mean=None, acc_client_p10=None),
                                             _row(2, acc_mean=0.03, ppl_mean=90.0, acc_own_mean=0.03, acc_own_p10=0.02,
                                                  ppl_global=None, acc_client_mean=None, acc_client_p10=None)]),
    }


# ----------------------------------------------------------------------------- model groups: the config

@pytest.mark.parametrize("extra, key", [
    (["model.name=cnn"], "model.name"),
    (["model.dtype=bfloat16", GROUPS.replace("8;", "8,dtype=float32;") + ",dtype=float32"], "model.dtype"),
    ([GROUPS.replace("8;", "8,optim.lr=0.1;") + ",optim.lr=0.2", "optim.lr=0.3"], "optim.lr"),
], ids=["name", "dtype", "lr"])
def test_a_run_level_field_every_group_sets_itself_is_refused(extra, key, capsys, no_compile):
    # `model.name=cnn` beside groups that each name their model ran no CNN, and `optim.lr=0.3` beside groups
    # that each set their own rate trained at neither, in silence (only the MODEL_READS fields were checked)
    items = TG + [GROUPS] + extra
    line = one_line(capsys, ["run", "--out", "unused", *items])
    assert f"{key}=" in line and "every group sets" in line and "a group that leaves it out" in line, line
    # a group that leaves the field out reads the run's: not refused
    taken = config.apply_overrides(config.Config(), TG + ["model.groups=a:2:mlp,width=8;b:2", "model.name=lenet",
                                                          "optim.lr=0.3"])
    assert not [k for k, _ in unread(taken)], unread(taken)


def test_a_sweep_over_a_field_every_group_sets_is_refused(capsys, tmp_path, no_compile):
    line = one_line(capsys, ["sweep", "--dry-run", "--out", str(tmp_path / "s"), *TG, GROUPS, "model.name=cnn,lenet"])
    assert "sweep axis model.name (2 values) is read by no run" in line and "every group sets name" in line, line


@pytest.mark.parametrize("peers", [-2, 0])
def test_a_json_group_of_no_peers_is_named_as_written(peers, tmp_path, capsys, no_compile):
    # "peers": -2 became the text a:-2:name=mlp, refused as "group 'a:-2:name=mlp' is not NAME:PEERS ...", a
    # syntax the file never held
    f = tmp_path / "g.json"
    f.write_text(json.dumps({"peers": 4, "model": {"groups": [{"name": "a", "peers": peers, "model": {"name": "mlp"}},
                                                              {"name": "b", "peers": 4 - peers}]}}))
    line = one_line(capsys, ["run", "--config", str(f), "--out", str(tmp_path / "o")])
    assert f'model.groups entry a: "peers"={peers}; allowed: an integer >= 1' in line and str(f) in line, line


# ----------------------------------------------------------------------------- table

def test_table_blanks_the_run_level_model_fields_no_group_reads(rooms):
    # the grouped run's row showed model.name mlp, width 200, hidden 256 and layers 2, none of them read by
    # its groups (a sets its own MLP width, b is a LeNet), beside the LSTM's hidden 16
    from tallysim.results.table import table_rows
    cols, rows = table_rows([str(rooms[k]) for k in ("img", "grp", "txt")], log=lambda m: None)
    by = {r["run"]: r for r in rows}
    for key in ("model.name", "model.width", "model.hidden", "model.layers"):
        assert key in cols and by["grp"][key] is None, (key, by["grp"])
    assert by["txt"]["model.hidden"] == 16 and by["img"]["model.width"] == 32 and by["img"]["model.name"] == "mlp"


def test_table_metric_ppl_is_the_headline_perplexity_best_the_lowest(rooms):
    # `table --metric ppl` was "'ppl' is not a column of any run's metrics.jsonl" beside the table's own ppl
    # column and plot's --metric ppl
    from tallysim.results.table import table_rows
    notes = []
    cols, rows = table_rows([str(rooms["img"]), str(rooms["txt"])], "ppl", log=notes.append)
    by = {r["run"]: r for r in rows}
    assert by["txt"]["final ppl"] == 90.0 and by["txt"]["best ppl"] == 80.0       # lower is better
    assert by["img"]["final ppl"] is None and any("no 'ppl' value in 1 of 2 runs (img)" in n for n in notes)
    with pytest.raises(ConfigError, match=r"--metric 'ppl' \(the headline model's test perplexity\) has no value "
                                          r"in these runs: only next-token runs"):
        table_rows([str(rooms["img"])], "ppl", log=lambda m: None)


@pytest.mark.parametrize("run, metric, said", [
    ("txt", "acc_client_p10", "no server model in these runs; the peers' own are acc_own_mean, acc_own_p10"),
    ("grp", "acc_mean@A", "names model group 'A', and these runs' groups are a, b"),
    ("img", "acc_mean@a", "names model group 'a', and these runs have no model.groups"),
], ids=["client-p10-on-tally", "unknown-group", "group-of-ungrouped"])
def test_table_says_why_a_metric_has_no_value(rooms, run, metric, said):
    # the text run's acc_client_p10 was "not computed by these runs", and acc_mean@A "not a column" among 60
    from tallysim.results.table import table_rows
    with pytest.raises(ConfigError, match="allowed: auto") as e:
        table_rows([str(rooms[run])], metric, log=lambda m: None)
    assert said in str(e.value), str(e.value)


# ----------------------------------------------------------------------------- plot

def _labels(rooms, keys):
    from tallysim.results.plot import run_labels
    dirs = [str(rooms[k]) for k in keys]
    return run_labels([json.loads((rooms[k] / "config.json").read_text()) for k in keys], dirs)


def test_plot_labels_leave_out_what_a_run_does_not_read(rooms):
    # the MLP run was labelled hidden=256, layers=2, the grouped run model=mlp, width=200, and the
    # Shakespeare run train_size=12000 and width=200: settings none of them used
    img, grp, txt = _labels(rooms, ("img", "grp", "txt"))
    assert "hidden=" not in img and "width=32" in img, img
    assert "model=" not in grp and ", width=" not in grp and "hidden=" not in grp and "groups=a:2" in grp, grp
    assert "train_size" not in txt and "width=" not in txt and "hidden=16" in txt, txt


def test_a_long_legend_entry_is_wrapped_inside_the_figure(rooms, tmp_path, monkeypatch, recwarn):
    # the four rooms' labels ran off the figure, cut, with matplotlib's "Tight layout not applied" UserWarning
    from tallysim.results import metrics, plot
    seen, save = [], metrics.save_figure
    monkeypatch.setattr(metrics, "save_figure", lambda fig, *p, **k: (seen.append(fig.axes[0].get_legend()),
                                                                        save(fig, *p, **k))[1])
    plot.plot_curves([str(rooms[k]) for k in ("img", "grp", "coh", "txt")], str(tmp_path / "p.png"))
    texts = [t.get_text() for t in seen[0].get_texts()]
    assert any("\n" in t for t in texts) and max(len(x) for t in texts for x in t.split("\n")) <= plot.LEGEND_CHARS
    assert not [w for w in recwarn if "layout" in str(w.message)], [str(w.message) for w in recwarn]


def test_plot_metric_ppl_skips_image_runs_and_refuses_where_none_has_one(rooms, tmp_path, capsys):
    # image and text runs together: "'ppl' is not a numeric column of img/metrics.jsonl" refused the whole
    # plot, where --metric acc_global skips the runs that have none
    from tallysim.results.plot import plot_curves
    plot_curves([str(rooms["img"]), str(rooms["txt"])], str(tmp_path / "p.png"), "ppl")
    assert "skipped 1 run that holds no number in it" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="metric 'ppl' .* has no value in these runs: a perplexity is a next-token"):
        plot_curves([str(rooms["img"]), str(rooms["coh"])], str(tmp_path / "q.png"), "ppl")


@pytest.mark.parametrize("metric, said", [
    ("acc_mean", "has no value in any run's metrics.jsonl (null in every row: no peer models in these runs)"),
    ("acc_peers", "is not a score to draw (its values are lists, not single numbers)"),
], ids=["null", "list"])
def test_plot_says_why_a_cohort_run_has_no_such_number(rooms, tmp_path, metric, said):
    # both were "is not a numeric column of coh/metrics.jsonl", the cohort run's rows holding the key
    from tallysim.results.plot import plot_curves
    with pytest.raises(ConfigError, match="allowed: auto, acc_global") as e:
        plot_curves([str(rooms["coh"])], str(tmp_path / "p.png"), metric)
    assert said in str(e.value), str(e.value)


def test_pareto_calls_round_no_score_and_offers_only_scores(rooms):
    # "--metric 'round' is not a column of any run's metrics.jsonl" (every row has it), offering
    # bits_per_peer, which pareto refuses as a cost
    from tallysim.results import pareto
    with pytest.raises(ConfigError, match=r"'round' is not a score to draw against bits \(the evaluation round") as e:
        pareto.collect([str(rooms["img"]), str(rooms["grp"])], metric="round", log=lambda m: None)
    allowed = str(e.value).split("allowed: ")[1]
    assert "acc_mean@a" in allowed and "bits_per_peer" not in allowed and "wall_s" not in allowed


@pytest.mark.parametrize("run, key, said", [
    ("txt", "ppl", "a next-token run's columns are ppl_mean, acc_own_mean, acc_own_p10"),
    ("img", "acc_mean@a", "@NAME columns are a model.groups run's, and these rows have none"),
    ("grp", "acc_mean@zz", "@NAME is a model group of these rows: a, b"),
], ids=["ppl", "ungrouped", "unknown-group"])
def test_results_column_names_the_columns_meant(rooms, run, key, said):
    # Results.column("ppl") listed the keys alone; acc_mean@a of a run without groups offered acc_min, acc_max
    from tallysim.results.runs import Results, UnknownKey
    with pytest.raises(UnknownKey) as e:
        Results.read(rooms[run]).column(key)
    assert said in str(e.value), str(e.value)


# ----------------------------------------------------------------------------- figures and the bench

def _figure(tmp_path, kind, base, groups):
    f = tmp_path / "fig.json"
    f.write_text(json.dumps({"kind": kind, "title": "t", "base": base, "groups": groups}))
    return str(f)


BASE = {"peers": 4, "rounds": 1, "data": {"name": "synthetic", "train_size": 1600, "test_size": 300},
        "partition": {"kind": "iid"}, "probe": {"per_round": 64, "pool_size": 200}}


def test_a_vocab_figure_on_images_is_refused_before_any_run(tmp_path, capsys, no_compile):
    # it ran, then drew the image runs on a "next-token test accuracy" axis with C tabled as "?"
    f = _figure(tmp_path, "vocab", BASE, {"tally": {"protocol": {"name": "tally"}}})
    line = one_line(capsys, ["figure", f, "--dry-run", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "f")])
    assert "figure group 'tally': a kind=vocab figure draws next-token accuracy" in line and "synthetic" in line, line
    assert "allowed: data.name shakespeare or shakespeare_words" in line


@pytest.mark.parametrize("own, said", [
    ("x:2:mlp;y:2:cnn", "its model group x (2 peers of mlp) is tabled against local training's group x, and local "
                        "training has no such group"),
    ("a:2:cnn;b:2:lenet", "its model group a (2 peers of cnn) is tabled against local training's group a, and local "
                          "training runs another model or peer count in it"),
], ids=["missing", "other-model"])
def test_a_model_groups_figure_gains_only_over_the_same_groups(own, said, tmp_path, capsys, no_compile):
    # groups_plot tables each group's gain over local's group of the same name: a CNN group `a` was tabled
    # against local's MLP group `a`, and a group local lacks had no gain, in silence after every run
    base = {**BASE, "model": {"groups": "a:2:mlp,width=8;b:2:lenet"}}
    f = _figure(tmp_path, "model_groups", base, {"tally": {"protocol": {"name": "tally"}, "model": {"groups": own}},
                                                  "local": {"protocol": {"name": "local"}}})
    line = one_line(capsys, ["figure", f, "--dry-run", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "f")])
    assert said in line and "allowed: the same model.groups in every figure group" in line, line


def test_bench_population_refuses_a_protocol_whose_clients_keep_state(capsys, no_measure):
    # --set protocol.name=tally timed every client stacked in the rows labelled "server model alone"
    line = one_line(capsys, ["bench", "--population", "--set", "protocol.name=tally"])
    assert "tally keeps each client's own model between rounds, so client_storage=auto would hold every" in line
    assert "allowed: a protocol whose clients keep nothing (fedavg" in line, line


def test_plot_says_why_an_ungrouped_run_has_no_group_column(rooms, tmp_path, capsys):
    # `--metric bits_per_peer@a` beside an image run skipped it "e.g. acc_global is null where there is no
    # server model", a reason of another column
    from tallysim.results.plot import plot_curves
    plot_curves([str(rooms["grp"]), str(rooms["img"])], str(tmp_path / "p.png"), "bits_per_peer@a")
    err = capsys.readouterr().err
    assert "skipped 1 run" in err and "an @NAME column is a model.groups run's" in err and "server" not in err, err


@pytest.mark.parametrize("axis", ["model.groups=a:2:mlp;b:2:lenet,,none", "model.groups=a:2:mlp;b:2:lenet,"])
def test_an_empty_value_of_a_model_groups_axis_is_refused(axis, tmp_path, capsys, no_compile):
    # glued to the value before it, the empty value vanished (2 runs), where `peers=4,,5` is refused
    line = one_line(capsys, ["sweep", "--dry-run", "--out", str(tmp_path / "s"), *TG, axis])
    assert f"sweep axis {axis!r} has an empty value" in line, line


def test_the_json_list_of_groups_reads_on_the_command_line_too():
    # the list docs/groups.md shows for config files, typed as model.groups='[...]', was refused as one group
    # named by the whole JSON text ("group '[{\"name\"...' is not NAME:PEERS")
    groups = [{"name": "a", "peers": 2, "model": {"name": "mlp", "width": 8}}, {"name": "b", "peers": 2,
                                                                               "model": {"name": "lenet"}}]
    cfg = config.apply_overrides(config.Config(), [f"model.groups={json.dumps(groups)}"])
    assert cfg.model.groups == "a:2:name=mlp,width=8;b:2:name=lenet"
    with pytest.raises(ConfigError, match=r"model.groups='\[\{\"name\": \"a\"' starts as JSON but is not JSON"):
        config.apply_overrides(config.Config(), ['model.groups=[{"name": "a"'])
