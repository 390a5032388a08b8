"""Results re-measured with paired seeds (paired30, 2026-12-07): the verdicts that rest on a per-seed comparison
of a warm-up protocol against local training, run again with the code after the pairing change (same seed:
same init and round-1 batches as local training). Each re-measure keeps two per-seed CSVs in docs/figures/:
`<name>_unpaired_seeds.csv` (the committed result's seeds: the code before the change, run again, or the
committed per-seed record) and `<name>_paired_seeds.csv` (the current code). The docs' before -> after
tables are these CSVs, every cell; the unpaired seeds reproduce the committed figure's CSV; local training
(no warm-up: pairing does not move it) is the same in both. Pure text."""
import csv
import json
import math
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIG = DOCS / "figures"


def _seeds(name: str) -> dict:
    """(group, panel) -> {seed: acc_mean} from docs/figures/<name>."""
    out = {}
    for r in csv.DictReader(open(FIG / name)):
        out.setdefault((r["group"], r["panel"]), {})[int(r["seed"])] = float(r["acc_mean"])
    return out


def _signed(x: float, d: int = 3) -> str:
    zero = "0." + "0" * d
    return f"{x:+.{d}f}".replace("+" + zero, zero).replace("-" + zero, zero)


def _mean_cell(values: list, signed: bool, d: int = 3) -> str:
    """The mean, and its standard error (sample std / sqrt(n)) where there are 3 or more seeds."""
    m = statistics.fmean(values)
    cell = _signed(m, d) if signed else f"{m:.{d}f}"
    if len(values) >= 3:
        cell += f" (s.e. {statistics.stdev(values) / math.sqrt(len(values)):.{d}f})"
    return cell


def paired_rows(name: str, groups: list, ref: str, d: int = 3) -> list[str]:
    """The markdown rows of a before -> after table: per panel, each group's accuracy per seed and mean,
    then its per-seed difference to `ref` (local training) and the mean difference (with its standard error
    where there are 3 or more seeds), `before -> after`."""
    before, after = _seeds(f"{name}_unpaired_seeds.csv"), _seeds(f"{name}_paired_seeds.csv")
    panels = list(dict.fromkeys(p for _, p in after))
    rows = []
    for p in panels:
        for g in groups:
            b, a = before[(g, p)], after[(g, p)]
            seeds = sorted(a)
            assert sorted(b) == seeds, (name, g, p)
            cells = [f"{b[s]:.{d}f} -> {a[s]:.{d}f}" for s in seeds]
            cells.append(f"{_mean_cell([b[s] for s in seeds], False, d)} -> {_mean_cell([a[s] for s in seeds], False, d)}")
            if g == ref:
                cells += ["-"] * (len(seeds) + 1)
            else:
                rb, ra = before[(ref, p)], after[(ref, p)]
                db, da = [b[s] - rb[s] for s in seeds], [a[s] - ra[s] for s in seeds]
                cells += [f"{_signed(x, d)} -> {_signed(y, d)}" for x, y in zip(db, da)]
                cells.append(f"{_mean_cell(db, True, d)} -> {_mean_cell(da, True, d)}")
            rows.append(f"| {p} | {g} | " + " | ".join(cells) + " |")
    return rows


