"""`tallysim compare A B` (and `tallysim.compare`): paired-seed comparisons with honest uncertainty. A seed
is paired across protocols (the same seed gives the same data split, probe draws and initialisation in
every protocol), so run A's seed s against run B's seed s is a paired difference; this prints each seed's
two values and their difference, then the mean difference, its standard error, a 95% Student-t interval,
the seeds each way, an exact sign test and a verdict: "A above B" where the interval lies above 0, "A below
B" where it lies below 0, else "level within noise" (one seed: no interval, level).

A and B are two finished run directories, or (`--by FIELD=VA,VB`) directories holding runs (a sweep's
--out): each run whose FIELD is VA is paired with the run that differs from it only in FIELD (its seed
aside: runs of one setting at other seeds are pooled, so a `seed=0,1,2` axis pairs as `seeds=3` does).
Everything is checked from the runs' config.json and metrics.jsonl (no JAX, no data set) before a number
is printed. The text (markdown or CSV) is compare_text.py's.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

from tallysim.config import ConfigError
from tallysim.fields import did_you_mean, first_few
from tallysim.results import compare_text, headline, metrics, paired_stats
from tallysim.results.swept import flatten, swept_fields, unread_blank, with_defaults

AT = ("final", "best")
# fields that are no part of a setting's identity when pairing: the seeds are what is paired
SEED_FIELDS = ("seed", "seeds")
# two differences of float32 values (each rounded by at most 2**-24 of its size) may differ by 2**-22 of it
FLOAT32_SPREAD = 2.0 ** -21


class Comparison(list):
    """The pairs of a comparison (each a dict: pair, a, b, metric_a, metric_b, at, seeds, a_values,
    b_values, diffs, n, mean, se, ci_low, ci_high, above, below, tied, sign_p, verdict, bits_a, bits_b,
    dropped), with `notes` (dropped seeds, unmatched bits, ...) and `text(fmt)`: the command's output."""

    def __init__(self, pairs, notes, a_name: str, b_name: str):
        super().__init__(pairs)
        self.notes, self.a_name, self.b_name = notes, a_name, b_name

    def text(self, fmt: str = "markdown") -> str:
        return compare_text.render(self, fmt)

    def __str__(self) -> str:
        return self.text()

    def _repr_markdown_(self) -> str:     # a notebook shows the tables
        return self.text()


def parse_by(by: str) -> tuple[str, str, str]:
    """`FIELD=VA,VB` -> (FIELD, VA, VB), refused unless two different values of one field."""
    if not isinstance(by, str) or "=" not in by:
        raise ConfigError(f"--by {by!r}: expected FIELD=VALUE_A,VALUE_B (e.g. --by protocol.name=tally,local)")
    field, _, values = by.partition("=")
    parts = [v.strip() for v in values.split(",")]
    if not field.strip() or len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise ConfigError(f"--by {by!r}: expected one field and two different values, FIELD=VALUE_A,VALUE_B "
                          "(e.g. --by protocol.name=tally,local)")
    if field.strip() in SEED_FIELDS:
        raise ConfigError(f"--by {field.strip()}: the seeds are what a comparison pairs, not a side of it; allowed: "
                          "another field (e.g. protocol.name)")
    return field.strip(), parts[0], parts[1]


def _matches(value, text: str) -> bool:
    """A config value read as the command line writes it: 0.1 == "0.1", true == "true", "tally" == "tally"."""
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    if isinstance(value, (int, float)):
        try:
            return float(text) == value
        except ValueError:
            return False
    return str(value) == text or (value is None and text in ("null", "none"))


def _finished(d: Path, cfg: dict, rows: list, role: str) -> None:
    from tallysim.results.table import run_status
    status = run_status(d, cfg, rows)
    if status != "done":
        done = rows[-1].get("round") if rows else 0
        raise ConfigError(f"{role} {d} is not finished ({status}: round {done} of {cfg.get('rounds')}); allowed: finished "
                          f"runs (a paired comparison of unequal lengths would not be one); {compare_text.to_finish(d, status)}")


