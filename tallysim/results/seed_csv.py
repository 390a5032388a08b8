"""Per-seed CSVs (docs/figures/*seeds*.csv, experiments/per_seed_csv.py's): one row per setting, seed and
round (`group,panel[,model],seed,round,acc_mean,...`), after `# ` lines that say how the file was made. The
one reader of them: verdicts.py recomputes the docs' verdicts with it, and `tallysim compare` takes
`FILE.csv:COLUMN=VALUE:...` as a side (compare_csv.py). Every refusal says what the file holds instead.
"""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Optional

from tallysim.config import ConfigError
from tallysim.fields import did_you_mean, first_few
from tallysim.results import accuracy_check

SEED, ROUND = "seed", "round"


def read(path) -> tuple[list, list]:
    """(columns, rows as dicts of text) of a per-seed CSV; refused without a `seed` column."""
    p = Path(path).expanduser()
    if not p.is_file() and not p.exists() and any(c in str(path) for c in "*?["):
        # `a.csv+*.csv`: the shell expands no pattern joined to another name, and compare expands none
        raise ConfigError(f"{path}: no such file, and a side's file names are not patterns (nothing expands "
                          f"{path!s} joined with +, or quoted); allowed: name each file, FILE.csv+FILE2.csv")
    if not p.is_file():
        raise ConfigError(f"{path}: {'not a file' if p.exists() else 'no such file'}; allowed: a per-seed CSV "
                          "(a `seed` column, one row per setting and seed), e.g. docs/figures/fig2_seeds5.csv")
    try:    # utf-8-sig: past a Windows editor's byte-order mark (its `\ufeffgroup` matched no `group`)
        with open(p, newline="", encoding="utf-8-sig") as f:    # `# ` lines first: how the file was made
            lines = [line for line in f if not line.startswith("#")]
    except UnicodeDecodeError:          # a traceback
        raise ConfigError(f"{path} is not UTF-8 text (damaged?); allowed: a per-seed CSV as "
                          "experiments/per_seed_csv.py writes it") from None
    reader = csv.DictReader(lines)
    cols = list(reader.fieldnames or [])
    if SEED not in cols:
        raise ConfigError(f"{path} has no `{SEED}` column (its columns: {first_few(cols, 10) or 'none'}): not a "
                          "per-seed CSV; allowed: a CSV with one row per seed, e.g. docs/figures/fig2_seeds5.csv "
                          "(a table of means, such as fig2.csv, holds no seed's own value to pair)")
    return cols, list(reader)


def select(path, cols: list, rows: list, where: dict) -> list:
    """The rows whose every column in `where` holds its value (as text: `panel=alpha=0.1`); a column the file
    lacks or a selection that matches nothing is refused, naming what the file holds."""
    for col, want in where.items():
        if col not in cols:
            raise ConfigError(f"{path}: no column {col!r}{did_you_mean(col, cols)}; its columns: {', '.join(cols)}")
        kept = [r for r in rows if r[col] == want]
        if not kept:
            held = sorted({r[col] for r in rows}, key=str)
            raise ConfigError(f"{path}: no row has {col}={want}"
                              + (f" (with {_text(where, until=col)})" if list(where)[0] != col else "")
                              + f"{did_you_mean(want, held)}; {col}'s values there: {first_few(held, 12)}")
        rows = kept
    return rows


def _text(where: dict, until: Optional[str] = None) -> str:
    out = []
    for k, v in where.items():
        if k == until:
            break
        out.append(f"{k}={v}")
    return ":".join(out)