def paired_rows_from_means(name: str, groups: list, ref: str) -> list[str]:
    """As paired_rows where the runs before the change left only mean +- std over the seeds (the figure's CSV,
    docs/figures/<name>.csv; which seed gave which value was not recorded): per seed the after values
    alone, the means before -> after, and the difference to `ref`'s mean before -> after (per seed after)."""
    shipped = {(r["group"], f"alpha={float(r['partition.alpha']):g}"): float(r["accuracy"])
               for r in csv.DictReader(open(FIG / f"{name}.csv"))}
    after = _seeds(f"{name}_paired_seeds.csv")
    rows = []
    for p in dict.fromkeys(p for _, p in after):
        for g in groups:
            a, seeds = after[(g, p)], sorted(after[(g, p)])
            cells = [f"{a[s]:.3f}" for s in seeds] + [f"{shipped[(g, p)]:.3f} -> {statistics.fmean(a.values()):.3f}"]
            if g == ref:
                cells += ["-"] * (len(seeds) + 1)
            else:
                ra = after[(ref, p)]
                cells += [_signed(a[s] - ra[s]) for s in seeds]
                cells.append(f"{_signed(shipped[(g, p)] - shipped[(ref, p)])} -> "
                             f"{_signed(statistics.fmean(a[s] - ra[s] for s in seeds))}")
            rows.append(f"| {p} | {g} | " + " | ".join(cells) + " |")
    return rows


def _section(doc: str, start: str, end: str) -> str:
    text = (DOCS / doc).read_text()
    assert start in text, start
    return text.split(start)[1].split(end)[0]


TABLES = [  # (per-seed CSV stem, doc, section start, section end, groups, reference group, decimals)
    ("fig2_small_mlp", "figures.md", "**Re-measured with paired seeds: the MLP control**", "**What it says, plainly",
     ["tally", "softlabel (mean)", "local"], "local", 3),
    ("textclaim_chars5", "text.md", "**The second setting re-measured with paired seeds**", "So the finding against",
     ["tally (weight 0.1)", "softlabel", "local"], "local", 3),
    ("wordclaim", "text.md", "**The light vote against local training, re-measured with paired seeds**",
     "So, at the smallest CPU size", ["tally_light", "tally", "softlabel", "local"], "local", 4),
    ("class_matched_bits", "matched-bits.md", "**Tally against local training, re-measured with paired seeds**",
     "On the same messages", ["c100_tally_800p", "c100_local"], "c100_local", 3),
]


@pytest.mark.parametrize("name, doc, start, end, groups, ref, d", TABLES, ids=[t[0] for t in TABLES])
def test_the_paired_tables_are_their_seed_csvs(name, doc, start, end, groups, ref, d):
    """Every row of a before -> after table is its two per-seed CSVs' (accuracies, differences to local
    training, means and standard errors); fails on a cell typed by hand that the CSVs do not give."""
    section = _section(doc, start, end)
    for row in paired_rows(name, groups, ref, d):
        assert row in section, row


@pytest.mark.parametrize("name", ["fig2_small_mlp"])
def test_the_unpaired_seeds_are_the_committed_figure(name):
    """The before seeds reproduce the committed figure's CSV (mean +- population std over the seeds, as the
    figure writes it) for every re-run group and alpha: the 'before' column is the committed result."""
    shipped = {(r["group"], f"alpha={float(r['partition.alpha']):g}"): r for r in csv.DictReader(open(FIG / f"{name}.csv"))}
    for key, by_seed in _seeds(f"{name}_unpaired_seeds.csv").items():
        v = list(by_seed.values())
        assert abs(statistics.fmean(v) - float(shipped[key]["accuracy"])) < 5e-6, key
        assert abs(statistics.pstdev(v) - float(shipped[key]["accuracy_std"])) < 5e-6, key


def test_the_lenet_table_is_its_csvs():
    """docs/figures.md, LeNet re-measured with paired seeds: every row is fig2_lenet_paired_seeds.csv's (per seed)
    and fig2_lenet.csv's (the committed means before); the paired local runs are the committed local ones."""
    section = _section("figures.md", "**Re-measured with paired seeds: LeNet**", "**The control: the MLP at the same size")
    for row in paired_rows_from_means("fig2_lenet", ["tally", "softlabel (mean)", "local"], "local"):
        assert row in section, row
    shipped = {f"alpha={float(r['partition.alpha']):g}": r for r in csv.DictReader(open(FIG / "fig2_lenet.csv"))
               if r["group"] == "local"}
    for (g, p), by_seed in _seeds("fig2_lenet_paired_seeds.csv").items():
        if g == "local":
            v = list(by_seed.values())
            assert abs(statistics.fmean(v) - float(shipped[p]["accuracy"])) < 5e-6, p
            assert abs(statistics.pstdev(v) - float(shipped[p]["accuracy_std"])) < 5e-6, p


