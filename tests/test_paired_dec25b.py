"""C = 1000 at matched bits (`experiments/class_1000.json`, `class_1000_momentum0.json`) re-measured with paired
seeds (paired44, 2026-12-07): the warm-up groups (`tally_800p`, `softlabel_8bit_1p`, `softlabel_8bit_10p`) ran
again with the code after the pairing change, one program per panel; `local` has no warm-up and keeps its runs.
Before: the committed tables' per-seed CSVs (`class_1000_seeds.csv`, `class_1000_momentum0_seeds.csv`); after:
`class_1000_paired_seeds.csv`, `class_1000_momentum0_paired_seeds.csv` (the same columns, the panels re-run).
Checked: the after CSVs hold seeds 0-2 of every re-run group and panel at rounds 2-10 with the committed bits;
docs/matched-bits.md's before -> after table is the CSVs', every cell; the per-seed differences its verdicts
quote and the verdict words follow from the seeds; the panels not re-run are named; docs/figures.md's pairing
row quotes the same. Pure text: milliseconds."""
import csv
import math
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIG = DOCS / "figures"
STEMS = {"0.9": "class_1000", "0": "class_1000_momentum0"}
TALLY, SOFT1, SOFT10, LOCAL = "tally_800p", "softlabel_8bit_1p", "softlabel_8bit_10p", "local"
WARM = (TALLY, SOFT1, SOFT10)
PANELS = ("iid", "dir0.5", "dir0.1")
START = "#### Re-measured with paired seeds"
END = "\n### "


def _seeds(name: str, rnd: int = 10) -> dict:
    """(group, panel) -> {seed: acc_mean} after round `rnd` from docs/figures/<name>."""
    out = {}
    if not (FIG / name).exists():           # a momentum with no paired run yet
        return out
    for r in csv.DictReader(open(FIG / name)):
        if int(r["round"]) == rnd:
            out.setdefault((r["group"], r["panel"]), {})[int(r["seed"])] = float(r["acc_mean"])
    return out


def _pair(m: str) -> tuple[dict, dict]:
    """before, after: after holds only the re-run (group, panel)s; local training's seeds are the before's."""
    before, after = _seeds(f"{STEMS[m]}_seeds.csv"), _seeds(f"{STEMS[m]}_paired_seeds.csv")
    for p in PANELS:
        after[(LOCAL, p)] = before[(LOCAL, p)]
    return before, after


def rerun(m: str) -> list:
    """The panels whose three warm-up groups were all re-run, in the order of PANELS."""
    _, after = _pair(m)
    return [p for p in PANELS if all((g, p) in after for g in WARM)]


def _signed(x: float, d: int = 3) -> str:
    s = f"{x:+.{d}f}"
    return s[1:] if float(s) == 0 else s


def _mean_se(v: list, signed: bool = False) -> str:
    m = statistics.fmean(v)
    return f"{_signed(m) if signed else f'{m:.3f}'} (s.e. {statistics.stdev(v) / math.sqrt(len(v)):.3f})"


def diffs(seeds: dict, g: str, ref: str, panel: str) -> list:
    a, b = seeds[(g, panel)], seeds[(ref, panel)]
    return [a[s] - b[s] for s in sorted(a)]


def per_seed(seeds: dict, g: str, ref: str, panel: str, d: int = 3) -> str:
    return " / ".join(_signed(x, d) for x in diffs(seeds, g, ref, panel))


def table_rows(m: str) -> list:
    """The before -> after table's rows for momentum `m`: per re-run panel each warm-up group's accuracy per
    seed and mean (standard error over the seeds), then its per-seed difference to local training and the
    mean; local training's row once (its runs, not re-run)."""
    before, after = _pair(m)
    rows = []
    for p in rerun(m):
        for g in WARM:
            b, a = before[(g, p)], after[(g, p)]
            cells = [f"{b[s]:.3f} -> {a[s]:.3f}" for s in (0, 1, 2)]
            cells.append(f"{_mean_se(list(b.values()))} -> {_mean_se(list(a.values()))}")
            db, da = diffs(before, g, LOCAL, p), diffs(after, g, LOCAL, p)
            cells += [f"{_signed(x)} -> {_signed(y)}" for x, y in zip(db, da)]
            cells.append(f"{_mean_se(db, True)} -> {_mean_se(da, True)}")
            rows.append(f"| {m} | {p} | {g} | " + " | ".join(cells) + " |")
        loc = before[(LOCAL, p)]
        rows.append(f"| {m} | {p} | local (not re-run) | " + " | ".join(f"{loc[s]:.3f}" for s in (0, 1, 2))
                    + f" | {_mean_se(list(loc.values()))} | - | - | - | - |")
    return rows


def side(v: list) -> str:
    """'ahead' / 'behind' where every seed is on that side of 0, else 'split'."""
    return "ahead" if min(v) > 0 else "behind" if max(v) < 0 else "split"


