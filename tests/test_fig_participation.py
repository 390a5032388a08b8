"""experiments/fig_participation*.json (docs/figures.md, "Partial participation"): both configs expand to
the grid the docs report, the smoke cell runs on real Fashion-MNIST with bits charged for the cohort only
(a client outside the round's cohort sends and receives nothing), and the docs' tables are the CSVs."""
import csv
from pathlib import Path

import pytest

from conftest import needs_fmnist
from tallysim import config, figures

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"    # this checkout's, not an install's
CONFIGS = {"fig_participation": 0.5, "fig_participation_alpha01": 0.1}


@pytest.mark.parametrize("name, alpha", CONFIGS.items())
@pytest.mark.parametrize("smoke", [False, True])
def test_participation_configs_expand_to_the_reported_grid(name, alpha, smoke):
    spec = config.read_file(str(EXPERIMENTS / f"{name}.json"))
    assert spec["kind"] == "final_vs" and spec["x"] == "participation"
    plans = figures.group_plans(spec, smoke, EXPERIMENTS)
    if smoke:
        assert list(plans) == ["tally"]
        cfg, runs = plans["tally"]
        assert cfg.peers <= 6 and cfg.rounds <= 3 and len(runs) == 1
        return
    assert list(plans) == ["tally", "softlabel", "fedavg", "local", "local + warm-up"]
    assert plans["local + warm-up"][0].distill.weight == 0
    for group, (cfg, runs) in plans.items():
        assert (cfg.peers, cfg.rounds, cfg.seeds, cfg.partition.alpha) == (50, 30, 2, alpha)
        assert cfg.data.name == "fashion_mnist" and cfg.probe.per_round == 500
        assert [items for _, items in runs] == [["participation=0.1"], ["participation=0.2"], ["participation=1.0"]]


@pytest.mark.slow    # 10 s on the 2-core CPU, 46 s loaded by 7 jobs (one compile); make ci-figures runs the same cell
@needs_fmnist
def test_participation_smoke_cell_charges_the_cohort_only(tmp_path):
    figures.make_figure(str(EXPERIMENTS / "fig_participation.json"), smoke=True,
                        results=str(tmp_path / "res"), out=str(tmp_path / "fig"), progress=False, log=lambda m: None)
    rows = list(csv.DictReader((tmp_path / "fig" / "fig_participation-smoke.csv").open()))
    assert [r["group"] for r in rows] == ["tally"]
    # 5 peers at participation 0.4: 2 vote each round; 2 rounds x 2 voters x 64 probes x 4 bits, up and
    # down, spread over all 5 peers (docs/population.md); all 5 would be 2,048
    assert float(rows[0]["bits_per_peer"]) == 2 * 2 * 64 * 4 * 2 / 5
    assert 0.0 < float(rows[0]["accuracy"]) <= 1.0


@pytest.mark.parametrize("name, start, end", [("fig_participation", "### Partial participation", "![fig_participation]"),
                                              ("fig_participation_alpha01", "Dirichlet 0.1 (`docs", "![fig_participation_alpha01]")])
def test_the_participation_tables_are_their_csvs(name, start, end):
    """docs/figures.md's "Partial participation" tables (participation x protocol, mean +- std over the seeds)
    are docs/figures/<name>.csv, every cell. Pure text."""
    root = Path(__file__).resolve().parents[1] / "docs"
    rows = {(r["group"], float(r["participation"])): r
            for r in csv.DictReader((root / "figures" / f"{name}.csv").open())}
    text = (root / "figures.md").read_text().split(start)[1].split(end)[0]
    table = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in text.splitlines()
             if ln.startswith("|") and not ln.startswith("|---")]
    groups = table[0][1:]
    assert groups == list(dict.fromkeys(g for g, _ in rows)), groups
    for r in table[1:]:
        for group, cell in zip(groups, r[1:]):
            want = rows[(group, float(r[0]))]
            assert cell.strip("*") == f"{float(want['accuracy']):.3f} +- {float(want['accuracy_std']):.3f}", \
                (group, r[0], cell)
    assert len(table[1:]) * len(groups) == len(rows)
