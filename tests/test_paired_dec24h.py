"""C = 100 with the probe pool of 3,200 re-measured with paired seeds (paired38, 2026-12-07): tally and local
training of `experiments/class_pool.json` run again with the code after the pairing change, as paired30 did for
the class-count table (tests/test_paired_dec23g.py, whose `paired_rows` builds the rows). The committed runs kept
their per-seed records, so `docs/figures/class_pool_unpaired_seeds.csv` is those runs' seeds and
`class_pool_paired_seeds.csv` the re-run's. docs/matched-bits.md's before -> after table is these two CSVs,
every cell; the verdict it states, the lead over the matched soft labels (re-run with paired seeds too by
paired39, with the figure's other groups: tests/test_paired_dec24i.py, which also checks that the figure is
drawn from the paired runs) and the row in docs/figures.md's list of re-measured verdicts follow from them.
Pure text: a few milliseconds."""
import csv
import statistics
from pathlib import Path

from test_paired_dec23g import _seeds, _signed, paired_rows

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIG = DOCS / "figures"
NAME, TALLY, LOCAL = "class_pool", "tally_800p_pool3200", "local_pool3200"
PANELS = ("iid", "dir0.5", "dir0.1")
START = "**Tally against local training with the pool of 3,200, re-measured with paired seeds**"
END = "![class_pool](figures/class_pool.png)"


def _section() -> str:
    text = (DOCS / "matched-bits.md").read_text()
    assert START in text and END in text.split(START)[1], (START, END)
    return " ".join(text.split(START)[1].split(END)[0].split())   # prose re-wrapped to one line


def _shipped() -> dict:
    """(group, panel) -> (mean, std) from the committed figure's CSV (4 decimals)."""
    return {(r["protocol"], r["panel"]): (float(r["accuracy_final"]), float(r["accuracy_final_std"]))
            for r in csv.DictReader(open(FIG / f"{NAME}.csv"))}


def _diffs(seeds: dict, panel: str) -> list:
    t, l = seeds[(TALLY, panel)], seeds[(LOCAL, panel)]
    return [t[s] - l[s] for s in sorted(t)]


def test_the_table_is_its_seed_csvs():
    """Every row of the before -> after table (per seed, means with standard errors, differences to local
    training of the same seed) is the two CSVs'; fails on a cell typed by hand that they do not give."""
    rows = paired_rows(NAME, [TALLY, LOCAL], LOCAL)
    assert len(rows) == 6
    section = (DOCS / "matched-bits.md").read_text().split(START)[1].split(END)[0]
    for row in rows:
        assert row in section, row


def test_the_after_seeds_are_the_committed_runs():
    """The after CSV is the committed figure's runs (redrawn from the paired runs by paired39; before that the
    before CSV was): per group and panel five seeds whose mean and population std are class_pool.csv's (4
    decimals); and local training (no warm-up: pairing does not move it) is the same in both CSVs to the last
    digit, so the code did not drift between the two runs."""
    before, after, shipped = _seeds(f"{NAME}_unpaired_seeds.csv"), _seeds(f"{NAME}_paired_seeds.csv"), _shipped()
    assert set(before) == set(after) >= {(g, p) for g in (TALLY, LOCAL) for p in PANELS}
    for key in [(g, p) for g in (TALLY, LOCAL) for p in PANELS]:
        by_seed = after[key]
        assert sorted(by_seed) == sorted(before[key]) == [0, 1, 2, 3, 4], key
        mean, std = shipped[key]
        assert abs(statistics.fmean(by_seed.values()) - mean) < 5e-5, key
        assert abs(statistics.pstdev(by_seed.values()) - std) < 5e-5, key
    assert all(before[(LOCAL, p)] == after[(LOCAL, p)] for p in PANELS)


def test_the_stated_verdict_follows_from_the_seeds():
    """"Holds" only where tally is above local training in every seed at every skew; the mean differences,
    the smallest margins and the lead over the matched soft labels (both runs of each from the CSVs) quoted
    in the prose are the CSVs'."""
    before, after = _seeds(f"{NAME}_unpaired_seeds.csv"), _seeds(f"{NAME}_paired_seeds.csv")
    section = _section()
    holds = all(min(_diffs(after, p)) > 0 for p in PANELS)
    assert ("**The verdict holds**: tally is above local training in every seed at every skew" in section) == holds
    means = [_signed(statistics.fmean(_diffs(after, p))) for p in PANELS]
    olds = [_signed(statistics.fmean(_diffs(before, p))) for p in PANELS]
    assert f"IID {means[0]} (standard error" in section and f"before {olds[0]})" in section
    assert f"Dirichlet 0.5 {means[1]} (" in section and f"Dirichlet 0.1 {means[2]} (" in section
    assert "smallest per-seed margins are {}, {} and {}".format(*(_signed(min(_diffs(after, p))) for p in PANELS)) in section
    lead = [_signed(statistics.fmean(s[(TALLY, p)].values()) - statistics.fmean(s[("softlabel_8bit_7p_pool3200", p)].values()))
            for s in (after, before) for p in PANELS]
    assert "with the paired tally, {} / {} / {} (before {} / {} / {})".format(*lead) in section
    row = next(line for line in (DOCS / "figures.md").read_text().splitlines()
               if line.startswith("| C = 100, pool of 3,200: tally above local training"))
    assert ("**yes**: holds in every seed, every skew (" + f"{means[0]} IID, {means[1]} at Dirichlet 0.5, "
            f"{means[2]} at 0.1; before {' / '.join(olds)};") in row, row
