"""Redraws a `final_vs` figure (its PNG and PDF, and the CSV of what it drew) from the figure's own CSV,
without its runs, and with `--paired`, the groups re-run with paired seeds drawn from their per-seed CSV:
for a figure of which only some groups were re-measured (docs/figures.md, Fig. 2 with LeNet, its MLP
control and the CNN: tally, soft labels (mean) and local training re-run after the pairing change,
`*_paired_seeds.csv`; soft labels (era) and FedAvg not, their points the figure's CSV's). A re-run group's
point at x is the mean and population std (as the figure's own) of its seeds' final `acc_mean` at that
panel (`alpha=0.1` is x 0.1); its legend entry says "paired seeds", and the CSV written beside the PNG has
a `seeds_from` column naming where each point came from. Bits per peer are the figure CSV's (pairing moves
no bit). The drawing is `tallysim figure`'s own (tallysim.figures.plots.final_vs_drawn).

    PYTHONPATH=. python experiments/redraw_final_vs.py experiments/fig2_cnn.json docs/figures/fig2_cnn.csv --paired docs/figures/fig2_cnn_paired_seeds.csv --out /tmp/redraw
"""
import argparse
import csv
import statistics
from pathlib import Path

from tallysim import config_files
from tallysim.fields import ConfigError
from tallysim.figures import plots

BEFORE, PAIRED = "the figure's CSV (before the pairing change)", "paired seeds (re-run)"


def _rows(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def curves(figure_csv: str, key: str, paired_csv: str = None, rounds: int = None) -> dict:
    """{group: [(x, accuracy, std, bits_per_peer, {"seeds_from": ...})]}: the figure CSV's points, with every
    (group, x) the paired CSV holds replaced by its seeds' mean and population std. `rounds`: the figure's;
    a paired row of another round count is another figure's (fig2_cnn's 5 rounds, fig2_lenet's 10: the
    same groups and alphas, so nothing else tells them apart)."""
    seeds = {}
    for r in _rows(paired_csv) if paired_csv else []:
        if rounds is not None and int(r["round"]) != rounds:
            raise ValueError(f"a paired row of round {r['round']} ({r['group']}, {r['panel']}, seed {r['seed']}); "
                             f"the figure runs {rounds} rounds")
        x = float(r["panel"].split("=", 1)[1])
        seeds.setdefault((r["group"], x), []).append(float(r["acc_mean"]))
    out, used = {}, set()
    for r in _rows(figure_csv):
        g, x = r["group"], float(r[key])
        a, s, src = float(r["accuracy"]), float(r["accuracy_std"] or 0.0), BEFORE
        if (g, x) in seeds:
            a, s, src = statistics.fmean(seeds[g, x]), statistics.pstdev(seeds[g, x]), PAIRED
            used.add((g, x))
        out.setdefault(g, []).append((x, a, s, float(r["bits_per_peer"]), {"seeds_from": src}))
    if set(seeds) - used:
        raise ValueError(f"the paired CSV holds points the figure's does not: {sorted(set(seeds) - used)}")
    return out


def out_folder(ap, out: str) -> None:
    """--out made (it may be new), or one usage line (as redraw_pareto.py's; each script runs alone, from
    experiments/ without the repository on the path): a file there, or a folder that cannot be made, was
    os.mkdir's traceback after the CSV had been read."""
    if Path(out).exists() and not Path(out).is_dir():
        ap.error(f"--out {out} is a file; allowed: a folder (new or existing) for the figure's files")
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        ap.error(f"--out {out} cannot be made: {e.strerror or e}; allowed: a folder you can write")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python experiments/redraw_final_vs.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="the figure's config (experiments/<name>.json): its kind, x and title")
    ap.add_argument("csv", help="the figure's CSV (docs/figures/<name>.csv)")
    ap.add_argument("--paired", help="per-seed CSV of the groups re-run (group,panel,seed,round,acc_mean)")
    ap.add_argument("--out", required=True, help="folder for <name>.png, .pdf and .csv")
    args = ap.parse_args(argv)
    try:                       # a misspelt or missing file: one line, not a traceback
        spec = config_files.read_file(args.config)
    except ConfigError as e:
        ap.error(str(e))
    if spec.get("kind") != "final_vs":  # a run's config (no kind) read "is a None figure"
        what = f"a {spec['kind']!r} figure" if spec.get("kind") else "not a figure config (it has no kind)"
        ap.error(f"{args.config} is {what}; only final_vs figures are redrawn here")
    try:
        points = curves(args.csv, spec["x"], args.paired, (spec.get("base") or {}).get("rounds"))
    except OSError as e:
        ap.error(f"cannot read {e.filename!r}: {e.strerror or e}")
    except (KeyError, ValueError, IndexError) as e:
        ap.error(f"not the CSVs of {Path(args.config).stem} (a column missing, not a number, or a point "
                 f"the figure lacks: {e}); allowed: the CSV `tallysim figure` wrote and a per-seed CSV "
                 "with group,panel,seed,round,acc_mean")
    strange = sorted(set(points) - set(spec.get("groups") or {}))
    if strange or not points:
        ap.error(f"{args.csv} holds " + (f"groups {', '.join(strange)}, which {args.config} does not define"
                                         if strange else "no points")
                 + f"; allowed groups: {', '.join(spec.get('groups') or {}) or 'none'}")
    out_folder(ap, args.out)         # after the CSVs passed: no empty folder left for a bad one
    name = Path(args.config).stem
    labels = {g: f"{g}, paired seeds" for g, pts in points.items() if any(p[4]["seeds_from"] == PAIRED for p in pts)}
    title = spec.get("title", name) + (" (paired seeds: " + ", ".join(labels) + ")" if labels else "")
    paths = plots.final_vs_drawn(spec, points, Path(args.out) / name, title, labels)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