def number(text) -> Optional[float]:
    """A cell as a float, None where it is blank or not a finite number."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _whole(r: dict, col: str) -> int:
    """A seed or round cell as an integer, refused in one line where it is not a whole number."""
    v = number(r[col])
    if v is None or v != int(v):
        raise ConfigError(f"a row's {col} is {r[col]!r}, not a whole number; allowed: a per-seed CSV whose `{col}` "
                          "column holds integers (0, 1, 2, ...)")
    return int(v)


def round_of(r: dict) -> int:
    return _whole(r, ROUND)


def seed_values(path, rows: list, column: str, at: str = "final", rnd=None, lower_better: bool = False,
                where: Optional[dict] = None) -> tuple[dict, Optional[int]]:
    """({seed: value of `column`}, the round read) of selected rows: at the last round they hold (`rnd`: that
    one), or (`at="best"`) each seed's best over its rounds; None where a seed has no finite value. Several
    rows of one seed at one round (more than one setting selected) are refused, naming the columns that
    tell them apart and a selection that picks one."""
    try:
        return _seed_values(path, rows, column, at, rnd, lower_better, where)
    except ConfigError as e:
        if str(e).startswith("a row's"):       # _whole's words ("a row's seed is ''") named no file
            raise ConfigError(f"{path}: {e}") from None
        raise


def _seed_values(path, rows: list, column: str, at: str, rnd, lower_better: bool,
                 where: Optional[dict]) -> tuple[dict, Optional[int]]:
    rounds = sorted({round_of(r) for r in rows}) if rows and ROUND in rows[0] else []
    if rnd is not None:
        rows = [r for r in rows if round_of(r) == int(rnd)]
    elif rounds and at == "final":
        rows = [r for r in rows if round_of(r) == rounds[-1]]
    by_seed: dict = {}
    for r in rows:
        by_seed.setdefault((_whole(r, SEED), round_of(r) if rounds else None), []).append(r)
    for (seed, _), rs in sorted(by_seed.items()):
        if len(rs) > 1:
            apart = [c for c in rs[0] if c not in (SEED, ROUND) and len({x[c] for x in rs}) > 1
                     and not all(number(x[c]) is not None for x in rs)] or [
                     c for c in rs[0] if c not in (SEED, ROUND) and len({x[c] for x in rs}) > 1]
            pick = ":".join([_text(where)] * bool(where) + [f"{c}={rs[0][c]}" for c in apart[:2]])
            raise ConfigError(f"{path}{':' + _text(where) if where else ''}: seed {seed} has {len(rs)} rows"
                              + (f" at round {round_of(rs[0])}" if rounds else "")
                              + f" (they differ in {', '.join(apart) or 'nothing: the same row twice'}); allowed: "
                              f"a selection of one row per seed{f', e.g. {path}:{pick}' if pick else ''}")
    out: dict = {}
    pick_best = min if lower_better else max
    for (seed, _), (r,) in sorted(by_seed.items(), key=lambda kv: kv[0][1] or 0):
        v = number(r[column])
        if at == "best" and rnd is None:
            if v is not None:
                out[seed] = v if out.get(seed) is None else pick_best(out[seed], v)
            else:
                out.setdefault(seed, None)
        else:
            out[seed] = v
    return out, (int(rnd) if rnd is not None else rounds[-1] if rounds else None)


def paths(text: str) -> list:
    """The files of a side, `A.csv+B.csv` (seeds of one setting split over files, as verdicts.py combines a
    paired file and its `_seed2.csv` / `_seeds2to4.csv`); a name that is itself a file stays whole."""
    if Path(text).expanduser().is_file():
        return [text]
    files = re.split(r"(?<=\.csv)\+", text, flags=re.IGNORECASE)
    seen: dict = {}     # a file joined twice: its seeds agreed with themselves (kept once, in silence), and
    for f in files:     # with --by each seed had "2 rows (they differ in nothing)", naming no second file
        if (same := seen.setdefault(Path(f).expanduser().resolve(), f)) is not f:
            raise ConfigError(f"{text}: {same} and {f} are the same file, joined twice; allowed: each file once "
                              "(FILE.csv+FILE2.csv: files that hold other seeds of the same settings)")
    return files


def read_selected(files: list, where: dict, check=None) -> list:
    """[(path, columns, rows `where` selects)] of each file; with several, a file without such rows is left
    out (verdicts.py: a seed file beside the paired one need not hold every group), none at all refused.
    `check(path, columns, rows)`: a caller's own check of each whole file, before its selection."""
    parts, missed = [], []
    for path in files:
        cols, rows = read(path)
        if check is not None:
            check(path, cols, rows)
        try:
            parts.append((path, cols, select(path, cols, rows, where)))
        except ConfigError as e:
            if len(files) == 1:
                raise
            missed.append(str(e))
    if not parts:
        raise ConfigError(f"no file of {' + '.join(map(str, files))} has a row with {_text(where)}: "
                          + "; ".join(missed))
    return parts


def merged_values(parts: list, column: str, at: str = "final", lower_better: bool = False,
                  where: Optional[dict] = None, rnd=None, *, mode: str) -> tuple[dict, Optional[int], dict]:
    """seed_values over several files' rows [(path, rows)]: ({seed: value}, the last round read, {path: its
    round}); a seed two files hold is kept where they agree, refused where they differ, naming both (compare's
    `+` and verdicts.py alike: the one join). An accuracy column's values pass accuracy_check in `mode`
    (DROP: compare, a diverged seed's None dropped later with a note; REFUSE: verdicts.py)."""
    out, rounds, came = {}, {}, {}
    for path, rows in parts:
        got, rounds[path] = seed_values(path, rows, column, at, rnd, lower_better=lower_better, where=where)
        for seed, v in got.items():
            if column in accuracy_check.ACCURACIES and not accuracy_check.passes(v, mode):     # the cell: only then
                cell, at_round = _cell(rows, seed, column, v, rounds[path])
                accuracy_check.check(v, f"{path}{': ' + _text(where) if where else ''}, seed {seed}"
                                     + (f", round {at_round}" if at_round is not None else ""), column, mode, cell)
            if seed in out and out[seed] != v:
                raise ConfigError(f"seed {seed}{' of ' + _text(where) if where else ''} is in {came[seed]} ({column}="
                                  f"{out[seed]}) and in {path} ({column}={v}); allowed: files that hold each seed "
                                  "once, or agree on it (which to keep is not the reader's guess)")
            out[seed], came[seed] = v, came.get(seed, path)
    held = [r for r in rounds.values() if r is not None]
    return out, (max(held) if held else None), rounds


def _cell(rows: list, seed: int, column: str, value, rnd) -> tuple:
    """(the cell as the file holds it, its round) of the row a seed's `value` was read from: the one holding
    that value (`--at best` reads any round), else the one at the round read, else the seed's last."""
    mine = [r for r in rows if _whole(r, SEED) == seed]
    hit = ([r for r in mine if number(r[column]) == value] if value is not None else []) or \
          [r for r in mine if rnd is None or ROUND not in r or round_of(r) == rnd] or mine
    return hit[-1][column], (round_of(hit[-1]) if ROUND in hit[-1] else None)
