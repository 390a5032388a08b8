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
    """The table's own commit (353811e), both panels as one program, gives the committed table's soft labels
    again; the alpha 0.1 panel alone gives the same accuracies before the softdown merge (5f1a559) and at
    70176d4's parent (f0c753d): softdown sends the 32-bit target as is. groups.md quotes each."""
    got = {}
    for r in _csv("fig12_reduced_softlabel_by_commit_seeds.csv"):
        assert (r["group"], r["seed"], r["round"]) == ("softlabel", "0", "6")
        got.setdefault((r["commit"], r["program"], r["panel"]), []).append(f"{float(r['acc_mean']):.3f}")
    alone = {c: got[c, "alpha01", "alpha01"] for c in ("353811e", "5f1a559", "f0c753d")}
    assert alone["5f1a559"] == alone["f0c753d"] != alone["353811e"]
    text = " ".join((DOCS / "groups.md").read_text().split())
    both = [got["353811e", "alpha01+alpha1", p] for p in ("alpha01", "alpha1")]
    lines = (DOCS / "groups.md").read_text().splitlines()
    for alpha, b in zip(("0.1", "1.0"), both):     # the committed 2026-12-05 table's softlabel column
        for m, v in zip(("mlp", "lenet", "cnn"), b):
            row = next(ln for ln in lines if ln.startswith(f"| {alpha} | {m} | "))
            assert row.split(" | ")[4].startswith(f"{v} ("), row
    assert f"gives the table again to its three decimals, {' / '.join(both[0])} and {' / '.join(both[1])}," in text
    assert f"(5f1a559) and at 70176d4's parent, {' / '.join(alone['f0c753d'])} (at 353811e alone {' / '.join(alone['353811e'])};" in text
    assert "not pinned" not in text
