"""Hostile inputs, round 15 (hostile15): `sweep --dry-run` against folders another process writes, the
Python API's run_sweep and Results given the wrong shapes, and a dropout run in which no message can
ever arrive. Each test names what the input did before its fix; every refusal comes before anything
compiles (`no_compile`) or is written. Pure validation: milliseconds each.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from conftest import TINY, one_line, tiny

import tallysim
from tallysim import cli, outdir, run_lock, sweep, validation  # noqa: F401  (before jit is patched)
from tallysim.config import ConfigError


# ----------------------------------------------------------------------------- sweep --dry-run

class _OtherProcess:
    """A lock held as another process holds it (flock on its own open file: this process's probe fails)."""

    def __init__(self, d: Path):
        d.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(d / run_lock.LOCK, os.O_RDWR | os.O_CREAT)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self):
        os.close(self.fd)


def _dry(capsys, out: Path) -> list:
    assert cli.main(["sweep", "--dry-run", "--out", str(out), *TINY, "peers=2,3"]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_dry_run_says_another_sweep_writes_its_folder_and_which_run_another_process_writes(tmp_path, capsys):
    # --out being written by another sweep: the real sweep is refused (sweep_busy), the dry run listed
    # every run "(will run)" and said nothing; a run folder a `tallysim run --out` writes now was "(will
    # run again from round 1 (it stopped before its first checkpoint))", and the sweep records it failed;
    # a partial run of another config (the sweep edited since) was said to run again, not that its rows go
    import json
    from tallysim import config
    out = tmp_path / "s"
    for name in ("peers=2", "peers=3"):
        (out / name).mkdir(parents=True)
        outdir.mark(out / name)
        (out / name / "metrics.jsonl").write_text("")
    was = config.to_dict(config.validate(config.apply_overrides(config.Config(), TINY + ["peers=3", "optim.lr=0.5"])))
    (out / "peers=3" / "config.json").write_text(json.dumps(was))
    sweep_lock, run_lock_ = _OtherProcess(out), _OtherProcess(out / "peers=2")
    try:
        lines = _dry(capsys, out)
    finally:
        sweep_lock.close()
        run_lock_.close()
    assert lines[0].startswith(f"note: {out} is being written by another tallysim sweep (or figure) right now"), lines
    assert lines[1].endswith("(being written by another tallysim process now; the sweep would not touch it and "
                             "would record it failed, unless that process finishes it first)"), lines
    assert lines[2].endswith("(will run again from round 1 (it stopped before its first checkpoint; its rows, of "
                             "another config (optim.lr=0.5->0.05), are replaced))"), lines


# ----------------------------------------------------------------------------- run_sweep's arguments

@pytest.mark.parametrize("runs, out, expected", [
    # "ValueError: too many values to unpack (expected 2)" from sweep.configs
    ([("a", ["peers=3"], 1)], "s", "run ('a', ['peers=3'], 1) is not a (name, [key=value overrides]) pair"),
    # a dict iterated as its keys: "not enough values to unpack (expected 2, got 1)"
    ({"a": ["peers=3"]}, "s", "run_sweep(runs={'a': ['peers=3']}): dict; allowed: a list of (name,"),
    # made the directory and an empty sweep.json, returned [] in silence
    ([], "s", "run_sweep(runs=[]): no run to do"),
    # two runs, one name: one program of two lanes writing one directory (metrics.jsonl "replaced by
    # another program during the run"), the second's config.json over the first's
    ([("a", ["peers=3"]), ("a", ["peers=4"])], "s", "two runs are named 'a' (peers=3 and peers=4), and would "
                                                    "write one directory"),
    # a list as a run's name: "TypeError: unhashable type: 'list'" from the two-names check (review22)
    ([(["a"], ["peers=3"])], "s", "run (['a'], ['peers=3']) is named by a list; allowed: a name as a str"),
    # "TypeError: expected str, bytes or os.PathLike object, not int" from inside os.fsdecode
    ([("a", ["peers=3"])], 5, "run_sweep(out_dir=5): int; allowed: a directory path"),
])
def test_run_sweep_refuses_runs_that_are_not_named_pairs_and_an_out_that_is_no_path(runs, out, expected, tmp_path,
                                                                                    no_compile):
    where = tmp_path / out if isinstance(out, str) else out
    with pytest.raises(ConfigError) as e:
        sweep.run_sweep(tiny("rounds=1"), runs, where, progress=False)
    assert expected in str(e.value), e.value
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- Results made by hand

@pytest.mark.parametrize("kwargs, expected", [
    # rows of strings: .dead_peers was "AttributeError: 'str' object has no attribute 'get'"
    ({"rows": ["a", "b"], "config": {}}, "Results(rows=...): 'a' is str; allowed: a list of metrics rows"),
    # a row for the rows: .last was "KeyError: -1"
    ({"rows": {"round": 1}, "config": {}}, "Results(rows=...): {'round': 1} is dict"),
    ({"rows": [{"round": 1}], "config": [1]}, "Results(config=[1]): list; allowed: a dict"),
])
def test_results_made_by_hand_refuse_rows_and_config_of_the_wrong_shape(kwargs, expected, tmp_path):
    with pytest.raises(ConfigError) as e:
        tallysim.Results(tmp_path / "r", **kwargs)
    assert expected in str(e.value), e.value
    # a tuple of rows is a list of them; config=None keeps repr's plain form (test_review_dec17)
    assert tallysim.Results(tmp_path / "r", rows=({"round": 1},)).rows == [{"round": 1}]


def test_a_results_status_of_a_round_count_that_is_no_integer_is_unknown(tmp_path):
    # config={"rounds": "2"} (by hand: read_run refuses such a config.json): "TypeError: '>=' not supported
    # between instances of 'int' and 'str'" from .status, and repr fell back to its plain form
    res = tallysim.Results(tmp_path / "r", rows=[{"round": 2, "acc_mean": 0.5}], config={"rounds": "2"})
    assert res.status == "unknown"
    assert tallysim.Results(tmp_path / "r", rows=[{"round": 2}], config={"rounds": 2}).status == "done"


# ----------------------------------------------------------------------------- faults

def test_dropout_of_every_message_of_every_peer_is_warned():
    # faults.kind=dropout faults.fraction=1 (drop_prob 1, its default): every vote lost in every round; the
    # run wrote 0 bits and tally's name beside local training's accuracy, and no line said so
    said = [w for w in validation.warnings(tiny("protocol.name=tally", "faults.kind=dropout", "faults.fraction=1"))
            if "loses every message" in w]
    assert said == ["faults.kind=dropout with faults.fraction=1 makes all 4 peers faulty and faults.drop_prob=1 "
                    "loses every message they send: nothing is exchanged in any round (0 bits), so the peers "
                    "train alone (faults.fraction below 1, or faults.drop_prob below 1, leaves some messages "
                    "arriving)"], said
    for some in (["faults.fraction=0.75"], ["faults.fraction=1", "faults.drop_prob=0.5"]):
        assert not [w for w in validation.warnings(tiny("protocol.name=tally", "faults.kind=dropout", *some))
                    if "loses every message" in w]


# ----------------------------------------------------------------------------- distillation order

@pytest.mark.parametrize("items, expected", [
    # distill.epochs is read under distill.order=sequential alone: with mixed (the default) 3 ran as if unset
    (["distill.epochs=3"], "distill.epochs=3 is not read with distill.order='mixed' (only with "
                           "distill.order=sequential); allowed there: its default 1"),
    # sequential with 0 passes took the local round's mixed path (sim/local.py: `if sequential_epochs`)
    (["distill.order=sequential", "distill.epochs=0"], "distill.order=sequential with distill.epochs=0 makes no "
                                                       "pass over the probes before local training"),
])
def test_distill_epochs_where_the_order_does_not_read_them_is_refused(items, expected, capsys, no_compile):
    line = one_line(capsys, ["run", "--out", "unused", *TINY, "protocol.name=softlabel", *items])
    assert expected in line, line
    validation.single_run(tiny("protocol.name=softlabel", "distill.order=sequential", "distill.epochs=2"))


# ----------------------------------------------------------------------------- plugins

def test_a_grouped_plugin_whose_code_fails_is_told_what_model_groups_asks(tmp_path, monkeypatch, registry_restored):
    # examples/gatedvote.py declaring Traits(model_groups=True), run with model.groups of two widths: "round
    # raised ValueError: vmap got inconsistent sizes for array axes to be mapped" and no word of the trait
    import sys
    from types import SimpleNamespace
    from tallysim import protocols
    from tallysim.protocols import contract
    (tmp_path / "grouped_dec20e.py").write_text(
        "from tallysim.protocols import Traits\nTRAITS = Traits(model_groups=True)\n"
        "PROTOCOLS = {'grouped_dec20e': 'make'}\n"
        "def make(ctx):\n    raise ValueError('vmap got inconsistent sizes for array axes to be mapped')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        protocols.load_plugin("grouped_dec20e")
        for groups, said in (((object(),), True), ((), False)):
            ctx = SimpleNamespace(cfg=SimpleNamespace(protocol=SimpleNamespace(name="grouped_dec20e")),
                                  model_groups=groups)
            with pytest.raises(ConfigError) as e:
                contract.make(ctx)
            assert "its factory raised ValueError: vmap got inconsistent sizes" in str(e.value), e.value
            assert ("this run has model.groups and the plugin declares Traits(model_groups=True), so its init and "
                    "round must give each group's peers their own model" in str(e.value)) == said, e.value
    finally:
        sys.modules.pop("grouped_dec20e", None)


# ----------------------------------------------------------------------------- result files edited by hand

def _finished(d: Path, majority) -> Path:
    import json
    from tallysim.results import metrics
    d.mkdir(parents=True)
    outdir.mark(d)
    (d / metrics.CONFIG).write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 3, "peers": 3}))
    rows = [{"round": r, "bits_per_peer": 4.0 * r, "acc_mean": 0.5, "acc_global": None, "acc_peers": peers}
            for r, peers in ((1, [0.1, 0.1, 0.1]), (2, [0.1, 0.6, 0.7]), (3, [0.1, 0.7, 0.8]))]
    (d / metrics.METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / metrics.PARTITION).write_text(json.dumps({"classes": 10, "majority_acc": majority}))
    return d


