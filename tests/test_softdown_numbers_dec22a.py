"""The soft-label results re-measured with the rounded downlink (2026-12-07: softlabel's peers train on the
server's mean rounded to the `comm.soft_bits` a value the downlink is charged): the numbers the docs quote,
before -> after, are their CSVs' (Fig. 3 in docs/figures.md; the first table and the non-IID table of
docs/matched-bits.md, with the unrounded runs' per-seed values kept in `*_unrounded_seeds.csv`); and a
pareto figure redrawn from its CSV (experiments/redraw_pareto.py: class_matched_bits.png, class_pool.png,
class_1000_momentum0.png, niid_matched_bits.png, whose runs are gone) draws that CSV's numbers. Pure text
but the redraw (about 2 s)."""
import csv
import re
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIG = DOCS / "figures"


def _csv(name: str) -> list[dict]:
    with open(FIG / name, newline="") as f:
        return list(csv.DictReader(f))


def _flat(text: str) -> str:
    return " ".join(text.split())


def _seeds(name: str, rnd: int) -> dict:
    """{(group, panel): [acc_mean of seeds 0, 1, 2]} after round `rnd` of a per-seed CSV."""
    by = {}
    for r in sorted(_csv(name), key=lambda r: int(r["seed"])):
        if int(r["round"]) == rnd:
            by.setdefault((r["group"], r["panel"]), []).append(float(r["acc_mean"]))
    assert {len(v) for v in by.values()} == {3}, name
    return by


def _cell(accs: list) -> str:
    return f"{statistics.mean(accs):.3f} ± {statistics.pstdev(accs):.3f}"


def _per_seed(accs: list) -> str:
    return " / ".join(f"{a:.3f}" for a in accs)


def test_fig3_s_soft_labels_before_and_after_are_their_csvs():
    """docs/figures.md, Fig. 3: the 8- and 16-bit soft labels' before -> after at C = 10 / 100 / 1000 are
    fig3_unrounded.csv's and fig3.csv's final accuracies (3 decimals), the bullet's 8-bit C = 100 value is
    fig3.csv's, the re-run changed no bits (the plot's two axes), and the per-seed CSVs (before: the old
    code run again) have those means and the C = 100 8-bit seeds the page quotes."""
    text = _flat((DOCS / "figures.md").read_text().split("- **Fig. 3**")[1].split("- **Fig. 4**")[0])
    before = {(r["group"], r["classes"]): r for r in _csv("fig3_unrounded.csv")}
    after = {(r["group"], r["classes"]): r for r in _csv("fig3.csv")}
    assert set(before) == {(f"softlabel {b}-bit", c) for b in (8, 16) for c in ("10", "100", "1000")}
    for (group, c), old in before.items():
        new = after[(group, c)]
        assert (old["bits_per_probe_up"], old["bits_per_peer_to_target"]) == \
            (new["bits_per_probe_up"], new["bits_per_peer_to_target"]), (group, c)
    for bits in (8, 16):
        pairs = [f"{float(before[(f'softlabel {bits}-bit', c)]['final_accuracy']):.3f} -> "
                 f"{float(after[(f'softlabel {bits}-bit', c)]['final_accuracy']):.3f}" for c in ("10", "100", "1000")]
        found = re.search(rf"{bits}-bit (\d\.\d+ -> \d\.\d+), \**(\d\.\d+ -> \d\.\d+)\**[^,]*, (\d\.\d+ -> \d\.\d+)", text)
        assert found and list(found.groups()) == pairs, (bits, found and found.groups(), pairs)
    c100 = f"{float(after[('softlabel 8-bit', '100')]['final_accuracy']):.3f}"
    assert f"0.742 at 32 bits, {c100} at 8 bits" in text
    # per seed: the unrounded runs (the code before the change) and the re-run; their means are the CSVs'
    seeds = {}
    for name in ("fig3_unrounded_seeds.csv", "fig3_seeds.csv"):
        by = {}
        for r in sorted(_csv(name), key=lambda r: int(r["seed"])):
            by.setdefault((r["group"], r["classes"]), []).append(float(r["acc_mean"]))
        seeds[name] = by
    for name, figure in (("fig3_unrounded_seeds.csv", before), ("fig3_seeds.csv", after)):
        assert set(seeds[name]) == set(before)
        for k, accs in seeds[name].items():
            assert len(accs) == 3 and abs(statistics.mean(accs) - float(figure[k]["final_accuracy"])) < 1e-4, (name, k)
    k = ("softlabel 8-bit", "100")
    assert f"(per seed {_per_seed(seeds['fig3_unrounded_seeds.csv'][k])} -> {_per_seed(seeds['fig3_seeds.csv'][k])})" in text


