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
import csv
import math
import sys
from pathlib import Path

from tallysim.config import ConfigError
from tallysim.results import metrics


class Refused(Exception):
    """A wrong argument or a run folder it cannot read: one line, and nothing on stdout (the CSV it
    redirects to held its header, or half its rows, before the traceback)."""


def rows(figure_dir: Path, field: str, name: str, keep) -> list:
    if not figure_dir.is_dir():
        raise Refused(f"{figure_dir} {'is not a folder' if figure_dir.exists() else 'does not exist'}; allowed: "
                      "a figure's folder under `tallysim figure --results` (a folder per group)")
    out, runs = [], 0
    for group_dir in sorted(p for p in figure_dir.iterdir() if p.is_dir()):
        for run in sorted(p for p in group_dir.iterdir() if p.is_dir() and (not field or p.name.startswith(field + "="))):
            if not (run / metrics.DONE).exists():         # unfinished: its last row is not the final round
                print(f"per_seed_csv.py: {run} has not finished; left out", file=sys.stderr)
                continue
            try:
                cfg, got = metrics.read_run(run)
            except ConfigError as e:
                raise Refused(str(e)) from None
            if not got:
                raise Refused(f"{run}: finished ({metrics.DONE}) with no row in its {metrics.METRICS}")
            last, runs = got[-1], runs + 1
            # a one-seed run's row names no seeds: its value is the run's seed's (a KeyError before)
            seeds = last.get("seeds") or [cfg.get("seed", 0)]
            values = (last.get("per_seed") or {}).get("acc_mean") if "seeds" in last else [last.get("acc_mean")]
            bad = [s for s, v in zip(seeds, values or [None] * len(seeds))
                   if (keep is None or s in keep) and not (metrics.is_number(v) and math.isfinite(v))]
            if bad:     # None was a TypeError from the format, nan went into the file for verdicts to use
                raise Refused(f"{run}: seed {bad[0]} has no finite acc_mean in its last row (diverged?); the "
                              "verdicts need every seed's: leave the run out (--seeds), or run it again")
            panel = name + "=" + run.name[len(field) + 1:] if field else run.name     # a figure's panels: their names
            out += [(group_dir.name, panel, s, last["round"], v) for s, v in zip(seeds, values)
                    if keep is None or s in keep]
    if not out:
        why = (f"; {runs} finished run(s) hold none of --seeds {','.join(map(str, sorted(keep)))}" if runs and keep
               is not None else "")
        raise Refused(f"no finished run folder under {figure_dir}'s groups ({field or 'panels'}){why}")
    return out


def _arguments(a) -> tuple:
    if a.panel != "panels" and (a.panel.count("=") != 1 or not all(a.panel.split("="))):
        # `partition.alpha` (no NAME) wrote `partition.alpha=0.1` panels verdicts.py never finds; `` read as panels
        raise Refused(f"--panel {a.panel!r}: allowed FIELD=NAME (e.g. partition.alpha=alpha), or panels")
    field, _, name = a.panel.partition("=") if a.panel != "panels" else ("", "", "")
    try:
        keep = None if a.seeds is None else {int(s) for s in a.seeds.split(",")}
    except ValueError:
        raise Refused(f"--seeds {a.seeds!r}: allowed comma-separated integers (e.g. 2,3,4)") from None
    if any(c in line for line in a.header for c in "\r\n"):   # its second line was no `# ` comment: a row
        raise Refused("--header holds a line break; allowed: one line per --header (repeat it for more)")
    return field, name, keep


def main(argv) -> int:
    p = argparse.ArgumentParser(prog="per_seed_csv.py", description=__doc__.split("\n\n")[0])
    p.add_argument("figure_dir", type=Path)
    p.add_argument("--panel", default="partition.alpha=alpha", help="FIELD=NAME (default partition.alpha=alpha), or panels")
    p.add_argument("--seeds", help="comma-separated seeds to keep (default: all)")
    p.add_argument("--header", action="append", default=[], help="a comment line to put first (repeatable)")
    a = p.parse_args(argv)
    try:
        field, name, keep = _arguments(a)
        found = rows(a.figure_dir.expanduser(), field, name or field, keep)
    except (Refused, OSError) as e:
        print(f"per_seed_csv.py: error: {e}", file=sys.stderr)
        return 2
    out = sys.stdout
    for line in a.header:
        out.write(f"# {line}\n")
    w = csv.writer(out, lineterminator="\n")      # a group named `a,b` split into two columns
    w.writerow(["group", "panel", "seed", "round", "acc_mean"])
    for g, panel, s, rnd, v in found:
        w.writerow([g, panel, s, rnd, f"{v:.6f}"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
