"""leftovers40: the leftovers of the last closing note (one section per item): a misspelt data.name refused
by run_sweep from Python and by `tallysim figure` before any run folder is written; from_file's advice
taken from the typed-field rules' table, not one field's name; a cost column's best is its total."""
from __future__ import annotations

import json

import pytest

from conftest import one_line  # noqa: F401
from tallysim import cli, figures, run, sweep  # noqa: F401  (imported before no_compile patches jax.jit)
from tallysim import config, config_reads
from tallysim.config import ConfigError


# ----------------------------------------------------------------------------- 1. a misspelt data.name

TYPO = ["data.name=cifr10", "peers=2", "rounds=1"]


def _cli_line(capsys, tmp_path):
    """`tallysim run --print-config`'s refusal of the typo (leftovers36), the line the others must give."""
    return one_line(capsys, ["run", "--print-config", *TYPO]).removeprefix("tallysim: error: ")


def test_run_sweep_from_python_refuses_a_misspelt_dataset_before_writing_anything(tmp_path, capsys, no_compile,
                                                                                 monkeypatch):
    # run_sweep checked data.path only: each run failed as its data loaded, its error.txt and the sweep's
    # index written, the sweep "done" with every run failed
    monkeypatch.setenv("TALLYSIM_NO_AUTO_PREPARE", "1")
    line = _cli_line(capsys, tmp_path)
    assert line.startswith("dataset 'cifr10' is not prepared in ") and "closest: cifar10" in line, line
    base = config.apply_overrides(config.Config(), TYPO)
    with pytest.raises(ConfigError) as e:
        sweep.run_sweep(base, [("a", ["seed=0"]), ("b", ["seed=1"])], tmp_path / "out", progress=False)
    assert str(e.value) == line
    assert not (tmp_path / "out").exists()


def test_a_figure_refuses_a_misspelt_dataset_before_its_first_group_runs(tmp_path, capsys, no_compile, monkeypatch):
    monkeypatch.setenv("TALLYSIM_NO_AUTO_PREPARE", "1")
    line = _cli_line(capsys, tmp_path)
    path = tmp_path / "typo.json"
    path.write_text(json.dumps({"kind": "curves", "title": "typo",
                                "base": {"data": {"name": "cifr10"}, "peers": 2, "rounds": 1},
                                "groups": {"tally": {"protocol": {"name": "tally"}}}}))
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: pytest.fail("a group ran before the data was checked"))
    for call in (lambda: figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(tmp_path / "fig"),
                                             progress=False, log=lambda m: None),
                 lambda: figures.dry_run(str(path), results=str(tmp_path / "res"), log=lambda m: None)):
        with pytest.raises(ConfigError) as e:
            call()
        assert str(e.value) == f"figure group 'tally': {line}"
    assert not (tmp_path / "fig").exists() and not (tmp_path / "res").exists()


# ----------------------------------------------------------------------------- 2. from_file's advice

def test_from_files_advice_comes_from_the_typed_rules_table(tmp_path, capsys, no_compile, monkeypatch):
    # from_file named data.num_classes itself: a second field a dataset's files fix, refused typed at its
    # default, would have been advised "add data.input_shape=... to the command", which its rule refuses
    def fixed_shape(cfg, value):
        return None if cfg.data.name == "synthetic" else f"data.input_shape={value} is fixed by the files"
    monkeypatch.setitem(config_reads.TYPED_RULES, "data.input_shape", fixed_shape)
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data": {"name": "cifar100", "input_shape": [5, 5, 1]}}))
    line = one_line(capsys, ["run", "--print-config", "--config", str(path)])
    assert line.endswith(f"(data.input_shape is set by --config {path}, not on the command line: remove it from "
                         "that file)"), line
    # the rule refuses it typed, at its default too: the advice is not one the command line would refuse
    typed = one_line(capsys, ["run", "--print-config", "data.name=cifar100", "data.input_shape=28x28x1"])
    assert typed == "tallysim: error: data.input_shape=28x28x1 is fixed by the files", typed
    sweep_line = one_line(capsys, ["sweep", "--dry-run", "--out", str(tmp_path / "s"), "data.name=cifar100",
                                   "data.input_shape=28x28x1", "seed=0,1"])
    assert sweep_line == "tallysim: error: sweep run seed=0: data.input_shape=28x28x1 is fixed by the files"


# ----------------------------------------------------------------------------- 5. a cost's best

def test_table_ranks_a_cumulative_cost_by_what_the_run_spent(tmp_path, capsys):
    # `tallysim table --metric bits_per_peer`'s best was every run's first round's bits (a cost's smallest,
    # and bits are cumulative): it ranked the runs by their first round, not by what they spent
    for name, per_round in (("cheap_start", 10.0), ("even", 20.0)):
        d = tmp_path / "s" / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"rounds": 3, "seed": 0, "name": name}))
        bits = [1.0, 50.0, 100.0] if name == "cheap_start" else [per_round * r for r in (1, 2, 3)]
        (d / "metrics.jsonl").write_text("".join(json.dumps({"round": r, "acc_mean": 0.5, "bits_per_peer": b}) + "\n"
                                                 for r, b in zip((1, 2, 3), bits)))
    assert cli.main(["table", "--format", "csv", "--metric", "bits_per_peer", str(tmp_path / "s")]) == 0
    rows = capsys.readouterr().out.splitlines()
    head = rows[0].split(",")
    best = {r.split(",")[0]: float(r.split(",")[head.index("best bits_per_peer")]) for r in rows[1:]}
    assert best == {"cheap_start": 100.0, "even": 60.0}, rows
    from tallysim.results import metrics
    assert metrics.final_best([{"round": 1, "wall_s": 2.0}, {"round": 2, "wall_s": 5.0}], "wall_s") == (5.0, 5.0)


