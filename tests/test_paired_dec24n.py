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


def _seeds(name):
    out = {}
    for r in _csv(name):
        out.setdefault(r["group"], {})[int(r["seed"])] = float(r["acc_mean"])
    return out


def _d(x):
    return f"{x:+.4f}"


def test_the_word_warm_up_table_is_its_csvs_and_its_script_runs():
    """docs/text.md's 4-epoch warm-up rows re-measured: each cell is the per-seed CSVs' (the paired runs, the
    code before the change for tally, local training at 8 rounds from wordclaim_paired_seeds.csv); the CSVs
    are the jsonl runs' final accuracies; figures.md's pairing row quotes the differences."""
    import json
    for stem in ("paired", "prechange_rerun"):
        name = {"tally_warm": "tally_warm", "softlabel": "softlabel_warm", "local": "local_12"}
        got = {}
        for d in map(json.loads, (FIG / f"wordclaim_warm_{stem}.jsonl").read_text().splitlines()):
            got.setdefault(name[d["group"]], {})[d["seed"]] = round(d["acc"], 6)
        assert got == _seeds(f"wordclaim_warm_{stem}_seeds.csv"), stem
    after, before = _seeds("wordclaim_warm_paired_seeds.csv"), _seeds("wordclaim_warm_prechange_rerun_seeds.csv")
    local8, local12 = _seeds("wordclaim_paired_seeds.csv")["local"], after["local_12"]
    text = (DOCS / "text.md").read_text()
    for g, label, was in (("tally_warm", "tally, `warmup_epochs=4`", None),
                          ("softlabel_warm", "softlabel (32-bit), `warmup_epochs=4`", "not run")):
        a = after[g]
        was = was or " / ".join(f"{before[g][s]:.4f}" for s in (0, 1))
        row = (f"| {label} | 12 | {was} | {a[0]:.4f} / {a[1]:.4f} | "
               f"{_d(a[0] - local8[0])} / {_d(a[1] - local8[1])} | {_d(a[0] - local12[0])} / {_d(a[1] - local12[1])} |")
        assert row in text, row
    assert f"| local training alone, 12 rounds | 12 | (no warm-up) | {local12[0]:.4f} / {local12[1]:.4f} | - | - |" in text
    t, s = after["tally_warm"], after["softlabel_warm"]
    prose = " ".join(text.split())
    assert f"**by more**: {s[0] - t[0]:.4f} and {s[1] - t[1]:.4f}" in prose
    row = next(ln for ln in (DOCS / "figures.md").read_text().splitlines() if ln.startswith("| words: the 4-epoch warm-up rows"))
    assert f"(+{s[0] - t[0]:.4f} / +{s[1] - t[1]:.4f})" in row and f"({_d(t[0] - local12[0])} / {_d(t[1] - local12[1])})" in row
    assert f"({_d(t[1] - local8[1])} at 8 epochs; seed 0 {_d(t[0] - local8[0])})" in row
