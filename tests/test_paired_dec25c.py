"""A third seed (seed 2, paired; paired45, 2026-12-07) for the paired-seed verdicts that rest on two seeds and
turned or sit within the noise (a "turn" where both seeds change side happens 1 time in 4 with no real
difference). Each seed-2 run is one line of a `docs/figures/*_seed2.jsonl` (the script's own output) and one
row of the matching `*_seed2.csv`; seeds 0 and 1 stay in the pinned `*_paired_seeds.csv`. Each verdict's row
in the docs' three-seed tables (per-seed differences, their mean, and the count of seeds on each side) and
its note in docs/figures.md's pairing table are computed here from those CSVs. Pure text; no compile."""
import csv
import json
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIG = DOCS / "figures"


def _seeds(*names: str) -> dict:
    """(group, panel) -> {seed: acc_mean} over the given per-seed CSVs; a seed given twice is an error."""
    out = {}
    for name in names:
        for r in csv.DictReader(open(FIG / name, newline="")):
            by_seed = out.setdefault((r["group"], r["panel"]), {})
            assert int(r["seed"]) not in by_seed, (name, r)
            by_seed[int(r["seed"])] = float(r["acc_mean"])
    return out


def verdict(diffs: list) -> str:
    """The count of seeds on each side: all on one side "above/below in 3 of 3 seeds", else the side of the
    majority "in 2 of 3 seeds: within noise" (a tie, exactly 0, counts as below: "not above")."""
    up = sum(d > 0 for d in diffs)
    side = "above" if up * 2 > len(diffs) else "below"
    n = max(up, len(diffs) - up)
    return f"{side} in {n} of {len(diffs)} seeds" + ("" if n == len(diffs) else ": within noise")


def three_seed_row(label: str, a: dict, b: dict, d: int) -> tuple[str, str]:
    """(the docs' table row for `a` minus `b` over seeds 0, 1, 2, the pairing-table note)."""
    diffs = [a[s] - b[s] for s in (0, 1, 2)]
    cells = [f"{x:+.{d}f}" for x in diffs] + [f"{statistics.fmean(diffs):+.{d}f}", verdict(diffs)]
    return f"| {label} | " + " | ".join(cells) + " |", f"3 seeds: {verdict(diffs)} (seed 2 {diffs[2]:+.{d}f})"


WORDS = ("wordclaim_paired_seeds.csv", "wordclaim_seed2.csv", "wordclaim_warm_paired_seeds.csv", "wordclaim_warm_seed2.csv")
CHARS = ("textclaim_chars5_paired_seeds.csv", "textclaim_chars5_seed2.csv")
# (doc, the section the table is in, label, CSVs, (group a, panel), (group b, panel), decimals, pairing-table row start)
VERDICTS = [
    ("text.md", "**A third seed for the words verdicts", "soft labels minus local training", WORDS,
     ("softlabel", "words"), ("local", "words"), 4, "| words: soft labels above local training"),
    ("text.md", "**A third seed for the words verdicts", "the light vote minus soft labels", WORDS,
     ("tally_light", "words"), ("softlabel", "words"), 4, "| words: soft labels above local training"),
    ("text.md", "**A third seed for the words verdicts", "the light vote minus local training", WORDS,
     ("tally_light", "words"), ("local", "words"), 4, "| words: the light vote above local training"),
    ("text.md", "**A third seed for the words verdicts", "tally_warm minus local training, 8 rounds", WORDS,
     ("tally_warm", "words"), ("local", "words"), 4, "| words: the 4-epoch warm-up rows"),
    ("text.md", "**A third seed for the words verdicts", "tally_warm minus local training, 12 rounds", WORDS,
     ("tally_warm", "words"), ("local_12", "words"), 4, "| words: the 4-epoch warm-up rows"),
    ("text.md", "**A third seed for the words verdicts", "soft labels (warm-up 4) minus tally_warm", WORDS,
     ("softlabel_warm", "words"), ("tally_warm", "words"), 4, "| words: the 4-epoch warm-up rows"),
    ("text.md", "**A third seed for the characters verdicts", "tally (weight 0.1) minus local training", CHARS,
     ("tally (weight 0.1)", "chars, 5 local epochs"), ("local", "chars, 5 local epochs"), 4, "| characters, 5 local epochs"),
    ("text.md", "**A third seed for the characters verdicts", "tally (weight 0.1) minus soft labels", CHARS,
     ("tally (weight 0.1)", "chars, 5 local epochs"), ("softlabel", "chars, 5 local epochs"), 4, "| characters, 5 local epochs"),
    ("figures.md", "**A third seed for LeNet's alpha 0.1", "tally minus local training, alpha 0.1",
     ("fig2_lenet_paired_seeds.csv", "fig2_lenet_seed2.csv"), ("tally", "alpha=0.1"), ("local", "alpha=0.1"), 3,
     "| LeNet: both distillations beat local training"),
    ("figures.md", "**A third seed for the CNN's alpha 100", "tally minus local training, alpha 100",
     ("fig2_cnn_paired_seeds.csv", "fig2_cnn_seed2.csv"), ("tally", "alpha=100"), ("local", "alpha=100"), 3,
     "| the CNN: tally not above local training"),
]


def _section(doc: str, start: str) -> str:
    """The first markdown table after `start` in docs/<doc>."""
    text = (DOCS / doc).read_text()
    assert start in text, start
    lines = text.split(start)[1].splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    end = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[first:end])


