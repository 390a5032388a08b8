"""`tallysim plot`: metrics.jsonl files -> accuracy against cumulative bits per peer (log x).

Reading the run directories (metrics.read_run, through run_dir.py's readers) checks every file before anything is drawn. Beside the image,
`<stem>.csv` holds every point drawn (label, protocol, run, round, bits_per_peer, metric, value), so a
figure can be checked, or redrawn elsewhere, from the numbers behind it.
"""
from __future__ import annotations

import csv
import itertools
import math
import sys
from pathlib import Path
from typing import Optional

from tallysim import atomic
from tallysim.config import ConfigError
from tallysim.fields import did_you_mean, home, is_path
from tallysim.results import figure_files, metrics, partition_file
from tallysim.results.headline import seed_notes
from tallysim.results.metrics import check_figure_out, columns, read_run
from tallysim.results.plot_labels import WHICH_ACCURACY, check_text, default_title, run_labels, y_label

CSV_COLUMNS = ("label", "protocol", "run", "round", "bits_per_peer", "metric", "value", "std")
# The first lines plot's CSV has had: without `std` before 2026-12-04. A CSV an earlier tallysim wrote
# beside the same --out is plot's own, replaced as before (refuse_foreign_beside refused it as the user's).
CSV_HEADS = (",".join(CSV_COLUMNS), ",".join(CSV_COLUMNS[:-1]))


def metric_value(row: dict, metric: str, where, flag: str = "--metric") -> float:
    v = metrics.metric(row, metric)
    if v is None:
        raise ConfigError(f"{flag} {metric!r} is not a numeric column of {where}; allowed: auto, "
                          f"{', '.join(columns([row]))}{did_you_mean(metric, columns([row]), metrics.METRIC_ALIASES)}")
    return v


def _shown(label: str) -> str:
    """matplotlib leaves a legend entry starting with `_` out of the legend: `--label _v2` vanished."""
    return " " + label if label.startswith("_") else label


def _legend_with_model(labels: list, rows_per_run: list, metric: str, labels_given: bool) -> list:
    """The legend entries, each followed by the model its curve measures ("fedavg (server model)")
    when the y axis mixes them ("peer mean / server model"): the axis alone does not say which curve is
    which; a run that sent nothing says so. Labels the user gave (--label) are kept as given; the CSV
    keeps the plain labels."""
    if labels_given:
        return labels
    which = [WHICH_ACCURACY[metrics.headline_key(rows[-1])] if rows else "" for rows in rows_per_run]
    if metric in ("auto", "ppl") and len(set(w for w in which if w)) > 1:
        labels = [f"{label} ({w})" if w else label for label, w in zip(labels, which)]
    # `local` sends nothing: its curve sits at x = 1 on the log axis, which has no 0
    return [f"{label}, 0 bits (drawn at 1)" if rows and all(r["bits_per_peer"] == 0 for r in rows) else label
            for label, rows in zip(labels, rows_per_run)]


LEGEND_CHARS = 60     # a longer legend entry inside the axes is wrapped onto lines of at most this
LEGEND_INSIDE = 8      # more curves than this: the legend goes beside the axes, not over the curves


# what plot_curves' errors call its inputs from Python; `tallysim plot` passes figure_files.FLAGS
PYTHON_NAMES = {"--out": "out", "--metric": "metric", "--title": "title", "--label": "labels"}


