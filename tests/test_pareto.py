"""`tallysim pareto`: collecting runs, per-protocol Pareto frontiers, the figure and the tables."""
import csv
import json

import pytest

from tallysim.results import pareto
from tallysim.cli import main
from tallysim.config import ConfigError

SMALL = ["data.name=synthetic", "data.train_size=1500", "data.test_size=200", "peers=3", "rounds=1",
         "probe.per_round=50", "probe.pool_size=200", "partition.kind=iid", "model.width=32"]


def P(protocol, run, bits, acc):
    return {"protocol": protocol, "run": run, "bits_per_peer": float(bits), "MB_per_peer": bits / 8e6,
            "accuracy": acc}


def test_frontier_excludes_dominated_points_per_protocol():
    pts = [P("tally", "a", 100, 0.50), P("tally", "b", 200, 0.60), P("tally", "c", 150, 0.40),
           P("tally", "d", 200, 0.55),     # same bits as b, lower accuracy -> dominated
           P("tally", "e", 300, 0.60),     # same accuracy as b, more bits -> dominated
           P("tally", "f", 100, 0.50),     # identical to a: neither dominates the other -> both kept
           P("tally", "g", 400, 0.70),
           P("fedavg", "h", 1e6, 0.65), P("fedavg", "i", 2e6, 0.64),
           P("local", "j", 0, 0.30), P("local", "k", 0, 0.35)]
    front = pareto.frontier(pts)
    by = {}
    for p in front:
        by.setdefault(p["protocol"], []).append(p["run"])
    # fedavg's points are much costlier than tally's but only compete within their own protocol
    assert by == {"local": ["k"], "fedavg": ["h"], "tally": ["a", "f", "b", "g"]}
    assert [p["protocol"] for p in front] == ["local", "fedavg", "tally", "tally", "tally", "tally"]
    tally = [p for p in front if p["protocol"] == "tally"]
    assert [p["bits_per_peer"] for p in tally] == sorted(p["bits_per_peer"] for p in tally)
    assert pareto.frontier([]) == []
    assert pareto.frontier([P("x", "only", 5, 0.1)])[0]["run"] == "only"


def test_overall_frontier_is_across_protocols():
    pts = [P("tally", "a", 100, 0.50), P("tally", "b", 200, 0.60), P("fedavg", "h", 150, 0.70),
           P("fedavg", "i", 2e6, 0.65), P("local", "j", 0, 0.30), P("cfd", "c", 100, 0.50)]
    best = pareto.overall(pts)
    # h beats tally's b at fewer bits; i is beaten by h; a and c tie exactly, so both stay
    assert [p["run"] for p in best] == ["j", "a", "c", "h"]
    assert pareto.overall_lines(best)[0].startswith("| protocol | run |") and len(pareto.overall_lines(best)) == 6
    assert pareto.overall([]) == []


def _write_run(d, protocol, rows, rounds=None, error=False):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"protocol": {"name": protocol},
                                               "rounds": rounds or rows[-1]["round"]}))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if error:
        (d / "error.txt").write_text("nan\n")


def _row(r, bits, acc_mean, acc_global=None):
    return {"round": r, "bits_per_peer": bits, "acc_mean": acc_mean, "acc_global": acc_global}


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "results"
    _write_run(root / "sw" / "protocol.name=tally", "tally",
               [_row(1, 400, 0.5), _row(2, 800, 0.7), _row(3, 1200, 0.6)])
    _write_run(root / "sw" / "protocol.name=fedavg", "fedavg",
               [_row(1, 1e6, 0.3, 0.55), _row(2, 2e6, 0.2, 0.65)])
    _write_run(root / "deep" / "a" / "b" / "loc", "local", [_row(1, 0, 0.4), _row(2, 0, 0.45)])
    _write_run(root / "sw" / "broken", "tally", [_row(1, 400, 0.5)], rounds=5, error=True)
    return root


def test_collect_final_best_and_discovery(runs, capsys):
    pts = {p["run"]: p for p in pareto.collect([runs])}
    assert set(pts) == {"sw/protocol.name=tally", "sw/protocol.name=fedavg", "deep/a/b/loc"}
    assert "skipping" in capsys.readouterr().err and "broken" not in pts
    t, f, loc = pts["sw/protocol.name=tally"], pts["sw/protocol.name=fedavg"], pts["deep/a/b/loc"]
    assert (t["bits_per_peer"], t["accuracy"]) == (1200, 0.6)            # final row
    assert f["accuracy"] == 0.65 and f["MB_per_peer"] == 0.25             # acc_global, not acc_mean
    assert loc["bits_per_peer"] == 0 and loc["protocol"] == "local"
    best = {p["run"]: p for p in pareto.collect([runs], which="best")}
    assert best["sw/protocol.name=tally"]["accuracy"] == 0.7             # best over rounds
    assert best["sw/protocol.name=tally"]["bits_per_peer"] == 1200       # still the total bits
    # a run directory given directly is labelled by its name; the same run twice counts once
    one = pareto.collect([runs / "sw" / "protocol.name=tally", runs / "sw"])
    assert sorted(p["run"] for p in one) == ["protocol.name=fedavg", "protocol.name=tally"]
    with pytest.raises(ConfigError, match="missing does not exist"):
        pareto.collect([runs / "missing"])


def test_cli_on_hand_made_runs(runs, tmp_path, capsys):
    fig = tmp_path / "figs" / "pareto.png"
    assert main(["pareto", str(runs), "--out", str(fig), "--which", "best"]) == 0
    assert fig.stat().st_size > 0
    md = (tmp_path / "figs" / "pareto_frontier.md").read_text()
    assert "| protocol | run | bits_per_peer | MB_per_peer | accuracy |" in md
    assert "drawn at x = 1 bit" in md and "best accuracy" in md
    rows = list(csv.DictReader(open(tmp_path / "figs" / "pareto_frontier.csv")))
    assert [(r["protocol"], r["run"], r["accuracy"]) for r in rows] == [
        ("local", "deep/a/b/loc", "0.4500"), ("fedavg", "sw/protocol.name=fedavg", "0.6500"),
        ("tally", "sw/protocol.name=tally", "0.7000")]
    assert len(list(csv.DictReader(open(tmp_path / "figs" / "pareto_points.csv")))) == 3
    assert main(["pareto", str(tmp_path / "figs"), "--out", str(tmp_path / "x.png")]) == 2
    assert "no complete runs" in capsys.readouterr().err


def test_pareto_cli_on_sweep_output(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", *SMALL, "protocol.name=local,fedavg", "--out", str(out), "--quiet"]) == 0
    fig = tmp_path / "pareto.png"
    assert main(["pareto", str(out), "--out", str(fig)]) == 0
    printed = capsys.readouterr().out
    assert str(fig) in printed
    assert fig.exists() and fig.stat().st_size > 0
    front = list(csv.DictReader(open(tmp_path / "pareto_frontier.csv")))
    assert [(r["protocol"], r["run"]) for r in front] == [("local", "protocol.name=local"),
                                                          ("fedavg", "protocol.name=fedavg")]
    assert front[0]["bits_per_peer"] == "0" and float(front[1]["bits_per_peer"]) > 0
    assert 0 <= float(front[1]["accuracy"]) <= 1
    md = (tmp_path / "pareto_frontier.md").read_text()
    assert "protocol.name=fedavg" in md and "drawn at x = 1 bit" in md
    points = list(csv.DictReader(open(tmp_path / "pareto_points.csv")))
    assert {r["run"] for r in points} == {"protocol.name=local", "protocol.name=fedavg"}
