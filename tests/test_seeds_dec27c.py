"""More paired seeds for docs/verdicts.md (seeds55, 2026-12-07): verdicts that were level within noise with
2-3 seeds get seeds from a program of their own (the committed seeds kept), and partial participation's
"tally below soft labels in every seed", not recomputable before, is run with 5 paired seeds. These check
what the new files add and how they are read: their provenance header, each row's seeds, that the committed
seeds alone still give the docs' earlier numbers, and that the counts sentence says when nothing is left
unrecomputable. Pure text, no run."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tallysim.results import verdicts as v

FIG = Path(__file__).resolve().parents[1] / "docs" / "figures"
NEW = ("fig_participation_seeds5.csv", "fig_participation_alpha01_seeds5.csv", "class_matched_bits_c10_seeds3to4.csv",
       "class_1000_dir05_seeds3to4.csv", "fig2_cnn_seeds2to4.csv")
WORDS = "wordclaim_warm_seeds3to4.csv"          # each group and seed alone, as seeds 0-2 were: wordclaim.py, not a figure


@pytest.fixture(scope="module")
def rows():
    return {(r["setting"], r["a"], r["b"]): r for r in v.rows()}


@pytest.mark.parametrize("name", NEW)
def test_each_new_file_says_how_it_was_made(name):
    text = " ".join(line for line in open(FIG / name) if line.startswith("#"))
    assert "nice -n 5 python -m tallysim figure experiments/" in text and "per_seed_csv.py" in text, name
    assert "2026-12-07" in text and "code " in text and "s wall" in text and "load average" in text, name
    assert "its own program" in text, name
    body = list(csv.DictReader(line for line in open(FIG / name) if not line.startswith("#")))
    assert body and set(body[0]) == {"group", "panel", "seed", "round", "acc_mean"}


def test_the_words_file_says_how_it_was_made_and_matches_its_json_lines():
    import json
    text = " ".join(line for line in open(FIG / WORDS) if line.startswith("#"))
    assert "nice -n 5 python experiments/wordclaim.py tally_warm seed=S" in text and "softlabel warmup_epochs=4" in text
    assert "2026-12-07" in text and "code " in text and " s " in text and "load average" in text and "its own program" in text
    body = {(r["group"], int(r["seed"])): float(r["acc_mean"])
            for r in csv.DictReader(line for line in open(FIG / WORDS) if not line.startswith("#"))}
    runs = [json.loads(line) for line in open(FIG / WORDS.replace(".csv", ".jsonl"))]
    assert len(runs) == len(body) == 4
    for run in runs:
        group = "softlabel_warm" if run["over"] == ["warmup_epochs=4"] else run["group"]
        assert body[(group, run["seed"])] == pytest.approx(run["acc"], abs=5e-7)


def test_partial_participation_is_recomputable_now(rows):
    for name in ("Dirichlet 0.5", "Dirichlet 0.1"):
        r = rows[(f"partial participation 0.1, {name}", "tally", "softlabel")]
        assert r["seeds"] == [0, 1, 2, 3, 4] and r["said"] == "below", name
    assert v.NOT_RECOMPUTABLE == ()
    assert v.counts()["not recomputable"] == 0
    # the counts sentence no longer says "0 more are not recomputable"
    assert v.summary().endswith("Every verdict is recomputable from committed files.")
    assert "not recomputable" not in v.summary()


def test_c10_adds_seeds_3_and_4_to_the_committed_three(rows):
    r = rows[("C = 10 matched bits, Dirichlet 0.1", "softlabel 40 probes", "tally")]
    assert r["seeds"] == [0, 1, 2, 3, 4]
    # the committed seeds alone are the docs' +0.161 (3 seeds); the other C = 10 rows keep their 3 seeds
    paired = ("class_matched_bits_paired_seeds.csv",)
    a = v._values((paired, "c10_softlabel_8bit_40p", "dir0.1", None, None))
    b = v._values((paired, "c10_tally_800p", "dir0.1", None, None))
    assert sorted(a) == [0, 1, 2] and sum(a[s] - b[s] for s in a) / 3 == pytest.approx(0.161, abs=5e-4)
    assert rows[("C = 10 matched bits, Dirichlet 0.1", "topk_soft", "tally")]["seeds"] == [0, 1, 2]


def test_the_rows_sharing_a_group_keep_their_seeds(rows):
    """Only the row that was level gets seeds 3-4; a row against a group that was not run again keeps 0-2."""
    assert rows[("words, LSTM, 4-epoch warm-up", "softlabel (warm-up)", "tally (warm-up)")]["seeds"] == [0, 1, 2, 3, 4]
    assert rows[("words, LSTM, 4-epoch warm-up", "tally (warm-up)", "local, 8 epochs")]["seeds"] == [0, 1, 2]
    assert rows[("C = 1000, momentum 0.9, Dirichlet 0.5", "tally", "softlabel 1 probe")]["seeds"] == [0, 1, 2, 3, 4]
    assert rows[("C = 1000, momentum 0.9, Dirichlet 0.5", "tally", "local")]["seeds"] == [0, 1, 2]


def test_new_seeds_never_repeat_a_committed_one():
    """A new file's seeds are disjoint from the committed files it extends (verdicts.py refuses a seed in
    two files; this says which seeds each new file was meant to add)."""
    adds = {"fig2_cnn_seeds2to4.csv": {2, 3, 4}, "class_matched_bits_c10_seeds3to4.csv": {3, 4}, "class_1000_dir05_seeds3to4.csv": {3, 4}, WORDS: {3, 4}}
    for name, seeds in adds.items():
        got = {int(r["seed"]) for r in csv.DictReader(line for line in open(FIG / name) if not line.startswith("#"))}
        assert got == seeds, name


def test_the_cnn_rows_have_five_seeds_and_its_seed_2_comes_from_one_file(rows):
    """The CNN's seeds 2-4 replace fig2_cnn_seed2.csv's lone seed 2 at alpha 100: a seed may be in one file only."""
    for alpha in ("0.1", "100"):
        for a, b in (("tally", "local"), ("softlabel", "tally"), ("softlabel", "local")):
            assert rows[(f"CNN, alpha {alpha}", a, b)]["seeds"] == [0, 1, 2, 3, 4], (alpha, a, b)
    assert all("fig2_cnn_seed2.csv" not in spec[5][0] + spec[6][0] for spec in v.SPECS)
    # the committed three seeds alone (paired 0-1 and the lone seed 2) are the docs' +0.025
    three = ("fig2_cnn_paired_seeds.csv", "fig2_cnn_seed2.csv")
    t = v._values((three, "tally", "alpha=100", None, None))
    lo = v._values((three, "local", "alpha=100", None, None))
    assert sum(t[s] - lo[s] for s in (0, 1, 2)) / 3 == pytest.approx(0.025, abs=5e-4)
    assert rows[("CNN, alpha 0.1", "tally", "local")]["status"] == "holds"        # "not above": level supports it
