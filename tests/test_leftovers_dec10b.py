"""Leftovers of the 2026-12-05 hostile-input round. Each test names what it catches: model.groups of one
group under FedAvg was refused as "averaging across architectures", with one architecture; `plot --metric
acc_global` over a tally run and a FedAvg run refused the whole plot for the tally run's nulls; negative or
fractional bit counts in a hand-edited metrics.jsonl were drawn and tabled; `local_steps=10000000` (days
of steps) passed without a word; `peers=100000 partition.kind=natural` on Shakespeare said "lower peers"
(the memory estimate) before "716 clients"; `sweep seed=0,1 seeds=2` ran seed 1 in two runs, silently.
Nothing here compiles."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import tiny
from tallysim import config, sweep, validation
from tallysim.config import ConfigError
from tallysim.results import metrics, plot


# ----------------------------------------------------------------------------- one model group, FedAvg

def test_one_group_under_fedavg_says_it_is_one_model_and_what_to_set():
    cfg = tiny("protocol.name=fedavg", "model.groups=all:4:mlp,optim.lr=0.02")
    with pytest.raises(ConfigError) as e:
        config.validate(cfg)
    msg = str(e.value)
    assert "is one group" in msg and "across architectures" not in msg, msg
    assert "leave model.groups unset and set model.name=mlp optim.lr=0.02" in msg, msg
    # the fields it names are the run it meant: that run passes
    config.validate(tiny("protocol.name=fedavg", "model.name=mlp", "optim.lr=0.02"))
    # two groups keep their own line (groups of several models: the prediction-exchanging protocols)
    with pytest.raises(ConfigError, match="protocol.name=fedavg does not work with model.groups"):
        config.validate(tiny("protocol.name=fedavg", "model.groups=a:2;b:2"))


# ----------------------------------------------------------------------------- runs read back

def _write_run(d: Path, rows: list, proto: str = "tally") -> Path:
    d.mkdir(parents=True)
    (d / metrics.CONFIG).write_text(json.dumps({"protocol": {"name": proto}, "peers": 4}))
    (d / metrics.METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def _row(r: int, bits: int = 100, acc_global=None, **extra) -> dict:
    return {"round": r, "bits_up": bits, "bits_down": bits, "bits_per_peer": 2 * bits / 4, "acc_mean": 0.5,
            "acc_global": acc_global, "wall_s": 0.1, **extra}


def test_plot_metric_draws_the_runs_that_have_it_and_names_the_rest(tmp_path, capsys):
    tally = _write_run(tmp_path / "tally", [_row(1), _row(2, 200)])
    fedavg = _write_run(tmp_path / "fedavg", [_row(1, 900, 0.7), _row(2, 1800, 0.8)], "fedavg")
    out = plot.plot_curves([tally, fedavg], str(tmp_path / "p.png"), metric="acc_global")
    err = capsys.readouterr().err
    assert f"skipped 1 run that holds no number in it ({tally}" in err and err.count("\n") == 1, err
    with open(Path(out).with_suffix(".csv")) as f:
        drawn = {r["run"] for r in csv.DictReader(f)}
    assert drawn == {str(fedavg)}
    # none has it: refused, saying why (hostile21's shared refuse_absent: null in every row, no server model)
    with pytest.raises(ConfigError, match="'acc_global' has no value in any run's .*no server model"):
        plot.plot_curves([tally], str(tmp_path / "q.png"), metric="acc_global")


@pytest.mark.parametrize("row, field", [
    (_row(1, bits_per_peer=-5), "bits_per_peer=-5"),
    (_row(1, bits_up=-1), "bits_up=-1"),
    (_row(1, bits_up=12.5), "bits_up=12.5"),
    (_row(1, bits_down="many"), "bits_down='many'"),
    (_row(1, **{"bits_down@phone": -3}), "bits_down@phone=-3"),
    (_row(1, bits_up=1.5, seeds=[0, 1], per_seed={"bits_up": [1, 2.5]}), "bits_up=2.5 (a seed in per_seed)"),
])
def test_readers_refuse_a_bit_count_no_run_writes(tmp_path, capsys, row, field):
    bad = _write_run(tmp_path / "bad", [_row(1), {**row, "round": 2}])
    with pytest.raises(ConfigError, match=rf"metrics.jsonl line 2: {field.replace('(', '[(]').replace(')', '[)]')}"):
        metrics.read_rows(bad)
    good = _write_run(tmp_path / "good", [_row(1)])
    skipped = []                                  # `table`: the run left out with its line, the rest read
    runs = metrics.read_runs([tmp_path], lambda d, label, e: skipped.append(str(e)))
    assert [label for _, label, _, _ in runs] == ["good"] and good.exists()
    assert len(skipped) == 1 and field.split("=")[0] in skipped[0]


def test_readers_keep_a_multi_seed_mean_of_whole_bit_counts(tmp_path):
    row = _row(1, bits_up=150.5, seeds=[0, 1], per_seed={"bits_up": [100, 201]})
    assert metrics.read_rows(_write_run(tmp_path / "r", [row]))[0]["bits_up"] == 150.5


# ----------------------------------------------------------------------------- checks before anything loads

def test_days_of_local_steps_are_warned_about_naming_field_and_count():
    warned = [w for w in validation.warnings(config.validate(tiny("local_steps=10000000")))
              if "training steps one after another" in w]
    assert len(warned) == 1 and "local_steps=10000000" in warned[0] and "20,000,000" in warned[0], warned
    epochs = validation.warnings(config.validate(tiny("local_epochs=100000")))
    assert any("local_epochs=100000" in w for w in epochs), epochs        # epochs x examples too
    assert not any("training steps" in w for w in validation.warnings(config.validate(tiny("local_steps=500"))))


def test_more_natural_peers_than_shakespeare_clients_is_said_before_the_memory_estimate():
    cfg = config.apply_overrides(config.Config(), ["data.name=shakespeare", "partition.kind=natural",
                                                   "peers=100000", "model.name=lstm"])
    with pytest.raises(ConfigError, match=r"peers=100000 is above the 715 clients of shakespeare .*"
                                          r"allowed: peers=1\.\.715"):
        validation.validate(cfg)


def test_a_seed_axis_whose_runs_share_seeds_is_warned_about_once():
    def overlap_of(runs, base):
        return validation.seed_overlap([n for n, _ in runs], sweep.configs(base, runs))
    runs = sweep.expand({}, ["seed=0,1,2"])
    overlap = overlap_of(runs, tiny("seeds=2"))
    assert overlap is not None and "seed=0 (seeds 0..1) and seed=1 (seeds 1..2) share seed 1" in overlap
    assert "seeds=1" in overlap and overlap.count("\n") == 0
    assert overlap_of(runs, tiny()) is None                                          # seeds=1: disjoint
    paired = sweep.expand({}, ["partition.alpha=0.1,1", "seed=0"])                  # same seeds, other field: meant
    assert overlap_of(paired, tiny("seeds=2", "partition.kind=dirichlet")) is None
