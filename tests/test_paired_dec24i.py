"""C = 100, the probe pool of 1,000 or 3,200 (`experiments/class_pool.json`), every group re-measured with paired
seeds (paired39, 2026-12-07): paired38 re-ran tally and local training with the pool of 3,200
(tests/test_paired_dec24h.py); the other four groups (both pools' soft labels, tally and local training with
the pool of 1,000) ran again with the current code, and class_pool.png / .csv / _table.md were drawn from the
18 paired runs. `docs/figures/class_pool_unpaired_seeds.csv` holds the runs before (tally's and local
training's committed runs, soft labels' rounded-downlink re-run), `class_pool_paired_seeds.csv` the re-runs.
Checked: the figure's CSV and table are the paired seeds; the before -> after tables, the per-seed paragraph
and every lead docs/matched-bits.md and docs/figures.md quote are the CSVs'; "holds" only where every seed
says so. Pure text: milliseconds."""
import csv
import re
import statistics
from pathlib import Path

from test_paired_dec23g import _seeds, _signed, paired_rows

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIG = DOCS / "figures"
NAME = "class_pool"
PANELS = ("iid", "dir0.5", "dir0.1")
POOLS = ("1000", "3200")
START = "**The other four groups, re-measured with paired seeds**"
END = "![class_pool](figures/class_pool.png)"


def _g(kind: str, pool: str) -> str:
    return {"tally": "tally_800p_pool", "soft": "softlabel_8bit_7p_pool", "local": "local_pool"}[kind] + pool


def _before_after():
    return _seeds(f"{NAME}_unpaired_seeds.csv"), _seeds(f"{NAME}_paired_seeds.csv")


def _mean(seeds: dict, kind: str, pool: str, panel: str) -> float:
    return statistics.fmean(seeds[(_g(kind, pool), panel)].values())


def _lead(seeds: dict, pool: str, panel: str, over: str = "soft") -> str:
    """Tally's mean minus soft labels' (or local training's) mean, signed, 3 decimals."""
    return _signed(_mean(seeds, "tally", pool, panel) - _mean(seeds, over, pool, panel))


def _per_seed(seeds: dict, pool: str, panel: str, over: str = "soft") -> list:
    t, o = seeds[(_g("tally", pool), panel)], seeds[(_g(over, pool), panel)]
    return [t[s] - o[s] for s in sorted(t)]


def _text(doc: str = "matched-bits.md") -> str:
    return " ".join((DOCS / doc).read_text().split())        # prose re-wrapped to one line


def test_the_figure_is_the_paired_runs():
    """Every group and panel of the figure has five paired seeds, and class_pool.csv and class_pool_table.md
    are their mean and population std (4 decimals): the figure is drawn from the paired runs. Local training
    (no warm-up) is the same before and after to the last digit at both pools; soft labels' before seeds are
    the rounded downlink's re-run (the means its paragraph gives after '->'); seeds 0-2 of the pool-1,000 tally
    and local runs are the class-count table's paired re-run (class_matched_bits_paired_seeds.csv)."""
    before, after = _before_after()
    keys = {(_g(k, pool), p) for k in ("tally", "soft", "local") for pool in POOLS for p in PANELS}
    assert set(before) == set(after) == keys
    shipped = {(r["protocol"], r["panel"]): (float(r["accuracy_final"]), float(r["accuracy_final_std"]))
               for r in csv.DictReader(open(FIG / f"{NAME}.csv"))}
    table = {r[0].strip(): (float(r[8]), float(r[9])) for r in
             ([c for c in ln.strip().strip("|").split("|")] for ln in (FIG / f"{NAME}_table.md").read_text().splitlines()[2:])}
    assert set(shipped) == keys and len(table) == 18
    for (g, p), by_seed in after.items():
        assert sorted(by_seed) == sorted(before[(g, p)]) == [0, 1, 2, 3, 4], (g, p)
        mean, std = statistics.fmean(by_seed.values()), statistics.pstdev(by_seed.values())
        assert abs(mean - shipped[(g, p)][0]) < 5e-5 and abs(std - shipped[(g, p)][1]) < 5e-5, (g, p)
        assert table[f"{g}/{p}"] == shipped[(g, p)], (g, p)
    for pool in POOLS:
        assert all(before[(_g("local", pool), p)] == after[(_g("local", pool), p)] for p in PANELS), pool
    rounded = _text().split("**Soft labels re-measured 2026-12-07 with the rounded downlink**")[1].split("**")[0]
    for pool, label in (("1000", "pool 1,000"), ("3200", "pool 3,200")):
        after_rounding = re.findall(r"-> (\d\.\d{3})", rounded.split(label + ", ")[1])[:3]    # IID, Dir 0.5, Dir 0.1
        assert after_rounding == [f"{_mean(before, 'soft', pool, p):.3f}" for p in PANELS], (pool, after_rounding)
    three = _seeds("class_matched_bits_paired_seeds.csv")
    for mine, theirs in (("tally", "c100_tally_800p"), ("local", "c100_local")):
        for p in ("iid", "dir0.1"):
            assert {s: a for s, a in after[(_g(mine, "1000"), p)].items() if s < 3} == three[(theirs, p)], (mine, p)