@pytest.mark.parametrize("majority", [5, 60, -0.5, True])
def test_a_majority_acc_that_is_no_accuracy_is_not_the_floor(majority, tmp_path):
    # partition.json's majority_acc edited to 5 (or a percentage): every run "at the floor 5.0000" in the
    # summary and Results' repr, and its dead peer hidden (every peer under 5: the floor note's case)
    res = tallysim.Results.read(_finished(tmp_path / "r", majority))
    assert res.majority_acc is None and "at the floor 5" not in repr(res), repr(res)
    assert res.dead_peers == ["peer 0"]          # the floor from the run's classes, 1/10
    assert tallysim.Results.read(_finished(tmp_path / "ok", 0.1)).majority_acc == 0.1


@pytest.mark.parametrize("kwargs, expected", [
    ({"metric": ["acc_mean"]}, "Results.plot(metric=['acc_mean']): list; allowed: a str"),   # unhashable type
    ({"label": ["a", "b"]}, "Results.plot(label=['a', 'b']): list"),     # drawn as the legend entry "['a', 'b']"
    ({"title": 5}, "Results.plot(title=5): int"),
])
def test_results_plot_refuses_a_metric_title_or_label_that_is_no_text(kwargs, expected, tmp_path):
    res = tallysim.Results.read(_finished(tmp_path / "r", 0.1))
    with pytest.raises(ConfigError) as e:
        res.plot(str(tmp_path / "f.png"), **kwargs)
    assert expected in str(e.value), e.value
    assert not (tmp_path / "f.png").exists()