# ----------------------------------------------------------------------------- 3. a NaN-stopped run's checkpoint

def _nan_at(monkeypatch, call: int):
    """run.py's finiteness check answers no at its `call`-th question (one per live lane and round, lanes
    in order): a loss not finite there (its line says the real one), after a checkpoint saved every round
    before it. Cheaper than a learning rate that diverges in round 2 exactly, which no setting promises."""
    import types
    asked = []

    def isfinite(x):
        asked.append(x)
        return len(asked) != call
    monkeypatch.setattr(run, "math", types.SimpleNamespace(isfinite=isfinite))
    return asked


def _stopped_alike(d, capsys):
    """A run directory stopped by a non-finite loss: its error.txt and rows kept, no checkpoint, and both
    refusals (a plain run into it, its --resume) say why there is none."""
    from tallysim import checkpoint
    assert (d / "error.txt").read_text().startswith("round 2, seed 0: the training loss is ")
    assert [r["round"] for r in [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]] == [1]
    assert not (d / checkpoint.FILE).exists()
    line = one_line(capsys, ["run", "--out", str(d), "--resume"])
    assert line == (f"tallysim: error: {d} has no checkpoint.npz to resume from (it stopped on a non-finite "
                    f"training loss ({d / 'error.txt'}), and keeps no checkpoint: resumed, it would diverge again); "
                    "start it again with --overwrite (--checkpoint-every N saves one every N rounds)"), line
    assert "holds a run that stopped on a non-finite training loss" in one_line(capsys, ["run", "--out", str(d),
                                                                                         "protocol.name=local"])


def test_a_lone_run_stopped_by_a_non_finite_loss_keeps_no_checkpoint(tmp_path, capsys, monkeypatch):
    # a grouped run stopped so had its checkpoint removed (oom33), a lone one kept it: --resume ran the same
    # rounds again, bit for bit, and stopped at the same one (a smaller optim.lr is refused there)
    from conftest import RESUMABLE, tiny
    asked = _nan_at(monkeypatch, 2)
    with pytest.raises(run.NonFiniteLoss, match="round 2, seed 0: the training loss is "):
        run.run(tiny(*RESUMABLE), str(tmp_path / "r"), progress=False, checkpoint_every=1)
    assert len(asked) == 2
    _stopped_alike(tmp_path / "r", capsys)


@pytest.mark.parametrize("lrs", [(0.05,), (0.02, 0.05)])
def test_a_grouped_run_stopped_by_a_non_finite_loss_keeps_no_checkpoint(lrs, tmp_path, capsys, monkeypatch):
    # a group's: removed as it stopped (oom33); a group of one (run_group of one config) kept it, as `run` did
    from conftest import RESUMABLE, tiny
    _nan_at(monkeypatch, 2 * len(lrs))       # round 2, the last lane
    outs = [tmp_path / f"lr{lr}" for lr in lrs]
    if len(lrs) == 1:
        with pytest.raises(run.NonFiniteLoss):
            run.run_group([tiny(*RESUMABLE, "optim.lr=0.05")], outs, progress=False, checkpoint_every=1)
    else:
        results = run.run_group([tiny(*RESUMABLE, f"optim.lr={lr}") for lr in lrs], outs, progress=False,
                                checkpoint_every=1)
        assert isinstance(results[-1], run.NonFiniteLoss) and results[0]["round"] == 3
    _stopped_alike(outs[-1], capsys)


# ----------------------------------------------------------------------------- 4. ragged_groups with model.groups

GROUPS = ["protocol.name=tally", "rounds=1", "warmup_epochs=0", "model.groups=a:1:mlp,width=16;b:3:mlp"]


def test_ragged_groups_above_every_model_groups_active_peers_is_refused():
    # checked against the run's 4 active peers: ragged_groups=4 passed, and each group trained in
    # min(4, A_g) groups (local.train_peers), a 1 and 3 (test_ragged_groups_is_capped_per_model_group)
    from conftest import tiny
    from tallysim import validation
    with pytest.raises(ConfigError) as e:
        validation.single_run(tiny(*GROUPS, "ragged_groups=4"))
    assert str(e.value) == ("ragged_groups=4 is above every model group's peers active a round (a 1, b 3: each group "
                            "trains in at most that many groups); allowed: 1 to 3, or unset (auto)")
    validation.single_run(tiny(*GROUPS, "ragged_groups=3"))      # b's 3: read there, a trains its 1 alone
    with pytest.raises(ConfigError, match=r"ragged_groups=5 is above the 4 peers active a round"):
        validation.single_run(tiny("ragged_groups=5"))            # without groups: the run's A, as before


@pytest.mark.slow       # compiles a grouped round (~15 s); the fast test above covers the check
def test_ragged_groups_is_capped_per_model_group(monkeypatch):
    from conftest import tiny
    from tallysim.sim import local
    real, seen = local.train_peers, []

    def spy(spec, params_A, opt_A, keys_A, shard, count_A, *a, **k):
        seen.append((count_A.shape[0], max(1, min(spec.groups, count_A.shape[0]))))    # train_peers' G
        return real(spec, params_A, opt_A, keys_A, shard, count_A, *a, **k)
    monkeypatch.setattr(local, "train_peers", spy)
    run.run(tiny(*GROUPS, "ragged_groups=3"), None, progress=False)
    assert seen == [(1, 1), (3, 3)], seen       # (A_g, groups it trains in): a's 1, b's 3
