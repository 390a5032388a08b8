"""Paired-seed re-measures, continued (paired42): why fig12's soft labels do not reproduce on the pre-pairing
code (docs/groups.md), and the words 4-epoch warm-up rows re-run with paired seeds (docs/text.md), against
their per-seed CSVs in docs/figures/. Pure text; no compile."""
import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIG = ROOT / "docs" / "figures"
DOCS = ROOT / "docs"


def _csv(name):
    with open(FIG / name, newline="") as f:
        return list(csv.DictReader(f))


def test_fig12_soft_labels_by_commit_are_the_csv_and_softdown_moves_nothing():
    """The alpha 0.1 panel alone: the commit before the softdown merge (5f1a559) and 70176d4's parent
    (f0c753d) give the same accuracies (softdown sends the 32-bit target as is), the table's own commit
    (353811e) others; groups.md quotes each."""
    got = {}
    for r in _csv("fig12_reduced_softlabel_by_commit_seeds.csv"):
        assert (r["group"], r["panel"], r["seed"], r["round"]) == ("softlabel", "alpha01", "0", "6")
        got.setdefault(r["commit"], []).append(f"{float(r['acc_mean']):.3f}")
    assert got["5f1a559"] == got["f0c753d"] != got["353811e"]
    text = " ".join((DOCS / "groups.md").read_text().split())
    assert f"before it (5f1a559) and at 70176d4's parent, {' / '.join(got['f0c753d'])};" in text
    assert f"the table's own commit (353811e) gives {' / '.join(got['353811e'])}," in text
    assert "not pinned" not in text