def test_a_resumed_watch_passes_over_rows_without_an_integer_round():
    # a resumed run's metrics.jsonl rows (kept whole: resume._refuse_lost_rows) with `round` deleted or
    # quoted by hand: the watch's replay was a KeyError / TypeError and the resume stopped with a traceback
    from tallysim.results import dead_peers
    row = lambda r, **k: {"round": r, "acc_mean": 0.5, "acc_global": None, "acc_peers": [0.1, 0.9], **k}
    watch = dead_peers.Watch(0.1, 1)
    watch.replay([row(1), {k: v for k, v in row(2).items() if k != "round"}, row("3"), row(4), row(5)], {}, [None])
    assert watch.rounds == {None: [4, 5]} and not watch.said, watch.rounds
    assert "peer 0 (1 of 2 peers)" in watch.see(row(6))


# ----------------------------------------------------------------------------- the driver

@pytest.mark.parametrize("rounds", [0, -1, "5", 2.0, True])
def test_a_driver_runs_a_whole_positive_number_of_rounds(rounds):
    # Driver.run(-1) and run(0) returned [] with no round run; run("5") was range()'s TypeError
    from types import SimpleNamespace
    with pytest.raises(ConfigError, match=r"Driver.run\(rounds=.*\): expected a whole number of rounds, 1 or more"):
        tallysim.Driver.run(SimpleNamespace(), rounds)


