"""Paired-seed re-measures, continued (paired43): the transformer on words (docs/text.md, "The large-C claim with
a transformer", its "Re-measured with paired seeds" table) against its per-seed CSV and JSON lines in
docs/figures/, the befores against the committed runs (the 715-client split's for tally, softlabel and the light
vote, the 716-client split's for the warm-up rows and 12-round local training), and figures.md's pairing row and
claims cell against the same numbers. Pure text; no compile."""
import csv
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIG = ROOT / "docs" / "figures"
DOCS = ROOT / "docs"

LABELS = {"tally_light": "tally, `distill.weight` 0.1", "tally": "tally", "softlabel": "softlabel (32-bit)",
          "tally_warm": "tally, `warmup_epochs=4`", "softlabel_warm": "softlabel (32-bit), `warmup_epochs=4`",
          "local_12": "local training alone, 12 rounds"}
SPLIT = {"tally_light": "715", "tally": "715", "softlabel": "715",
         "tally_warm": "716", "softlabel_warm": "716", "local_12": "716"}


def _jsonl(name):
    return [json.loads(line) for line in (FIG / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def seeds():
    """(group, round) -> {seed: accuracy} from the per-seed CSV (local_12 at round 8 and at round 12)."""
    out = {}
    with open(FIG / "wordtransformer_paired_seeds.csv", newline="") as f:
        for r in csv.DictReader(f):
            assert r["panel"] == "words"
            out.setdefault((r["group"], int(r["round"])), {})[int(r["seed"])] = float(r["acc_mean"])
    return out


def _before():
    old = {("716", d["group"], d["seed"]): d["acc"] for d in _jsonl("wordtransformer.jsonl")}
    old.update({("715", d["group"], d["seed"]): d["acc"] for d in _jsonl("wordtransformer_715.jsonl")})
    return old


def _d(x):
    return f"{x:+.4f}"


def _pair(v):
    return f"{v[0]:.4f} / {v[1]:.4f}"


def test_the_csv_is_the_runs_json_lines_and_every_group_has_both_seeds(seeds):
    runs = _jsonl("wordtransformer_paired.jsonl")
    assert all(r["over"] == [] for r in runs) and len(runs) == 2 * len(LABELS)
    for r in runs:
        last = 12 if r["group"] == "local_12" else 8
        assert seeds[r["group"], last][r["seed"]] == round(r["acc"], 6), r["group"]
    assert {g for g, _ in seeds} == set(LABELS) and all(set(v) == {0, 1} for v in seeds.values())


def test_local_training_is_not_moved_by_pairing_its_round_8_is_the_715_runs(seeds):
    """Local training has no warm-up: the 12-round run passes through the 8-round run of 2026-12-06 (before
    the pairing change) at round 8, to the CSV's six digits; the table's 8-round local row quotes it."""
    before = _before()
    local8 = seeds["local_12", 8]
    assert all(local8[s] == round(before["715", "local", s], 6) for s in (0, 1)), local8
    text = (DOCS / "text.md").read_text()
    assert f"| local training alone, 8 rounds | {_pair(local8)} | {_pair(local8)} (round 8 of local_12) | - | - |" in text


def test_the_paired_table_is_its_csv_and_its_befores_the_committed_runs(seeds):
    before, text = _before(), (DOCS / "text.md").read_text()
    local8, local12 = seeds["local_12", 8], seeds["local_12", 12]
    for g, label in LABELS.items():
        a = seeds[g, 12 if g == "local_12" else 8]
        was = _pair([before[SPLIT[g], g, s] for s in (0, 1)]) + (" (716-client split)" if SPLIT[g] == "716" else "")
        # the 12-round column only for the rows with 12 private epochs (the 4-epoch warm-up's)
        eight = "-" if g == "local_12" else f"{_d(a[0] - local8[0])} / {_d(a[1] - local8[1])}"
        twelve = f"{_d(a[0] - local12[0])} / {_d(a[1] - local12[1])}" if g.endswith("_warm") else "-"
        row = f"| {label} | {was} | {_pair(a)} | {eight} | {twelve} |"
        assert row in text, row
    light, soft, tally = seeds["tally_light", 8], seeds["softlabel", 8], seeds["tally", 8]
    prose = " ".join(text.split())
    assert f"**Below 32-bit soft labels at weight 1 holds**, in both seeds ({_d(light[0] - soft[0])} / {_d(light[1] - soft[1])};" in prose
    assert f"below local training in both ({_d(tally[0] - local8[0])} / {_d(tally[1] - local8[1])};" in prose


def test_figures_md_quotes_the_verdicts_numbers(seeds):
    """The pairing table's transformer row and the claims table's words cell quote the paired differences."""
    local8, local12 = seeds["local_12", 8], seeds["local_12", 12]
    light, warm, soft = seeds["tally_light", 8], seeds["tally_warm", 8], seeds["softlabel", 8]
    lines = (DOCS / "figures.md").read_text().splitlines()
    row = next(ln for ln in lines if ln.startswith("| the transformer: the light vote and the warmed-up vote"))
    assert f"({_d(light[0] - local8[0])} / {_d(light[1] - local8[1])};" in row, row
    assert f"({_d(warm[0] - local12[0])} / {_d(warm[1] - local12[1])})" in row, row
    assert f"(-{soft[0] - light[0]:.4f} / -{soft[1] - light[1]:.4f})" in row and soft[0] > light[0] and soft[1] > light[1]
    assert "tests/test_paired_dec25a.py" in row and "not re-run" not in row
    cell = next(ln for ln in lines if ln.startswith("| the vote's win over soft labels holds at large C"))
    mean = (light[0] + light[1]) / 2
    assert f"re-measured with paired seeds, the light vote {mean:.4f}" in cell, mean


def test_the_code_before_the_pairing_gives_the_light_vote_s_before_again():
    """The light vote's seed 0 re-run with the code just before the pairing change (70176d4's parent) is the
    2026-12-06 run to the last digit, so the pairing, not another change, moved it; text.md says so."""
    (pre,) = _jsonl("wordtransformer_prechange_rerun.jsonl")
    assert (pre["group"], pre["seed"], pre["over"]) == ("tally_light", 0, [])
    assert pre["acc"] == _before()["715", "tally_light", 0]
    assert f"gives {pre['acc']:.4f} again, to the last digit" in " ".join((DOCS / "text.md").read_text().split())


def _c10(name):
    with open(FIG / name, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["group"], r["panel"], r["seed"], r["round"]) for r in rows] == [
        ("c10_tally_800p_pool3200", "dir0.1", str(s), "20") for s in range(3)]
    return [float(r["acc_mean"]) for r in rows]


def test_the_c10_pool_3200_lead_is_its_csvs():
    """docs/matched-bits.md's C = 10 larger-pool bullet and figures.md quote the paired tally seeds against the
    paired matched soft labels (class_matched_bits_paired_seeds.csv, paired41), and the before seeds (the code
    before the pairing, which gives the committed per-seed values again) against the unpaired soft labels."""
    import statistics
    soft = {}
    for stem in ("paired", "unpaired"):
        with open(FIG / f"class_matched_bits_{stem}_seeds.csv", newline="") as f:
            soft[stem] = [float(r["acc_mean"]) for r in csv.DictReader(f)
                          if (r["group"], r["panel"]) == ("c10_softlabel_8bit_40p", "dir0.1")]
    after, before = _c10("class_c10_pool3200_paired_seeds.csv"), _c10("class_c10_pool3200_unpaired_seeds.csv")
    gap = {k: [s - t for s, t in zip(soft[k], v)] for k, v in (("paired", after), ("unpaired", before))}
    text = " ".join((DOCS / "matched-bits.md").read_text().split())
    assert f"tally 0.843 ± {statistics.pstdev(before):.3f} ({' / '.join(f'{b:.3f}' for b in before)})" in text
    assert (f"tally {statistics.mean(after):.3f} ± {statistics.pstdev(after):.3f} ({' / '.join(f'{a:.3f}' for a in after)})"
            f" against the paired matched soft labels' {statistics.mean(soft['paired']):.3f}") in text
    lead = f"{statistics.mean(soft['paired']) - statistics.mean(after):.3f}"
    assert f"the lead is {lead} and **soft labels are now ahead in every seed**" in text and min(gap["paired"]) > 0
    each = " / ".join(f"{g:+.3f}" for g in gap["paired"])
    assert f"({each}; before {' / '.join(f'{g:+.3f}' for g in gap['unpaired'])})" in text
    assert f"0.087 -> {lead}, now in every seed ({each}; tests/test_paired_dec25a.py)" in (DOCS / "figures.md").read_text()
