"""A figure validates each of its configs once (leftovers23): group_plans validated every group's configs,
then make_figure validated them again to count its compiles (sweep_plan.compiles: about 1 s more on
experiments/robustness.json) and each group's sweep a third time; dry_run and programs a second. The plan
now hands back the Configs it validated (`Plans.configs`) and those are reused. Counted through a
monkeypatched config.validate; the sweeps themselves are stubbed (nothing runs, nothing compiles)."""
import json

import pytest

from tallysim import config, figures, sweep
from tallysim.figures import plans as figure_plans

SPEC = {"kind": "curves", "title": "once",
        "base": {"data": {"name": "synthetic", "train_size": 1600, "test_size": 300}, "peers": 4, "rounds": 2,
                 "probe": {"per_round": 64, "pool_size": 200}, "model": {"width": 32}},
        "sweep": {"optim.lr": [0.1, 0.2]},
        "groups": {"tally": {"protocol": {"name": "tally"}}, "fedavg": {"protocol": {"name": "fedavg"}}}}


def _count(monkeypatch) -> list:
    seen, real = [], config.validate

    def validate(cfg, *a, **k):
        seen.append(cfg)
        return real(cfg, *a, **k)
    monkeypatch.setattr(config, "validate", validate)
    return seen


def test_a_figure_validates_each_config_once(tmp_path, monkeypatch):
    path = tmp_path / "once.json"
    path.write_text(json.dumps(SPEC))
    seen = _count(monkeypatch)
    given = {}

    def run_sweep(cfg, runs, out_dir, validated=None, **k):      # each group's sweep: what it was handed
        given[out_dir.name] = validated
        return [{"name": n, "status": "failed", "error": "stub"} for n, _ in runs]
    monkeypatch.setattr(sweep, "run_sweep", run_sweep)
    with pytest.raises(figures.FigureError, match="all 4 runs failed"):
        figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(tmp_path / "fig"),
                            progress=True, log=lambda m: None)      # progress: its bar counts the compiles
    assert len(seen) == 4, len(seen)                     # 2 groups x 2 learning rates, each once (was 12)
    assert [c.optim.lr for c in given["tally"]] == [0.1, 0.2] and given["fedavg"][0].protocol.name == "fedavg"
    seen.clear()
    assert figures.dry_run(str(path), log=lambda m: None) == 2     # one program a group (the lr is per lane)
    assert len(seen) == 4, len(seen)                     # was 8


def test_the_plan_hands_back_what_it_validated_and_a_sweep_takes_it():
    plans = figure_plans.group_plans(SPEC, False, figures.EXPERIMENTS)
    assert isinstance(plans, dict) and set(plans) == {"tally", "fedavg"}
    cfg, runs = plans["tally"]                            # (base Config, runs), as before
    assert plans.configs["tally"] == sweep.configs(cfg, runs)
    with pytest.raises(ValueError, match="1 validated configs for 2 runs"):
        sweep.run_sweep(cfg, runs, "/nonexistent", validated=plans.configs["tally"][:1])