def test_the_text_seeds_are_the_script_runs():
    """docs/text.md's second setting: the before seeds are textclaim_715.jsonl's runs (the committed table)
    and the after seeds textclaim_chars5_paired.jsonl's (the re-run), each the run's last evaluated round."""
    keys = {("tally", ("local_epochs=5", "distill.weight=0.1")): "tally (weight 0.1)",
            ("softlabel", ("local_epochs=5",)): "softlabel", ("local", ("local_epochs=5",)): "local"}
    for jsonl, stem in (("textclaim_715.jsonl", "unpaired"), ("textclaim_chars5_paired.jsonl", "paired"),
                        ("textclaim_chars5_prechange_rerun.jsonl", "unpaired")):
        got = {}
        for line in open(FIG / jsonl):
            d = json.loads(line)
            over = tuple(o for o in d["over"] if not o.startswith("seed="))
            seed = next((int(o[5:]) for o in d["over"] if o.startswith("seed=")), 0)
            if d["panel"] == "chars" and (d["protocol"], over) in keys:
                got.setdefault((keys[(d["protocol"], over)], "chars, 5 local epochs"), {})[seed] = d["rounds"][-1]["acc"]
        want = _seeds(f"textclaim_chars5_{stem}_seeds.csv")
        if "prechange" in jsonl:            # the code before the change run again: tally and softlabel only
            want = {k: v for k, v in want.items() if k[0] != "local"}
        assert got == want, jsonl


def test_the_word_seeds_are_the_script_runs():
    """docs/text.md's light vote on words: the before seeds are wordclaim_715.jsonl's runs (the committed
    table) and the after seeds wordclaim_paired.jsonl's (the re-run), each run's final accuracy."""
    for jsonl, stem in (("wordclaim_715.jsonl", "unpaired"), ("wordclaim_paired.jsonl", "paired")):
        got = {}
        for line in open(FIG / jsonl):
            d = json.loads(line)
            if d["group"] in ("tally_light", "tally", "softlabel", "local") and not d["over"]:
                got.setdefault((d["group"], "words"), {})[d["seed"]] = round(d["acc"], 6)
        assert got == _seeds(f"wordclaim_{stem}_seeds.csv"), jsonl


def test_the_class_seeds_are_the_committed_table():
    """matched-bits.md's C = 100 table: the before seeds' means are docs/figures/class_matched_bits.csv's
    accuracy (4 decimals) for tally and local training, both panels, and (paired40) the soft-label and
    topk_soft groups re-run after them (tests/test_paired_dec24k.py), and (paired41) the C = 10 groups
    (tests/test_paired_dec24m.py)."""
    shipped = {(r["protocol"], r["panel"]): float(r["accuracy"]) for r in csv.DictReader(open(FIG / "class_matched_bits.csv"))}
    before = _seeds("class_matched_bits_unpaired_seeds.csv")
    assert len(before) == 20
    for key, by_seed in before.items():
        assert abs(statistics.fmean(by_seed.values()) - shipped[key]) < 5e-5, key


@pytest.mark.parametrize("name", ["fig2_small_mlp", "textclaim_chars5", "wordclaim", "class_matched_bits"])
def test_local_training_is_not_moved_by_pairing(name):
    """Local training has no warm-up, so the pairing change leaves its runs as they were: the same per-seed
    accuracies before and after (a drift in the code between the two runs would show here first)."""
    before, after = _seeds(f"{name}_unpaired_seeds.csv"), _seeds(f"{name}_paired_seeds.csv")
    local = [k for k in after if k[0].endswith("local")]
    assert local and all(before[k] == after[k] for k in local)
