"""One committed per-seed CSV (docs/figures/*_paired_seeds.csv, *_seed2.csv: experiments/per_seed_csv.py's
`group,panel,seed,round,acc_mean`, `# ` comment lines first) read for results/verdicts.py, each row checked.

Why: the verdicts are recomputed from these files, and a hand edit changed them in silence or ended in a
traceback naming no file: an accuracy of nan, 45.9 (a percent) or -0.4 went into the interval; a seed's row
written twice kept the later one; a file emptied, or with its header's columns swapped, dropped its seeds
from every verdict; round `010` was not round `10`; an empty cell was `int('')`'s ValueError. Each is now a
ValueError naming the file and line (`python -m tallysim.results.verdicts` prints it as one line).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

NEEDED = ("group", "panel", "seed", "round", "acc_mean")


def _int(text: str, what: str, where: str) -> int:
    try:
        return int(text.strip())
    except (ValueError, AttributeError):
        raise ValueError(f"{where}: {what}={text!r} is not an integer") from None


def read(path: Path) -> list[dict]:
    """The rows of `path`: {group, panel, model (or None), seed: int, round: int, acc_mean: float}."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:     # past a Windows editor's byte-order mark
            numbered = [(i, line) for i, line in enumerate(f, 1) if not line.lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"verdicts: cannot read {path} ({getattr(e, 'strerror', None) or e})") from None
    reader = csv.DictReader([line for _, line in numbered])
    head = reader.fieldnames or []
    if head[:2] != ["group", "panel"] or not set(NEEDED) <= set(head):
        raise ValueError(f"verdicts: {path}: its header {','.join(head)!r:.80} is not per_seed_csv.py's "
                         f"(it starts group,panel and holds {','.join(NEEDED)})")
    out, seen = [], {}
    for (i, _), r in zip(numbered[1:], reader):
        where = f"verdicts: {path} line {i}"
        if None in r or any(r.get(c) is None for c in NEEDED):
            raise ValueError(f"{where}: {len([v for v in r.values() if v is not None])} cells where the header "
                             f"names {len(head)}")
        try:
            acc = float(r["acc_mean"])
        except ValueError:
            raise ValueError(f"{where}: acc_mean={r['acc_mean']!r} is not a number") from None
        if not (math.isfinite(acc) and 0 <= acc <= 1):
            raise ValueError(f"{where}: acc_mean={r['acc_mean'].strip()} is not an accuracy; allowed: a fraction in "
                             "[0, 1] (a diverged seed's nan, or a percent, has no place in a paired difference)")
        row = {"group": r["group"], "panel": r["panel"], "model": r.get("model"),
               "seed": _int(r["seed"], "seed", where), "round": _int(r["round"], "round", where), "acc_mean": acc}
        key = (row["group"], row["panel"], row["model"], row["seed"], row["round"])
        if key in seen:         # the later row replaced the earlier in silence
            raise ValueError(f"{where}: seed {row['seed']} of {row['group']!r} / {row['panel']!r} at round "
                             f"{row['round']} again (line {seen[key]} has it): keep one")
        seen[key] = i
        out.append(row)
    if not out:
        raise ValueError(f"verdicts: {path} holds no rows under its header (emptied?)")
    return out