def test_the_before_after_tables_are_the_seed_csvs():
    """Both pools' tables (tally, soft labels, local training; every seed before -> after, the means with
    standard errors, the differences to local training of the same seed) are the two CSVs', every cell."""
    section = (DOCS / "matched-bits.md").read_text().split(START)[1].split(END)[0]
    for pool in POOLS:
        rows = paired_rows(NAME, [_g("tally", pool), _g("soft", pool), _g("local", pool)], _g("local", pool))
        assert len(rows) == 9
        for row in rows:
            assert row in section, row


def test_the_per_seed_paragraph_is_the_paired_seeds():
    """The paragraph under the head table ('Per seed (0-4), tally against matched soft labels') lists the
    paired runs' seeds (3 decimals)."""
    _, after = _before_after()

    def seeds(kind, pool, panel):
        return " / ".join(f"{a:.3f}" for _, a in sorted(after[(_g(kind, pool), panel)].items()))

    def pair(pool, panel):
        return f"{seeds('tally', pool, panel)} against {seeds('soft', pool, panel)}"
    expected = (f"Per seed (0-4), tally against matched soft labels: pool 1,000, Dirichlet 0.1, {pair('1000', 'dir0.1')}; "
                f"Dirichlet 0.5, {pair('1000', 'dir0.5')}. Pool 3,200: IID {pair('3200', 'iid')}; Dirichlet 0.5, "
                f"{pair('3200', 'dir0.5')}; Dirichlet 0.1, {pair('3200', 'dir0.1')}.")
    assert expected in _text()


