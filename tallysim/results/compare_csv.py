"""`tallysim compare` on committed per-seed CSVs (compare.py): a side is `FILE.csv:COLUMN=VALUE:...`, the
rows of FILE whose COLUMN holds VALUE (`docs/figures/fig2_seeds5.csv:group=tally:panel=alpha=0.1`; a value
may hold `=`, selectors are split at `:`), one row per seed at its last round; or `FILE.csv[:...] --by
COLUMN=VA,VB` pairs the rows where COLUMN is VA with those where it is VB and every other setting column
(a column with text in it that is no number, `nan` aside: group, panel, model) agrees, one pair per setting. Read by seed_csv.py, the
reader verdicts.py uses, so compare recomputes docs/verdicts.md's rows from the same files. A side may join
files, `FILE.csv+FILE2.csv:...` (seeds of one setting split over files, as verdicts.py combines them):
seed_csv.read_selected and merged_values.
"""
from __future__ import annotations

import re
from pathlib import Path

from tallysim.config import ConfigError
from tallysim.fields import first_few
from tallysim.results import accuracy_check, headline, seed_csv
from tallysim.results.compare_pairs import Comparison, paired

SPEC = re.compile(r"(?s)(.*?\.csv)(?::(.*))?", re.IGNORECASE)


def is_spec(text) -> bool:
    """A per-seed CSV side (FILE.csv, or FILE.csv:COLUMN=VALUE...), not a run directory."""
    m = SPEC.fullmatch(str(text))
    return bool(m) and not Path(str(text)).expanduser().is_dir()


def parse_spec(text: str) -> tuple[str, dict]:
    """`FILE.csv:COL=VALUE:COL=VALUE` -> (FILE.csv, {COL: VALUE}), refused unless each selector is COL=VALUE."""
    m = SPEC.fullmatch(str(text))
    path, rest = m.group(1), m.group(2)
    where: dict = {}
    for part in ([] if rest is None else rest.split(":")):
        col, eq, value = part.partition("=")
        if not eq or not col.strip():
            raise ConfigError(f"compare {text}: selector {part!r} is not COLUMN=VALUE; allowed: FILE.csv:COLUMN=VALUE"
                              "[:COLUMN=VALUE...] (e.g. docs/figures/fig2_seeds5.csv:group=tally:panel=alpha=0.1)")
        if col.strip() in where:
            raise ConfigError(f"compare {text}: column {col.strip()!r} selected twice; allowed: one value per column")
        where[col.strip()] = value
    return path, where


def _column(path, cols: list, rows: list, metric: str) -> str:
    """The column compared: `auto` acc_global where the file has it, else acc_mean; else `metric`."""
    if not isinstance(metric, str):
        raise ConfigError(f"compare(metric={metric!r:.40}): expected a column name (str), or 'auto'")
    if metric == "auto":
        metric = "acc_global" if "acc_global" in cols else "acc_mean"
    values = [c for c in cols if c not in (seed_csv.SEED, seed_csv.ROUND)
              and any(seed_csv.number(r[c]) is not None for r in rows)]
    if metric in cols and metric not in values:     # "no column ... (none)" of a column the file has
        raise ConfigError(f"{path}: column {metric!r} holds no number in the rows selected ({len(rows)}: "
                          f"{first_few(sorted({repr(r.get(metric)) for r in rows}), 3)}); allowed: rows whose "
                          f"{metric} is a number (a seed's nan or blank among others is dropped with a note), or "
                          "a selection or --metric of another column")
    if metric not in values:
        raise ConfigError(f"{path}: no column {metric!r} of numbers to compare; allowed: --metric naming one of its "
                          f"columns that holds numbers ({first_few(values, 10) or 'none'})")
    return metric


