"""`tallysim table DIR...`: one row per run of a sweep (or any run directories), its swept fields as
columns, then the final and best headline accuracy, the final's std over seeds (with model.groups, each
group's final peer mean and its std too), the cumulative bits per peer and the rounds done (next-token
runs: also the final perplexity and the per-client accuracy's mean and 10th percentile); as a markdown
table (default) or CSV, on stdout or into --out.

The swept fields are found, not declared: the config.json fields whose values differ between the
runs listed (so it works for a sweep, a figure's results or hand-made runs alike), in config order.
"""
from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path
from typing import Optional

from tallysim.config import ConfigError
from tallysim.fields import first_few
from tallysim.results import dead_peers, headline, metrics, partition_file, sweep_gaps
from tallysim.results.absent_metric import refuse_absent
from tallysim.results.swept import flatten, in_axis_order, swept_fields, unread_blank, with_defaults
from tallysim.results.table_out import check_out, write

FORMATS = ("markdown", "csv")
RESULT_COLUMNS = ("final", "final_std", "best", "bits_per_peer", "MB_per_peer", "round", "status")
# Beside the final accuracy on next-token runs (absent otherwise): the same model's final perplexity,
# and the mean and 10th percentile of its per-client test accuracy (metrics.text_headline).
TEXT_COLUMNS = ("ppl", "client_mean", "client_p10")


def run_status(run_dir: Path, cfg: dict, rows: list) -> str:
    if (run_dir / metrics.ERROR).exists():
        return "failed"
    want, done = cfg.get("rounds"), rows[-1].get("round") if rows else 0
    # config.json deleted: "done" claimed every round ran, knowing no round count; a Results made by hand
    # with {"rounds": "2"} (read_run checks a run directory's) was a TypeError from >=
    if type(want) is not int or type(done) is not int:
        return "unknown"
    if done >= want:
        return "done"
    from tallysim import run_lock
    # a run another process writes now was "incomplete", as one killed at that round is
    return "running" if run_lock.being_written(Path(run_dir)) else "incomplete"


def table_rows(dirs, metric: str = "auto", log=None) -> tuple[list[str], list[dict]]:
    """(columns, rows) of the table over every run directory at or below `dirs`: `run` (its path under
    the directory given), the swept fields, then RESULT_COLUMNS (the first three named after `metric`
    when it is not auto: metric_columns). `final`/`best` are the headline
    accuracy (`metric="auto"`: acc_global where there is a server model, else acc_mean) of the last
    evaluation and the largest over evaluations; `final_std` its std over seeds (None for one seed).
    A corrupt run is skipped with a note through `log` (default stderr), as `pareto` does."""
    if not isinstance(metric, str):     # None: AttributeError from the column checks; a list: unhashable
        raise ConfigError(f"table_rows(metric={metric!r:.40}): expected a column name (str), or 'auto'")
    log = log or (lambda msg: print(msg, file=sys.stderr))
    runs = metrics.read_runs(dirs, lambda d, label, e: log(f"table: skipping {d}: {e}"))
    for line in sweep_gaps.notes(dirs, "table"):     # a sweep's runs not run yet: a partial table said so
        log(line)
    if metric == "ppl" and not any(metrics.metric(r, "ppl") is not None for *_, rows in runs for r in rows):
        raise ConfigError("--metric 'ppl' (the headline model's test perplexity) has no value in these runs: only "
                          "next-token runs (shakespeare, shakespeare_words) have one; allowed: auto, or a key of the rows")
    if metric not in ("auto", "ppl"):      # ppl: plot's alias of the headline's ppl_mean / ppl_global, table's column
        cols = {c for *_, rows in runs for c in metrics.columns(rows)}
        own_column(metric, cols)
        refuse_absent(metric, [rows for *_, rows in runs], cols)
    _say_uneven(runs, metric, log)
    for line in headline.seed_notes("table", metric, [(label, rows) for _, label, _, rows in runs]):
        log(line)       # final, final_std or best over fewer seeds, or holding a diverged seed's NaN
    if metric == "auto":
        # its ppl column (next-token runs): a diverged seed's inf perplexity is the likeliest non-finite mean
        for line in headline.seed_notes("table", "ppl", [(label, rows) for _, label, _, rows in runs]):
            log(line)
        _say_floor(runs, log)
        headline.say_no_client(runs, log)      # the client columns vanished in silence
        for d, label, cfg, rows in runs:   # a peer at the floor all run (the demo's seed 1: peer 0 at 0.1000)
            if dead := dead_peers.of_run(d, rows, cfg):
                log(dead_peers.note(dead, str(label)))
    swept = in_axis_order(swept_fields([cfg for _, _, cfg, _ in runs]), [d for d, *_ in runs])
    out = []
    for d, label, cfg, rows in runs:
        flat = unread_blank(with_defaults(flatten(cfg), swept) if cfg else {}, swept)
        final, best = metrics.column_final_best(rows, metric)
        last = rows[-1] if rows else {}
        key = metrics.headline_key(last) if metric == "auto" and last else metric
        if metric == "ppl" and last and "ppl" not in last:      # the headline model's ppl_mean / ppl_global
            key = metrics.TEXT_HEADLINE.get(metrics.headline_key(last), ("ppl",))[0]
        std = last.get(key + "_std")
        bits = last.get("bits_per_peer")
        out.append({"run": label, **{k: flat.get(k) for k in swept},
                    "final": final, "final_std": std, "best": best, "bits_per_peer": bits,
                    "MB_per_peer": None if bits is None else bits / 8e6, "round": last.get("round"),
                    "status": run_status(Path(d), cfg, rows),
                    **(metrics.text_headline(last) if metric == "auto" else dict.fromkeys(TEXT_COLUMNS))})
    text = [c for c in TEXT_COLUMNS if any(r[c] is not None for r in out)]   # next-token runs only
    for r in out:
        for c in TEXT_COLUMNS:
            if c not in text:
                r.pop(c)
    named = metric_columns(metric)
    out = [{named.get(k, k): v for k, v in r.items()} for r in out]
    groups = _group_finals(runs, out, log) if metric == "auto" else []
    return ["run", *swept, *named.values(), *groups, *text, *RESULT_COLUMNS[3:]], out


