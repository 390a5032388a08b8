"""The pareto figures of the class-count axis redrawn with the paired re-runs (experiments/redraw_pareto.py
--paired; the drawing plots.pareto_drawn, which `tallysim figure` draws pareto with): class_matched_bits,
class_1000 and class_1000_momentum0. The values handed to the drawing are the paired CSV's seed means for
every (group, panel) it holds and the figure CSV's own for the rest; the committed drawn CSVs are the
redraw's; the note under each PNG says so. Pure CSV and one matplotlib drawing each; no compile."""
import csv
import runpy
import statistics
from pathlib import Path

import pytest

from tallysim.figures import plots

ROOT = Path(__file__).resolve().parent.parent
FIG = ROOT / "docs" / "figures"
# figure -> (its last round, the groups not re-run: drawn from the figure's CSV)
FIGURES = {"class_matched_bits": (20, {"c10_fedavg", "c100_fedavg"}),
           "class_1000": (10, {"local"}), "class_1000_momentum0": (10, {"local"})}


@pytest.fixture(scope="module")
def script():
    return runpy.run_path(str(ROOT / "experiments" / "redraw_pareto.py"))


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", list(FIGURES))
def test_the_redraw_plots_the_paired_means_and_the_rest_from_the_figure(script, name, tmp_path, monkeypatch):
    rounds, not_rerun = FIGURES[name]
    drawn = {}
    real = plots.pareto_drawn

    def spy(spec, points, stem, title):
        drawn["points"], drawn["title"] = points, title
        return real(spec, points, stem, title)
    monkeypatch.setattr(plots, "pareto_drawn", spy)
    assert script["main"]([str(ROOT / "experiments" / f"{name}.json"), str(FIG / f"{name}.csv"), "--paired",
                           str(FIG / f"{name}_paired_seeds.csv"), "--out", str(tmp_path)]) == 0
    seeds = {}
    for r in _csv(FIG / f"{name}_paired_seeds.csv"):
        if int(r["round"]) == rounds:
            seeds.setdefault((r["group"], r["panel"]), []).append(float(r["acc_mean"]))
    before = {(r["protocol"], r["panel"]): r for r in _csv(FIG / f"{name}.csv")}
    points = {(p["protocol"], p["dir"].rsplit("/", 1)[1]): p for p in drawn["points"]}
    assert set(points) == set(before) and set(seeds) <= set(points)
    for k, p in points.items():
        assert p["bits_per_peer"] == float(before[k]["bits_per_peer"])
        if k[0] in not_rerun:
            assert k not in seeds and p["seeds_from"].startswith("the figure's CSV")
            assert p["accuracy"] == float(before[k]["accuracy"])
        else:
            assert p["seeds_from"].startswith("paired") and len(seeds[k]) == 3
            assert p["accuracy"] == pytest.approx(statistics.fmean(seeds[k]), abs=1e-12)
            assert p["accuracy_final_std"] == pytest.approx(statistics.pstdev(seeds[k]), abs=1e-12)
    assert drawn["title"].endswith(f"(paired seeds; not re-run: {', '.join(sorted(not_rerun))})")
    # the committed drawn CSV is this redraw's, to the byte
    assert (tmp_path / f"{name}.csv").read_text() == (FIG / f"{name}_paired_drawn.csv").read_text()


def test_the_paired_points_moved_where_the_tables_say():
    """matched-bits.md's paired tables: C = 100 Dirichlet 0.1 tally 0.385 -> 0.375, C = 10 0.734 -> 0.770;
    class_1000 IID one probe 0.1295 -> 0.1276 (its best over rounds 2-10, 0.2443 -> 0.2415)."""
    mb = {(r["protocol"], r["panel"]): r for r in _csv(FIG / "class_matched_bits_paired_drawn.csv")}
    assert (mb["c100_tally_800p", "dir0.1"]["accuracy"], mb["c10_tally_800p", "dir0.1"]["accuracy"]) == ("0.3749", "0.7701")
    assert mb["c100_tally_800p", "dir0.1"]["accuracy_best"] == ""      # round 20 only: no best claimed
    c1000 = {(r["protocol"], r["panel"]): r for r in _csv(FIG / "class_1000_paired_drawn.csv")}
    assert (c1000["softlabel_8bit_1p", "iid"]["accuracy"], c1000["softlabel_8bit_1p", "iid"]["accuracy_best"]) == ("0.1276", "0.2415")


def test_another_figure_s_paired_csv_is_refused_in_one_line(script, tmp_path, capsys):
    """class_matched_bits' per-seed CSV (round 20) against class_1000 (10 rounds): refused, nothing written."""
    with pytest.raises(SystemExit) as e:
        script["main"]([str(ROOT / "experiments" / "class_1000.json"), str(FIG / "class_1000.csv"), "--paired",
                        str(FIG / "class_matched_bits_paired_seeds.csv"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err[-1].startswith("python experiments/redraw_pareto.py: error:")
    assert "a paired row of round 20" in err[-1] and "the figure runs 10 rounds" in err[-1]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, anchor", [("class_matched_bits", "The plot draws the paired re-run (2026-12-07) for every group but FedAvg"),
                                          ("class_1000", "Numbers: `docs/figures/class_1000_seeds.csv`"),
                                          ("class_1000_momentum0", "Numbers: `docs/figures/class_1000_momentum0_seeds.csv`")])
def test_the_note_under_each_png_says_it_draws_the_paired_runs(name, anchor):
    text = " ".join((ROOT / "docs" / "matched-bits.md").read_text().split(f"![{name}](figures/{name}.png)")[1][:1600].split())
    assert text.startswith(anchor) and "The plot draws the paired re-run (2026-12-07" in text
    assert (f"experiments/redraw_pareto.py experiments/{name}.json docs/figures/{name}.csv --paired "
            f"docs/figures/{name}_paired_seeds.csv --out figures") in text
    assert f"{name}_paired_drawn.csv" in text and "not redrawn" not in text