def _read(d, role: str) -> tuple[Path, dict, list]:
    """(directory, config, rows) of one finished run directory, refused in one line otherwise."""
    d = Path(metrics.directory(d, "a run directory"))
    if d.is_dir() and not (d / metrics.METRICS).exists() and (d / metrics.SWEEP).is_file():
        raise ConfigError(f"{role} {d} is a sweep directory, not a run; allowed: two run directories, or the "
                          "sweep with --by FIELD=VALUE_A,VALUE_B (pairs its runs that differ only in FIELD)")
    if not d.is_dir():
        raise ConfigError(f"{role} {d} {'is not a directory' if d.exists() else 'does not exist'}; allowed: a "
                          "run directory (with metrics.jsonl)")
    cfg, rows = metrics.read_run(d)
    if not rows:
        raise ConfigError(f"{role} {d}: its {metrics.METRICS} holds no row yet; allowed: finished runs")
    _finished(d, cfg, rows, role)
    return d, cfg, rows


def metric_key(rows: list, metric: str) -> str:
    """The column compared: `auto` the run's headline (acc_global where there is a server model, else
    acc_mean), `ppl` the headline model's perplexity, else `metric` itself."""
    last = rows[-1]
    if metric == "auto":
        return metrics.headline_key(last)
    if metric == "ppl" and "ppl" not in last:
        return metrics.TEXT_HEADLINE.get(metrics.headline_key(last), ("ppl",))[0]
    return metric


def _row_seeds(row: dict, key: str, cfg: dict) -> dict:
    """{seed: value of `key`} of one metrics row: a multi-seed row's `per_seed` (aligned with its `seeds`),
    else the one value, of the run's `seed` (one-seed rows name no seeds)."""
    seeds = row.get("seeds") or [cfg.get("seed", 0)]
    per = (row.get("per_seed") or {}).get(key)
    if isinstance(per, list) and len(per) == len(seeds):
        return dict(zip(seeds, per))
    # several seeds and no per-seed list (a key the mean row does not split, wall_s): no seed's own value
    return {seeds[0]: row.get(key)} if len(seeds) == 1 else dict.fromkeys(seeds)


def _good(v) -> bool:
    return metrics.is_number(v) and math.isfinite(v)


def seed_values(cfg: dict, rows: list, key: str, at: str) -> dict:
    """{seed: value} of a run: the last row's (`final`), or each seed's best over its rows (`best`: the
    largest, the smallest for a perplexity or a loss); None where a seed has no finite value."""
    if at == "final":
        return {s: (float(v) if _good(v) else None) for s, v in _row_seeds(rows[-1], key, cfg).items()}
    pick = min if headline.lower_is_better(key) else max
    out: dict = {}
    for r in rows:
        for s, v in _row_seeds(r, key, cfg).items():
            out.setdefault(s, [])
            if _good(v):
                out[s].append(float(v))
    return {s: (pick(vs) if vs else None) for s, vs in out.items()}


def _check_metric(metric: str, runs: list) -> None:
    """A named --metric refused as `tallysim table` refuses it (a table column, a std, no such key, ...)."""
    if not isinstance(metric, str):
        raise ConfigError(f"compare(metric={metric!r:.40}): expected a column name (str), or 'auto'")
    if metric in ("auto", "ppl"):
        return
    from tallysim.results import table
    cols = {c for *_, rows in runs for c in metrics.columns(rows)}
    table.own_column(metric, cols)
    table.refuse_absent(metric, [rows for *_, rows in runs], cols, command="compare runs by")


def _side(runs: list, key_of, at: str, role: str) -> tuple[dict, set, Optional[float]]:
    """({seed: value}, metric keys, bits per peer) of one side of a pair, its runs' seeds pooled."""
    values, keys, bits = {}, set(), set()
    for d, cfg, rows in runs:
        key = key_of(rows)
        if all(r.get(key) is None for r in rows) and not any(key in (r.get("per_seed") or {}) for r in rows):
            raise ConfigError(f"{role} {d}: no value of {key!r} in any row of its {metrics.METRICS}; allowed: "
                              f"--metric naming a column it has ({first_few(metrics.columns(rows), 8)})")
        keys.add(key)
        for s, v in seed_values(cfg, rows, key, at).items():
            if s in values:
                raise ConfigError(f"{role}: seed {s} is in two runs of one setting ({d} and another); allowed: "
                                  "runs whose seeds do not overlap")
            values[s] = v
        bits.add(rows[-1].get("bits_per_peer"))
    return values, keys, (bits.pop() if len(bits) == 1 else None)


