"""experiments/niid_matched_bits.json (docs/matched-bits.md, "The non-IID claim at matched bits"): the groups
the page calls matched send exactly the same bits per peer and round in every panel, computed from the
protocols' own bit formulas (tallysim.sim.comm, topk_soft.message_bits) on the configs the figure runner
expands (figures.group_plans: base, group, panel); softlabel on tally's probes costs 20x; the page's
bits column says the same; `make niid-matched-bits` exists, passes ARGS and tabulates. No training."""
from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest

from tallysim import config, figures, sizing, sweep
from tallysim.protocols import topk_soft
from tallysim.sim import comm

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "experiments" / "niid_matched_bits.json"
MATCHED = ("tally_500p", "softlabel_8bit_25p", "topk_k1_b6_200p")
REFERENCE_20X = "softlabel_8bit_500p"
PANELS = {"dir0.05": ("dirichlet", 0.05), "dir0.5": ("dirichlet", 0.5), "dir100": ("dirichlet", 100),
          "one_class": ("label_quantity", None)}


def _spec() -> dict:
    return config.read_file(str(SPEC_PATH))


def round_bits(cfg) -> int:
    """Uplink + downlink bits of one peer in one exchanging round, from the protocols' formulas (every
    peer takes part: participation 1, no faults; tally without abstention sends its L bits back down)."""
    M, C = cfg.probe.per_round, sizing.data_shape(cfg)[1]
    name = cfg.protocol.name
    if name == "tally":
        assert cfg.comm.topology == "star" and not cfg.vote.min_agreement and cfg.vote.min_margin == 0 and cfg.privacy.threshold == 0
        return 2 * comm.hard_labels(M, C)
    if name == "softlabel":
        return 2 * comm.soft_labels(M, C, cfg.comm.soft_bits)
    if name == "topk_soft":
        return 2 * M * topk_soft.message_bits(cfg.topk_soft.k, cfg.topk_soft.value_bits, C)
    raise AssertionError(f"no bit formula here for {name}")


def per_group_bits(spec: dict, smoke: bool = False) -> dict:
    """group -> {panel: bits per peer and round} over the runs the figure runner would make."""
    out = {}
    for gname, (cfg, runs) in figures.group_plans(spec, smoke, SPEC_PATH.parent).items():
        if gname in MATCHED + (REFERENCE_20X,):
            out[gname] = {name: round_bits(c) for (name, _), c in zip(runs, sweep.configs(cfg, runs))}
    return out


def check_matched(bits: dict) -> int:
    values = {(g, p): b for g, panels in bits.items() if g in MATCHED for p, b in panels.items()}
    assert len(set(values.values())) == 1, f"matched groups differ: {values}"
    return next(iter(values.values()))


@pytest.fixture(scope="module")
def full_bits():
    return per_group_bits(_spec())


def test_the_config_parses_into_its_panels_and_settings():
    plans = figures.group_plans(_spec(), False, SPEC_PATH.parent)
    assert set(plans) == {*MATCHED, REFERENCE_20X, "fedavg", "local"}
    cfg, runs = plans["tally_500p"]
    assert [name for name, _ in runs] == list(PANELS)
    for (name, _), c in zip(runs, sweep.configs(cfg, runs)):
        kind, alpha = PANELS[name]
        assert c.partition.kind == kind and (alpha is None or c.partition.alpha == alpha)
        assert (c.peers, c.rounds, c.seeds, c.data.name, c.model.name) == (10, 20, 3, "fashion_mnist", "mlp")
        if kind == "label_quantity":           # one class per peer, every class held (peers >= C)
            assert c.partition.k == 1 and c.peers >= sizing.data_shape(c)[1]


def test_the_matched_groups_send_the_same_bits_in_every_panel_and_the_reference_20x(full_bits):
    matched = check_matched(full_bits)
    assert matched == 4_000                          # 500 x 4 x 2 = 25 x 80 x 2 = 200 x 10 x 2
    assert set(full_bits[REFERENCE_20X].values()) == {20 * matched}


def test_the_smoke_version_is_matched_too():
    check_matched(per_group_bits(_spec(), smoke=True))


@pytest.mark.parametrize("group, probes", [("softlabel_8bit_25p", 26), ("topk_k1_b6_200p", 199),
                                           ("tally_500p", 400)])
def test_the_check_fails_when_a_groups_probes_change(group, probes):
    spec = copy.deepcopy(_spec())
    spec["groups"][group]["probe"] = {"per_round": probes}
    with pytest.raises(AssertionError, match="matched groups differ"):
        check_matched(per_group_bits(spec))


def doc_table_rows(section: str, stop: str = None) -> list[list[str]]:
    """The cells of every table row in docs/matched-bits.md's `section` (up to `stop`), header first:
    what this file's and test_class_matched_dec17's page checks read their bits columns from."""
    text = (ROOT / "docs" / "matched-bits.md").read_text().split(section, 1)[1]
    if stop:
        text = text.split(stop, 1)[0]
    return [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in text.splitlines() if ln.startswith("|")]


def test_the_page_s_bits_column_is_the_formula_times_the_rounds(full_bits):
    """docs/matched-bits.md's table of this figure: bits per peer over the 20 rounds, row per group."""
    # the mechanism study's table below has other columns
    rows = doc_table_rows("## The non-IID claim at matched bits", "### Why the vote loses here")
    rounds = _spec()["base"]["rounds"]
    col = rows[0].index(f"bits per peer ({rounds} rounds)")
    found = {r[0].strip("`"): int(r[col].replace(",", "")) for r in rows[2:] if r[0].strip("`") in full_bits}
    assert set(found) == set(full_bits), found
    for g, b in found.items():
        assert b == rounds * next(iter(full_bits[g].values())), (g, b)


def assert_make_runs_figure_then_table(target: str, tag: str) -> None:
    """`make <target>` runs experiments/<tag>.json's figure, then tabulates its results into
    figures/<tag>_table.md; a --smoke run tabulates its own results; a --dry-run tabulates nothing (this
    file's and test_class_matched_dec17's targets, one pattern)."""
    def make_n(*words):
        return subprocess.run(["make", "-n", target, *words], cwd=ROOT, capture_output=True,
                              text=True, check=True, timeout=30).stdout
    plain = make_n()
    assert f"tallysim figure experiments/{tag}.json" in plain
    assert f"tallysim table results/{tag} --out figures/{tag}_table.md" in plain
    smoke = make_n("ARGS=--smoke")
    assert "--smoke" in smoke and f"table results/{tag}-smoke" in smoke
    assert "tallysim table" not in make_n("ARGS=--dry-run")


def test_make_niid_matched_bits_runs_the_figure_then_the_table():
    assert_make_runs_figure_then_table("niid-matched-bits", "niid_matched_bits")
