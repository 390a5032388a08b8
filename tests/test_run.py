"""End to end: the CLI on synthetic data for every protocol, determinism, output files, plotting,
non-finite losses, and real Fashion-MNIST."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tallysim import cli, run
from tallysim.sim.fed import cohort_shards
from conftest import argv, TINY, needs_fmnist, tiny, read_rows

ROW_KEYS = {"round", "bits_up", "bits_down", "bits_per_peer", "steps_real", "steps_computed", "acc_mean", "acc_min", "acc_max",
            "acc_peers", "acc_global", "acc_ensemble", "train_loss", "consensus_acc", "vote_acc", "softavg_acc",
            "agreement", "tied", "wrong_confidence", "wall_s", "faulty", "acc_mean_honest", "vote_acc_honest",
            "softavg_acc_honest", "kept", "merged", "nnz", "feddf_loss", "eval_peers"}


def without_wall(rs):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rs]


MIN_ACC_MEAN = {"local": 0.84, "fedavg": 0.89, "fedprox": 0.89, "softlabel": 0.93, "tally": 0.90}


@pytest.mark.parametrize("protocol", ["local", "fedavg", "fedprox", "softlabel", "tally"])
def test_cli_run_every_protocol(protocol, tmp_path, capsys):
    out = tmp_path / protocol
    assert cli.main(["run", *TINY, f"protocol.name={protocol}", "--out", str(out), "--quiet"]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith(f"{protocol}: 2 rounds, 4 peers on synthetic") and "MB per peer" in summary
    rs = read_rows(out)
    assert [r["round"] for r in rs] == [1, 2] and set(rs[0]) == ROW_KEYS
    peers = rs[-1]["acc_peers"]                       # every peer's own accuracy (issue 30)
    assert len(peers) == 4 and abs(sum(peers) / 4 - rs[-1]["acc_mean"]) < 1e-4 and abs(max(peers) - rs[-1]["acc_max"]) <= 5e-5
    # Measured peer means after 2 rounds, seeds 0/1/2: local .858/.873/.898, fedavg .929/.905/.924,
    # fedprox .931/.906/.925, softlabel .948/.952/.955, tally .920/.948/.942; bounds just below the smallest.
    assert rs[-1]["acc_mean"] > MIN_ACC_MEAN[protocol], rs[-1]           # 10 classes: chance is 0.1
    assert (rs[-1]["acc_global"] is not None) == (protocol in ("fedavg", "fedprox"))
    assert (rs[-1]["vote_acc"] is not None) == (protocol in ("softlabel", "tally"))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["protocol"]["name"] == protocol and cfg["optim"]["reset_each_round"] is not None
    part = json.loads((out / "partition.json").read_text())
    assert len(part["class_counts"]) == 4 and sum(part["shard_sizes"]) == 1600 - 200


def test_same_seed_same_metrics_other_seed_differs(tmp_path):
    # no warm-up epoch: one traced training program fewer per run; the warm-up's own determinism is
    # checked by tests/test_trust_resume.py::test_same_seed_same_rows_other_seed_other_rows_and_lanes_change_nothing
    base = ["protocol.name=tally", "partition.kind=dirichlet", "partition.alpha=0.5", "vote.ties=random",
            "warmup_epochs=0"]
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run.run(tiny(*base, f"seed={seed}"), str(tmp_path / name), progress=False)
    a, b, c = (without_wall(read_rows(tmp_path / n)) for n in "abc")
    assert a == b
    assert a != c


def test_eval_every_and_refuse_non_empty_out(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli.main(["run", *TINY, "rounds=3", "eval_every=2", "protocol.name=local", "--out", str(out), "--quiet"]) == 0
    assert [r["round"] for r in read_rows(out)] == [2, 3]                    # and always the last round
    assert cli.main(["run", *TINY, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err                                           # says what it holds
    assert "holds a finished run" in err and "pass --overwrite to replace it" in err
    assert cli.main(["run", *TINY, "protocol.name=local", "--out", str(out), "--quiet", "--overwrite"]) == 0


def test_non_finite_loss_stops_and_keeps_metrics(tmp_path, capsys, monkeypatch):
    # The loss goes non-finite in round 3 (poisoned where the host reads each round's info, one round
    # per segment with eval_every=1): rounds 1 and 2 were written and stay, nothing after them.
    real_host, seen = run._host, []

    def host(tree, what=""):        # what: the work waited on, for the wait note (leftovers53)
        out = real_host(tree, what)
        if isinstance(out, dict) and "train_loss" in out:
            seen.append(1)
            if len(seen) == 3:
                out["train_loss"] = np.full_like(np.asarray(out["train_loss"], np.float32), np.nan)
        return out
    monkeypatch.setattr(run, "_host", host)
    out = tmp_path / "nan"
    code = cli.main(["run", *TINY, "rounds=6", "eval_every=1", "protocol.name=local", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "round 3, seed 0: the training loss is nan" in err, err
    assert (out / "error.txt").exists() and (out / "config.json").exists()
    assert [r["round"] for r in read_rows(out)] == [1, 2]
    assert len(seen) == 3                                   # it stopped at round 3


def test_plot_writes_png(tmp_path):
    for p in ("tally", "fedavg"):       # what is plotted, not how it trained: no warm-up epoch
        run.run(tiny(f"protocol.name={p}", "warmup_epochs=0"), str(tmp_path / p), progress=False)
    fig = tmp_path / "fig.png"
    assert cli.main(["plot", str(tmp_path / "tally"), str(tmp_path / "fedavg"), "--out", str(fig)]) == 0
    assert fig.stat().st_size > 10_000
    assert cli.main(["plot", str(tmp_path / "missing"), "--out", str(fig)]) == 2


def test_python_dash_m_entry_point(tmp_path):
    # the entry point, not the training: no warm-up epoch (a subprocess traces everything afresh)
    proc = subprocess.run([sys.executable, "-m", "tallysim", "run",
                           *argv("rounds=1", "protocol.name=tally", "warmup_epochs=0"),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "tally: 1 round," in proc.stdout and "round" in proc.stderr      # progress bar on stderr


@needs_fmnist
@pytest.mark.parametrize("protocol", ["tally", pytest.param("fedavg", marks=pytest.mark.slow)])
def test_real_fashion_mnist_well_above_chance(protocol, tmp_path):
    cfg = tiny("data.name=fashion_mnist", "data.max_train=12000", "data.max_test=2000", "peers=10",
               "data.train_size=12000", "data.test_size=2000", "data.difficulty=1.0",   # TINY's synthetic sizes back
               # to their defaults: fashion_mnist reads none of them (a single run refuses them set)
               "rounds=3", "partition.kind=dirichlet", "partition.alpha=0.5", "probe.pool_size=none",
               "probe.per_round=500", "model.width=100", f"protocol.name={protocol}",
               "partition.cap=false")           # the split the numbers below were measured on
    last = run.run(cfg, str(tmp_path / protocol), progress=False)
    if protocol == "fedavg":
        assert last["acc_global"] > 0.55, last                            # chance is 0.10
    else:
        # Not acc_ensemble: local training alone reaches a 0.74 / 0.71 vote here (seeds 0 / 1). Measured
        # tally peer mean .666/.636 (local .545/.497) and consensus on the probes .718/.690.
        assert last["acc_mean"] > 0.62 and last["consensus_acc"] > 0.67, last


def test_probe_pool_from_another_dataset(tmp_path):
    # probe.source: the pool comes from another prepared dataset with the same input shape.
    from tallysim import data
    ds = data.load(tiny().data, 7)
    np_path = tmp_path / "other.npz"
    import numpy as np
    np.savez(np_path, x_train=ds.x_train[:300], y_train=ds.y_train[:300], x_test=ds.x_test[:10],
             y_test=ds.y_test[:10])
    data.prepare("other_pool", str(np_path))
    b = run.build(tiny("protocol.name=tally", "probe.source=other_pool", "probe.pool_size=150"))
    n_train = len(b.fed.y_train) - 300
    assert b.ctx.spec.pool == 150 and int(b.one.pool_Q.min()) >= n_train     # pool never in any shard
    assert int(cohort_shards(b.one, None).max()) < n_train
    last = run.run(tiny("protocol.name=tally", "probe.source=other_pool", "probe.pool_size=150"),
                   str(tmp_path / "o"), progress=False)
    assert last["vote_acc"] is not None