def _side(text: str, metric: str, at: str) -> tuple:
    """({seed: value}, column, round read, bits per peer or None, {file: its round}) of one side,
    FILE.csv[+FILE2.csv...]:COL=VALUE (several files: their seeds together, seed_csv.merged_values)."""
    path, where = parse_spec(text)
    parts = seed_csv.read_selected(seed_csv.paths(path), where)
    key = _column(parts[0][0], parts[0][1], parts[0][2], metric)
    for p, cols, rows in parts[1:]:
        _column(p, cols, rows, key)
    # an accuracy that is no fraction refused, a diverged seed's nan passed on for paired() to drop and note
    vals, rnd, rounds = seed_csv.merged_values([(p, rows) for p, _, rows in parts], key, at,
                                               headline.lower_is_better(key), where, mode=accuracy_check.DROP)
    bits = {r.get("bits_per_peer") for p, _, rows in parts for r in rows
            if rounds[p] is None or seed_csv.round_of(r) == rounds[p]} - {None, ""}
    return vals, key, rnd, (bits.pop() if len(bits) == 1 else None), rounds


def _bits(rows: list, rnd):
    """The bits per peer the rows read (at round `rnd`) agree on, or None."""
    bits = {r.get("bits_per_peer") for r in rows if rnd is None or seed_csv.round_of(r) == rnd} - {None, ""}
    return bits.pop() if len(bits) == 1 else None


def _mismatch(where: str, rounds: tuple, bits: tuple, at: str) -> list:
    """The notes of a pair whose sides were read at other final rounds, or at other bits per peer."""
    (ra, rb), (ba, bb) = rounds, bits
    return ([f"{where}A's final round is {ra}, B's {rb}"] if ra != rb and at == "final" else []) + (
        [f"{where}not matched bits: A {ba or 'unknown'} bits per peer, B {bb or 'unknown'} bits per peer"]
        if ba != bb else [])


def refuse_input_as_out(out, sides) -> None:
    """--out naming a per-seed CSV a side reads: the comparison replaced the rows it was computed from (a user's
    committed file lost to a markdown table)."""
    if out is None:     # (an empty --out never gets here: table_out.check_out refuses it first)
        return
    target = Path(out).expanduser().resolve()
    for side in sides:
        if isinstance(side, (str, Path)) and is_spec(side):
            for f in seed_csv.paths(parse_spec(str(side))[0]):
                if Path(f).expanduser().resolve() == target:
                    raise ConfigError(f"--out {out} is {f}, a per-seed CSV this comparison reads, and writing it "
                                      "would replace its rows; allowed: another file name, or no --out (stdout)")


def compare_csv(a: str, b: str, metric: str = "auto", at: str = "final") -> Comparison:
    """Side `a` (FILE.csv:COL=VALUE...) against side `b`, seed by seed."""
    for role, text in (("A", a), ("B", b)):
        if not is_spec(text):
            raise ConfigError(f"compare: {role} {text} is not a per-seed CSV side and the other is; allowed: two run "
                              "directories, or two per-seed CSV sides (FILE.csv:COLUMN=VALUE...)")
    (va, ka, ra, ba, fa), (vb, kb, rb, bb, fb) = _side(a, metric, at), _side(b, metric, at)
    notes: list = []
    for role, files in (("A", fa), ("B", fb)):
        if at == "final" and len(set(files.values())) > 1:
            notes.append(f"{role}'s files end at different rounds: "
                         + ", ".join(f"{Path(f).name} {r}" for f, r in files.items()))
    p = paired(va, vb, "", notes, "rows of the same seeds")
    notes += _mismatch("", (ra, rb), (ba, bb), at)
    if parse_spec(a) == parse_spec(b):
        notes.append("A and B select the same rows: every difference is 0")
    return Comparison([_pair("", a, b, ka, kb, at, max(ra or 0, rb or 0) or None, p, (ba, bb))], notes, a, b)


def _pair(label, a, b, ka, kb, at, rnd, p, bits=(None, None)) -> dict:
    return {"pair": label, "a": a, "b": b, "metric_a": ka, "metric_b": kb, "at": at, "round": rnd, **p,
            "bits_a": seed_csv.number(bits[0]), "bits_b": seed_csv.number(bits[1])}