def plot_curves(run_dirs, out: str, metric: str = "auto", title: str | None = None,
                labels: Optional[list] = None, names: Optional[dict] = None) -> str:
    """One line per run directory; with several seeds a band of +- one std over seeds around the
    mean (the `<metric>_std` column), as the figures draw it. `labels`: the legend, one per run.
    `names`: the words errors name the inputs by (PYTHON_NAMES by default; the CLI's flags, FLAGS)."""
    word = (PYTHON_NAMES if names is None else names).get
    # from Python: out=None was pathlib's TypeError, labels="ab" for two runs drew the legend "a" and "b" in
    # silence (a str iterated), title=5 the title "5"
    if not is_path(out):
        raise ConfigError(f"plot_curves(out={out!r:.40}): expected the figure's file path (str or pathlib.Path)")
    if labels is not None and (isinstance(labels, str) or not isinstance(labels, (list, tuple))
                               or not all(isinstance(x, str) for x in labels)):
        raise ConfigError(f"plot_curves(labels={labels!r:.40}): expected a list of str, one legend entry per run")
    if not isinstance(metric, str) or not isinstance(title, (str, type(None))):
        raise ConfigError(f"plot_curves(metric={metric!r:.30}, title={title!r:.30}): expected a column name (str, or "
                          "'auto') and a title (str, or None)")
    out = home(out)     # "~/fig.png": the home's, not ./~
    check_figure_out(out, word("--out", "--out"))
    if title is not None:
        check_text(word("--title", "--title"), title)
    atomic.refuse_symlinks([out, Path(out).with_suffix(".csv")], word("--out", "--out"))    # before the image is replaced
    metrics.refuse_foreign_beside(out, Path(out).with_suffix(".csv"), CSV_HEADS, "every point drawn",
                                  word("--out", "--out"))
    # every file checked before drawing anything; a sweep's own index among them (DIR/*) left out
    dirs = metrics.directories(run_dirs)
    _each_once(dirs)
    runs = [(d, *read_run(d)) for d in dirs]
    given = labels is not None
    labels = run_labels([cfg for _, cfg, _ in runs], [d for d, _, _ in runs], labels, word("--label", "--label"))
    runs, labels = _with_rows(runs, labels)
    _note_unfinished(runs)
    from tallysim.results.sweep_gaps import notes
    for line in notes(dirs, "plot", parents=True):      # DIR/* of a sweep whose runs are not all run yet
        print(line, file=sys.stderr)
    runs, labels = _with_metric(runs, labels, metric, word("--metric", "--metric"))
    # a mean over fewer seeds than the run has (seeds_counted), or holding a diverged seed's NaN or inf
    # (seeds_nonfinite), is a point and a band like any other (a NaN one a gap)
    for line in seed_notes("plot", metric, [(label, rows) for (_, _, rows), label in zip(runs, labels)]):
        print(line, file=sys.stderr)
    series, points, kept = [], [], []
    for (d, cfg, rows), label in zip(runs, labels):
        rows = [r for r in rows if r["bits_per_peer"] > 0] or rows
        if metric not in ("auto", "ppl"):
            # a round with no value (consensus_acc null where every vote abstained, vote_acc_honest with no
            # honest peer) is no point: it refused the whole plot as "not a numeric column" of the run
            rows = [r for r in rows if metrics.metric(r, metric) is not None] or rows
        kept.append(rows)
        ys = [metric_value(r, metric, Path(d) / metrics.METRICS, word("--metric", "--metric")) for r in rows]
        # the std over seeds of the value drawn (aggregate writes it for every mean); one seed: none
        stds = [metrics.metric(r, _std_key(r, metric)) for r in rows]
        stds = stds if stds and all(s is not None for s in stds) else None
        series.append(([max(r["bits_per_peer"], 1.0) for r in rows], ys, stds, label))
        name = _std_key(rows[-1], metric)[:-4] if rows and metric in ("auto", "ppl") else metric
        points += [(label, cfg.get("protocol", {}).get("name", ""), str(d), r["round"], r["bits_per_peer"],
                    name, y, "" if stds is None else s) for r, y, s in zip(rows, ys, stds or ys)]
    _check_drawable(series, metric, [d for d, _, _ in runs], word("--metric", "--metric"))
    fig, ax = metrics.pyplot().subplots(figsize=(6.4, 4.4))
    legend = _legend_with_model([s[3] for s in series], kept, metric, labels_given=given)
    many = len(series) > LEGEND_INSIDE     # 16 runs' legend covered every curve, and 10 colours repeated
    colors = metrics.pyplot().get_cmap("tab20").colors if many else [None] * len(series)
    for (x, y, s, _), label, color in zip(series, legend, itertools.cycle(colors)):
        line, = ax.plot(x, y, marker="o", markersize=3, label=_shown(label), color=color)
        if s is not None:
            ax.fill_between(x, [a - b for a, b in zip(y, s)], [a + b for a, b in zip(y, s)],
                            color=line.get_color(), alpha=0.15, linewidth=0)
    partition_file.draw_floor(ax, [d for d, _, _ in runs], metric)
    ax.set_xscale("log")
    if metric == "ppl":
        ax.set_yscale("log")            # perplexity spans orders of magnitude early in training
    ax.set_xlabel("cumulative bits per peer (up + down)")
    band = any(s is not None for _, _, s, _ in series)
    ax.set_ylabel(y_label(kept, metric) + ("\nband: mean +- std over seeds" if band else ""))
    ax.set_title(title or default_title([cfg for _, cfg, _ in runs]), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if many:        # beside the axes, the figure widened for it
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
        fig.set_size_inches(6.4 + 0.06 * max(len(x) for x in legend), 4.4)
    else:
        # a legend entry wider than the axes ran off the figure, cut, with matplotlib's tight-layout
        # UserWarning on stderr (image, text and grouped tally runs labelled by all their differing fields)
        for text in ax.legend(fontsize=8).get_texts():
            if len(text.get_text()) > LEGEND_CHARS:
                text.set_text(figure_files.wrap_text(text.get_text(), LEGEND_CHARS))
    metrics.save_figure(fig, out)
    write_points(Path(out).with_suffix(".csv"), points)
    return out


def _check_drawable(series: list, metric: str, dirs: list, flag: str = "--metric") -> None:
    """A metric with no finite value at any evaluation is one line, not a traceback from matplotlib's log
    axis (`--metric ppl` of a run whose test loss overflowed exp: perplexity inf in every row). Values
    that are not finite in some rows are left out of the line, as matplotlib does."""
    drawable = [y for _, ys, _, _ in series for y in ys if math.isfinite(y) and (metric != "ppl" or y > 0)]
    if not drawable:
        raise ConfigError(f"nothing to draw: {flag} {metric} is not finite at any evaluation of "
                          f"{', '.join(map(str, dirs))} (perplexity is inf where the test loss overflows exp: "
                          f"the model diverged); allowed: another {flag}, e.g. auto (accuracy)")


def _with_rows(runs: list, labels: list) -> tuple[list, list]:
    """The runs that have rows to draw, and their labels. A run without rows (failed in its first round,
    or not evaluated yet) drew an empty line in silence, and with no other run an empty figure: it is
    left out with a note on stderr, and a figure with nothing to draw is one error line."""
    def why(d):
        return f"failed: {Path(d) / metrics.ERROR}" if (Path(d) / metrics.ERROR).exists() else "not evaluated yet"
    empty = [(d, why(d)) for d, _, rows in runs if not rows]
    if len(empty) == len(runs):
        raise ConfigError("nothing to draw: " + "; ".join(f"{Path(d) / metrics.METRICS} holds no rows ({w})"
                                                          for d, w in empty))
    for d, w in empty:
        print(f"plot: {d} has no rows ({w}); drawn without it", file=sys.stderr)
    keep = [i for i, (_, _, rows) in enumerate(runs) if rows]
    return [runs[i] for i in keep], [labels[i] for i in keep]


def _each_once(dirs: list) -> None:
    """A run named twice (`plot r1 r1`, `runs/a ./runs/a`) drew two identical lines under one legend entry,
    and shifted every --label after it onto the next run."""
    seen: dict = {}
    for d in dirs:
        key = Path(d).resolve()
        if key in seen:
            raise ConfigError(f"run directory {d} is given twice (also as {seen[key]}); allowed: each run once")
        seen[key] = d


def _note_unfinished(runs: list) -> None:
    """A run that failed or stopped part-way was drawn as a shorter line with no word (`table` says
    "failed", `pareto` leaves it out): drawn as far as it went, with a note on stderr saying so."""
    from tallysim.results.table import run_status
    for d, cfg, rows in runs:
        status = run_status(Path(d), cfg, rows)
        if status in ("failed", "incomplete", "running"):
            why = {"failed": f"failed: {Path(d) / metrics.ERROR}", "running": "still running: being written now",
                   "incomplete": "stopped early"}[status]
            print(f"plot: {d} reached round {rows[-1].get('round')} of {cfg.get('rounds')} ({why}); drawn as far "
                  "as it went", file=sys.stderr)


# why a run holds no value of --metric, in _with_metric's note: `--metric ppl` over image and text runs
# refused the whole plot as "not a numeric column" of the image run, where acc_global skipped a tally run
WHY_NONE = {"ppl": "a perplexity is a next-token run's (shakespeare, shakespeare_words)",
            "auto": "e.g. acc_global is null where there is no server model"}


def _why_none(metric: str) -> str:
    """Why a run holds no value of `metric`: `--metric bits_per_peer@a` beside an ungrouped run was said to
    be null "where there is no server model"."""
    if metric in WHY_NONE:
        return WHY_NONE[metric]
    return "an @NAME column is a model.groups run's" if "@" in metric else WHY_NONE["auto"]


def _with_metric(runs: list, labels: list, metric: str, flag: str = "--metric") -> tuple[list, list]:
    """The runs whose rows hold `metric` (auto and ppl: every run's headline). A directory of a tally run
    and a FedAvg run refused `--metric acc_global` whole, for the tally run's nulls: the runs without it
    are left out, in one line on stderr saying which and why; none with it is metric_value's error
    (the columns the first run has)."""
    if metric == "auto":
        return runs, labels
    has = [any(metrics.metric(r, metric) is not None for r in rows) for _, _, rows in runs]
    if not any(has):    # metric_value said "not a numeric column" of the first run, without why (table's refusal)
        if metric == "ppl":
            raise ConfigError(f"{flag} 'ppl' (the headline model's test perplexity) has no value in these runs: "
                              f"{WHY_NONE['ppl']}; allowed: auto, or a key of the rows")
        from tallysim.results.absent_metric import refuse_absent
        every = [rows for _, _, rows in runs]
        refuse_absent(metric, every, set(columns([r for rows in every for r in rows])), flag, "draw")
        return runs, labels          # (refuse_absent raises: the metric is no number of any row)
    skipped = [str(d) for (d, _, _), ok in zip(runs, has) if not ok]
    if skipped:
        n = len(skipped)
        print(f"plot: {flag} {metric}: skipped {n} run{'s' if n > 1 else ''} that hold{'' if n > 1 else 's'} no "
              f"number in it ({', '.join(skipped)}; {_why_none(metric)}); "
              f"drawn: the {sum(has)} that do", file=sys.stderr)
    return [x for x, ok in zip(runs, has) if ok], [x for x, ok in zip(labels, has) if ok]


def _std_key(row: dict, metric: str) -> str:
    """The `<column>_std` key of what is drawn: auto and ppl name the headline model's column."""
    if metric == "auto":
        return metrics.headline_key(row) + "_std"
    if metric == "ppl" and "ppl" not in row:
        return metrics.TEXT_HEADLINE.get(metrics.headline_key(row), ("ppl",))[0] + "_std"
    return metric + "_std"


def write_points(path: Path, points) -> None:
    import io
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    bits = CSV_COLUMNS.index("bits_per_peer")
    w.writerows([(*p[:bits], metrics.bits_text(p[bits]), *p[bits + 1:]) for p in points])
    atomic.write_text(path, buf.getvalue())
