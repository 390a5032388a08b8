"""leftovers39's fixes: each test fails without its fix (checked by reverting it once)."""
from __future__ import annotations

import json

import pytest

from tallysim.config import ConfigError


def _run(d, rows: list[dict], cfg: dict | None = None):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg or {"rounds": len(rows)}))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


# ----------------------------------------------------------------------------- table: a cost's best is its total

@pytest.mark.parametrize("metric", ["bits_per_peer@a", "bits_up", "wall_s"])
def test_table_best_of_a_cost_is_its_total(metric, tmp_path):
    # `table --metric bits_per_peer@a`'s best was a run's most bits, ranked as a score; then its smallest,
    # always the first round's (a cost is cumulative): now its last value, what the run spent (leftovers40)
    from tallysim.results import table
    d = _run(tmp_path / "r", [{"round": r, "acc_mean": 0.5, "bits_per_peer": 5.0 * r, "wall_s": 1, metric: 10.0 * r} for r in (1, 2, 3)])
    cols, rows = table.table_rows([str(d)], metric, log=lambda m: None)
    assert rows[0][f"best {metric}"] == 30.0 and rows[0][f"final {metric}"] == 30.0


def test_table_refuses_round_as_a_metric(tmp_path):
    from tallysim.results import table
    d = _run(tmp_path / "r", [{"round": 1, "acc_mean": 0.5, "bits_per_peer": 5.0}])
    with pytest.raises(ConfigError, match="'round' is not a score to rank runs by"):
        table.table_rows([str(d)], "round", log=lambda m: None)


# ----------------------------------------------------------------------------- client_storage=auto, stateful

@pytest.mark.parametrize("sets, why", [
    (["protocol.name=tally"], "tally keeps"),
    (["protocol.name=fedavg", "faults.kind=straggler", "faults.fraction=0.2"], "faults.kind=straggler sends it"),
    (["protocol.name=fedavg", "optim.reset_each_round=false"], "optim.reset_each_round=false"),
])
def test_auto_storage_of_a_stateful_run_says_it_stacks_every_client(sets, why):
    # a stateful protocol under client_storage=auto quietly held all 40 clients, where the user asked for a cohort
    from tallysim import config, storage_notes

    def notes(c):
        return [n for n in [storage_notes.stateful_note(c)] if n]
    cfg = config.apply_overrides(config.Config(), ["peers=40", "participation=0.25", "client_storage=auto", *sets])
    said = notes(cfg)
    assert len(said) == 1 and "stacks every client's state, all 40 clients' models (about" in said[0], said
    assert "not the 10 active" in said[0] and why in said[0], said[0]
    every = config.apply_overrides(cfg, ["participation=1.0"])         # no cohort to hold instead: nothing to say
    stacked = config.apply_overrides(cfg, ["client_storage=stacked"])
    stateless = config.apply_overrides(config.Config(), ["peers=40", "participation=0.25", "client_storage=auto",
                                                                "protocol.name=fedavg"])
    assert not any(notes(c) for c in (every, stacked, stateless))


# ----------------------------------------------------------------------------- ragged_groups above A

@pytest.mark.parametrize("sets, active", [(["peers=10", "ragged_groups=11"], 10),
                                          (["peers=20", "participation=0.25", "ragged_groups=6"], 5)])
def test_ragged_groups_above_the_active_peers_is_refused(sets, active):
    # local.train_peers capped it at the active peers in silence
    from tallysim import config
    with pytest.raises(ConfigError, match=rf"ragged_groups=\d+ is above the {active} peers active a round .*"
                                          rf"allowed: 1 to {active}, or unset"):
        config.validate(config.apply_overrides(config.Config(), sets))
    config.validate(config.apply_overrides(config.Config(), [*sets, f"ragged_groups={active}"]))     # A itself: ok


# ----------------------------------------------------------------------------- a sweep folder where a run is read

def test_read_partition_of_a_sweep_folder_says_it_is_a_sweep(tmp_path):
    # was "cannot read SWEEP/partition.json: No such file or directory", as if a run had lost its file
    from tallysim.results import metrics
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": []}))
    with pytest.raises(ConfigError, match=r"is a sweep directory, not a run: each of its runs has its own "
                                          r"partition.json; pass one of its runs"):
        metrics.read_partition(tmp_path)


def test_read_rows_of_a_sweep_with_no_run_written_says_so(tmp_path):
    # was "no run directories (with metrics.jsonl) under X", read as a wrong folder
    import tallysim
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": [{"name": "a"}]}))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text(json.dumps({"rounds": 2}))
    with pytest.raises(ConfigError, match=r": a sweep \(sweep.json\) none of whose runs has written its metrics.jsonl "
                                          r"yet"):
        tallysim.read_rows(tmp_path)
    with pytest.raises(ConfigError, match=r"no run directories \(with metrics.jsonl\) under"):   # not a sweep
        tallysim.read_rows(tmp_path / "a")


def test_tallysim_run_prints_the_stateful_note_before_it_starts(tmp_path, capsys, monkeypatch):
    # the wiring: cli_commands prints it beside storage_notes.run_notes, before JAX starts
    from tallysim import cli, startup

    class Stop(BaseException):
        pass

    def stop():
        raise Stop
    monkeypatch.setattr(startup, "start_jax", stop)
    with pytest.raises(Stop):
        cli.main(["run", "protocol.name=tally", "peers=8", "participation=0.5", "client_storage=auto", "rounds=1",
                  "--out", str(tmp_path / "o"), "--quiet"])
    assert "tallysim: note: client_storage=auto stacks every client's state, all 8" in capsys.readouterr().err