@pytest.mark.parametrize("doc, start, label, names, a, b, d, listed", VERDICTS, ids=[v[2] for v in VERDICTS])
def test_each_three_seed_verdict_is_its_csvs(doc, start, label, names, a, b, d, listed):
    """The table row (each seed's difference, their mean, the count of seeds on each side) and the pairing
    table's note are the per-seed CSVs'; fails on a cell typed by hand, or a verdict worded against the signs."""
    seeds = _seeds(*names)
    assert sorted(seeds[a]) == sorted(seeds[b]) == [0, 1, 2], (a, b)
    row, note = three_seed_row(label, seeds[a], seeds[b], d)
    assert row in _section(doc, start), row
    line = next(ln for ln in (DOCS / "figures.md").read_text().splitlines() if ln.startswith(listed))
    assert note in line.replace("**", ""), (note, line)


def test_the_verdict_words_follow_the_signs():
    """verdict() itself: the three-seed words the docs use for each pattern of signs."""
    assert verdict([0.01, 0.02, 0.001]) == "above in 3 of 3 seeds"
    assert verdict([-0.01, -0.02, 0.0]) == "below in 3 of 3 seeds"
    assert verdict([0.01, -0.02, 0.003]) == "above in 2 of 3 seeds: within noise"
    assert verdict([-0.01, 0.02, -0.003]) == "below in 2 of 3 seeds: within noise"


def _jsonl(name: str) -> list:
    return [json.loads(ln) for ln in (FIG / name).read_text().splitlines()]


def test_the_seed2_csvs_are_the_script_runs():
    """Each seed-2 CSV row is its jsonl run's final accuracy, and every run is seed 2 alone (`seed=2`):
    wordclaim.py's (group, overrides) name the CSV's groups as paired42 named them; textclaim.py's last round."""
    words = {("tally_light", ()): "tally_light", ("softlabel", ()): "softlabel", ("local", ()): "local",
             ("tally_warm", ()): "tally_warm", ("softlabel", ("warmup_epochs=4",)): "softlabel_warm",
             ("local", ("rounds=12",)): "local_12"}
    got = {}
    for d in _jsonl("wordclaim_seed2.jsonl"):
        assert d["seed"] == 2, d["group"]
        got.setdefault((words[(d["group"], tuple(d["over"]))], "words"), {})[2] = round(d["acc"], 6)
    assert got == _seeds("wordclaim_seed2.csv", "wordclaim_warm_seed2.csv")
    chars = {("tally", ("local_epochs=5", "distill.weight=0.1")): "tally (weight 0.1)",
             ("softlabel", ("local_epochs=5",)): "softlabel", ("local", ("local_epochs=5",)): "local"}
    got = {}
    for d in _jsonl("textclaim_chars5_seed2.jsonl"):
        assert d["over"][-1] == "seed=2", d["over"]
        got.setdefault((chars[(d["protocol"], tuple(d["over"][:-1]))], "chars, 5 local epochs"), {})[2] = \
            d["rounds"][-1]["acc"]
    assert got == _seeds("textclaim_chars5_seed2.csv")



def test_fig2_one_seed_plans_the_figures_own_point(monkeypatch):
    """experiments/fig2_one_seed.py (the LeNet and CNN seed-2 runs): the figure's own validated config for the
    group and alpha, but seed S alone; an alpha the figure does not run is refused naming the ones it does."""
    import dataclasses
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.chdir(ROOT)
    from experiments import fig2_one_seed
    from tallysim import config, figures
    cfg = config.validate(fig2_one_seed.plan("experiments/fig2_cnn.json", "local", "100", 2))
    assert (cfg.seed, cfg.seeds, cfg.partition.alpha, cfg.model.name) == (2, 1, 100, "cnn")
    plans = figures.group_plans(config.read_file("experiments/fig2_cnn.json"), False, ROOT / "experiments")
    assert dataclasses.replace(cfg, seed=0, seeds=2) == plans.configs["local"][1]      # the figure's alpha 100
    with pytest.raises(SystemExit, match="alpha 0.5 is not one of .*partition.alpha=0.1, partition.alpha=100"):
        fig2_one_seed.plan("experiments/fig2_cnn.json", "local", "0.5", 2)


def test_the_fig2_seed2_csvs_are_the_script_runs():
    """fig2_lenet_seed2.csv and fig2_cnn_seed2.csv are fig2_seed2.jsonl's seed-2 runs (experiments/fig2_one_seed.py),
    each its final round's peer mean; the jsonl's other lines are the seed-alone checks docs/figures.md quotes."""
    runs = _jsonl("fig2_seed2.jsonl")
    for stem in ("fig2_lenet", "fig2_cnn"):
        got = {}
        for d in runs:
            if d["spec"] == f"experiments/{stem}.json" and d["seed"] == 2:
                got.setdefault((d["group"], f"alpha={d['alpha']}"), {})[2] = round(d["acc_mean"], 6)
        assert got == _seeds(f"{stem}_seed2.csv"), stem
    check = [d for d in runs if d["seed"] != 2]
    assert [(d["spec"], d["group"], d["alpha"], d["seed"]) for d in check] == [("experiments/fig2_lenet.json", "local", "0.1", 1)]
    alone, lane = check[0]["acc_mean"], _seeds("fig2_lenet_paired_seeds.csv")[("local", "alpha=0.1")][1]
    text = " ".join((DOCS / "figures.md").read_text().split())
    assert (f"local training's seed 1 run the same way alone gives {alone:.3f} against its lane's {lane:.3f} "
            f"({alone - lane:+.3f})") in text
