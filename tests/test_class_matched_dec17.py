"""experiments/class_matched_bits.json (docs/matched-bits.md, "The class-count axis at matched bits"): C = 10
and C = 100 groups on IID and Dirichlet 0.1 panels; within each C the groups the page calls matched send exactly
the same uplink + downlink bits per peer and round in every panel, from the protocols' own bit formulas
(test_niid_matched_dec17.round_bits) on the configs the figure runner expands; softlabel on tally's probes costs
8C/ceil(log2 C) times as much (20x, 114.3x); `make class-matched-bits` exists and tabulates. No training."""
from __future__ import annotations

import copy
from fractions import Fraction
from pathlib import Path

import pytest

from tallysim import config, figures, sizing, sweep
from test_niid_matched_dec17 import assert_make_runs_figure_then_table, doc_table_rows, round_bits

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "experiments" / "class_matched_bits.json"
MATCHED = {10: ("c10_tally_800p", "c10_softlabel_8bit_40p", "c10_topk_k1_b6_320p"),
           100: ("c100_tally_800p", "c100_softlabel_8bit_7p", "c100_topk_k1_b7_400p")}
UNMATCHED = {10: "c10_softlabel_8bit_800p", 100: "c100_softlabel_8bit_800p"}
REFERENCES = ("c10_fedavg", "c10_local", "c100_fedavg", "c100_local")
PANELS = {"iid": ("iid", None), "dir0.1": ("dirichlet", 0.1)}


def _spec() -> dict:
    return config.read_file(str(SPEC_PATH))


def per_group_bits(spec: dict, smoke: bool = False) -> dict:
    """group -> {panel: (C, bits per peer and round)} over the runs the figure runner would make."""
    wanted = {g for gs in MATCHED.values() for g in gs} | set(UNMATCHED.values())
    out = {}
    for gname, (cfg, runs) in figures.group_plans(spec, smoke, SPEC_PATH.parent).items():
        if gname in wanted:
            out[gname] = {name: (sizing.data_shape(c)[1], round_bits(c))
                          for (name, _), c in zip(runs, sweep.configs(cfg, runs))}
    return out


def check_matched(bits: dict) -> dict:
    """C -> the one bit count its matched groups share in every panel (each group at its own C)."""
    out = {}
    for C, groups in MATCHED.items():
        values = {(g, p): b for g in groups for p, (c, b) in bits[g].items()}
        assert {c for g in groups for c, _ in bits[g].values()} == {C}, (C, bits)
        assert len(set(values.values())) == 1, f"matched groups differ at C = {C}: {values}"
        out[C] = next(iter(values.values()))
    return out


@pytest.fixture(scope="module")
def full_bits():
    return per_group_bits(_spec())


def test_the_config_expands_to_its_panels_and_class_counts():
    plans = figures.group_plans(_spec(), False, SPEC_PATH.parent)
    assert set(plans) == {g for gs in MATCHED.values() for g in gs} | set(UNMATCHED.values()) | set(REFERENCES)
    for gname, (cfg, runs) in plans.items():
        assert [name for name, _ in runs] == list(PANELS)
        for (name, _), c in zip(runs, sweep.configs(cfg, runs)):
            kind, alpha = PANELS[name]
            assert c.partition.kind == kind and (alpha is None or c.partition.alpha == alpha)
            assert (c.peers, c.rounds, c.seeds, c.data.name, c.model.name) == (10, 20, 3, "synthetic", "mlp")
            assert sizing.data_shape(c)[1] == int(gname.split("_")[0][1:])       # c10_... / c100_...


def test_the_matched_groups_send_the_same_bits_per_class_count_and_the_reference_costs_8c_over_l(full_bits):
    matched = check_matched(full_bits)
    assert matched == {10: 6_400, 100: 11_200}     # 800 x 4 x 2 = 40 x 80 x 2 = 320 x 10 x 2; 800 x 7 x 2 = 7 x 800 x 2 = 400 x 14 x 2
    for C, g in UNMATCHED.items():
        (b,) = {b for _, b in full_bits[g].values()}
        assert Fraction(b, matched[C]) == Fraction(8 * C, (C - 1).bit_length())   # 20, 800/7 = 114.3


def test_the_smoke_version_is_matched_too():
    check_matched(per_group_bits(_spec(), smoke=True))


@pytest.mark.parametrize("group, probes", [("c10_softlabel_8bit_40p", 41), ("c100_softlabel_8bit_7p", 8),
                                           ("c100_topk_k1_b7_400p", 399), ("c100_tally_800p", 500)])
def test_the_check_fails_when_a_groups_probes_change(group, probes):
    spec = copy.deepcopy(_spec())
    spec["groups"][group]["probe"] = {"per_round": probes}
    with pytest.raises(AssertionError, match="matched groups differ"):
        check_matched(per_group_bits(spec))


def test_the_page_s_bits_column_is_the_formula_times_the_rounds(full_bits):
    """docs/matched-bits.md's table of this figure: bits per peer and round and over the 20 rounds, row per group."""
    # the paired re-measure's table further down (paired30) names groups too, with other columns
    rows = doc_table_rows("## The class-count axis at matched bits", "**Tally against local training, re-measured with paired seeds**")
    rounds = _spec()["base"]["rounds"]
    head = rows[0]
    run, per_round, total = head.index("run"), head.index("bits per peer and round"), head.index(f"bits per peer ({rounds} rounds)")
    found = {r[run].strip("`"): (int(r[per_round].replace(",", "")), int(r[total].replace(",", "")))
             for r in rows[2:] if r[run].strip("`") in full_bits}
    assert set(found) == set(full_bits), found
    for g, (b, t) in found.items():
        (formula,) = {b for _, b in full_bits[g].values()}
        assert (b, t) == (formula, rounds * formula), (g, b, t)


def test_make_class_matched_bits_runs_the_figure_then_the_table():
    assert_make_runs_figure_then_table("class-matched-bits", "class_matched_bits")
