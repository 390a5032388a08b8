"""C = 100 at matched bits (`experiments/class_matched_bits.json`), the soft-label and topk_soft groups
re-measured with paired seeds (paired40, 2026-12-07): paired30 re-ran tally and local training
(tests/test_paired_dec23g.py); `c100_softlabel_8bit_7p`, `c100_topk_k1_b7_400p` and
`c100_softlabel_8bit_800p` ran again with the current code. `class_matched_bits_unpaired_seeds.csv` holds the
runs before (the soft labels' rounded-downlink re-run; topk_soft's committed runs left no seeds, so the code
before the change, f11cd6f, ran it again), `class_matched_bits_paired_seeds.csv` the re-runs. Checked: the
before seeds are the committed table's rows; the before -> after table is the CSVs', every cell; every lead
and difference docs/matched-bits.md's paragraph and findings and docs/figures.md's row quote (before and
after) is the CSVs'; "No verdict turns" only while every seed keeps its side. Pure text: milliseconds."""
import csv
import statistics
from pathlib import Path

from test_paired_dec23g import _seeds, _signed, paired_rows

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIG = DOCS / "figures"
NAME = "class_matched_bits"
TALLY, LOCAL = "c100_tally_800p", "c100_local"
SOFT, TOPK, SOFT800 = "c100_softlabel_8bit_7p", "c100_topk_k1_b7_400p", "c100_softlabel_8bit_800p"
GROUPS = (SOFT, TOPK, SOFT800)
PANELS = ("iid", "dir0.1")
START = "**The soft-label and `topk_soft` groups, re-measured with paired seeds**"
END = "On the same messages"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _section() -> str:
    text = (DOCS / "matched-bits.md").read_text()
    assert START in text and END in text.split(START)[1], (START, END)
    return text.split(START)[1].split(END)[0]


def _findings() -> str:
    text = (DOCS / "matched-bits.md").read_text()
    return _flat(text.split("### Findings (for the paper at C = 100, against it at C = 10)")[1].split("### ")[0])


def _csvs():
    return _seeds(f"{NAME}_unpaired_seeds.csv"), _seeds(f"{NAME}_paired_seeds.csv")


def _diffs(seeds: dict, panel: str, over: str, g: str = TALLY) -> list:
    a, b = seeds[(g, panel)], seeds[(over, panel)]
    return [a[s] - b[s] for s in sorted(a)]


def _lead(seeds: dict, panel: str, over: str, g: str = TALLY) -> str:
    return _signed(statistics.fmean(_diffs(seeds, panel, over, g)))


def _cell(seeds: dict, g: str, panel: str) -> str:
    v = seeds[(g, panel)].values()
    return f"{statistics.fmean(v):.3f} ± {statistics.pstdev(v):.3f}"


def test_the_before_seeds_are_the_committed_table():
    """Both CSVs hold seeds 0-2 of every re-run group and panel; the before seeds' mean and population std
    are the committed class_matched_bits.csv's (4 decimals): the 'before' column is the table's runs."""
    before, after = _csvs()
    shipped = {(r["protocol"], r["panel"]): r for r in csv.DictReader(open(FIG / f"{NAME}.csv"))}
    for key in [(g, p) for g in GROUPS for p in PANELS]:
        assert sorted(before[key]) == sorted(after[key]) == [0, 1, 2], key
        v = list(before[key].values())
        assert abs(statistics.fmean(v) - float(shipped[key]["accuracy"])) < 5e-5, key
        assert abs(statistics.pstdev(v) - float(shipped[key]["accuracy_final_std"])) < 5e-5, key


def test_the_table_is_its_seed_csvs():
    """Every row of the before -> after table is the two CSVs' (fails on a cell typed by hand)."""
    section = _section()
    rows = paired_rows(NAME, [SOFT, TOPK, SOFT800, LOCAL], LOCAL)
    assert len(rows) == 8
    for row in rows:
        assert row in section, row