@pytest.mark.parametrize("flag", ["grouped", "progress"])
def test_run_sweep_flags_are_true_or_false(flag, tmp_path, no_compile):
    # grouped="no" (a truthy string) ran the runs grouped, as tallysim.run's overwrite="no" once replaced a run
    with pytest.raises(ConfigError, match=rf"run_sweep\({flag}='no'\): expected True or False"):
        sweep.run_sweep(tiny("rounds=1"), [("a", [])], tmp_path / "s", **{flag: "no"})
    assert not (tmp_path / "s").exists()


def test_two_plugins_declaring_one_section_with_other_defaults_are_refused(tmp_path, monkeypatch, registry_restored):
    # plugin A's section `mixy` (mix=0.5) and plugin B's `mixy` (mix=0.9): B's dataclass replaced A's in
    # the Config, and A's runs read mix=0.9 in silence
    import sys
    from tallysim import config, protocols
    body = ("from dataclasses import dataclass\nfrom tallysim.fields import floats\n"
            "from tallysim.protocols import Traits, local_only\n@dataclass(frozen=True)\nclass MixConfig:\n"
            "    mix: float = floats({default}, '[0, 1]')\nTRAITS = Traits(sections={{'mixy': 'MixConfig'}})\n"
            "make = local_only.make\nPROTOCOLS = {{'{name}': 'make'}}\n")
    for name, default in (("mixa_dec20e", 0.5), ("mixb_dec20e", 0.5), ("mixc_dec20e", 0.9)):
        (tmp_path / f"{name}.py").write_text(body.format(default=default, name=name))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        protocols.load_plugin("mixa_dec20e")
        protocols.load_plugin("mixb_dec20e")          # the same fields: shared, as before
        with pytest.raises(ConfigError, match="plugin 'mixc_dec20e': TRAITS.sections names 'mixy', which plugin "
                                              "'mixa_dec20e' declares with other fields or defaults"):
            protocols.load_plugin("mixc_dec20e")
        assert config.Config().mixy.mix == 0.5
    finally:
        for name in ("mixa_dec20e", "mixb_dec20e", "mixc_dec20e"):
            sys.modules.pop(name, None)