def _group_finals(runs: list, out: list, log) -> list:
    """`final@NAME`, `final_std@NAME` for runs with model.groups: each group's final peer mean (`acc_mean@NAME`)
    and its std over seeds (empty for one), as final/final_std are the headline's: it took one `--metric
    acc_mean@NAME` table per group (userjourney7), then showed a 2-seed run's mean alone. [] without groups.
    A final over fewer seeds than its run has is named through `log`, as the headline's is."""
    names = list(dict.fromkeys(k.removeprefix("acc_mean@") for *_, rows in runs if rows for k in rows[-1]
                               if k.startswith("acc_mean@") and not k.endswith("_std")))
    for (*_, rows), r in zip(runs, out):
        last = rows[-1] if rows else {}
        for name in names:
            r[f"final@{name}"] = last.get(f"acc_mean@{name}")
            r[f"final_std@{name}"] = last.get(f"acc_mean@{name}_std")
    for name in names:
        key = f"acc_mean@{name}"
        for line in headline.seed_notes("table", key, [(label, rows[-1:]) for _, label, _, rows in runs]):
            log(line)
    return [c for name in names for c in (f"final@{name}", f"final_std@{name}")]


_WHICH = {"acc_global": "the server model", "acc_mean": "the peers' mean"}      # as plot.WHICH_ACCURACY


def _say_uneven(runs: list, metric: str, log) -> None:
    """What the table's final/best columns cannot say themselves: with `--metric auto` each run's own
    headline (the server model's acc_global in one run, the peers' acc_mean in another, one column
    with no word), and with a named metric the runs that have no value of it (empty cells)."""
    if metric == "auto":
        heads: dict = {}
        for _, label, _, rows in runs:
            if rows:
                heads.setdefault(metrics.headline_key(rows[-1]), []).append(str(label))
        if len(heads) > 1:
            what = "; ".join(f"{k} ({_WHICH.get(k, k)}) in {_some(labels)}" for k, labels in heads.items())
            log(f"table: final/best are each run's headline accuracy (--metric auto), not one column: {what}; "
                f"--metric {' or --metric '.join(heads)} compares one column across every run")
        return
    empty = [str(label) for _, label, _, rows in runs if metrics.column_final_best(rows, metric)[1] is None]
    if empty:
        log(f"table: no {metric!r} value in {len(empty)} of {len(runs)} runs ({_some(empty)}): their "
            f"final/best {metric} cells are empty")


def _say_floor(runs: list, log) -> None:
    """The runs whose final accuracy is no better than always predicting the most frequent test target
    (headline.at_floor; partition.json's majority_acc): on Shakespeare words tally, softlabel and FedAvg
    all read 0.0898 after a few rounds, a tie in the table where none had learnt anything."""
    at = {}
    for d, label, _, rows in runs:
        majority = partition_file.majority(d)
        if headline.at_floor(metrics.column_final_best(rows)[0], majority):
            at.setdefault(f"{majority['majority_acc']:.4f}", []).append(str(label))
    for floor, labels in at.items():
        # "at or below" named 0.0898 of a run at 0.0899: at_floor allows FLOOR_MARGIN above the floor (for
        # rounding: "within rounding of" it was said of words runs at 0.0063 against 0.0905)
        log(f"table: {_some(labels)}: final accuracy at or below {floor} + {headline.FLOOR_MARGIN:g} (a margin for "
            "rounding), what always predicting the most frequent test target scores (partition.json's "
            "majority_acc): nothing learnt beyond the targets' frequencies yet" + ("; the ppl column still tells them apart" if any(
                metrics.text_headline(rows[-1])["ppl"] is not None for *_, rows in runs if rows) else ""))


def _some(labels: list) -> str:
    return first_few(labels, 3, ", ... ({} more)")


