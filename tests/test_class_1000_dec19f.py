"""experiments/class_1000.json (docs/matched-bits.md, "C = 1000 at matched bits"): tally's 800 probes against
8-bit soft labels on ONE probe (the same 16,000 bits per peer and round at C = 1000) and on ten (10x the bits)
and local training, synthetic data with 1,000 classes. What makes the comparison fair is checked on the configs
the figure runner expands, no training: every run has C = 1000 and trains on the same 200,000 examples (the
pool is carved out of data.train_size), tally and the one-probe soft labels send the same bits by the
protocols' formulas (test_niid_matched_dec17.round_bits), the ten-probe soft labels ten times that; the smoke
version keeps C = 1000 and the matching; `make class-1000` runs the figure then the table. The same checks hold
for experiments/class_1000_momentum0.json (`make class-1000-momentum0`), which must differ from class_1000.json
in optim.momentum alone. The page's numbers are pinned in tests/test_doc_numbers.py
(test_the_class_1000_table_is_its_csvs, test_the_class_1000_momentum0_table_is_its_csv)."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from tallysim import config, figures, sizing, sweep
from test_niid_matched_dec17 import assert_make_runs_figure_then_table, round_bits

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "experiments" / "class_1000.json"
SPECS = [SPEC_PATH, ROOT / "experiments" / "class_1000_momentum0.json"]
MATCHED = 800 * (10 + 10)      # tally: 800 votes of ceil(log2 1000) = 10 bits, up and down
BITS = {"tally_800p": MATCHED, "softlabel_8bit_1p": MATCHED, "softlabel_8bit_10p": 10 * MATCHED}


def _configs(spec: dict, smoke: bool = False) -> dict:
    """group -> [(panel, Config)] as the figure runner would run them."""
    return {g: [(name, c) for (name, _), c in zip(runs, sweep.configs(cfg, runs))]
            for g, (cfg, runs) in figures.group_plans(spec, smoke, SPEC_PATH.parent).items()}


def check_fair(groups: dict, bits: dict) -> None:
    """Every run: C = 1000 and the same training examples; each exchanging group the bits `bits` names."""
    trained = {(g, p): c.data.train_size - c.probe.pool_size for g, runs in groups.items() for p, c in runs}
    assert len(set(trained.values())) == 1, f"training examples differ: {trained}"
    for g, runs in groups.items():
        for p, c in runs:
            assert sizing.data_shape(c)[1] == 1000, (g, p)
            if c.protocol.name != "local":
                assert round_bits(c) == bits[g], f"bits per peer and round of {g}/{p}: {round_bits(c)}, not {bits[g]}"


@pytest.fixture(scope="module", params=SPECS, ids=lambda p: p.stem)
def full(request):
    return _configs(config.read_file(str(request.param)))


def test_tally_and_one_soft_probe_send_the_same_bits_on_the_same_data(full):
    check_fair(full, BITS)
    assert set(full) == set(BITS) | {"local"}
    for g, runs in full.items():
        assert [p for p, _ in runs] == ["iid", "dir0.5", "dir0.1"]
        for _, c in runs:
            assert c.data.train_size - c.probe.pool_size == 200 * 1000       # 200 training examples a class
            assert c.probe.pool_size == 8000 and c.seeds == 3
            if c.protocol.name == "tally":
                assert c.probe.per_round / c.probe.pool_size == 0.1          # a tenth of the pool a round


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_the_smoke_version_keeps_1000_classes_and_the_matching(path):
    check_fair(_configs(config.read_file(str(path)), smoke=True), BITS)


def test_the_momentum0_figure_is_class_1000_without_momentum():
    """Every run of class_1000_momentum0.json is class_1000.json's run of the same group and panel with
    optim.momentum 0 instead of 0.9, nothing else changed (the page compares the two tables cell by cell)."""
    with_m, without = (_configs(config.read_file(str(p))) for p in SPECS)
    assert with_m.keys() == without.keys()
    for g in with_m:
        assert [p for p, _ in with_m[g]] == [p for p, _ in without[g]]
        for (p, a), (_, b) in zip(with_m[g], without[g]):
            assert (a.optim.momentum, b.optim.momentum) == (0.9, 0.0), (g, p)
            assert dataclasses.replace(a, optim=dataclasses.replace(a.optim, momentum=0.0)) == b, (g, p)


@pytest.mark.parametrize("group, field, value", [("tally_800p", "data", {"train_size": 200000}),
                                                 ("softlabel_8bit_1p", "probe", {"per_round": 2})])
def test_the_check_fails_when_a_group_trains_on_other_data_or_sends_other_bits(group, field, value):
    spec = copy.deepcopy(config.read_file(str(SPEC_PATH)))
    spec["groups"][group][field] = value
    with pytest.raises(AssertionError, match="training examples differ|bits per peer and round"):
        check_fair(_configs(spec), BITS)


@pytest.mark.parametrize("target", ["class-1000", "class-1000-momentum0"])
def test_make_class_1000_runs_the_figure_then_the_table(target):
    assert_make_runs_figure_then_table(target, target.replace("-", "_"))