def test_the_stated_leads_and_verdict_follow_from_the_seeds():
    """The paragraph's per-seed leads of tally and their means before -> after are the CSVs'; 'No verdict
    turns' only while tally stays ahead of every group in every seed under skew, below the matched soft
    labels in every seed IID, and the soft-label groups stay within 0.03 of local training under skew."""
    before, after = _csvs()
    text = _flat(_section())
    for over in GROUPS:
        d = _diffs(after, "dir0.1", over)
        assert " / ".join(_signed(x) for x in d) in text, over
        assert f"{_lead(before, 'dir0.1', over)} -> {_lead(after, 'dir0.1', over)}" in text, over
    iid = _diffs(after, "iid", SOFT)
    assert " / ".join(_signed(x) for x in iid) in text
    assert f"{_lead(before, 'iid', SOFT)} -> {_lead(after, 'iid', SOFT)}" in text
    holds = (all(min(_diffs(after, "dir0.1", g)) > 0 for g in GROUPS) and max(iid) < 0
             and all(abs(statistics.fmean(_diffs(after, "dir0.1", LOCAL, g))) < 0.03 for g in GROUPS))
    assert ("**No verdict turns.**" in text) == holds
    worst, best = min(after[(TALLY, "dir0.1")].values()), max(after[(SOFT, "dir0.1")].values())
    assert worst > best and f"tally's worst seed ({worst:.3f}) is still above the matched soft labels' best ({best:.3f})" in text
    assert f"the vote adds {_lead(after, 'dir0.1', LOCAL)[1:]} ({_lead(before, 'dir0.1', LOCAL)[1:]} before)" in text


def test_the_findings_and_the_figures_row_quote_the_seeds():
    """The findings quote the paired means with the before ones, and figures.md's row the leads before ->
    after: each number is computed here from the CSVs."""
    before, after = _csvs()
    f = _findings()
    assert (f"tally {_cell(after, TALLY, 'dir0.1')} ({_cell(before, TALLY, 'dir0.1')}) against "
            f"{_cell(after, SOFT, 'dir0.1')} ({_cell(before, SOFT, 'dir0.1')})") in f
    assert f"{_cell(after, TOPK, 'dir0.1')} ({_cell(before, TOPK, 'dir0.1')}) for `topk_soft`" in f
    assert (f": {_lead(after, 'dir0.1', SOFT)} and {_lead(after, 'dir0.1', TOPK)} "
            f"({_lead(before, 'dir0.1', SOFT)} and {_lead(before, 'dir0.1', TOPK)})") in f
    vs_local = [_lead(s, "dir0.1", LOCAL, g) for s in (after, before) for g in (TALLY, SOFT, TOPK, SOFT800)]
    assert ("tally {}, matched soft labels {}, `topk_soft` {}, soft labels on 800 probes {}; "
            "before {}, {}, {}, {}").format(*vs_local) in f
    assert (f"soft labels at matched bits {_cell(after, SOFT, 'iid')} against tally's {_cell(after, TALLY, 'iid')} "
            f"(every seed; paired seeds, before {_cell(before, SOFT, 'iid')} against {_cell(before, TALLY, 'iid')})") in f
    assert f"{_lead(after, 'dir0.1', SOFT)} at C = 100 (tally minus matched soft labels" in f
    assert f"{_lead(after, 'iid', SOFT)} in this table, {_lead(before, 'iid', SOFT)} before" in f
    assert (f"the vote adds {_lead(after, 'dir0.1', LOCAL)[1:]} (paired seeds; "
            f"{_lead(before, 'dir0.1', LOCAL)[1:]} before)") in f
    verdict = _flat((DOCS / "matched-bits.md").read_text().split("**Verdict.** One operating point")[1])
    assert f"without it ({_lead(after, 'iid', SOFT)}, paired seeds, {_lead(before, 'iid', SOFT)} before;" in verdict
    row = next(l for l in (DOCS / "figures.md").read_text().splitlines() if l.startswith("| C = 100 matched bits:"))
    assert f"tally over matched soft labels {_lead(before, 'dir0.1', SOFT)} -> {_lead(after, 'dir0.1', SOFT)} under skew" in row
    assert f"{_lead(before, 'iid', SOFT)} -> {_lead(after, 'iid', SOFT)} IID" in row
    assert f"over `topk_soft` {_lead(before, 'dir0.1', TOPK)} -> {_lead(after, 'dir0.1', TOPK)}, every seed" in row
    for g, name in ((SOFT, "matched soft labels"), (TOPK, "`topk_soft`"), (SOFT800, "800 probes")):
        assert f"{name} {_lead(before, 'dir0.1', LOCAL, g)} -> {_lead(after, 'dir0.1', LOCAL, g)}" in row, g