def pair(a_runs: list, b_runs: list, metric: str, at: str, label: str, notes: list) -> dict:
    """One pair: each side's runs [(dir, cfg, rows)], their common seeds' values and statistics."""
    a_vals, a_keys, a_bits = _side(a_runs, lambda rows: metric_key(rows, metric), at, "A")
    b_vals, b_keys, b_bits = _side(b_runs, lambda rows: metric_key(rows, metric), at, "B")
    where = f"{label}: " if label else ""
    only = sorted(set(a_vals) ^ set(b_vals))
    if only:
        notes.append(f"{where}seeds dropped (not in both A and B): "
                     + ", ".join(f"{s} (only in {'A' if s in a_vals else 'B'})" for s in only))
    common = sorted(set(a_vals) & set(b_vals))
    if not common:
        raise ConfigError(f"{where}A's seeds {sorted(a_vals)} and B's {sorted(b_vals)} have none in common: no "
                          "pair to compare; allowed: runs of the same seeds (the same `seed`, or overlapping "
                          "seed..seed+seeds-1)")
    no_value = [s for s in common if a_vals[s] is None or b_vals[s] is None]
    if no_value:
        notes.append(f"{where}seeds dropped (no finite value, e.g. diverged): " + ", ".join(
            f"{s} ({'A' if a_vals[s] is None else 'B'})" for s in no_value))
    seeds = [s for s in common if s not in no_value]
    if not seeds:
        raise ConfigError(f"{where}no seed has a finite value in both A and B; nothing to compare")
    if a_keys != b_keys:
        notes.append(f"{where}A's {'/'.join(sorted(a_keys))} against B's {'/'.join(sorted(b_keys))} (--metric "
                     "auto: each run's headline accuracy; --metric KEY compares one column)")
    if a_bits != b_bits:
        notes.append(f"{where}not matched bits: A {_bits(a_bits)} per peer, B {_bits(b_bits)} per peer")
    rounds = [sorted({rows[-1]["round"] for *_, rows in runs}) for runs in (a_runs, b_runs)]
    if at == "final" and rounds[0] != rounds[1]:    # both finished, at other lengths: say which rounds meet
        notes.append(f"{where}A's final evaluation is round {'/'.join(map(str, rounds[0]))}, B's round "
                     f"{'/'.join(map(str, rounds[1]))}")
    diffs = [a_vals[s] - b_vals[s] for s in seeds]
    # the values are float32 accuracies (or losses): differences equal but for that rounding are equal
    stats = paired_stats.summarize(diffs, FLOAT32_SPREAD * max(abs(v) for s in seeds for v in (a_vals[s], b_vals[s])))
    if stats["flat"]:
        notes.append(f"{where}{paired_stats.FLAT}")
    return {"pair": label, "a": ", ".join(str(d) for d, *_ in a_runs), "b": ", ".join(str(d) for d, *_ in b_runs),
            "metric_a": "/".join(sorted(a_keys)), "metric_b": "/".join(sorted(b_keys)), "at": at,
            "round": max(rows[-1]["round"] for *_, rows in a_runs + b_runs), "seeds": seeds,
            "a_values": [a_vals[s] for s in seeds], "b_values": [b_vals[s] for s in seeds], "diffs": diffs,
            **stats, "bits_a": a_bits, "bits_b": b_bits, "dropped": only + no_value}


def _bits(b) -> str:
    return "unknown (the runs of one setting differ)" if b is None else f"{metrics.bits_text(b)} bits"


def _differ(cfgs: list) -> str:
    fields = [k for k in swept_fields(cfgs) if k not in SEED_FIELDS]
    # a field a run never reads shown as None: tally's comm.soft_bits read "32", its unread default
    flat = [unread_blank(with_defaults(flatten(c), fields), fields) for c in cfgs]
    return "; ".join(f"{k} ({flat[0].get(k)} / {flat[1].get(k)})" for k in fields[:6]) + (
        f"; {len(fields) - 6} more" if len(fields) > 6 else "")


def compare_dirs(a, b, metric: str = "auto", at: str = "final") -> Comparison:
    """Run directory `a` against run directory `b`, seed by seed."""
    _check_at(at)
    runs = [_read(a, "A"), _read(b, "B")]
    _check_metric(metric, runs)
    notes = []
    if runs[0][0].resolve() == runs[1][0].resolve():
        notes.append("A and B are the same run directory: every difference is 0")
    elif differ := _differ([runs[0][1], runs[1][1]]):
        notes.append(f"A and B differ in: {differ}")
    p = pair([runs[0]], [runs[1]], metric, at, "", notes)
    return Comparison([p], notes, str(a), str(b))