def test_a_pareto_figure_redrawn_from_its_csv_draws_its_numbers(tmp_path):
    """experiments/redraw_pareto.py on class_1000_momentum0 (3 panels, 12 runs): the points are the CSV's
    rows, each in its panel (the tables it writes from them give back every column of the committed CSV),
    and the PNG is written. The figure's runs are gone; its CSV is the re-measured one."""
    import runpy
    mod = runpy.run_path(str(ROOT / "experiments" / "redraw_pareto.py"))
    assert mod["main"]([str(ROOT / "experiments" / "class_1000_momentum0.json"),
                        str(FIG / "class_1000_momentum0.csv"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "class_1000_momentum0.png").stat().st_size > 10_000
    with open(tmp_path / "class_1000_momentum0.csv", newline="") as f:
        drawn = list(csv.DictReader(f))
    committed = _csv("class_1000_momentum0.csv")
    assert [{k: r[k] for k in committed[0]} for r in drawn] == committed
    assert {r["panel"] for r in drawn} == {"iid", "dir0.5", "dir0.1"}


def test_the_first_table_s_soft_label_row_before_and_after_are_their_csvs():
    """docs/matched-bits.md, "The table": the `softlabel_8bit_80b` row and its before -> after (mean ±
    population std over seeds 0-2 after round 10, and each seed) are matched_bits_seeds.csv's and, before,
    matched_bits_unrounded_seeds.csv's; so is the findings' softlabel value."""
    text = (DOCS / "matched-bits.md").read_text().split("## The table")[1].split("## Findings")[0]
    row = next(ln for ln in text.splitlines() if ln.startswith("| 80 | `softlabel_8bit_80b`"))
    after = _seeds("matched_bits_seeds.csv", 10)[("softlabel_8bit_80b", "dir0.5")]
    before = _seeds("matched_bits_unrounded_seeds.csv", 10)[("softlabel_8bit_80b", "dir0.5")]
    assert row.rstrip(" |").endswith(_cell(after)), row
    flat = _flat(text)
    assert f"Before -> after: {_cell(before)} -> {_cell(after)}," in flat
    assert f"per seed (0, 1, 2) {_per_seed(before)} -> {_per_seed(after)}" in flat
    findings = _flat((DOCS / "matched-bits.md").read_text().split("## Findings")[1].split("\n## ")[0])
    assert f"softlabel's {statistics.mean(after):.3f} at a quarter of its 80" in findings


NIID_PANELS = ("dir0.05", "dir0.5", "dir100", "one_class")


def _niid_text() -> str:
    return (DOCS / "matched-bits.md").read_text().split("## The non-IID claim at matched bits")[1].split(
        "### Why the vote loses here")[0]


def test_the_niid_table_s_soft_label_rows_are_their_csvs():
    """docs/matched-bits.md, "The non-IID claim at matched bits": the two `softlabel` rows (mean ±
    population std over seeds 0-2 after round 20, per split) and the soft labels' per-seed values are
    niid_matched_bits_seeds.csv's; the figure's niid_matched_bits.csv (which the redrawn PNG draws) has the
    same means; the same-messages table's softlabel row is that CSV's `vote_acc` / `softavg_acc` means."""
    text = _niid_text()
    after = _seeds("niid_matched_bits_seeds.csv", 20)
    figure = {(r["protocol"], r["panel"]): float(r["accuracy_final"]) for r in _csv("niid_matched_bits.csv")}
    rows = {ln.split("|")[1].strip(): [c.strip() for c in ln.strip().strip("|").split("|")]
            for ln in text.splitlines() if ln.startswith("| `softlabel_8bit_")}
    for group in ("softlabel_8bit_25p", "softlabel_8bit_500p"):
        row = next(v for k, v in rows.items() if k == f"`{group}`")
        assert row[-4:] == [_cell(after[(group, p)]) for p in NIID_PANELS], (group, row)
        for p in NIID_PANELS:
            assert abs(figure[(group, p)] - statistics.mean(after[(group, p)])) < 1e-4, (group, p)
    flat = _flat(text)
    soft = [_per_seed(after[("softlabel_8bit_25p", p)]) for p in NIID_PANELS]
    assert re.search(r"against " + re.escape(soft[0]) + r" at alpha 0\.05; .* against " + re.escape(soft[1])
                     + r" at 0\.5; .* against " + re.escape(soft[2]) + r" at 100; .* against "
                     + re.escape(soft[3]) + " with one class each", flat), soft
    last = [r for r in _csv("niid_matched_bits_seeds.csv") if r["group"] == "softlabel_8bit_500p" and r["round"] == "20"]
    for key in ("vote_acc", "softavg_acc"):
        means = [f"{statistics.mean(float(r[key]) for r in last if r['panel'] == p):.3f}" for p in NIID_PANELS]
        assert f"| `{key}` | {' | '.join(means)} |" in text, (key, means)


def test_the_niid_table_s_before_and_after_are_their_csvs():
    """docs/matched-bits.md, the non-IID table's re-measure: before -> after for both soft-label groups per
    split (the unrounded runs: niid_matched_bits_unrounded_seeds.csv, whose means are the old table's) and
    the 25-probe group's per-seed before -> after."""
    before, after = (_seeds(n, 20) for n in ("niid_matched_bits_unrounded_seeds.csv", "niid_matched_bits_seeds.csv"))
    flat = _flat(_niid_text())
    for label, group in (("25 probes", "softlabel_8bit_25p"), ("500 probes", "softlabel_8bit_500p")):
        want = [f"{statistics.mean(before[(group, p)]):.3f} -> {statistics.mean(after[(group, p)]):.3f}"
                for p in NIID_PANELS]
        found = re.search(label + r" (\d\.\d+ -> \d\.\d+), (\d\.\d+ -> \d\.\d+), (\d\.\d+ -> \d\.\d+), \**(\d\.\d+ -> \d\.\d+)", flat)
        assert found and list(found.groups()) == want, (label, found and found.groups(), want)
    seeds = ", ".join(f"{_per_seed(before[('softlabel_8bit_25p', p)])} -> {_per_seed(after[('softlabel_8bit_25p', p)])}"
                      for p in NIID_PANELS)
    assert f"(per seed {seeds})" in flat, seeds


def test_the_twenty_seed_check_is_its_csv():
    """docs/matched-bits.md, "Alpha 0.5 with 20 seeds" (re-run with the rounded downlink): both groups'
    mean ± population std, the paired difference, its standard error and how many seeds tally leads are
    niid_seeds20.csv's; so are the same-messages numbers of the soft-label run and docs/figures.md's claim."""
    rows = _csv("niid_seeds20.csv")
    acc = {g: [float(r["acc_mean"]) for r in sorted(rows, key=lambda r: int(r["seed"])) if r["group"] == g]
           for g in ("tally_500p", "softlabel_8bit_25p")}
    assert [len(v) for v in acc.values()] == [20, 20]
    diff = [s - t for t, s in zip(acc["tally_500p"], acc["softlabel_8bit_25p"])]
    text = _flat((DOCS / "matched-bits.md").read_text().split("**Alpha 0.5 with 20 seeds.**")[1].split("**Verdict.**")[0])
    assert f"tally **{_cell(acc['tally_500p'])}**, softlabel 8-bit on 25 probes **{_cell(acc['softlabel_8bit_25p'])}**" in text
    assert f"softlabel minus tally is +{statistics.mean(diff):.3f}, standard error {statistics.stdev(diff) / 20 ** 0.5:.3f}" in text
    assert f"tally is ahead in {sum(d < 0 for d in diff)} of the 20 seeds" in text
    soft = [r for r in rows if r["group"] == "softlabel_8bit_25p"]
    vote, avg = (f"{statistics.mean(float(r[k]) for r in soft):.3f}" for k in ("vote_acc", "softavg_acc"))
    assert f"({avg} against {vote} on 25 probes)" in text
    assert f"-> {_cell(acc['softlabel_8bit_25p'])}, the paired difference +0.001 -> +{statistics.mean(diff):.3f}" in text
    claims = _flat((DOCS / "figures.md").read_text())
    assert (f"level at 0.5 (20 seeds: {statistics.mean(acc['softlabel_8bit_25p']):.3f} against tally's "
            f"{statistics.mean(acc['tally_500p']):.3f})") in claims