def _section() -> str:
    text = (DOCS / "matched-bits.md").read_text().split("### C = 1000 at matched bits")[1]
    assert START in text, START
    return text.split(START)[1].split(END)[0]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_after_csvs_are_whole_runs():
    """Every re-run group and panel has seeds 0-2 at rounds 2, 4, ..., 10 with the bits the committed runs
    counted (a run cut short or a CSV written from the wrong folder fails); momentum 0.9's IID panel, the
    verdict the re-measure started from, is there."""
    assert "iid" in rerun("0.9")
    for m, stem in STEMS.items():
        path = FIG / f"{stem}_paired_seeds.csv"
        if not path.exists():
            continue
        old = {(r["group"], r["panel"], r["seed"], r["round"]): r["bits_per_peer"]
               for r in csv.DictReader(open(FIG / f"{stem}_seeds.csv"))}
        rows = list(csv.DictReader(open(path)))
        keys = {(r["group"], r["panel"]) for r in rows}
        assert {g for g, _ in keys} <= set(WARM)
        for g, p in keys:
            got = sorted((int(r["seed"]), int(r["round"])) for r in rows if (r["group"], r["panel"]) == (g, p))
            assert got == [(s, t) for s in (0, 1, 2) for t in (2, 4, 6, 8, 10)], (m, g, p)
        for r in rows:
            assert r["bits_per_peer"] == old[(r["group"], r["panel"], r["seed"], r["round"])], r


def test_the_table_is_its_seed_csvs():
    """Every row of the before -> after table is the CSVs' (fails on a cell typed by hand), and the table holds
    no other rows (a panel dropped from the CSVs cannot stay in it)."""
    section = _section()
    want = [r for m in STEMS for r in table_rows(m)]
    got = [l.strip() for l in section.splitlines() if l.startswith("| 0")]
    assert got == want


def test_the_verdicts_follow_from_the_seeds():
    """Each re-run panel's sentence quotes the per-seed differences (after, before in brackets) of tally and
    the one soft probe to local training and of tally to the one soft probe, and the side word each takes:
    'ahead' / 'behind' only where every seed is on that side, 'split' otherwise; 'turns' only where every
    seed changed side."""
    text = _flat(_section())
    for m in STEMS:
        before, after = _pair(m)
        for p in rerun(m):
            for g, ref in ((TALLY, LOCAL), (SOFT1, LOCAL), (TALLY, SOFT1)):
                a, b = diffs(after, g, ref, p), diffs(before, g, ref, p)
                quote = (f"m {m}, {p}: {g} - {ref} {side(a)} ({per_seed(after, g, ref, p, 4)}; "
                         f"before {side(b)}, {per_seed(before, g, ref, p, 4)})")
                assert quote in text, quote
                turned = all((x > 0) != (y > 0) for x, y in zip(a, b))
                assert (f"{quote}, turns" in text) == turned, quote


def test_the_panels_not_rerun_are_named():
    """A panel without a paired run is said to be not re-run, in the section and in docs/figures.md's row."""
    text = _flat(_section())
    row = next(l for l in (DOCS / "figures.md").read_text().splitlines() if l.startswith("| C = 1000:"))
    for m in STEMS:
        missing = [p for p in PANELS if p not in rerun(m)]
        said = f"not re-run with paired seeds at momentum {m}: {', '.join(missing) or 'none'}"
        assert said in text and said in row, said


def test_the_figures_row_quotes_the_seeds():
    """docs/figures.md's pairing row: the IID verdict at momentum 0.9 (tally and the one soft probe against
    local training, tally against the one probe), each per seed, after with before in brackets."""
    row = next(l for l in (DOCS / "figures.md").read_text().splitlines() if l.startswith("| C = 1000:"))
    before, after = _pair("0.9")
    for g, ref in ((TALLY, LOCAL), (SOFT1, LOCAL), (TALLY, SOFT1)):
        s = f"{g} - {ref} {per_seed(after, g, ref, 'iid')} ({per_seed(before, g, ref, 'iid')})"
        assert s in row, s


def test_the_findings_point_to_the_paired_iid_means():
    """The momentum-0.9 findings' pointer to the re-measure quotes the paired IID means of tally and the one
    soft probe (the CSV's), and says 'split' only while the seeds are split."""
    _, after = _pair("0.9")
    t, s = (statistics.fmean(after[(g, "iid")].values()) for g in (TALLY, SOFT1))
    text = _flat((DOCS / "matched-bits.md").read_text().split("### C = 1000 at matched bits")[1].split(START)[0])
    assert f"level on the mean ({t:.3f} against {s:.3f})" in text
    assert ("tally against one soft probe is split by seed" in text) == (side(diffs(after, TALLY, SOFT1, "iid")) == "split")


def test_the_without_momentum_findings_quote_the_paired_dir05_seeds():
    """'Without momentum''s finding on tally against local training quotes the paired Dirichlet 0.5 seeds
    (the one panel where their side moved) and calls it level only while the seeds are split."""
    _, after = _pair("0")
    text = _flat((DOCS / "matched-bits.md").read_text().split("#### Without momentum")[1].split("#### Twenty rounds")[0])
    assert f"tally is level just below local training ({per_seed(after, TALLY, LOCAL, 'dir0.5')} a seed)" in text
    assert side(diffs(after, TALLY, LOCAL, "dir0.5")) == "split"
