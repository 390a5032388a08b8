"""Redraws a `pareto` figure (its PNG and PDF, with the tables `tallysim figure` writes beside them) from
the figure's own CSV, without its runs: for a figure whose runs are gone but whose CSV was brought up to
date by hand (docs/matched-bits.md: the soft-label rows re-measured with the rounded downlink while the
other groups kept their runs). The points are the CSV's rows (accuracies to its 4 decimals), each run's
panel read from its `dir` column as the figure reads it from the run directory; the drawing and the
tables are `tallysim figure`'s own (tallysim.figures.plots.pareto_drawn).

    PYTHONPATH=. python experiments/redraw_pareto.py experiments/class_pool.json docs/figures/class_pool.csv --out /tmp/redraw
"""
import argparse
import csv
from pathlib import Path

from tallysim import config_files
from tallysim.fields import ConfigError
from tallysim.figures import plots


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
                        "accuracy_final": _number(r["accuracy_final"]), "accuracy_best": float(r["accuracy_best"]),
                        "seeds": int(r["seeds"]) if r.get("seeds") else None,
                        "accuracy_final_std": _number(r.get("accuracy_final_std")),
                        "seeds_counted": r.get("seeds_counted") or ""})
    return out


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
    except OSError as e:
        ap.error(f"cannot read the CSV {args.csv!r}: {e.strerror or e}")
    except (KeyError, ValueError) as e:
        ap.error(f"{args.csv} is not a pareto figure's CSV (a column missing or not a number: {e}); "
                 f"allowed: the CSV `tallysim figure` wrote for {Path(args.config).stem}")
    # Another pareto figure's CSV has the same columns: drawn under this config's title it would pass for
    # this figure's points (class_1000.csv drew as class_pool.png), so its groups must be the config's.
    strange = sorted({r["protocol"] for r in rows} - set(spec.get("groups") or {}))
    if strange or not rows:
        ap.error(f"{args.csv} holds " + (f"groups {', '.join(strange)}, which {args.config} does not define"
                                         if strange else "no points")
                 + f"; allowed groups: {', '.join(spec.get('groups') or {}) or 'none'}")
    out_folder(ap, args.out)         # after the CSVs passed: no empty folder left for a bad one
    name = Path(args.config).stem
    paths = plots.pareto_drawn(spec, rows, Path(args.out) / name, spec.get("title", name))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
