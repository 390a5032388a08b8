"""Fig. 2's CNN re-measured with paired seeds (pairedcnn, 2026-12-07): tally, softlabel (mean) and local training
of `experiments/fig2_cnn.json` run again with the code after the pairing change (same seed: same init and
round-1 batches as local training), as paired30 did for LeNet (tests/test_paired_dec23g.py). The runs before
the change recorded only mean +- std over the two seeds (docs/figures/fig2_cnn.csv), so the per-seed CSV is the
paired runs' alone (docs/figures/fig2_cnn_paired_seeds.csv). docs/figures.md's before -> after table is these
two CSVs, every cell, and the verdict it states follows from them. Pure text: a few milliseconds."""
import csv
import statistics
from pathlib import Path

from test_paired_dec23g import paired_rows_from_means

ROOT = Path(__file__).resolve().parent.parent
FIG = ROOT / "docs" / "figures"
START, END = "**Re-measured with paired seeds: the CNN**", "The same verdicts, before the change:"


def _section() -> str:
    text = (ROOT / "docs" / "figures.md").read_text()
    assert START in text and END in text.split(START)[1], (START, END)
    return text.split(START)[1].split(END)[0]


def _paired() -> dict:
    """(group, panel) -> {seed: acc_mean} from fig2_cnn_paired_seeds.csv."""
    out = {}
    for r in csv.DictReader(open(FIG / "fig2_cnn_paired_seeds.csv")):
        out.setdefault((r["group"], r["panel"]), {})[int(r["seed"])] = float(r["acc_mean"])
    return out


def _shipped() -> dict:
    return {(r["group"], f"alpha={float(r['partition.alpha']):g}"): r for r in csv.DictReader(open(FIG / "fig2_cnn.csv"))}


def test_the_cnn_table_is_its_csvs():
    """Every row of the CNN's before -> after table is fig2_cnn_paired_seeds.csv's (per seed, the differences to
    local training of the same seed) and fig2_cnn.csv's (the committed means before); fails on a cell typed by
    hand that the CSVs do not give."""
    section = _section()
    rows = paired_rows_from_means("fig2_cnn", ["tally", "softlabel (mean)", "local"], "local")
    assert len(rows) == 6
    for row in rows:
        assert row in section, row


def test_the_paired_runs_are_the_committed_grid():
    """The paired CSV covers exactly the committed figure's groups, alphas and two seeds (nothing dropped or
    added), and local training (no warm-up: pairing does not move it) reproduces the committed mean +- std."""
    paired, shipped = _paired(), _shipped()
    assert set(paired) == set(shipped)
    assert all(sorted(v) == [0, 1] for v in paired.values())
    for key in [k for k in paired if k[0] == "local"]:
        v = list(paired[key].values())
        assert abs(statistics.fmean(v) - float(shipped[key]["accuracy"])) < 5e-6, key
        assert abs(statistics.pstdev(v) - float(shipped[key]["accuracy_std"])) < 5e-6, key


def test_the_stated_verdict_follows_from_the_seeds():
    """The plain verdict on "tally not above local training" stated per alpha, in the section and in the list of
    re-measured verdicts, is the one the per-seed signs give: "holds" where tally is at or below local training
    in every seed, "turns" where it is above it in every seed, "level" where the seeds disagree."""
    paired, text = _paired(), (ROOT / "docs" / "figures.md").read_text()
    section = _section()
    listed = next(line for line in text.splitlines() if line.startswith("| the CNN: tally not above local training"))
    for alpha in ("0.1", "100"):
        diffs = [paired[("tally", f"alpha={alpha}")][s] - paired[("local", f"alpha={alpha}")][s] for s in (0, 1)]
        word = "turns" if min(diffs) > 0 else "holds" if max(diffs) <= 0 else "level"
        assert f"**alpha {alpha}: {word}**" in section, (alpha, word, diffs)
        assert f"alpha {alpha} {word}" in listed.replace("at alpha", "alpha").replace("**", ""), (alpha, word, listed)
