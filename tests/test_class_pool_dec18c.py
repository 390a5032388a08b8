"""experiments/class_pool.json (docs/matched-bits.md, "The probe pool decides the IID verdict"): the C = 100
groups of class_matched_bits.json with the probe pool of 1,000 (800 of it drawn every round) and with a pool of
3,200 (a quarter drawn a round). What makes the comparison fair is checked on the configs the figure runner
expands, no training: tally and softlabel send the same bits per peer and round at both pools (the
protocols' formulas, test_niid_matched_dec17.round_bits), every group trains on as many examples (the pool is
carved out of data.train_size), only the share of the pool drawn a round differs; the page's table is the
committed CSV's numbers; `make class-pool` runs the figure then the table."""
from __future__ import annotations

import copy
import csv
from pathlib import Path

import pytest

from tallysim import config, figures, sizing, sweep
from test_niid_matched_dec17 import assert_make_runs_figure_then_table, doc_table_rows, round_bits

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "experiments" / "class_pool.json"
POOLS = {1000: 0.8, 3200: 0.25}            # pool size -> share of it drawn by tally every round (800 probes)
TABLE_START = "**C = 100 at three skews, 5 seeds, both pools.**"    # in "### The probe pool decides the IID verdict"
PANEL_COLUMNS = {"iid": "IID", "dir0.5": "Dirichlet 0.5", "dir0.1": "Dirichlet 0.1"}


def _configs(spec: dict, smoke: bool = False) -> dict:
    """group -> [(panel, Config)] as the figure runner would run them."""
    return {g: [(name, c) for (name, _), c in zip(runs, sweep.configs(cfg, runs))]
            for g, (cfg, runs) in figures.group_plans(spec, smoke, SPEC_PATH.parent).items()}


def check_fair(groups: dict) -> None:
    """Every group: C = 100, the same training examples; per pool, tally and softlabel the same bits."""
    trained = {(g, p): c.data.train_size - c.probe.pool_size for g, runs in groups.items() for p, c in runs}
    assert len(set(trained.values())) == 1, f"training examples differ: {trained}"
    bits = {}
    for g, runs in groups.items():
        for p, c in runs:
            assert sizing.data_shape(c)[1] == 100, (g, p)
            if c.protocol.name != "local":
                bits.setdefault(c.probe.pool_size, {})[(g, p)] = round_bits(c)
    assert set(bits) == set(POOLS), bits
    for pool, per in bits.items():
        assert len(set(per.values())) == 1, f"matched groups differ at pool {pool}: {per}"


@pytest.fixture(scope="module")
def full():
    return _configs(config.read_file(str(SPEC_PATH)))


def test_the_groups_are_fair_and_differ_only_in_the_share_of_the_pool_drawn(full):
    check_fair(full)
    assert {round_bits(c) for g, runs in full.items() for _, c in runs if c.protocol.name != "local"} == {11_200}
    tally = {c.probe.pool_size: c.probe.per_round / c.probe.pool_size
             for g, runs in full.items() for _, c in runs if c.protocol.name == "tally"}
    assert tally == POOLS
    for g, runs in full.items():
        assert [p for p, _ in runs] == list(PANEL_COLUMNS)
        assert {c.seeds for _, c in runs} == {5} and {c.rounds for _, c in runs} == {20}


def test_the_smoke_version_is_fair_too():
    check_fair(_configs(config.read_file(str(SPEC_PATH)), smoke=True))


@pytest.mark.parametrize("group, field, value", [("tally_800p_pool3200", "data", {"train_size": 22000}),
                                                 ("softlabel_8bit_7p_pool3200", "probe", {"per_round": 8, "pool_size": 3200})])
def test_the_check_fails_when_a_group_trains_on_other_data_or_sends_other_bits(group, field, value):
    spec = copy.deepcopy(config.read_file(str(SPEC_PATH)))
    spec["groups"][group][field] = value
    with pytest.raises(AssertionError, match="training examples differ|matched groups differ"):
        check_fair(_configs(spec))


def test_the_page_s_table_is_the_committed_csv():
    """docs/matched-bits.md's class_pool table: each accuracy cell is docs/figures/class_pool.csv's final mean ± std."""
    with open(ROOT / "docs" / "figures" / "class_pool.csv") as f:
        csv_rows = {(r["protocol"], r["panel"]): (float(r["accuracy_final"]), float(r["accuracy_final_std"]))
                    for r in csv.DictReader(f)}
    rows = doc_table_rows(TABLE_START, "Per seed (0-4)")         # the figure's table, the traces' are above it
    head = rows[0]
    seen = 0
    for r in rows[2:]:
        group = r[head.index("run")].strip("`")
        for panel, column in PANEL_COLUMNS.items():
            mean, std = csv_rows[(group, panel)]
            assert r[head.index(column)].strip("*") == f"{mean:.3f} ± {std:.3f}", (group, panel, r)
            seen += 1
    assert seen == 3 * len({g for g, _ in csv_rows}) == 18, seen


def test_make_class_pool_runs_the_figure_then_the_table():
    assert_make_runs_figure_then_table("class-pool", "class_pool")
