"""The runs a sweep's sweep.json lists that have no rows to read, as `table`, `pareto`, `plot` and
`read_rows` say them: the readers find runs by their metrics.jsonl, so a run not run yet (a `figure
--only/--panel` selection that left it out, status "not_run"; a sweep stopped or still running before
it) or failed before its first row was missing from the table in silence, a part of the sweep shown as
the whole."""
from __future__ import annotations

import json
from pathlib import Path

from tallysim.fields import first_few
from tallysim.results.run_dir import METRICS, SWEEP

NOT_RUN = "not_run"      # sweep_records.NOT_RUN (not imported: this reader runs without the sweep's modules)
# why a listed run has no rows, by its sweep.json status; any other status: its metrics.jsonl is gone
WHY = {NOT_RUN: "not run yet, left out by a `figure --only/--panel` selection",
       "pending": "not run yet (the sweep stopped before them, or is running)",
       "running": "not run yet (the sweep stopped before them, or is running)",
       "interrupted": "not run yet (the sweep stopped before them, or is running)",
       "failed": "failed before their first row (see each one's error.txt)"}


def _plain(name) -> bool:
    """A run's folder name as a sweep writes one: one path component (a hand-edited "/etc", "../x", "" or "."
    was said to be a run of this sweep not run yet)."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name


# a hand-edited entry named after a file of the sweep folder (sweep.json itself) was "not run yet": no run
# can be written there, so running the sweep again would not fill it
FILE = "each names a file in the sweep folder, not a run folder (a hand-edited sweep.json?)"


def _is_file(p: Path) -> bool:
    try:
        return p.exists() and not p.is_dir()
    except OSError:
        return False


def _status(r: dict):
    return r.get("status") if isinstance(r.get("status"), str) else None


def sweeps_under(root: Path) -> list[Path]:
    """root itself where it is a sweep's directory, else every sweep directory below it (a figure's groups)."""
    if (root / SWEEP).is_file():
        return [root]
    try:
        return sorted(p.parent for p in root.rglob(SWEEP) if p.is_file())
    except OSError:         # a folder it cannot list: the readers say so themselves
        return []


def notes(dirs, command: str, parents: bool = False) -> list[str]:
    """One line per sweep at or below `dirs` whose sweep.json lists runs without a metrics.jsonl: how many of
    how many, which, and why (by status), then how to run them. `parents`: a run folder's sweep too (plot's
    `DIR/*`: a shell lists the runs that exist). An unreadable sweep.json says nothing here."""
    from tallysim.results.metrics import directories
    lines, seen = [], set()
    for root in directories(dirs):
        root = Path(root)       # a file or no folder: no sweep under it (rglob finds none; sweeps_under)
        if (root / METRICS).exists():       # a run's folder
            if not parents or not (root.parent / SWEEP).is_file():
                continue
            root = root.parent
        for sweep_dir in sweeps_under(root):
            if sweep_dir.resolve() in seen:
                continue
            seen.add(sweep_dir.resolve())
            try:
                runs = json.loads((sweep_dir / SWEEP).read_text())["runs"]
                listed = list({r["name"]: r for r in runs if _plain(r.get("name"))}.values())
                gone = [r for r in listed if not (sweep_dir / r["name"] / METRICS).is_file()]
            # RecursionError: `[[[...]]]` 3,000 deep; OSError: a name past the file system's length
            except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
                continue
            if not gone:
                continue
            whys = {}
            files = [r for r in gone if _is_file(sweep_dir / r["name"])]
            for r in gone:      # a hand-edited status ["not_run"] (unhashable) was a TypeError's traceback
                why = (FILE if r in files else WHY.get(_status(r), f"its {METRICS} is gone"))
                whys.setdefault(why, []).append(r["name"])
            todo = any(_status(r) in WHY and _status(r) != "failed" for r in gone if r not in files)
            lines.append(f"{command}: {sweep_dir}: {len(gone)} of {len(listed)} runs its {SWEEP} lists have no rows "
                         "and are missing here: "
                         + "; ".join(f"{why}: {first_few(names, 4)}" for why, names in whys.items())
                         + ("; the same sweep or figure run again runs those not run yet" if todo else ""))
    return lines
