"""Redraws a `pareto` figure (its PNG and PDF, with the tables `tallysim figure` writes beside them) from
the figure's own CSV, without its runs: for a figure whose runs are gone but whose CSV was brought up to
date by hand (docs/matched-bits.md: the soft-label rows re-measured with the rounded downlink while the
other groups kept their runs). The points are the CSV's rows (accuracies to its 4 decimals), each run's
panel read from its `dir` column as the figure reads it from the run directory; the drawing and the
tables are `tallysim figure`'s own (tallysim.figures.plots.pareto_drawn).

With `--paired SEEDS.csv` (group,panel,seed,round,acc_mean: the groups re-run with paired seeds after the
pairing change of 2026-12-07, docs/matched-bits.md) each (group, panel) that CSV holds is drawn from its
seeds instead, as experiments/redraw_final_vs.py does for final_vs: the accuracy the mean and population std
(as a run's own `acc_mean_std`) of the seeds' `acc_mean` at the figure's last round; the best the highest
seed mean over the rounds it holds, blank where it holds the last round only. The CSV written beside the PNG
gets a `seeds_from` column, the title says which groups are not paired; bits per peer are the figure CSV's.

    PYTHONPATH=. python experiments/redraw_pareto.py experiments/class_pool.json docs/figures/class_pool.csv --out /tmp/redraw
    PYTHONPATH=. python experiments/redraw_pareto.py experiments/class_1000.json docs/figures/class_1000.csv --paired docs/figures/class_1000_paired_seeds.csv --out /tmp/redraw
"""
import argparse
import csv
import statistics
from pathlib import Path

from tallysim import config_files
from tallysim.fields import ConfigError
from tallysim.figures import plots
from tallysim.results.metrics import panel_of


def _number(text: str):
    return float(text) if text not in ("", None) else None


def points(csv_path: str) -> list[dict]:
    """The CSV's rows as the points pareto.collect returns (the keys the drawing and tables read)."""
    out = []
    with open(csv_path, newline="") as f:
        for r in csv.DictReader(f):
            bits = float(r["bits_per_peer"])
            out.append({"protocol": r["protocol"], "run": r["run"], "dir": r["dir"], "bits_per_peer": bits,
                        "MB_per_peer": bits / 8e6, "accuracy": float(r["accuracy"]),
                        "accuracy_final": _number(r["accuracy_final"]), "accuracy_best": _number(r["accuracy_best"]),
                        "seeds": int(r["seeds"]) if r.get("seeds") else None,
                        "accuracy_final_std": _number(r.get("accuracy_final_std")),
                        "seeds_counted": r.get("seeds_counted") or ""})
    return out


BEFORE, PAIRED = "the figure's CSV (before the pairing change)", "paired seeds (re-run)"


def paired(rows: list[dict], paired_csv: str, rounds: int) -> list[dict]:
    """`rows` (points()) with every (group, panel) the per-seed CSV holds replaced by its seeds' final mean
    and population std, and each row's `seeds_from`. A row past `rounds` is another figure's (class_1000's
    10 rounds against class_matched_bits' 20); a (group, panel) the figure lacks, or one without the last
    round, is refused rather than drawn from another round."""
    seeds = {}
    with open(paired_csv, newline="") as f:
        for r in csv.DictReader(f):
            if int(r["round"]) > rounds:
                raise ValueError(f"a paired row of round {r['round']} ({r['group']}, {r['panel']}, seed "
                                 f"{r['seed']}); the figure runs {rounds} rounds")
            seeds.setdefault((r["group"], r["panel"]), {}).setdefault(int(r["round"]), []).append(float(r["acc_mean"]))
    out, used = [], set()
    for p in rows:
        key = (p["protocol"], panel_of(p["dir"]))
        by_round = seeds.get(key)
        if by_round is None:
            out.append({**p, "seeds_from": BEFORE})
            continue
        if rounds not in by_round:
            raise ValueError(f"{key[0]}, {key[1]}: no paired row of the figure's last round {rounds}")
        used.add(key)
        final = by_round[rounds]
        mean = statistics.fmean(final)
        best = max(statistics.fmean(v) for v in by_round.values()) if len(by_round) > 1 else None
        out.append({**p, "accuracy": mean, "accuracy_final": mean, "accuracy_best": best,
                    "accuracy_final_std": statistics.pstdev(final), "seeds": len(final), "seeds_counted": "",
                    "seeds_from": PAIRED})
    if set(seeds) - used:
        raise ValueError(f"the paired CSV holds points the figure's does not: {sorted(set(seeds) - used)}")
    return out