def compare_csv_by(text: str, field: str, va: str, vb: str, metric: str = "auto", at: str = "final",
                   per_pair: bool = False) -> Comparison:
    """The rows of `text` (FILE.csv[:COL=VALUE...]) where `field` is `va` against those where it is `vb`, one
    pair per setting: each value of the other setting columns (those with text in them) both sides hold."""
    path, where = parse_spec(text)
    parts = seed_csv.read_selected(seed_csv.paths(path), where)
    if field in where:
        raise ConfigError(f"--by {field}: {text} already selects {field}={where[field]}; allowed: selections of the "
                          f"other columns, with --by {field}=VALUE_A,VALUE_B naming both of its values")
    for p, cols, _ in parts:
        if field not in cols:
            raise ConfigError(f"--by {field}: {p} has no column {field!r}; its columns: {', '.join(cols)}")
    key = _column(parts[0][0], parts[0][1], parts[0][2], metric)
    for p, cols, rows in parts[1:]:
        _column(p, cols, rows, key)
    skip = (seed_csv.SEED, seed_csv.ROUND, field)
    # a setting column holds text that is no number: a diverged seed's `nan` (or `inf`) in the column compared
    # made it a setting, each value its own, and --by was refused as "no setting ... has rows with both values"
    settings = list(dict.fromkeys(c for _, cols, rows in parts for c in cols if c not in (*skip, key)
                                  and any(r.get(c, "") != "" and not _numeric(r[c]) for r in rows)))
    groups: dict = {}       # {value: {setting: {file: rows}}}
    for want in (va, vb):
        groups[want] = {}
        for p, cols, rows in parts:
            for r in rows:
                if r[field] == want:
                    k = tuple(r.get(c, "") for c in settings)
                    groups[want].setdefault(k, {}).setdefault(p, []).append(r)
        if not groups[want]:    # select's refusal: the values the column holds, a did-you-mean
            seed_csv.select(path, parts[0][1], [r for _, _, rows in parts for r in rows], {field: want})
    common = [k for k in groups[va] if k in groups[vb]]
    if not common:
        raise ConfigError(f"--by {field}={va},{vb}: no setting of {', '.join(settings) or 'the other columns'} in "
                          f"{path} has rows with both values; allowed: values that share a setting")
    notes: list = []
    for want, other in ((va, vb), (vb, va)):
        for k in groups[want]:
            if k not in groups[other]:
                notes.append(f"{_label(settings, k)} has rows with {field}={want} and none with {field}={other}; left out")
    varying = [j for j in range(len(settings)) if len({k[j] for k in common}) > 1]
    pairs, lower = [], headline.lower_is_better(key)
    for k in common:
        label = _label([settings[j] for j in varying], [k[j] for j in varying])
        sub = dict(zip(settings, k))
        got = [seed_csv.merged_values(list(groups[v][k].items()), key, at, lower, {**where, **sub, field: v},
                                      mode=accuracy_check.DROP) for v in (va, vb)]
        p = paired(got[0][0], got[1][0], f"{label}: " if label else "", notes, "rows of the same seeds")
        # read at other final rounds, or other bits per peer: said, as the two-sides form says it (was silent)
        bits = tuple(_bits([r for rows in groups[v][k].values() for r in rows], g[1])
                     for v, g in zip((va, vb), got))
        notes += _mismatch(f"{label}: " if label else "", (got[0][1], got[1][1]), bits, at)
        rnd = max(got[0][1] or 0, got[1][1] or 0) or None
        pairs.append(_pair(label, f"{text}:{field}={va}", f"{text}:{field}={vb}", key, key, at, rnd, p, bits))
    return Comparison(pairs, notes, f"{path}: {field}={va}", f"{path}: {field}={vb}", per_pair)


def _label(cols, values) -> str:
    return " ".join(f"{c}={v}" for c, v in zip(cols, values))


def _numeric(text) -> bool:
    """A cell that reads as a float, finite or not (`nan`, `inf`): a value, not a setting's name."""
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
