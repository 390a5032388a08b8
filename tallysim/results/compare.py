"""`tallysim compare A B` (and `tallysim.compare`): paired-seed comparisons with honest uncertainty. A seed
is paired across protocols (the same seed gives the same data split, probe draws and initialisation in
every protocol), so run A's seed s against run B's seed s is a paired difference; this prints each seed's
two values and their difference, then the mean difference, its standard error, a 95% Student-t interval,
the seeds each way, an exact sign test and a verdict: "A above B" where the interval lies above 0, "A below
B" where it lies below 0, else "level within noise" (one seed: no interval, level).

Over several pairs (--by) the intervals and sign tests are family-wise: Bonferroni's interval and Holm's p,
so that all the verdicts hold together at 95% (--per-pair: each pair's own 95%).

A and B are two finished run directories, or (`--by FIELD=VA,VB`) directories holding runs (a sweep's
--out): each run whose FIELD is VA is paired with the run that differs from it only in FIELD (its seed
aside: runs of one setting at other seeds are pooled, so a `seed=0,1,2` axis pairs as `seeds=3` does).
Everything is checked from the runs' config.json and metrics.jsonl (no JAX, no data set) before a number
is printed. A and B may instead be committed per-seed CSVs, `FILE.csv:COLUMN=VALUE:...` (compare_csv.py).
A run is read by compare_read.py, a pair's numbers are compare_pairs.py's (statistics:
paired_stats.py), --by's pairing is compare_by.py's, the text (markdown or CSV) compare_text.py's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from tallysim.config import ConfigError
from tallysim.results import metrics
from tallysim.results.compare_by import compare_by, parse_by
from tallysim.results.compare_csv import compare_csv, compare_csv_by, is_spec, refuse_input_as_out
from tallysim.results.compare_pairs import Comparison, differ, pair
from tallysim.results.compare_read import AT, check_at, check_metric, read_run


def compare_dirs(a, b, metric: str = "auto", at: str = "final") -> Comparison:
    """Run directory `a` against run directory `b`, seed by seed."""
    check_at(at)
    runs = [read_run(a, "A"), read_run(b, "B")]
    check_metric(metric, runs)
    notes = []
    if runs[0][0].resolve() == runs[1][0].resolve():
        notes.append("A and B are the same run directory: every difference is 0")
    elif fields := differ([runs[0][1], runs[1][1]]):
        notes.append(f"A and B differ in: {fields}")
    p = pair([runs[0]], [runs[1]], metric, at, "", notes)
    return Comparison([p], notes, str(a), str(b))


def compare(a, b=None, *, by: Optional[str] = None, metric: str = "auto", at: str = "final",
            fmt: Optional[str] = None, out=None, per_pair: bool = False) -> Comparison:
    """Paired-seed comparison of run `a` against run `b`, or (`by="FIELD=VA,VB"`, `b` None) of the runs
    under `a` (a directory or a list of them, e.g. a sweep's --out) with FIELD=VA against their partners
    with FIELD=VB; `a` and `b` may be per-seed CSV sides instead, "FILE.csv:COLUMN=VALUE:..." (with `by`,
    `a` alone: "FILE.csv[:...]", its rows paired across COLUMN). Over several pairs the intervals are
    family-wise (Bonferroni, Holm) unless `per_pair`. Returns a Comparison (a list of pair dicts, `.notes`,
    `.family`, `.text()`); `out`: also write the text there (markdown, or CSV for a .csv name or `fmt="csv"`)."""
    from tallysim.results import table
    if not isinstance(per_pair, bool):
        raise ConfigError(f"compare(per_pair={per_pair!r:.40}): expected True or False")
    from tallysim.fields import is_path
    from tallysim.results import compare_text
    if out is not None and not is_path(out):    # out=5: a TypeError from inside pathlib
        raise ConfigError(f"compare(out={out!r:.40}): expected a file path (str or pathlib.Path), or None")
    if fmt is not None and fmt not in compare_text.FORMATS:     # fmt="html" without an out: taken, in silence
        raise ConfigError(f"compare(fmt={fmt!r:.40}) is not known; allowed: {', '.join(compare_text.FORMATS)}")
    fmt = table.check_out(None if out is None else Path(out).expanduser(), fmt)
    refuse_input_as_out(out, [*(a if isinstance(a, (list, tuple)) else [a]), b])
    if by is None:
        if b is None:
            raise ConfigError("compare(a, b): two run directories (or per-seed CSV sides, FILE.csv:COLUMN=VALUE), "
                              "or one directory (or list) with by='FIELD=VALUE_A,VALUE_B'")
        result = _two(a, b, metric, at)
    else:
        if b is not None:
            a = [*metrics.directories(a), *metrics.directories(b)]
        result = _by(a, by, metric, at, per_pair)
    _one_pair(result, per_pair)
    if out is not None:
        table.write(Path(out).expanduser(), result.text(fmt))
    return result


def _one_pair(result: Comparison, per_pair: bool) -> None:
    """--per-pair over one pair changes nothing (one pair is never adjusted): said, as it was taken in silence."""
    if per_pair and len(result) == 1:
        result.notes.append("--per-pair changes nothing here: there is one pair, and one pair's interval and sign "
                            "test are its own 95% already (--per-pair matters with --by over several pairs)")


def _two(a, b, metric: str, at: str) -> Comparison:
    check_at(at)
    if is_spec(a) or is_spec(b):
        return compare_csv(str(a), str(b), metric, at)
    return compare_dirs(a, b, metric, at)


def _by(where, by: str, metric: str, at: str, per_pair: bool) -> Comparison:
    field, va, vb = parse_by(by)
    check_at(at)
    places = where if isinstance(where, (list, tuple)) else [where]
    csvs = [w for w in places if is_spec(w)]
    if not csvs:
        return compare_by(where, by, metric, at, per_pair)
    if len(places) != 1:
        raise ConfigError(f"compare --by with a per-seed CSV ({csvs[0]}): one CSV side only; allowed: one FILE.csv"
                          "[+FILE2.csv...][:COLUMN=VALUE...], or directories holding runs")
    return compare_csv_by(str(csvs[0]), field, va, vb, metric, at, per_pair)


def add_parser(sub) -> None:
    """The `compare` subcommand on the CLI's subparsers (kept here, so cli_parser.py adds one line)."""
    c = sub.add_parser("compare", help="paired-seed comparison of two runs (or a sweep's pairs, --by, family-wise; "
                       "or a per-seed CSV's rows, FILE.csv:COLUMN=VALUE): per-seed differences, mean, standard error, "
                       "95%% t-interval, sign test, verdict",
                       description=__doc__.split("\n\n")[0])
    c.add_argument("runs", nargs="+", metavar="DIR", help="A and B, two run directories, or two per-seed CSV sides "
                   "FILE.csv:COLUMN=VALUE[:COLUMN=VALUE...] (the rows of FILE where COLUMN holds VALUE; FILE.csv+FILE2.csv:"
                   "... joins files holding other seeds); with --by, "
                   "the directories holding the runs (e.g. a sweep's --out), or one FILE.csv[:COLUMN=VALUE...]")
    c.add_argument("--by", metavar="FIELD=VALUE_A,VALUE_B", help="pair each run whose FIELD is VALUE_A with the run "
                   "that differs from it only in FIELD, where it is VALUE_B (e.g. protocol.name=tally,local); on a "
                   "per-seed CSV a column, its rows paired where the other text columns agree (e.g. group=tally,local)")
    c.add_argument("--metric", default="auto", help="the column compared (default: the headline accuracy, "
                   "acc_global if present else acc_mean)")
    c.add_argument("--at", default="final", choices=AT, help="final (the last evaluation, default) or best "
                   "(each seed's best over its evaluations)")
    c.add_argument("--per-pair", action="store_true", help="over several pairs (--by), each pair's own 95%% "
                   "interval and sign test p (default: family-wise, Bonferroni's interval and Holm's p, so the "
                   "verdicts hold together at 95%%)")
    c.add_argument("--format", default=None, choices=("markdown", "csv"),
                   help="markdown (default) or csv (the default with an --out ending in .csv)")
    c.add_argument("--out", help="write the comparison into this file instead of stdout")
    c.set_defaults(fn=main)


def main(args) -> int:
    import sys
    from tallysim.results import table
    if args.out == "-":
        raise ConfigError("--out - would write a file named '-'; allowed: no --out (stdout), or a file name")
    if args.by is None and len(args.runs) == 1 and is_spec(args.runs[0]):
        raise ConfigError(f"compare {args.runs[0]}: one per-seed CSV side; allowed: two sides A B (FILE.csv:COLUMN="
                          "VALUE each), or one FILE.csv with --by COLUMN=VALUE_A,VALUE_B")
    if args.by is None and len(args.runs) == 1 and (Path(args.runs[0]) / metrics.SWEEP).is_file():
        raise ConfigError(f"compare {args.runs[0]}: a sweep directory alone; allowed: --by FIELD=VALUE_A,VALUE_B "
                          "(pairs its runs that differ only in FIELD), or two run directories A B")
    if args.by is None and len(args.runs) != 2:
        raise ConfigError(f"compare: {len(args.runs)} director{'y' if len(args.runs) == 1 else 'ies'} given; allowed: "
                          "two run directories A B, or directories holding runs with --by FIELD=VALUE_A,VALUE_B")
    fmt = table.check_out(args.out, args.format)
    refuse_input_as_out(args.out, args.runs)
    if args.by is None:
        result = _two(*args.runs, metric=args.metric, at=args.at)
    else:
        result = _by(args.runs, args.by, args.metric, args.at, args.per_pair)     # _by parses --by first
    _one_pair(result, args.per_pair)
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