def test_the_stated_verdicts_follow_from_the_seeds():
    """The paragraph after the tables says 'Every verdict holds' only where every seed says so (pool 3,200:
    tally above soft labels at every skew; pool 1,000: above them under skew, below them and below local
    training on IID data); its leads (after, before) and smallest per-seed leads, the bullets under the plot,
    the findings' and the verdict's leads and docs/figures.md's rows are the CSVs'."""
    before, after = _before_after()
    big, small = "3200", "1000"
    holds = (all(min(_per_seed(after, big, p)) > 0 for p in PANELS)
             and all(min(_per_seed(after, small, p)) > 0 for p in ("dir0.5", "dir0.1"))
             and max(_per_seed(after, small, "iid")) < 0 and max(_per_seed(after, small, "iid", "local")) < 0)
    section = " ".join((DOCS / "matched-bits.md").read_text().split(START)[1].split(END)[0].split())
    assert ("**Every verdict holds.**" in section) == holds
    lead_a, lead_b = ([_lead(s, big, p) for p in PANELS] for s in (after, before))
    mins = [_signed(min(_per_seed(after, big, p))) for p in PANELS]
    assert (f"every skew ({lead_a[0]} IID, {lead_a[1]} at Dirichlet 0.5, {lead_a[2]} at 0.1; before "
            f"{' / '.join(lead_b)}; smallest per-seed leads {mins[0]}, {mins[1]} and {mins[2]})") in section
    s_a, s_b = ([_lead(s, small, p) for p in PANELS] for s in (after, before))
    s_mins = [_signed(min(_per_seed(after, small, p))) for p in ("dir0.5", "dir0.1")]
    assert (f"(Dirichlet 0.5 {s_a[1]}, before {s_b[1]}; Dirichlet 0.1 {s_a[2]}, before {s_b[2]}; smallest "
            f"per-seed leads {s_mins[0]} and {s_mins[1]})") in section
    assert f"every seed ({s_a[0]}, before {s_b[0]})" in section
    assert f"every seed too ({_lead(after, small, 'iid', 'local')}, before {_lead(before, small, 'iid', 'local')})" in section

    text = _text()

    def acc(seeds, kind, pool, p, std=False):
        v = seeds[(_g(kind, pool), p)].values()
        return f"{statistics.fmean(v):.3f}" + (f" ± {statistics.pstdev(v):.3f}" if std else "")

    def worst_best(seeds, pool, p):
        return (f"{min(seeds[(_g('tally', pool), p)].values()):.3f}", f"{max(seeds[(_g('soft', pool), p)].values()):.3f}")
    w, b = worst_best(after, small, "dir0.1")
    wb, bb = worst_best(before, small, "dir0.1")
    assert (f"tally {acc(after, 'tally', small, 'dir0.1', True)} against {acc(after, 'soft', small, 'dir0.1', True)} for "
            f"matched soft labels and {acc(after, 'local', small, 'dir0.1', True)} for local training, ahead in every seed "
            f"(tally's worst, {w}, above soft labels' best, {b}); before the paired re-run "
            f"{acc(before, 'tally', small, 'dir0.1', True)} against {acc(before, 'soft', small, 'dir0.1', True)} ({wb} against {bb})") in text
    w, b = worst_best(after, small, "dir0.5")
    wb, bb = worst_best(before, small, "dir0.5")
    assert (f"tally {acc(after, 'tally', small, 'dir0.5', True)} against {acc(after, 'soft', small, 'dir0.5', True)} "
            f"({s_a[1]}, every seed; tally's worst {w} above soft labels' best {b}), local {acc(after, 'local', small, 'dir0.5')}; "
            f"before the paired re-run the same {s_b[1]} ({wb} against {bb})") in text
    lift = [f"{_mean(s, 'tally', big, p) - _mean(s, 'tally', small, p):.3f}" for s in (after, before) for p in PANELS]
    assert (f"IID included: {lead_a[0]} IID ({acc(after, 'tally', big, 'iid')} against {acc(after, 'soft', big, 'iid')}, every "
            f"seed, {_lead(after, big, 'iid', 'local')[1:]} above local training), {lead_a[1]} at Dirichlet 0.5 "
            f"({acc(after, 'tally', big, 'dir0.5')} against {acc(after, 'soft', big, 'dir0.5')}) and {lead_a[2]} at Dirichlet 0.1 "
            f"({acc(after, 'tally', big, 'dir0.1')} against {acc(after, 'soft', big, 'dir0.1')}), in every seed, all paired runs "
            f"(before the paired re-run {', '.join(lead_b)} and {_lead(before, big, 'iid', 'local')[1:]} above local training;") in text
    assert f"lifts tally by {lift[0]}, {lift[1]} and {lift[2]} (before the paired re-run {lift[3]}, {lift[4]} and {lift[5]})" in text
    assert (f"tally reaches {acc(after, 'tally', big, 'iid', True)} (5 seeds, paired), above matched soft labels "
            f"({acc(after, 'soft', big, 'iid')}) and local training ({acc(after, 'local', big, 'iid')}) in every seed") in text
    assert f"to {lead_a[2]} at C = 100 (5 seeds), and {lead_a[0]} at C = 100 without" in text
    assert (f"(Dirichlet 0.1: {s_a[2]} over 8-bit soft labels, 5 seeds, every seed; Dirichlet 0.5: {s_a[1]}, 5 seeds, every "
            f"seed; paired seeds, before {s_b[2]} and {s_b[1]})") in text
    assert (f"at every skew tried ({lead_a[0]} IID, {lead_a[1]} at Dirichlet 0.5, {lead_a[2]} at 0.1, 5 seeds, every seed; "
            f"paired seeds, before {' / '.join(lead_b)})") in text

    figures = (DOCS / "figures.md").read_text()
    row = next(line for line in figures.splitlines() if line.startswith("| C = 100, pool of 3,200: tally above local training"))
    assert (f"tally above the matched soft labels holds too, every seed, every skew ({' / '.join(lead_a)}, before "
            f"{' / '.join(lead_b)}), and with the pool of 1,000 under skew ({s_a[1]} / {s_a[2]}, before {s_b[1]} / {s_b[2]};") in row
    claim = next(line for line in figures.splitlines() if line.startswith("| at large C the vote's bit advantage"))
    pairs = [f"{acc(s, 'tally', big, p)} against {acc(s, 'soft', big, p)}" for s in (after, before) for p in PANELS]
    assert (f"every seed, paired seeds: {pairs[0]} IID, {pairs[1]} at Dirichlet 0.5, {pairs[2]} at 0.1; before "
            f"{', '.join(pairs[3:])}), and at Dirichlet 0.5 even with the small pool ({acc(after, 'tally', small, 'dir0.5')} "
            f"against {acc(after, 'soft', small, 'dir0.5')}, before the same)") in claim
    spread = sorted([_lead(after, big, p) for p in PANELS], key=float)
    spread_b = sorted(lead_b, key=float)
    assert (f"with the pool of 3,200 {spread[0]} to {spread[-1]} at every skew, paired seeds; before "
            f"{spread_b[0]} to {spread_b[-1]})") in claim