def compare_by(dirs, by: str, metric: str = "auto", at: str = "final") -> Comparison:
    """The runs under `dirs` whose `FIELD` is VALUE_A against those where it is VALUE_B (`by`), each paired
    with the run that differs from it only in FIELD (and its seed; a field a run does not read matches any)."""
    field, va, vb = parse_by(by)
    _check_at(at)

    def skip(d, label, e):
        raise ConfigError(f"{d}: {e}")
    runs = metrics.read_runs(dirs, skip)
    flat = [flatten(cfg) for _, _, cfg, _ in runs]
    held = sorted({json.dumps(f[field]) for f in flat if field in f})
    if not held:
        names = sorted({k for f in flat for k in f})
        raise ConfigError(f"--by {field}: no run under {', '.join(map(str, metrics.directories(dirs)))} has the "
                          f"field {field!r}{did_you_mean(field, names)}")
    sides = {}
    for want, role in ((va, "A"), (vb, "B")):
        sides[role] = [i for i, f in enumerate(flat) if field in f and _matches(f[field], want)]
        if not sides[role]:
            raise ConfigError(f"--by {field}={va},{vb}: no run has {field}={want}; the runs' values: "
                              f"{first_few([json.loads(h) for h in held], 8)}")
    if both := sorted(set(sides["A"]) & set(sides["B"])):     # 0.1,0.10: each run compared with itself
        raise ConfigError(f"--by {field}={va},{vb}: both values match the same runs ({runs[both[0]][0]}: {field}="
                          f"{json.dumps(flat[both[0]][field])}); allowed: two different values of {field}")
    for i in sides["A"] + sides["B"]:
        d, _, cfg, rows = runs[i]
        _finished(Path(d), cfg, rows, "A" if i in sides["A"] else "B")
    _check_metric(metric, [(d, cfg, rows) for d, _, cfg, rows in runs])
    cfgs = [runs[i][2] for i in sides["A"] + sides["B"]]
    ident = [k for k in swept_fields(cfgs) if k != field and k not in SEED_FIELDS]

    def key(i):
        f = with_defaults(flat[i], ident)
        return tuple(json.dumps(f.get(k)) for k in ident)

    def unread(i) -> set:   # the swept fields run i does not read (tally's comm.soft_bits): they match any value
        f = with_defaults(flat[i], ident)
        blank = unread_blank(dict(f), ident)
        return {j for j, k in enumerate(ident) if blank.get(k) is None and f.get(k) is not None}
    groups = {role: {} for role in sides}
    for role, idx in sides.items():
        for i in idx:
            groups[role].setdefault(key(i), []).append(i)
    notes, pairs, used = [], [], set()
    free = {role: {k: unread(idx[0]) for k, idx in g.items()} for role, g in groups.items()}
    matches = [(ka, kb) for ka in groups["A"] for kb in _partners(ka, groups, free)]
    merged = [tuple(y if j in free["A"][ka] else x for j, (x, y) in enumerate(zip(ka, kb))) for ka, kb in matches]
    varying = [j for j in range(len(ident)) if len({m[j] for m in merged}) > 1]
    for (ka, kb), m in zip(matches, merged):
        label = " ".join(f"{ident[j]}={json.loads(m[j])}" for j in varying)
        side = [(runs[i][0], runs[i][2], runs[i][3]) for i in groups["A"][ka]]
        other = [(runs[i][0], runs[i][2], runs[i][3]) for i in groups["B"][kb]]
        pairs.append(pair(side, other, metric, at, label, notes))
        used.add(kb)
    for k in groups["A"]:
        if not any(ka == k for ka, _ in matches):
            notes.append(f"a run with {field}={va} ({runs[groups['A'][k][0]][1]}) has no run with {field}={vb} "
                         f"that differs from it only in {field}; left out")
    for k in groups["B"]:
        if k not in used:
            notes.append(f"a run with {field}={vb} ({runs[groups['B'][k][0]][1]}) has no run with {field}={va} "
                         f"that differs from it only in {field}; left out")
    if not pairs:
        raise ConfigError(f"--by {field}={va},{vb}: no run with {field}={va} has a partner with {field}={vb} that "
                          f"differs from it only in {field} (the runs differ in {', '.join(ident) or 'nothing else'})")
    return Comparison(pairs, notes, f"{field}={va}", f"{field}={vb}")


