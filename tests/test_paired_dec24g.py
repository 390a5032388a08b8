"""Paired-seed re-measures, continued (paired37): Fig. 2's final_vs plots redrawn with the paired re-runs
(experiments/redraw_final_vs.py; drawing plots.final_vs_drawn, which `tallysim figure` draws final_vs with
too, tests/test_figures.py), and the before -> after tables of the verdicts re-run this session against
their per-seed CSVs. Pure text and one matplotlib drawing; no compile."""
import csv
import runpy
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIG = ROOT / "docs" / "figures"
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def redraw():
    return runpy.run_path(str(ROOT / "experiments" / "redraw_final_vs.py"))["main"]


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_fig2_lenet_redrawn_draws_the_paired_groups_from_their_seeds_and_the_rest_from_the_figure(redraw, tmp_path):
    """The mixed plot: tally, softlabel (mean) and local at each alpha are the mean and population std of
    their two paired seeds; softlabel (era) and FedAvg (not re-run) the figure CSV's own points; each row says
    which; bits per peer the figure's."""
    assert redraw([str(ROOT / "experiments" / "fig2_lenet.json"), str(FIG / "fig2_lenet.csv"),
                   "--paired", str(FIG / "fig2_lenet_paired_seeds.csv"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "fig2_lenet.png").stat().st_size > 10_000
    drawn = {(r["group"], float(r["partition.alpha"])): r for r in _csv(tmp_path / "fig2_lenet.csv")}
    before = {(r["group"], float(r["partition.alpha"])): r for r in _csv(FIG / "fig2_lenet.csv")}
    seeds = {}
    for r in _csv(FIG / "fig2_lenet_paired_seeds.csv"):
        seeds.setdefault((r["group"], float(r["panel"].split("=")[1])), []).append(float(r["acc_mean"]))
    assert set(drawn) == set(before) and len(drawn) == 15
    for k, r in drawn.items():
        assert float(r["bits_per_peer"]) == float(before[k]["bits_per_peer"])
        if k[0] in ("tally", "softlabel (mean)", "local"):
            assert r["seeds_from"].startswith("paired") and len(seeds[k]) == 2
            assert float(r["accuracy"]) == pytest.approx(statistics.fmean(seeds[k]), abs=1e-9)
            assert float(r["accuracy_std"]) == pytest.approx(statistics.pstdev(seeds[k]), abs=1e-9)
        else:
            assert r["seeds_from"].startswith("the figure's CSV")
            assert float(r["accuracy"]) == float(before[k]["accuracy"])
    # the point that moved most: tally at alpha 0.1, 0.391 -> 0.319
    assert round(float(drawn["tally", 0.1]["accuracy"]), 3) == 0.319


def test_another_figure_s_paired_csv_is_refused_in_one_line(redraw, tmp_path, capsys):
    """fig2_cnn's per-seed CSV has fig2_lenet's groups and two of its alphas: without the round check it
    drew the CNN's numbers into LeNet's plot."""
    with pytest.raises(SystemExit) as e:
        redraw([str(ROOT / "experiments" / "fig2_lenet.json"), str(FIG / "fig2_lenet.csv"),
                "--paired", str(FIG / "fig2_cnn_paired_seeds.csv"), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err[-1].startswith("python experiments/redraw_final_vs.py: error:")
    assert "a paired row of round 5" in err[-1] and "the figure runs 10 rounds" in err[-1]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["fig2_lenet", "fig2_cnn"])
def test_each_fig2_png_says_it_draws_the_paired_runs_and_how_it_was_redrawn(name):
    text = " ".join((DOCS / "figures.md").read_text().split(f"![{name}](figures/{name}.png)")[1][:1200].split())
    assert text.startswith("The plot draws the paired re-run (2026-12-07) for tally, softlabel (mean) and local")
    assert (f"experiments/redraw_final_vs.py experiments/{name}.json docs/figures/{name}.csv --paired "
            f"docs/figures/{name}_paired_seeds.csv") in text


def test_the_mlp_control_png_is_the_whole_rerun(redraw, tmp_path):
    """fig2_small_mlp.png draws the whole figure rerun with the current code (fig2_small_mlp_rerun.csv, every
    group): the redraw from that CSV gives its points back, and the page says so under the PNG."""
    text = " ".join((DOCS / "figures.md").read_text().split("![fig2_small_mlp](figures/fig2_small_mlp.png)")[1][:900].split())
    assert text.startswith("The plot draws the whole figure rerun with the current code")
    assert ("experiments/redraw_final_vs.py experiments/fig2_small_mlp.json "
            "docs/figures/fig2_small_mlp_rerun.csv --out figures") in text
    assert redraw([str(ROOT / "experiments" / "fig2_small_mlp.json"), str(FIG / "fig2_small_mlp_rerun.csv"),
                   "--out", str(tmp_path)]) == 0
    drawn = [(r["group"], r["partition.alpha"], r["accuracy"]) for r in _csv(tmp_path / "fig2_small_mlp.csv")]
    assert drawn == [(r["group"], r["partition.alpha"], r["accuracy"]) for r in _csv(FIG / "fig2_small_mlp_rerun.csv")]


def _fig12(stem: str) -> dict:
    """(group, panel, model group) -> acc_mean (seed 0, the only seed) from docs/figures/<stem>."""
    rows = _csv(FIG / stem)
    assert {r["seed"] for r in rows} == {"0"}
    return {(r["group"], r["panel"], r["model"]): float(r["acc_mean"]) for r in rows}


def _signed(x: float) -> str:
    return f"{x:+.3f}".replace("+0.000", "0.000").replace("-0.000", "0.000")


def test_the_fig12_reduced_table_is_its_csvs():
    """docs/groups.md, the reduced fig12 re-measured with paired seeds: every row (each model group's accuracy
    under local, tally and softlabel, and its gain over local training of the same group, before -> after) is
    fig12_reduced_unpaired_seeds.csv's and fig12_reduced_paired_seeds.csv's; the before seeds are the table
    above it (the runs before the change, 3 decimals), and local training is not moved by pairing."""
    text = (DOCS / "groups.md").read_text()
    section = text.split("**Re-measured with paired seeds**")[1].split("\n## ")[0]
    before, after = _fig12("fig12_reduced_unpaired_seeds.csv"), _fig12("fig12_reduced_paired_seeds.csv")
    assert set(before) == set(after) and len(after) == 18
    for panel, alpha in (("alpha01", "0.1"), ("alpha1", "1.0")):
        for m in ("mlp", "lenet", "cnn"):
            cells = [f"{before['local', panel, m]:.3f} -> {after['local', panel, m]:.3f}"]
            for g in ("tally", "softlabel"):
                cells.append(f"{before[g, panel, m]:.3f} -> {after[g, panel, m]:.3f}")
                cells.append(f"{_signed(before[g, panel, m] - before['local', panel, m])} -> "
                             f"{_signed(after[g, panel, m] - after['local', panel, m])}")
            row = f"| {alpha} | {m} | " + " | ".join(cells) + " |"
            assert row in section, row
            # the committed table above: its accuracies are the before seeds'
            old = next(ln for ln in text.splitlines() if ln.startswith(f"| {alpha} | {m} | "))
            assert old.split(" | ")[2] == f"{before['local', panel, m]:.3f}", old
            assert old.split(" | ")[3].startswith(f"{before['tally', panel, m]:.3f} ("), old
            assert old.split(" | ")[4].startswith(f"{before['softlabel', panel, m]:.3f} ("), old
            assert round(before["local", panel, m], 3) == round(after["local", panel, m], 3)


def test_the_min_agreement_table_is_its_csvs():
    """docs/matched-bits.md, `vote.min_agreement=0.5` at Dirichlet 0.05 re-measured with paired seeds: every
    row is niid_minagree_{unpaired,paired}_seeds.csv's (test_paired_dec23g.paired_rows: per seed, means with
    standard errors, differences to local training); the before seeds give the table's 0.247 ± 0.024 and
    niid_matched_bits.csv's local 0.2745 ± 0.0185 (mean ± population std), and local is not moved."""
    from test_paired_dec23g import _seeds, paired_rows
    section = (DOCS / "matched-bits.md").read_text().split(
        "**`vote.min_agreement=0.5` against local training, re-measured with paired seeds**")[1].split("One more run")[0]
    for row in paired_rows("niid_minagree", ["minagree0.5_444p", "local"], "local", 3):
        assert row in section, row
    before, after = _seeds("niid_minagree_unpaired_seeds.csv"), _seeds("niid_minagree_paired_seeds.csv")
    v = list(before["minagree0.5_444p", "dir0.05"].values())
    assert f"{statistics.fmean(v):.3f} ± {statistics.pstdev(v):.3f}" == "0.247 ± 0.024"
    assert "| `minagree0.5_444p` | `vote.min_agreement=0.5` (a keep bit per probe) | 444 | 3,996 | 0.247 ± 0.024 |" in \
        (DOCS / "matched-bits.md").read_text()
    local = next(r for r in _csv(FIG / "niid_matched_bits.csv") if (r["protocol"], r["panel"]) == ("local", "dir0.05"))
    v = list(before["local", "dir0.05"].values())
    assert (f"{statistics.fmean(v):.4f}", f"{statistics.pstdev(v):.4f}") == (local["accuracy"], local["accuracy_final_std"])
    assert before["local", "dir0.05"] == after["local", "dir0.05"]
    assert all(a < after["local", "dir0.05"][s] for s, a in after["minagree0.5_444p", "dir0.05"].items())


def test_the_fig12_prechange_rerun_gives_tally_again_and_soft_labels_not():
    """The code before the pairing change, run again: tally's values are the "before" (and the committed table's
    to its 3 decimals); soft labels' are not the table's (up to 0.025 off), as docs/groups.md says, which is
    why their "before" is the table's own."""
    rerun, before = _fig12("fig12_reduced_prechange_rerun_seeds.csv"), _fig12("fig12_reduced_unpaired_seeds.csv")
    assert len(rerun) == 12 and all(rerun[k] == before[k] for k in rerun if k[0] == "tally")
    off = max(abs(rerun[k] - before[k]) for k in rerun if k[0] == "softlabel")
    assert 0.02 < off < 0.03
    text = " ".join((DOCS / "groups.md").read_text().split())
    soft = [f"{rerun['softlabel', p, m]:.3f}" for p in ("alpha01", "alpha1") for m in ("mlp", "lenet", "cnn")]
    assert f"{' / '.join(soft[:3])} at alpha 0.1 and {' / '.join(soft[3:])} at 1.0" in text
