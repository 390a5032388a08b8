"""The `tallysim compare` command: its parser and what it does with the arguments (the comparison itself
is compare.py's; its text compare_text.py's). Split from compare.py by job, as the CLI's other readers keep
their parser beside their code (cli_parser.add_compare_command adds it)."""
from __future__ import annotations

import sys
from pathlib import Path

from tallysim.config import ConfigError
from tallysim.results import compare, metrics
from tallysim.results.compare import AT, compare_by, compare_dirs, parse_by


def add_parser(sub) -> None:
    """The `compare` subcommand on the CLI's subparsers (kept here, so cli_parser.py adds one line)."""
    c = sub.add_parser("compare", help="paired-seed comparison of two runs (or a sweep's pairs, --by): per-seed "
                       "differences, mean, standard error, 95%% t-interval, sign test, verdict",
                       description=compare.__doc__.split("\n\n")[0])
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