def _partners(ka: tuple, groups: dict, free: dict) -> list:
    """B's settings that A's setting `ka` pairs with: its own, and each that agrees in every field both read
    where one of the two has no setting of its own on the other side (softlabel at comm.soft_bits 8 against
    tally, which reads no soft_bits: refused as differing before; tally at 8 and 32 each still with its own)."""
    return [kb for kb in groups["B"] if kb == ka or (ka not in groups["B"] or kb not in groups["A"]) and all(
            x == y or j in free["A"][ka] or j in free["B"][kb] for j, (x, y) in enumerate(zip(ka, kb)))]


def _check_at(at: str) -> None:
    if at not in AT:
        raise ConfigError(f"--at {at!r} is not known; allowed: final (the last evaluation) or best (each seed's "
                          "best over its evaluations)")


def compare(a, b=None, *, by: Optional[str] = None, metric: str = "auto", at: str = "final",
            fmt: Optional[str] = None, out=None) -> Comparison:
    """Paired-seed comparison of run `a` against run `b`, or (`by="FIELD=VA,VB"`, `b` None) of the runs
    under `a` (a directory or a list of them, e.g. a sweep's --out) with FIELD=VA against their partners
    with FIELD=VB. Returns a Comparison (a list of pair dicts, `.notes`, `.text()`); `out`: also write
    the text there (markdown, or CSV for a .csv name or `fmt="csv"`)."""
    from tallysim.results import table
    fmt = table.check_out(None if out is None else Path(out).expanduser(), fmt)
    if by is None:
        if b is None:
            raise ConfigError("compare(a, b): two run directories, or one directory (or list) with "
                              "by='FIELD=VALUE_A,VALUE_B'")
        result = compare_dirs(a, b, metric, at)
    else:
        if b is not None:
            a = [*metrics.directories(a), *metrics.directories(b)]
        result = compare_by(a, by, metric, at)
    if out is not None:
        table.write(Path(out).expanduser(), result.text(fmt))
    return result


def add_parser(sub) -> None:
    """The `compare` subcommand on the CLI's subparsers (kept here, so cli_parser.py adds one line)."""
    c = sub.add_parser("compare", help="paired-seed comparison of two runs (or a sweep's pairs, --by): per-seed "
                       "differences, mean, standard error, 95%% t-interval, sign test, verdict",
                       description=__doc__.split("\n\n")[0])
    c.add_argument("runs", nargs="+", metavar="DIR", help="A and B, two run directories; with --by, the directories "
                   "holding the runs (e.g. a sweep's --out)")
    c.add_argument("--by", metavar="FIELD=VALUE_A,VALUE_B", help="pair each run whose FIELD is VALUE_A with the run "
                   "that differs from it only in FIELD, where it is VALUE_B (e.g. protocol.name=tally,local)")
    c.add_argument("--metric", default="auto", help="the column compared (default: the headline accuracy, "
                   "acc_global if present else acc_mean)")
    c.add_argument("--at", default="final", choices=AT, help="final (the last evaluation, default) or best "
                   "(each seed's best over its evaluations)")
    c.add_argument("--format", default=None, choices=("markdown", "csv"),
                   help="markdown (default) or csv (the default with an --out ending in .csv)")
    c.add_argument("--out", help="write the comparison into this file instead of stdout")
    c.set_defaults(fn=main)


def main(args) -> int:
    import sys
    from tallysim.results import table
    if args.out == "-":
        raise ConfigError("--out - would write a file named '-'; allowed: no --out (stdout), or a file name")
    if args.by is None and len(args.runs) == 1 and (Path(args.runs[0]) / metrics.SWEEP).is_file():
        raise ConfigError(f"compare {args.runs[0]}: a sweep directory alone; allowed: --by FIELD=VALUE_A,VALUE_B "
                          "(pairs its runs that differ only in FIELD), or two run directories A B")
    if args.by is None and len(args.runs) != 2:
        raise ConfigError(f"compare: {len(args.runs)} director{'y' if len(args.runs) == 1 else 'ies'} given; allowed: "
                          "two run directories A B, or directories holding runs with --by FIELD=VALUE_A,VALUE_B")
    fmt = table.check_out(args.out, args.format)
    if args.by is None:
        result = compare_dirs(*args.runs, metric=args.metric, at=args.at)
    else:
        parse_by(args.by)           # its syntax before any directory is read
        result = compare_by(args.runs, args.by, args.metric, args.at)
    text = result.text(fmt)
    if fmt == "csv":
        for note in result.notes:   # the markdown holds them; a CSV has no place for them
            print(f"compare: {note}", file=sys.stderr)
    if args.out:
        table.write(Path(args.out), text)
        print(args.out)
    else:
        sys.stdout.write(text)
    return 0
