"""The MLP control of docs/figures.md as getting-started tells a user to check it (2026-12-07, userjourney13):
`tallysim figure experiments/fig2_small_mlp.json` now gives the paired numbers for tally, soft labels (mean)
and local, and for soft labels (era), never re-measured after the pairing change, other numbers than the
committed table's. The rerun's CSV (docs/figures/fig2_small_mlp_rerun.csv, the figure's own) is checked
against the paired per-seed CSV (the same runs, one program a group), the committed table's FedAvg, and the
era numbers the page gives. Pure text."""
import csv
import statistics
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
FIG = DOCS / "figures"


def _rerun() -> dict:
    return {(r["group"], f"{float(r['partition.alpha']):g}"): float(r["accuracy"])
            for r in csv.DictReader(open(FIG / "fig2_small_mlp_rerun.csv"))}


def test_the_rerun_is_the_paired_runs_and_the_committed_fedavg():
    rerun = _rerun()
    seeds: dict = {}
    for r in csv.DictReader(open(FIG / "fig2_small_mlp_paired_seeds.csv")):
        seeds.setdefault((r["group"], r["panel"].removeprefix("alpha=")), []).append(float(r["acc_mean"]))
    assert len(seeds) == 9
    for key, values in seeds.items():
        assert abs(statistics.fmean(values) - rerun[key]) < 5e-6, (key, values, rerun[key])
    committed = {(r["group"], f"{float(r['partition.alpha']):g}"): float(r["accuracy"])
                 for r in csv.DictReader(open(FIG / "fig2_small_mlp.csv"))}
    for alpha in ("0.1", "0.5", "100"):
        assert abs(committed[("fedavg", alpha)] - rerun[("fedavg", alpha)]) < 5e-6, alpha


def test_the_page_gives_the_reruns_era_numbers():
    rerun = _rerun()
    page = " ".join((DOCS / "figures.md").read_text().split())
    era = " / ".join(f"{rerun[('softlabel (era)', a)]:.3f}" for a in ("0.1", "0.5", "100"))
    assert f"soft labels (era), not in the paired runs, {era} at alpha 0.1 / 0.5 / 100" in page, era
    assert "`docs/figures/fig2_small_mlp_rerun.csv`" in page
