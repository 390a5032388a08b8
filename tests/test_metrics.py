"""tallysim.results.metrics: the run-directory schema, the headline accuracy (final or best), seed
aggregation, the summary line, reading run and sweep directories, and saving figures."""
import json
import math

import numpy as np
import pytest

from tallysim.config import ConfigError
from tallysim.results import metrics
from conftest import tiny


def _row(r, acc_mean, acc_global=None, bits=None, **extra):
    return {"round": r, "bits_per_peer": 1000.0 * r if bits is None else bits, "acc_mean": acc_mean,
            "acc_global": acc_global, "acc_ensemble": acc_mean + 0.01, "wall_s": 0.5 * r, **extra}


def _write_run(d, rows, cfg=None):
    d.mkdir(parents=True, exist_ok=True)
    (d / metrics.CONFIG).write_text(json.dumps(cfg or {"protocol": {"name": "tally"}, "rounds": len(rows)}))
    (d / metrics.METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


# ----------------------------------------------------------------------------- headline accuracy

def test_headline_is_the_server_model_else_the_peers_mean():
    server = _row(1, 0.5, acc_global=0.7, acc_global_std=0.02, acc_mean_std=0.1)
    peers = _row(1, 0.5, acc_mean_std=0.1)
    assert metrics.headline_key(server) == "acc_global" and metrics.accuracy(server) == 0.7
    assert metrics.headline_key(peers) == "acc_mean" and metrics.accuracy(peers) == 0.5
    assert metrics.accuracy_std(server) == (0.7, 0.02) and metrics.accuracy_std(peers) == (0.5, 0.1)
    assert metrics.accuracy_std(_row(1, 0.4)) == (0.4, 0.0)             # one seed: no std column
    # with faults: the honest peers' mean comes before the mean over all peers
    honest = _row(1, 0.3, acc_mean_honest=0.6)
    assert metrics.accuracy_std(honest, metrics.HONEST) == (0.6, 0.0)
    assert metrics.accuracy(honest) == 0.3
    assert metrics.accuracy({**honest, "acc_global": 0.9}, metrics.HONEST) == 0.9
    assert metrics.metric(server) == 0.7 and metrics.metric(server, "acc_mean") == 0.5
    assert metrics.metric(server, "nope") is None and metrics.metric(server, "acc_global_std") == 0.02


def test_final_and_best_accuracy_of_a_run():
    rows = [_row(1, 0.5), _row(2, 0.7), _row(3, 0.6)]
    assert metrics.run_accuracy(rows, "final") == 0.6
    assert metrics.run_accuracy(rows, "best") == 0.7
    assert metrics.final_best(rows) == (0.6, 0.7)
    with_server = [_row(1, 0.5, 0.9), _row(2, 0.7, 0.8)]
    assert metrics.final_best(with_server) == (0.8, 0.9)                 # acc_global wins where present
    assert metrics.final_best(with_server, "acc_mean") == (0.7, 0.7)
    nan_last = rows + [_row(4, 0.1, vote_acc=float("nan"))]
    assert metrics.final_best([_row(1, 0.5, vote_acc=0.8), _row(2, 0.5, vote_acc=float("nan"))],
                              "vote_acc") == (None, 0.8)                 # NaN is no value
    assert metrics.final_best(nan_last, "vote_acc") == (None, None)
    assert metrics.final_best([]) == (None, None)
    with pytest.raises(ConfigError, match="--which='last' is not known; allowed: final, best"):
        metrics.run_accuracy(rows, "last")


def test_bits_to_target_uses_the_headline():
    rows = [_row(1, 0.5, 0.2), _row(2, 0.7, 0.65), _row(3, 0.6, 0.7)]
    assert metrics.bits_to_target(rows, 0.6) == 2000.0
    assert metrics.bits_to_target(rows, 0.8) is None


# ----------------------------------------------------------------------------- seeds

def test_aggregate_over_seeds_mean_std_and_per_seed():
    a = {"round": 3, "acc_mean": 0.5, "acc_global": None, "bits_per_peer": 100.0, "faulty": 0, "wall_s": 1.0}
    b = {"round": 3, "acc_mean": 0.7, "acc_global": 0.8, "bits_per_peer": 100.0, "faulty": 2, "wall_s": 2.5}
    out = metrics.aggregate([a, b], [7, 8])
    assert out["round"] == 3 and out["seeds"] == [7, 8]
    assert out["acc_mean"] == pytest.approx(0.6) and out["acc_mean_std"] == pytest.approx(0.1)
    assert out["faulty"] == 1.0 and out["faulty_std"] == 1.0
    assert out["bits_per_peer"] == 100.0 and out["bits_per_peer_std"] == 0.0
    # null for one seed: the other seed's value, counted (test_leftovers_dec20a: it was null)
    assert out["acc_global"] == 0.8 and out["seeds_counted"] == {"acc_global": 1}
    assert out["wall_s"] == 2.5 and "wall_s_std" not in out              # the slowest seed
    assert out["per_seed"] == {"acc_mean": [0.5, 0.7], "acc_global": [None, 0.8], "bits_per_peer": [100.0, 100.0],
                               "faulty": [0, 2]}
    vals = [0.1, 0.4, 0.45]
    three = metrics.aggregate([{"round": 1, "x": v} for v in vals], [0, 1, 2])
    assert three["x"] == float(np.mean(vals)) and three["x_std"] == float(np.std(vals))   # population std
    assert metrics.aggregate([a], [7]) is a                             # one seed: the row itself


# ----------------------------------------------------------------------------- summary line

def test_summary_line():
    last = {"acc_mean": 0.61234, "acc_global": None, "acc_ensemble": 0.7, "bits_per_peer": 8e6 * 1.5,
            "wall_s": 12.34}
    assert metrics.summary_line(tiny("protocol.name=tally"), last) == (
        "tally: 2 rounds, 4 peers on synthetic -> accuracy 0.6123 (peer mean 0.6123, ensemble 0.7000), "
        "1.5 MB per peer, 12.3 s")
    seeds = {**last, "acc_global": 0.8, "acc_global_std": 0.05, "acc_mean_std": 0.01, "out": "runs/x"}
    assert metrics.summary_line(tiny("protocol.name=fedavg", "seeds=3"), seeds) == (
        "fedavg: 2 rounds, 4 peers x 3 seeds on synthetic -> accuracy 0.8000 +- 0.0500 (peer mean 0.6123, "
        "ensemble 0.7000), 1.5 MB per peer, 12.3 s; results in runs/x")


# ----------------------------------------------------------------------------- reading files

def test_read_run_and_find_runs_on_fixture(tmp_path):
    rows = [_row(1, 0.5), _row(2, 0.6, 0.7)]
    d = _write_run(tmp_path / "sw" / "a", rows)
    _write_run(tmp_path / "sw" / "b", rows[:1], {"protocol": {"name": "fedavg"}, "rounds": 2})
    cfg, got = metrics.read_run(d)
    assert cfg["protocol"]["name"] == "tally" and got == rows
    assert metrics.read_config(tmp_path) == {}                           # no config.json: {}
    assert metrics.columns(rows) == ["acc_ensemble", "acc_global", "acc_mean", "bits_per_peer", "wall_s"]
    assert [(p.name, label) for p, label in metrics.find_runs([tmp_path])] == [("a", "sw/a"), ("b", "sw/b")]
    assert [label for _, label in metrics.find_runs([d])] == ["a"]


@pytest.mark.parametrize("text, match", [
    # with its newline: a line cut short at the end is a row being written (tests/test_hostile_dec19e.py)
    ('{"round": 1, "bits_per_peer": 1, "acc_mean": 0.5}\n{"round": 2, "bits\n', "line 2 is not valid JSON"),
    ('[1, 2]\n', "line 1 is not a JSON object"),
    ('{"round": 1, "bits_per_peer": NaN, "acc_mean": 0.5}\n', "line 1: bits_per_peer=nan must be a finite"),
    ('{"round": true, "bits_per_peer": 1, "acc_mean": 0.5}\n', "round=True must be an integer"),
    ('{"round": 1, "bits_per_peer": 1, "acc_mean": 0.5, "acc_global": "x"}\n', "acc_global='x' must be"),
])
def test_corrupt_metrics_fail_in_one_line(tmp_path, text, match):
    (tmp_path / metrics.METRICS).write_text(text)
    with pytest.raises(ConfigError, match=match):
        metrics.read_run(tmp_path)


def test_missing_or_corrupt_files(tmp_path):
    with pytest.raises(ConfigError, match="has no metrics.jsonl"):
        metrics.read_run(tmp_path)
    (tmp_path / metrics.METRICS).write_text("")
    (tmp_path / metrics.CONFIG).write_text("{")
    with pytest.raises(ConfigError, match="config.json is not valid JSON"):
        metrics.read_run(tmp_path)
    (tmp_path / metrics.CONFIG).write_text('{"protocol": {"name": "tally"}, "rounds": 2.5}')
    with pytest.raises(ConfigError, match="rounds=2.5 must be an integer"):
        metrics.read_run(tmp_path)
    (tmp_path / metrics.SWEEP).write_text('{"runs": 3}')
    with pytest.raises(ConfigError, match="not a tallysim sweep index"):
        metrics.read_sweep(tmp_path)


def test_reads_what_a_real_sweep_writes(tmp_path):
    # Two tiny runs of two seeds each (one compiled program): every file metrics reads, as run.py and
    # sweep.py write them, and the rows are the seed aggregation of their own per_seed lists.
    from tallysim import config, sweep
    base = tiny("seeds=2")
    recs = sweep.run_sweep(base, sweep.expand({}, ["optim.lr=0.05,0.1"]), tmp_path, progress=False,
                           log=lambda m: None)
    index = metrics.read_sweep(tmp_path)
    assert [r["status"] for r in index["runs"]] == ["done", "done"]
    assert [label for _, label in metrics.find_runs([tmp_path])] == ["optim.lr=0.05", "optim.lr=0.1"]
    for rec in recs:
        cfg, rows = metrics.read_run(rec["dir"])
        assert cfg["protocol"]["name"] == "tally" and cfg["seeds"] == 2
        assert [r["round"] for r in rows] == [1, 2] and rows[-1]["seeds"] == [0, 1]
        for r in rows:
            assert r["per_seed"]
            for k, vals in r["per_seed"].items():
                if k == "acc_peers":           # a list per seed: peer i's mean over seeds, no std
                    assert r[k] == pytest.approx(np.mean(vals, axis=0), abs=5e-5) and k + "_std" not in r
                    continue
                assert r[k] == pytest.approx(float(np.mean(vals))) and r[k + "_std"] == pytest.approx(np.std(vals))
        assert metrics.final_best(rows)[0] == metrics.accuracy(rows[-1])
        part = metrics.read_partition(rec["dir"])
        assert len(part["per_seed"]) == 2 and len(part["class_counts"]) == 4
        done = json.loads((tmp_path / rec["name"] / metrics.DONE).read_text())
        assert rec["summary"] == metrics.summary_line(config.apply_overrides(base, rec["overrides"]), done["last"])
        assert math.isclose(done["last"]["acc_mean"], rows[-1]["acc_mean"])
    from tallysim.results import table                    # `tallysim table` over the real sweep
    cols, trows = table.table_rows([tmp_path])
    assert cols[:2] == ["run", "optim.lr"] and [r["optim.lr"] for r in trows] == [0.05, 0.1]
    assert all(r["status"] == "done" and r["final_std"] is not None and r["round"] == 2 for r in trows)


# ----------------------------------------------------------------------------- figures

def test_save_figure_writes_every_path_and_closes(tmp_path):
    plt = metrics.pyplot()
    import matplotlib
    assert matplotlib.get_backend().lower() == "agg"
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    paths = metrics.save_figure(fig, tmp_path / "a" / "f.png", tmp_path / "b" / "f.pdf")
    assert paths == [str(tmp_path / "a" / "f.png"), str(tmp_path / "b" / "f.pdf")]
    assert all((tmp_path / p).stat().st_size > 0 for p in ("a/f.png", "b/f.pdf"))
    assert not plt.fignum_exists(fig.number)
    with pytest.raises(ConfigError, match="is not an image format"):
        metrics.check_figure_out(tmp_path / "f.txt")


# ----------------------------------------------------------------------------- tallysim plot (issue 27)

def test_plot_says_which_accuracy_and_writes_the_points_behind_it(tmp_path):
    from tallysim.results import plot
    part = {"kind": "dirichlet", "alpha": 0.1}
    base = {"data": {"name": "fashion_mnist"}, "partition": part, "peers": 20}
    a = _write_run(tmp_path / "tally_a01", [_row(1, 0.5), _row(2, 0.6)], {"protocol": {"name": "tally"}, **base})
    b = _write_run(tmp_path / "tally_a1", [_row(1, 0.4), _row(2, 0.55)], {"protocol": {"name": "tally"}, **base})
    c = _write_run(tmp_path / "fedavg", [_row(1, 0.3, 0.7), _row(2, 0.35, 0.8)],
                   {"protocol": {"name": "fedavg"}, **base})
    cfgs = [metrics.read_run(d)[0] for d in (a, b, c)]
    assert plot.run_labels(cfgs, [a, b, c]) == ["tally (a01)", "tally (a1)", "fedavg"]
    assert plot.default_title(cfgs) == "fashion_mnist, Dirichlet 0.1, 20 peers"
    assert plot.default_title(cfgs + [{"peers": 5}]) == "test accuracy vs communication"
    rows = [metrics.read_run(d)[1] for d in (a, c)]
    assert plot.y_label(rows, "auto") == "test accuracy (peer mean / server model)"
    assert plot.y_label(rows[:1], "auto") == "test accuracy (peer mean)"
    out = tmp_path / "fig.png"
    plot.plot_curves([a, b, c], str(out))
    import csv
    with open(tmp_path / "fig.csv") as f:
        got = list(csv.DictReader(f))
    assert [(r["label"], int(r["round"]), r["metric"], float(r["value"])) for r in got] == [
        ("tally (a01)", 1, "acc_mean", 0.5), ("tally (a01)", 2, "acc_mean", 0.6),
        ("tally (a1)", 1, "acc_mean", 0.4), ("tally (a1)", 2, "acc_mean", 0.55),
        ("fedavg", 1, "acc_global", 0.7), ("fedavg", 2, "acc_global", 0.8)]      # FedAvg: its server model
    assert float(got[1]["bits_per_peer"]) == 2000.0


def test_plot_legends_of_a_sweep_name_what_differs_and_label_overrides(tmp_path, capsys):
    """Sweep runs are named `k=v__k2=v2`; the legend used to cut the protocol's name out of that text
    (`tally (p)`). It now names the config fields that differ; `--label` sets each entry (issue 30)."""
    from tallysim import cli
    from tallysim.results import plot
    base = {"protocol": {"name": "tally"}, "partition": {"kind": "dirichlet", "alpha": 0.1}, "peers": 10}
    dirs = []
    for p in (0.5, 1.0):
        cfg = {**base, "participation": p}
        dirs.append(_write_run(tmp_path / "sw" / f"protocol.name=tally__participation={p}",
                               [_row(1, 0.5), _row(2, 0.6)], cfg))
    soft = _write_run(tmp_path / "sw" / "protocol.name=softlabel__participation=1.0", [_row(1, 0.4)],
                      {**base, "protocol": {"name": "softlabel"}, "participation": 1.0})
    cfgs = [metrics.read_run(d)[0] for d in (*dirs, soft)]
    assert plot.run_labels(cfgs, [*dirs, soft]) == ["tally (participation=0.5)", "tally (participation=1.0)",
                                                    "softlabel"]
    # nested fields read by their last part; identical configs fall back to the directory names
    a = {**base, "partition": {"kind": "dirichlet", "alpha": 1.0}}
    assert plot.run_labels([base, a], ["x", "y"]) == ["tally (alpha=0.1)", "tally (alpha=1.0)"]
    assert plot.run_labels([base, base], [tmp_path / "tally_s0", tmp_path / "tally-s1"]) == [
        "tally (s0)", "tally (s1)"]
    out = tmp_path / "f.png"
    assert cli.main(["plot", *map(str, dirs), "--out", str(out), "--label", "half", "--label", "all"]) == 0
    import csv
    assert {r["label"] for r in csv.DictReader(open(tmp_path / "f.csv"))} == {"half", "all"}
    assert cli.main(["plot", *map(str, dirs), "--out", str(out), "--label", "one"]) == 2
    assert "--label given 1 times for 2 runs" in capsys.readouterr().err


def test_plot_draws_the_spread_over_seeds(tmp_path, monkeypatch):
    """A run of several seeds has `<key>_std` in its rows: `plot` shades mean +- std, as the figures
    do, and writes the std beside each point; a run of one seed gets no band."""
    from tallysim.results import plot
    seeds = _write_run(tmp_path / "tally", [_row(1, 0.5, acc_mean_std=0.05), _row(2, 0.6, acc_mean_std=0.02)],
                       {"protocol": {"name": "tally"}, "seeds": 3})
    one = _write_run(tmp_path / "fedavg", [_row(1, 0.3, 0.7), _row(2, 0.35, 0.8)], {"protocol": {"name": "fedavg"}})
    drawn = {}
    real = metrics.save_figure
    monkeypatch.setattr(metrics, "save_figure", lambda fig, *p, **k: (drawn.setdefault("fig", fig), real(fig, *p, **k)))
    plot.plot_curves([seeds, one], str(tmp_path / "f.png"))
    ax = drawn["fig"].axes[0]
    assert len(ax.collections) == 1                                 # one band: the 3-seed run's
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert math.isclose(band.min(), 0.45) and math.isclose(band.max(), 0.62)
    assert "std over seeds" in ax.get_ylabel()
    import csv
    got = [(r["label"], r["std"]) for r in csv.DictReader(open(tmp_path / "f.csv"))]
    assert got == [("tally", "0.05"), ("tally", "0.02"), ("fedavg", ""), ("fedavg", "")]


def test_table_of_a_sweep_one_row_per_run_with_its_swept_fields(tmp_path, capsys):
    """`tallysim table DIR`: the fields that differ between the runs as columns, final and best
    headline accuracy (with the std over seeds), bits per peer, status; markdown or CSV (issue 30)."""
    from tallysim import cli
    base = {"protocol": {"name": "fedavg"}, "optim": {"lr": 0.1, "momentum": 0.0}, "rounds": 2, "seeds": 1}
    _write_run(tmp_path / "sw" / "optim.lr=0.1", [_row(1, 0.3, 0.7), _row(2, 0.35, 0.6, acc_global_std=0.01)], base)
    _write_run(tmp_path / "sw" / "optim.lr=0.01", [_row(1, 0.3, 0.5)],
               {**base, "optim": {"lr": 0.01, "momentum": 0.0}, "log": {"tensorboard": "x"}})
    assert cli.main(["table", str(tmp_path / "sw")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| run | optim.lr | final | final_std | best | bits_per_peer | MB_per_peer | round | status |"
    assert lines[2] == "| optim.lr=0.01 | 0.01 | 0.5000 |  | 0.5000 | 1000 | 0.000125 | 1 | incomplete |"
    assert lines[3] == "| optim.lr=0.1 | 0.1 | 0.6000 | 0.0100 | 0.7000 | 2000 | 0.00025 | 2 | done |"
    out = tmp_path / "t.csv"
    assert cli.main(["table", str(tmp_path / "sw"), "--out", str(out), "--metric", "acc_mean"]) == 0
    import csv
    rows = list(csv.DictReader(open(out)))
    assert [(r["optim.lr"], r["final acc_mean"], r["best acc_mean"]) for r in rows] == [("0.01", "0.3000", "0.3000"),
                                                                     ("0.1", "0.3500", "0.3500")]
    assert cli.main(["table", str(tmp_path / "sw"), "--metric", "nope"]) == 2
    assert cli.main(["table", str(tmp_path)  + "/none"]) == 2
    assert cli.main(["table", str(tmp_path / "sw"), "--out", str(out / "t.md")]) == 2         # under a file
    assert "is a file, not a directory" in capsys.readouterr().err
    assert cli.main(["table", str(tmp_path / "sw"), "--out", str(tmp_path / "new" / "t.md")]) == 0
    assert (tmp_path / "new" / "t.md").read_text().startswith("| run | optim.lr |")
    from tallysim.results.table import swept_fields          # derived from the protocol: not a sweep axis
    a = {"protocol": {"name": "tally"}, "warmup_epochs": 1, "derived": ["warmup_epochs"], "peers": 5}
    b = {"protocol": {"name": "fedavg"}, "warmup_epochs": 0, "derived": ["warmup_epochs"], "peers": 10}
    assert swept_fields([a, b]) == ["protocol.name", "peers"]
    # a protocol's own section, held only by its runs: no column unless its value varies among them
    soft = {"protocol": {"name": "softlabel"}, "softlabel": {"trim": 0.1, "aggregate": "mean"}, "peers": 5}
    assert swept_fields([a, soft]) == ["protocol.name"]
    median = {**soft, "softlabel": {"trim": 0.1, "aggregate": "median"}}
    assert swept_fields([a, soft, median]) == ["protocol.name", "softlabel.aggregate"]


def test_rows_hold_every_peer_s_accuracy_and_seeds_average_it_per_peer():
    """acc_peers: each peer's own test accuracy at the evaluation round, in peer order (issue 30);
    with several seeds the row holds peer i's mean over seeds and each seed's list under per_seed."""
    class Ledger:
        def row(self):
            return {"bits_up": 0, "bits_down": 0, "bits_per_peer": 0.0}
    ev = {"acc_P": np.array([[0.5, 0.75, 0.625], [0.25, 0.5, 0.0]], np.float32), "acc_global": None,
          "acc_ensemble": np.array([0.7, 0.4])}
    info = {"train_loss": np.array([1.0, 2.0])}
    rows = [metrics.lane_row(ev, info, Ledger(), j, 3, 0.0) for j in (0, 1)]
    assert rows[0]["acc_peers"] == [0.5, 0.75, 0.625] and rows[1]["acc_peers"] == [0.25, 0.5, 0.0]
    assert rows[0]["acc_mean"] == pytest.approx(np.mean(rows[0]["acc_peers"]))
    both = metrics.aggregate(rows, [0, 1])
    assert both["acc_peers"] == [0.375, 0.625, 0.3125] and "acc_peers_std" not in both
    assert both["per_seed"]["acc_peers"] == [[0.5, 0.75, 0.625], [0.25, 0.5, 0.0]]
    assert both["acc_mean"] == pytest.approx(np.mean(both["acc_peers"]))
    assert "acc_peers" not in metrics.columns([both])              # not a --metric column (a list)
