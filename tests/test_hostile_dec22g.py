"""Hostile inputs, round 19 (hostile19): language (text faults), the figure configs' per-kind keys, the
default probe pool a sweep's --dry-run can know, and the Python API a notebook calls. Each test names what
the input did before its fix; refusals come before anything compiles (`no_compile`). Milliseconds each,
but the figure tests' dry runs (a few hundred ms of validation).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY, one_line, tiny

from tallysim import cli, nonfinite_stop, run, validation  # noqa: F401  (before jit is patched)
from tallysim.sim import peers  # noqa: F401  (jitted at import)
from tallysim.fields import ConfigError


# ----------------------------------------------------------------------------- text: label_flip

def test_label_flip_on_text_keeps_padding_out_of_the_loss():
    # faults.kind=label_flip read a peer's labels as (c + 1) % C before the loss weights were taken from
    # them: on text every PAD target (0, the padding of a role's last window) became BOS (1) and was trained
    # on, and every target C - 1 became PAD and was left out of the loss
    import jax.numpy as jnp
    from tallysim.sim import local, tasks
    task = tasks.make("next_token", (4,))
    y = jnp.array([[5, 79, 0, 0]], jnp.int32)          # a window: two real targets, then padding
    mask = jnp.array([True])
    flipped, w = local.private_targets(task, y, mask, jnp.bool_(True), 80)
    assert flipped.tolist() == [[6, 4, 0, 0]]          # among the words since textleft33: 79 -> 4, not PAD
    assert w.tolist() == [[1.0, 1.0, 0.0, 0.0]]        # the padding stays out, the flipped 79 stays in
    same, w0 = local.private_targets(task, y, mask, jnp.bool_(False), 80)
    assert same.tolist() == y.tolist() and w0.tolist() == w.tolist()
    # images: every real example weighs 1 either way
    img, wi = local.private_targets(tasks.make("classification"), jnp.array([9, 0]), jnp.array([True, False]),
                                    jnp.bool_(True), 10)
    assert img.tolist() == [0, 1] and wi.tolist() == [1.0, 0.0]


def test_natural_peers_past_the_roles_left_by_max_train_are_refused_by_the_roles():
    # data.max_train=300 on shakespeare leaves 270 windows of 192 roles after the pool: peers=715 was told
    # "allowed: peers <= 270" (the windows, validate_with_data), and peers=260 then "above the 192 clients
    # of shakespeare", a dataset of 715. The roles' bound alone is said now, as what is left
    import importlib
    from tallysim import config
    from tallysim.data.base import DataError
    partition = importlib.import_module("tallysim.data.partition")
    cfg = validation.validate(config.apply_overrides(config.Config(), [
        "data.name=shakespeare", "model.name=lstm", "partition.kind=natural", "data.max_train=300",
        "probe.per_round=10", "peers=715"]))
    validation.validate_with_data(cfg, 80, 270, 30)      # not refused by the windows
    clients = np.repeat(np.arange(192), 2)[:270]
    with pytest.raises(DataError, match=r"peers=260 is above the 135 clients of shakespeare that hold a training "
                                        r"example \(after data.max_train and the probe pool\).*allowed: peers=1..135"):
        partition.natural_clients(clients, 260, 0, "shakespeare")
    with pytest.raises(ConfigError, match=r"allowed: peers <= 270"):     # other partitions: the examples' bound
        validation.validate_with_data(tiny("peers=715", "probe.pool_size=None", "probe.per_round=10"), 10, 270, 30)


@pytest.mark.parametrize("items", [["protocol.name=fedavg"], ["warmup_epochs=1"], ["protocol.name=local"]],
                         ids=["fedavg", "own-warmup", "local"])
def test_local_epochs_beside_local_steps_that_nothing_reads_is_refused(items, tmp_path, capsys, no_compile):
    # local_steps replaces every round's epochs: local_epochs=3 beside it ran as if unset (it sizes only a
    # distillation protocol's warm-up, when warmup_epochs is left to it)
    line = one_line(capsys, ["run", "--out", str(tmp_path / "o"), *TINY, "local_steps=5", "local_epochs=3", *items])
    assert "local_epochs=3 is not read with local_steps=5" in line and "allowed there: its default 1, or " \
        "local_steps=none" in line, line
    validation.check_read(validation.validate(tiny("local_steps=5", "local_epochs=3")))   # tally's warm-up reads it


# ----------------------------------------------------------------------------- the default probe pool

@pytest.mark.parametrize("items, pool", [
    (["data.name=synthetic", "peers=2", "rounds=1", "probe.per_round=5000,10"], 1200),
    (["data.name=synthetic", "data.train_size=1600", "data.max_train=500", "peers=2", "rounds=1",
      "probe.per_round=64"], 50),
    (["data.name=shakespeare", "model.name=lstm", "partition.kind=natural", "peers=2", "rounds=1",
      "probe.per_round=5000"], 4305),
], ids=["synthetic", "max_train", "text"])
def test_a_sweep_dry_run_refuses_probes_past_the_default_pool(items, pool, tmp_path, capsys, no_compile):
    # probe.per_round past the default pool (10% of the training examples) was refused only once the data
    # loaded: `sweep --dry-run` listed the runs as fine, and every run then failed at build
    line = one_line(capsys, ["sweep", "--dry-run", "--out", str(tmp_path / "s"), *items])
    assert f"is larger than the probe pool ({pool} examples; probe.pool_size is unset" in line, line
    assert f"allowed: probe.per_round=1..{pool}" in line, line
    # at the pool's size, or with a pool the config sets, or a dataset whose size the config cannot tell
    validation.validate(tiny("probe.pool_size=None", "data.train_size=640", "probe.per_round=64"))
    validation.validate(tiny("probe.pool_size=3000", "data.train_size=20000", "probe.per_round=2000"))
    validation.validate(tiny("probe.pool_size=None", "data.train_size=640", "probe.per_round=640",
                             "protocol.name=fedavg"))         # the FedAvg family draws no probes


# ----------------------------------------------------------------------------- figure configs

def _figure(tmp_path, **spec) -> str:
    base = {"peers": 2, "rounds": 1, "data": {"name": "synthetic", "train_size": 400, "test_size": 100},
            "partition": {"kind": "iid"}, "probe": {"per_round": 16, "pool_size": 50}, "model": {"width": 8}}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"base": base, "groups": {"a": {"protocol": {"name": "tally"}}}, **spec}))
    return str(path)


@pytest.mark.parametrize("spec, said", [
    ({"kind": "curves", "panels": {"p": {"seed": 1}, "q": {"seed": 2}}},
     "`panels` is not read by a kind=curves figure (only by pareto, vocab, model_groups): every group would "
     "run once per panel"),
    ({"kind": "curves", "x": "seed", "sweep": {"seed": [0, 1]}}, "`x` is not read by a kind=curves figure"),
    ({"kind": "pareto", "target": 0.5}, "`target` is not read by a kind=pareto figure (only by curves, classes)"),
    ({"kind": "final_vs", "x": "seed", "sweep": {"seed": [0, 1]}, "facets": ["seed"]},
     "`facets` is not read by a kind=final_vs figure (only by faults, privacy)"),
    ({"kind": "curves", "smoke": {"panels": {"p": {"seed": 1}}}}, "`smoke.panels` is not read by a kind=curves"),
], ids=["panels", "x", "target", "facets", "smoke-panels"])
def test_a_figure_key_its_kind_does_not_read_is_refused(spec, said, tmp_path, capsys, no_compile):
    # each was ignored in silence: panels on a curves figure ran every group once per panel and drew the
    # runs as lines of one label; x on curves, target on pareto, facets on final_vs changed nothing
    line = one_line(capsys, ["figure", _figure(tmp_path, **spec), "--dry-run", "--results", str(tmp_path / "r"),
                             "--out", str(tmp_path / "f")])
    assert said in line and "allowed: leave it out, or a kind that reads it" in line, line


def test_a_model_groups_figure_without_model_groups_is_refused(tmp_path, capsys, no_compile):
    # groups_plot draws each run's acc_mean@NAME: runs without model.groups ran, then drew an empty panel
    line = one_line(capsys, ["figure", _figure(tmp_path, kind="model_groups"), "--dry-run", "--results",
                             str(tmp_path / "r"), "--out", str(tmp_path / "f")])
    assert "figure group 'a': a kind=model_groups figure draws each run's model groups" in line, line
    assert "this group's runs set no model.groups; allowed: model.groups in `base` or in the group" in line, line
    fine = _figure(tmp_path, kind="model_groups", panels={"p": {"seed": 1}})
    spec = json.loads(open(fine).read())
    spec["base"]["model"]["groups"] = "x:1:mlp;y:1:mlp,width=4"
    open(fine, "w").write(json.dumps(spec))
    assert cli.main(["figure", fine, "--dry-run", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "f")]) == 0


# ----------------------------------------------------------------------------- the Python API

def _row(acc=0.5):
    return {"round": 2, "acc_mean": acc, "acc_global": None, "acc_ensemble": 0.5, "bits_per_peer": 1024,
            "wall_s": 1.0}


def test_summary_line_takes_a_runs_config_json_and_refuses_what_is_no_row():
    # the quickstart's metrics.summary_line(cfg, last) with Results.config (config.json's dict): an
    # AttributeError 'dict' object has no attribute 'seeds'; a list of rows or a row without an accuracy:
    # AttributeError 'get' / TypeError from a format
    from tallysim import config
    from tallysim.results import metrics
    cfg = tiny()
    as_json = json.loads(json.dumps(config.to_dict(cfg)))
    as_json["code"] = {"version": "x"}                  # a run's config.json records which code ran it
    assert metrics.summary_line(as_json, _row()) == metrics.summary_line(cfg, _row())
    assert metrics.summary_line(cfg, _row()).startswith("tally: 2 rounds, 4 peers on synthetic -> accuracy 0.5000")
    for cfg_, last in ((cfg, [_row()]), (cfg, {}), (cfg, {**_row(), "acc_mean": None}), ("c.json", _row())):
        with pytest.raises(ConfigError, match=r"summary_line\(cfg=\w+, last=\w+\): expected a Config \(or a run's "
                                              r"config.json as a dict, Results.config\) and one metrics row"):
            metrics.summary_line(cfg_, last)


# ----------------------------------------------------------------------------- figure tables of named groups

def _fake_run(d, cfg: dict, row: dict):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "acc_global": None, "wall_s": 1, **row}) + "\n")
    return d


def test_a_vocab_figures_groups_are_costed_by_their_runs_protocol(tmp_path, monkeypatch):
    # the bits per token were the figure group's name's: a user's group "soft" of softlabel and "light"
    # of tally (names docs/figures.md invites) were tabled "by parameters", with no soft/vote ratio
    from tallysim.figures import plots, vocab_plot
    monkeypatch.setattr(vocab_plot, "vocab_size", {"shakespeare_words": 10004}.get)
    data = {g: [({}, _fake_run(tmp_path / g / "x", {"protocol": {"name": p}, "data": {"name": "shakespeare_words"},
                                                    "comm": {"soft_bits": 8}},
                               {"bits_per_peer": 100.0, "acc_mean": 0.25}))]
            for g, p in (("light", "tally"), ("soft", "softlabel"))}
    table = open(plots.draw("vocab", {}, data, tmp_path / "v", "t")["table"]).read()
    assert "| shakespeare_words | 10004 | light | 1 | 0.2500 | - | 100 | 14 | 22,866 (32-bit soft / vote) |" in table
    assert "| shakespeare_words | 10004 | soft 8 bits | 1 | 0.2500 | - | 100 | 80032 | 5,717 |" in table


def test_a_model_groups_figures_local_baseline_is_found_by_its_protocol(tmp_path):
    # the baseline was the figure group named "local": a user's group "alone" of protocol local was drawn
    # as a protocol line, and no group's gain over local training was tabled
    from tallysim.figures import plots
    groups, data = "mlp:2:mlp;cnn:2:cnn", {}
    for g, p, accs, bits in (("ours", "tally", (0.55, 0.58), 512), ("alone", "local", (0.5, 0.6), 0)):
        row = {"bits_per_peer": bits, "acc_mean": 0.5, "acc_mean@mlp": accs[0], "acc_mean@cnn": accs[1],
               "bits_per_peer@mlp": bits, "bits_per_peer@cnn": bits}
        data[g] = [({}, _fake_run(tmp_path / g / "x", {"protocol": {"name": p}, "model": {"groups": groups}}, row))]
    table = open(plots.draw("model_groups", {}, data, tmp_path / "g", "t")["table"]).read()
    assert "|  | ours | mlp | 1 | 0.5500 | 512 | +0.0500 |" in table and "|  | ours | cnn | 1 | 0.5800 | 512 | -0.0200 |" in table
    assert "|  | alone | cnn | 1 | 0.6000 | 0 | - |" in table


def test_a_pipe_in_a_figure_group_name_stays_in_its_cell(tmp_path):
    # a figure group's name may hold a pipe (outdir.check_name allows it: "tally | 8 bits"), and every
    # figure table wrote it raw: the row gained a column and every number after it moved one to the right
    from tallysim.figures import plots
    row = {"bits_per_peer": 100.0, "acc_mean": 0.25}
    data = {"tally|8": [({}, _fake_run(tmp_path / "t" / "x", {"protocol": {"name": "tally"},
                                                               "data": {"name": "synthetic"}}, row))]}
    table = open(plots.draw("curves", {}, data, tmp_path / "c", "t")["table"]).read()
    assert "| tally\\|8 | synthetic | 0.2500 +- 0.0000 | 1.25e-05 | not reached |" in table, table
    groups = "mlp:1:mlp;cnn:1:cnn"
    g_row = {**row, "acc_mean@mlp": 0.5, "acc_mean@cnn": 0.6, "bits_per_peer@mlp": 1, "bits_per_peer@cnn": 1}
    data = {"x|y": [({}, _fake_run(tmp_path / "g" / "x", {"protocol": {"name": "tally"}, "model": {"groups": groups}},
                                   g_row))]}
    assert "|  | x\\|y | mlp | 1 | 0.5000 |" in open(plots.draw("model_groups", {}, data, tmp_path / "g", "t")["table"]).read()


# ----------------------------------------------------------------------------- a run's records as --config

@pytest.mark.parametrize("name, what", [("partition.json", "a run's partition record"),
                                        ("metrics.jsonl", "a run's metrics rows"),
                                        ("sweep.json", "a sweep's index of its runs")])
def test_a_runs_own_records_given_as_config_say_what_they_are(name, what, tmp_path, capsys, no_compile):
    # `--config runs/x/partition.json` (a tab completion away from config.json): "unknown config key
    # 'dataset'; did you mean data.seed?"; metrics.jsonl "not valid JSON: Extra data"; a sweep's sweep.json
    # "the `smoke` section must be an object of config fields, not a boolean"
    d = tmp_path / "r"
    d.mkdir()
    (d / name).write_text('{"dataset": "synthetic", "smoke": false, "runs": []}\n{"round": 1}\n')
    (d / (".tallysim-lock" if name == "sweep.json" else "config.json")).write_text("{}")
    line = one_line(capsys, ["run", "--config", str(d / name), "--out", str(tmp_path / "o")])
    assert f"config file {str(d / name)!r} is {what}, not a config; allowed: a JSON config file" in line, line
    if name != "sweep.json":
        assert f"(the run's own config is {d / 'config.json'})" in line, line


@pytest.mark.parametrize("kw, said", [({"results": b"runs"}, "results=b'runs' is bytes, not a path"),
                                      ({"out": 5}, "out=5 is int, not a path"),
                                      ({"name_or_path": b"fig1"}, "figure=b'fig1' is bytes, not a path")])
def test_make_figure_refuses_a_path_that_is_no_path(kw, said, tmp_path, no_compile):
    # figures.make_figure / dry_run from a notebook with bytes or a number: a TypeError from inside pathlib,
    # where tallysim.run refuses them in one line
    from tallysim import figures
    args = {"name_or_path": "fig1", "results": str(tmp_path / "r"), "out": str(tmp_path / "f"), **kw}
    for fn in (figures.make_figure, figures.dry_run):
        with pytest.raises(ConfigError, match=rf"{said}; allowed: a str or pathlib.Path"):
            fn(args["name_or_path"], smoke=True, results=args["results"], out=args["out"], log=lambda *a: None)
    assert not (tmp_path / "r").exists()
