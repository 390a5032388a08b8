"""Per-seed final accuracies of a figure's runs as a CSV the paired-seed verdicts read
(tallysim/results/verdicts.py): `group,panel,seed,round,acc_mean`, one row per (group, sweep point, seed),
the final round's peer mean (`acc_mean`) of each seed, read from each run's metrics.jsonl `per_seed`.

    PYTHONPATH=. python experiments/per_seed_csv.py RESULTS/FIGURE --panel partition.alpha=alpha \
        --seeds 2,3,4 --header "command, commit, date" > docs/figures/NAME.csv

RESULTS/FIGURE is `tallysim figure --results RESULTS`'s folder of one figure (a folder per group, a run folder
per sweep point). --panel FIELD=NAME names the panel column as the committed CSVs do (partition.alpha=0.1 ->
alpha=0.1); --panel panels: a figure with "panels", each run folder's name is its panel (dir0.05). --seeds keeps only those seeds (the new ones; the committed file keeps the others). --header
lines go first, each as a `# ` comment (verdicts.py skips them), so the file says how it was made.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from tallysim.results import metrics


def rows(figure_dir: Path, field: str, name: str, keep) -> list:
    out = []
    for group_dir in sorted(p for p in figure_dir.iterdir() if p.is_dir()):
        for run in sorted(p for p in group_dir.iterdir() if p.is_dir() and (not field or p.name.startswith(field + "="))):
            if not (run / metrics.DONE).exists():         # unfinished: its last row is not the final round
                print(f"per_seed_csv.py: {run} has not finished; left out", file=sys.stderr)
                continue
            cfg, rows_ = metrics.read_run(run)
            last = rows_[-1]
            # a one-seed run's rows name no seeds (its seed is config.json's): a KeyError before
            seeds, values = ((last["seeds"], last["per_seed"]["acc_mean"]) if "seeds" in last
                             else ([cfg.get("seed", 0)], [last["acc_mean"]]))
            panel = name + "=" + run.name[len(field) + 1:] if field else run.name     # a figure's panels: their names
            for s, v in zip(seeds, values):
                if keep is not None and s not in keep:
                    continue
                if not (isinstance(v, (int, float)) and math.isfinite(v)):
                    # a diverged seed: written as 'nan', verdicts.py read it as a value (every statistic NaN)
                    print(f"per_seed_csv.py: {run}: seed {s} has no finite acc_mean ({v}); left out", file=sys.stderr)
                    continue
                out.append((group_dir.name, panel, s, last["round"], v))
    if not out:
        raise SystemExit(f"per_seed_csv.py: no finished run folder under {figure_dir}'s groups ({field or 'panels'})")
    return out


def main(argv) -> int:
    p = argparse.ArgumentParser(prog="per_seed_csv.py", description=__doc__.split("\n\n")[0])
    p.add_argument("figure_dir", type=Path)
    p.add_argument("--panel", default="partition.alpha=alpha", help="FIELD=NAME (default partition.alpha=alpha), or panels")
    p.add_argument("--seeds", help="comma-separated seeds to keep (default: all)")
    p.add_argument("--header", action="append", default=[], help="a comment line to put first (repeatable)")
    a = p.parse_args(argv)
    field, _, name = a.panel.partition("=") if a.panel != "panels" else ("", "", "")
    keep = None if a.seeds is None else {int(s) for s in a.seeds.split(",")}
    out = sys.stdout
    for line in a.header:
        out.write(f"# {line}\n")
    out.write("group,panel,seed,round,acc_mean\n")
    for g, panel, s, rnd, v in rows(a.figure_dir, field, name or field, keep):
        out.write(f"{g},{panel},{s},{rnd},{v:.6f}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
