"""More paired seeds for docs/verdicts.md (seeds56, 2026-12-08): LeNet's reduced Fig. 2 grid gets seeds 2-4 of
tally, soft labels and local training, each group a program of its own, beside its paired seeds 0-1 (they replace
fig2_lenet_seed2.csv's lone seed 2 at alpha 0.1, as the CNN's did), and
the transformer's rows on words get seed 2 of the groups finished (local_12, tally_light, tally), each group
and seed alone as seeds 0-1 were. These check what the new files add and how they are read: their provenance
header, each row's seeds, that the committed seeds alone still give the docs' earlier numbers. Pure text."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tallysim.results import verdicts as v

FIG = Path(__file__).resolve().parents[1] / "docs" / "figures"
LENET, WORDS = "fig2_lenet_seeds2to4.csv", "wordtransformer_seed2.csv"


def _header(name):
    return " ".join(line for line in open(FIG / name) if line.startswith("#"))


def _body(name):
    return list(csv.DictReader(line for line in open(FIG / name) if not line.startswith("#")))


@pytest.fixture(scope="module")
def rows():
    return {(r["setting"], r["a"], r["b"]): r for r in v.rows()}


@pytest.mark.parametrize("name", (LENET, WORDS))
def test_each_new_file_says_how_it_was_made(name):
    text = _header(name)
    assert "2026-12-08" in text and "code 32a73d9" in text and "s wall" in text and "load average" in text, name
    assert "its own program" in text and "nice -n 5 python" in text, name
    assert set(_body(name)[0]) == {"group", "panel", "seed", "round", "acc_mean"}


def test_lenet_adds_seeds_2_to_4_of_its_three_groups():
    got = {(r["group"], r["panel"], int(r["seed"])) for r in _body(LENET)}
    groups = ("tally", "softlabel (mean)", "local")
    assert got == {(g, f"alpha={a}", s) for g in groups for a in ("0.1", "0.5", "100") for s in (2, 3, 4)}
    assert "per_seed_csv.py R/fig2_lenet_seeds2to4 --seeds 2,3,4" in _header(LENET)


def test_lenet_tally_rows_have_five_seeds_and_seed_2_comes_from_one_file(rows):
    for alpha in ("0.1", "0.5", "100"):
        assert rows[(f"LeNet, alpha {alpha}", "tally", "local")]["seeds"] == [0, 1, 2, 3, 4], alpha
        assert rows[(f"LeNet, alpha {alpha}", "softlabel", "local")]["seeds"] == [0, 1, 2, 3, 4], alpha
        assert rows[(f"LeNet, alpha {alpha}", "softlabel", "tally")]["seeds"] == [0, 1, 2, 3, 4], alpha
    assert all("fig2_lenet_seed2.csv" not in spec[5][0] + spec[6][0] for spec in v.SPECS)
    # the committed three seeds at alpha 0.1 (paired 0-1 and the lone seed 2) are the docs' +0.013
    three = ("fig2_lenet_paired_seeds.csv", "fig2_lenet_seed2.csv")
    t = v._values((three, "tally", "alpha=0.1", None, None))
    lo = v._values((three, "local", "alpha=0.1", None, None))
    assert sum(t[s] - lo[s] for s in (0, 1, 2)) / 3 == pytest.approx(0.013, abs=5e-4)


def test_the_words_file_matches_its_json_lines():
    body = {(r["group"], int(r["seed"]), int(r["round"])): float(r["acc_mean"]) for r in _body(WORDS)}
    assert {s for _, s, _ in body} == {2}
    for line in open(FIG / WORDS.replace(".csv", ".jsonl")):
        run = json.loads(line)
        assert run["seed"] == 2 and run["over"] == []
        for rnd in ((8, 12) if run["group"] == "local_12" else (8,)):
            acc = next(r["acc"] for r in run["rounds"] if r["round"] == rnd)
            assert body.pop((run["group"], 2, rnd)) == pytest.approx(acc, abs=5e-7)
    assert not body, body


def test_the_transformer_rows_take_seed_2_only_where_both_sides_ran(rows):
    s = "words, transformer"
    ran = {r["group"] for r in _body(WORDS)}
    for (a, b), ga, gb in ((("light vote (weight 0.1)", "local"), "tally_light", "local_12"),
                           (("tally (warm-up)", "local, 12 epochs"), "tally_warm", "local_12"),
                           (("tally (warm-up)", "local, 8 epochs"), "tally_warm", "local_12"),
                           (("softlabel (warm-up)", "tally (warm-up)"), "softlabel_warm", "tally_warm"),
                           (("light vote (weight 0.1)", "softlabel"), "tally_light", "softlabel"),
                           (("tally (weight 1)", "local"), "tally", "local_12")):
        want = [0, 1, 2] if {ga, gb} <= ran else [0, 1]
        assert rows[(s, a, b)]["seeds"] == want, (a, b)