def own_column(metric: str, cols: set) -> None:
    """--metric naming one of the table's own columns (`final`, `final_std@phone`, copied from its header)
    was "not a column of any run's metrics.jsonl" with some 70 keys and "did you mean faulty_std"; a `_std`
    key (`acc_mean_std`) was ranked as a score, its `best` the widest spread over seeds. Each said now with
    the metric to give."""
    head, _, group = metric.partition("@")
    if head in RESULT_COLUMNS[:3] and metric not in cols:
        key = f"acc_mean@{group}" if group else "acc_global or acc_mean (auto)"
        raise ConfigError(f"--metric {metric!r} is a column of the table, not of the runs' {metrics.METRICS}: "
                          f"{head} of {key}; allowed: --metric {key if group else 'auto'}, whose final, final_std and "
                          "best the table prints, or another key of the rows")
    if metric.endswith("_std") and metric in cols:
        raise ConfigError(f"--metric {metric!r} is a std over seeds, not a score to rank runs by; allowed: --metric "
                          f"{metric[:-4]}, whose final_std column is this value at the last evaluation")


def metric_columns(metric: str) -> dict:
    """The accuracy columns' names: `final`, `final_std`, `best` for the headline (`--metric auto`, the
    header scripts and tests read), `final vote_acc`, `final_std vote_acc`, `best vote_acc` for another
    column: `--metric vote_acc` labelled its values `final`, read as the headline accuracy."""
    return {c: c if metric == "auto" else f"{c} {metric}" for c in RESULT_COLUMNS[:3]}


# --metric columns that count or time rather than score (a score prints to four decimals)
COUNT_METRICS = ("steps_real", "steps_computed", "faulty", "eval_peers", "wall_s", "senders", "voters")


def _cell(v, col: str) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    head, _, metric = col.partition(" ")
    if head in ("final", "best") and metric.startswith("bits_"):     # `--metric bits_up`: 1024.0000 before
        return metrics.bits_text(v)
    if head in ("final", "final_std", "best") and metric in COUNT_METRICS and isinstance(v, (int, float)):
        return f"{v:.6g}"            # steps, peers, seconds: `--metric steps_real` printed 44.0000
    if (head in ("final", "final_std", "best", "client_mean", "client_p10")
            or head.startswith(("final@", "final_std@"))) \
            and isinstance(v, float):
        return f"{v:.4f}"
    if col == "bits_per_peer":
        return metrics.bits_text(v)         # every table's one rule for a count of bits
    if col in ("MB_per_peer", "ppl"):
        return f"{v:.4g}"
    return str(v)


def markdown(columns: list[str], rows: list[dict]) -> str:
    from tallysim.results import md
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(md.cell(_cell(r[c], c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(columns: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows([[_cell(r[c], c) for c in columns] for r in rows])
    return buf.getvalue()


def render(columns: list[str], rows: list[dict], fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not known; allowed: {', '.join(FORMATS)}")
    return markdown(columns, rows) if fmt == "markdown" else to_csv(columns, rows)


def add_parser(sub) -> None:
    """The `table` subcommand on the CLI's subparsers (kept here, so cli.py adds one line)."""
    t = sub.add_parser("table", help="one row per run: swept fields, final and best accuracy, bits "
                       "(markdown or CSV)", description=__doc__.split("\n\n")[0])
    t.add_argument("runs", nargs="+", metavar="DIR", help="run directories or directories above them "
                   "(e.g. a sweep's --out)")
    t.add_argument("--format", default=None, choices=FORMATS,
                   help="markdown (default) or csv (the default with an --out ending in .csv)")
    t.add_argument("--out", help="write the table into this file instead of stdout")
    t.add_argument("--metric", default="auto", help="accuracy column (default: acc_global if present "
                   "else acc_mean)")
    t.set_defaults(fn=main)


def main(args) -> int:
    if args.out == "-":     # wrote a file named `-` in the working directory
        raise ConfigError("--out - would write a file named '-'; allowed: no --out (the table goes to stdout), "
                          "or a file name")
    fmt = check_out(args.out, args.format)
    text = render(*table_rows(args.runs, args.metric), fmt)
    if args.out:
        write(Path(args.out), text)
        print(args.out)
    else:
        sys.stdout.write(text)
    return 0


def table(dirs, fmt: Optional[str] = None, metric: str = "auto", out: Optional[str] = None) -> str:
    """The table as text (and written to `out` when given): for scripts and notebooks. `fmt`: markdown
    or csv (default: the `out`'s extension's, else markdown), as the command's --format."""
    from tallysim.fields import is_path
    if out is not None and not is_path(out):
        raise ConfigError(f"table(out={out!r}): expected a file path (str or pathlib.Path), or None")
    out = None if out is None else Path(os.path.expanduser(out))     # "~/t.md": the home's, as the CLI's --out
    text = render(*table_rows(dirs, metric), check_out(out, fmt))
    if out is not None:
        write(out, text)
    return text