def mark_sources(csv_path: Path, rows: list[dict]) -> None:
    """The drawn CSV (pareto_drawn's, one row per panel and group) with a `seeds_from` column."""
    src = {(r["protocol"], panel_of(r["dir"])): r["seeds_from"] for r in rows}
    with open(csv_path, newline="") as f:
        drawn = list(csv.DictReader(f))
    for r in drawn:
        r["seeds_from"] = src[r["protocol"], r["panel"]]
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, list(drawn[0]))
        w.writeheader()
        w.writerows(drawn)


def out_folder(ap, out: str) -> None:
    """--out made (it may be new), or one usage line: a file there, or a folder that cannot be made, was
    os.mkdir's traceback after the CSV had been read."""
    if Path(out).exists() and not Path(out).is_dir():
        ap.error(f"--out {out} is a file; allowed: a folder (new or existing) for the figure's files")
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        ap.error(f"--out {out} cannot be made: {e.strerror or e}; allowed: a folder you can write")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python experiments/redraw_pareto.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="the figure's config (experiments/<name>.json): its kind, panels and title")
    ap.add_argument("csv", help="the figure's CSV (docs/figures/<name>.csv)")
    ap.add_argument("--paired", help="per-seed CSV of the groups re-run (group,panel,seed,round,acc_mean)")
    ap.add_argument("--out", required=True, help="folder for <name>.png, .pdf, .csv and the tables")
    args = ap.parse_args(argv)
    try:                       # a misspelt or missing file: one line, not a traceback
        spec = config_files.read_file(args.config)
    except ConfigError as e:
        ap.error(str(e))
    if spec.get("kind") != "pareto":    # a run's config (no kind) read "is a None figure"
        what = f"a {spec['kind']!r} figure" if spec.get("kind") else "not a figure config (it has no kind)"
        ap.error(f"{args.config} is {what}; only pareto figures are redrawn from their CSV")
    try:
        rows = points(args.csv)
        if args.paired:
            rows = paired(rows, args.paired, int((spec.get("base") or {}).get("rounds")))
    except OSError as e:
        ap.error(f"cannot read the CSV {e.filename or args.csv!r}: {e.strerror or e}")
    except (KeyError, ValueError, TypeError) as e:
        ap.error(f"{args.csv} is not a pareto figure's CSV, or --paired not its per-seed CSV (a column missing, "
                 f"not a number, or a point the figure lacks: {e}); allowed: the CSV `tallysim figure` wrote for "
                 f"{Path(args.config).stem} and a per-seed CSV with group,panel,seed,round,acc_mean")
    # Another pareto figure's CSV has the same columns: drawn under this config's title it would pass for
    # this figure's points (class_1000.csv drew as class_pool.png), so its groups must be the config's.
    strange = sorted({r["protocol"] for r in rows} - set(spec.get("groups") or {}))
    if strange or not rows:
        ap.error(f"{args.csv} holds " + (f"groups {', '.join(strange)}, which {args.config} does not define"
                                         if strange else "no points")
                 + f"; allowed groups: {', '.join(spec.get('groups') or {}) or 'none'}")
    out_folder(ap, args.out)         # after the CSVs passed: no empty folder left for a bad one
    name = Path(args.config).stem
    title = spec.get("title", name)
    if args.paired:
        rest = sorted({r["protocol"] for r in rows if r["seeds_from"] == BEFORE})
        title += " (paired seeds" + (f"; not re-run: {', '.join(rest)}" if rest else "") + ")"
    paths = plots.pareto_drawn(spec, rows, Path(args.out) / name, title)
    if args.paired:
        mark_sources(Path(paths["csv"]), rows)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
