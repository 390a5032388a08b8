"""`tallysim pareto`: accuracy against total bits per peer, one point per run, per-protocol frontiers.

    python -m tallysim pareto DIR... --out FIG.png [--which final|best] [--metric auto]

Every directory holding a metrics.jsonl, given directly or at any depth below (e.g. a sweep's
output), is one run. Its point is (last row's bits_per_peer, accuracy), where accuracy is the final
row's (`--which final`) or the best over the evaluated rounds (`--which best`) of the metric (`auto`:
acc_global where there is a server model, else acc_mean). Runs that stopped early (fewer rounds than
config.json asks for, e.g. a failed or interrupted run) are left out with a note.

A point is on its protocol's Pareto frontier when no other point of the same protocol has <= bits and
>= accuracy with at least one strict. Runs that send nothing (protocol `local`) have 0 bits; on the
log axis they are drawn at x = 1 bit, which the legend and the markdown table say.

Besides FIG: <stem>_frontier.csv and <stem>_frontier.md (protocol, run, bits_per_peer, MB_per_peer,
accuracy) and <stem>_points.csv (every run, with an on_frontier column).
"""
from __future__ import annotations

import sys
from pathlib import Path

from tallysim import atomic
from tallysim.config import PROTOCOLS, ConfigError
from tallysim.results import md, metrics, partition_file
from tallysim.results.headline import partial_seeds, seed_marks, seed_notes
from tallysim.results.figure_files import FLAGS
from tallysim.results.metrics import check_figure_out, columns

ZERO_BITS_X = 1.0        # where runs with 0 bits sit on the log axis
COLUMNS = ("protocol", "run", "bits_per_peer", "MB_per_peer", "accuracy")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


# what collect's errors call its inputs from Python; `tallysim pareto` passes figure_files.FLAGS (the flags)
PYTHON_NAMES = {"--metric": "metric", "--which": "which", "--out": "out"}


def collect(dirs, which: str = "final", metric: str = "auto", log=None, names: dict | None = None) -> list[dict]:
    """One point per complete run: {protocol, run, dir, bits_per_peer, MB_per_peer, accuracy,
    accuracy_final, accuracy_best, rounds}. `accuracy` is the final or the best (`which`) value. `names`:
    the words errors name the inputs by (PYTHON_NAMES by default; the CLI's flags, FLAGS)."""
    names = PYTHON_NAMES if names is None else names
    flag = names.get("--metric", "--metric")
    metrics.check_which(which, names.get("--which", "--which"))
    if not isinstance(metric, str):     # None: AttributeError from lower_is_better
        raise ConfigError(f"collect(metric={metric!r:.40}): expected a column name (str), or 'auto'")
    if metrics.lower_is_better(metric):     # the frontier keeps the highest value: the worst perplexity
        raise ConfigError(f"{flag} {metric!r} is better lower (a perplexity, a loss, a share of tied votes), and pareto's frontier "
                          "keeps the highest value at each cost; allowed: an accuracy column, or auto")
    if metric.endswith("_std"):     # acc_mean_std: a frontier of the widest spreads over seeds
        raise ConfigError(f"{flag} {metric!r} is a std over seeds, not a score: pareto draws a score against bits "
                          f"per peer; allowed: an accuracy column ({metric[:-4]}), or auto")
    if metrics.is_cost(metric):     # drew bits against bits: a "frontier" of the costs
        raise ConfigError(f"{flag} {metric!r} is a cost, not a score: pareto draws a score against bits per peer; "
                          "allowed: an accuracy column, or auto")
    log = log or (lambda msg: print(msg, file=sys.stderr))
    # one corrupt run must not cost the whole tree: skipped with a note, as `table` and read_rows skip it
    runs = metrics.read_runs(dirs, lambda d, label, e: log(f"pareto: skipping {d}: {e}"), none_ok=True)
    from tallysim.results.sweep_gaps import notes
    for line in notes(dirs, "pareto"):      # a sweep's runs not run yet: a frontier of part of it said so
        log(line)
    cols = {c for _, _, _, rows in runs for c in columns(rows)}
    if metric != "auto" and cols:
        from tallysim.results.absent_metric import refuse_absent
        scores = {c for c in cols if not (c.startswith("bits_") or c == "wall_s" or c.endswith("_std")
                                          or metrics.lower_is_better(c))}     # what pareto takes (above)
        refuse_absent(metric, [rows for *_, rows in runs], scores, flag, "draw against bits")
    points, kept, heads = [], [], {}
    for d, label, cfg, rows in runs:
        if not rows:
            log(f"pareto: skipping {d}: metrics.jsonl has no rows yet")
            continue
        want = cfg.get("rounds")
        last = rows[-1]
        if not cfg:         # kept, as `table` keeps it ("unknown"), but no longer in silence
            log(f"pareto: {d} has no {metrics.CONFIG}: drawn as protocol 'unknown', whether it finished unknown")
        if want is not None and last.get("round", want) < want:
            from tallysim.results.table import run_status
            why = run_status(d, cfg, rows)         # failed, incomplete, or running (another process writes it)
            log(f"pareto: skipping {d}: {why} (round {last.get('round')} of {want})")
            continue
        final, best = metrics.column_final_best(rows, metric)
        if best is None:
            log(f"pareto: skipping {d}: no {metric!r} values in {metrics.METRICS}")
            continue
        if final is None and which == "final":
            # a probe metric is null where its round scored nothing (vote_acc on a text round with every
            # probe position PAD, consensus_acc with every vote abstaining): the run has values, not a last one
            # NaN, not null, where a seed diverged (seeds_nonfinite): final_best leaves NaN out as it does null
            gone = partial_seeds(rows, metric, diverged=True)
            what = f"NaN ({gone})" if gone else "null (nothing scored or kept that round)"
            log(f"pareto: skipping {d}: its last round's {metric!r} is {what}; "
                f"{names.get('--which', '--which')}{'=' if names else ' '}best reads its best round ({best:.4f})")
            continue
        kept.append((label, rows))     # a point over fewer seeds or with a diverged one: said, as table and plot say it
        bits = float(last["bits_per_peer"])
        key = metrics.headline_key(last) if metric == "auto" else metric
        heads.setdefault(key, []).append(str(label))
        std = last.get(key + "_std")           # over the run's seeds, of the final value
        points.append({
            "protocol": cfg.get("protocol", {}).get("name", "unknown"), "run": label, "dir": str(d),
            "bits_per_peer": bits, "MB_per_peer": bits / 8e6,
            "accuracy": final if which == "final" else best,
            "accuracy_final": final, "accuracy_best": best, "rounds": last.get("round"),
            "seeds": _seed_count(cfg), "accuracy_final_std": std if metrics.is_number(std) else None,
            "dataset": cfg.get("data", {}).get("name", "unknown"),
            # the point's accuracy a mean over fewer seeds than the run has, or holding a diverged seed's NaN
            # or inf: marked in the tables (write_tables)
            **(seed_marks(last, (metric,), final=True) if which == "final" else
               {"seeds_counted": partial_seeds(rows, metric), "seeds_nonfinite": partial_seeds(rows, metric, True)})})
    for line in seed_notes("pareto", metric, kept):
        log(line)
    if len(heads) > 1:      # one axis, two meanings: FedAvg's server model beside tally's peer mean, unsaid
        from tallysim.fields import first_few
        what = "; ".join(f"{k} in {first_few(labels, 2)}" for k, labels in heads.items())
        log(f"pareto: the accuracy axis is each run's headline accuracy ({flag} auto), not one column: {what}; "
            f"{flag} {f' or {flag} '.join(heads)} draws one column across every run")
    datasets = sorted({p["dataset"] for p in points})
    if len(datasets) > 1:       # one frontier per protocol over them: accuracies of different tasks compared
        log(f"pareto: warning: the runs are on {len(datasets)} datasets ({', '.join(datasets)}): each protocol's "
            "frontier is drawn over all of them, comparing accuracies of different tasks; pass one dataset's "
            "runs per pareto")
    return points


def _seed_count(cfg: dict):
    n = cfg.get("seeds")
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def seeds_note(points: list[dict]) -> str:
    """"mean of 2 seeds" (or "mean of 1-3 seeds per run") where a point's accuracy averages seeds: a
    frontier of two-seed means read as single runs hides a spread of several points; "" for one seed."""
    n = sorted({p["seeds"] for p in points if p.get("seeds")})
    if not n or n == [1]:
        return ""
    return f"mean of {n[0]} seeds" if len(n) == 1 else f"mean of {n[0]}-{n[-1]} seeds per run"


def _dominates(a: dict, b: dict) -> bool:
    return (a["bits_per_peer"] <= b["bits_per_peer"] and a["accuracy"] >= b["accuracy"]
            and (a["bits_per_peer"] < b["bits_per_peer"] or a["accuracy"] > b["accuracy"]))


def frontier(points: list[dict]) -> list[dict]:
    """Per protocol, the points no other point of that protocol dominates (<= bits and >= accuracy,
    one strictly). Identical points are both kept. Sorted by protocol, then bits ascending."""
    by_proto: dict[str, list[dict]] = {}
    for p in points:
        by_proto.setdefault(p["protocol"], []).append(p)
    out = []
    for proto in sorted(by_proto, key=_proto_order):
        group = by_proto[proto]
        keep = [p for p in group if not any(_dominates(q, p) for q in group if q is not p)]
        out.extend(sorted(keep, key=lambda p: (p["bits_per_peer"], -p["accuracy"], p["run"])))
    return out


def overall(points: list[dict]) -> list[dict]:
    """The landscape's frontier: the points no point of any protocol dominates, bits ascending."""
    keep = [p for p in points if not any(_dominates(q, p) for q in points if q is not p)]
    return sorted(keep, key=lambda p: (p["bits_per_peer"], -p["accuracy"], _proto_order(p["protocol"]), p["run"]))


def overall_lines(front: list[dict]) -> list[str]:
    """A markdown table of a frontier (`overall`'s, a protocol's): an accuracy over fewer seeds than its run
    has marked `*` and named below it."""
    lines, marked = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)], []
    for p in front:
        r = table_row(p)
        r["accuracy"] = md.starred(r["accuracy"], r, marked, p["run"])
        lines.append("| " + " | ".join(md.cell(r[c]) for c in COLUMNS) + " |")
    return lines + md.footnote(marked)


def _proto_order(name: str):
    return (PROTOCOLS.index(name), name) if name in PROTOCOLS else (len(PROTOCOLS), name)


def _slot(i: int) -> tuple[str, str]:
    # past ten the colours repeat: shift the marker so that no two of the first 100 slots share both
    return f"C{i % 10}", MARKERS[(i + i // 10) % len(MARKERS)]


def styles(names) -> dict[str, tuple[str, str]]:
    """Each name's (colour, marker). A protocol keeps its own slot (its place in PROTOCOLS), the same in
    every figure. Any other name, such as a figure's group (`tally_1600b`, `softlabel_8bit_320p`), takes
    the next free slot after the protocols' in sorted order, one each, and a colour no other name
    drawn holds while there are at most ten: hashing the names into the few free
    slots gave three groups of one figure the same colour and marker, indistinguishable in the legend."""
    names = sorted(set(names), key=_proto_order)
    out = {n: _slot(PROTOCOLS.index(n)) for n in names if n in PROTOCOLS}
    i, limit = len(PROTOCOLS), len(PROTOCOLS) + 100     # 100 slots: every (colour, marker) pair once
    for n in (n for n in names if n not in PROTOCOLS):
        taken = set(out.values())
        colours = {c for c, _ in taken} if len(names) <= 10 else set()   # ten names or fewer: ten colours
        while i < limit and (_slot(i) in taken or _slot(i)[0] in colours):
            i += 1
        out[n] = _slot(i if i < limit else len(out))    # beyond 100 names looks repeat
        i += 1
    return out


def plotted_bits(bits: float) -> float:
    """Where `bits` per peer sit on the figures' log x axis (0 bits, which a log axis cannot show, at
    ZERO_BITS_X)."""
    return bits if bits > 0 else ZERO_BITS_X


# ----------------------------------------------------------------------------- outputs

def table_row(p: dict) -> dict:
    """A point's row in the frontier tables (the figures' landscape tables use the same columns)."""
    return {"protocol": p["protocol"], "run": p["run"], "bits_per_peer": metrics.bits_text(p["bits_per_peer"]),
            "MB_per_peer": f"{p['MB_per_peer']:.6g}", "accuracy": f"{p['accuracy']:.4f}",
            "seeds_counted": p.get("seeds_counted", ""),        # "" where the accuracy is over every seed
            "seeds_nonfinite": p.get("seeds_nonfinite", "")}    # "" where no seed's value is NaN or inf


# The first line of each of table_paths' files, as write_tables writes it: a file there that starts
# otherwise is not pareto's, and is not replaced (metrics.refuse_foreign_beside).
TABLE_HEADS = (",".join(COLUMNS), "Pareto frontier per protocol", ",".join(COLUMNS + ("on_frontier",)))


def table_paths(fig: str) -> list[str]:
    """The tables written beside the figure `fig`: frontier CSV, frontier markdown, every point's CSV."""
    stem = Path(fig).with_suffix("")
    return [f"{stem}_frontier.csv", f"{stem}_frontier.md", f"{stem}_points.csv"]


def write_tables(points: list[dict], front: list[dict], fig: str, which: str, metric: str) -> list[str]:
    paths = table_paths(fig)
    atomic.write_csv(paths[0], COLUMNS + ("seeds_counted", "seeds_nonfinite"), [table_row(p) for p in front])
    on = {id(p) for p in front}
    atomic.write_csv(paths[2], COLUMNS + ("on_frontier", "accuracy_final", "accuracy_best", "dir", "seeds",
                                          "accuracy_final_std", "seeds_counted", "seeds_nonfinite"),
                     [{**table_row(p), "on_frontier": int(id(p) in on), "accuracy_final": "" if p["accuracy_final"] is None
                       else f"{p['accuracy_final']:.4f}",
                       # None: a redraw from per-seed CSVs of the last round only (experiments/redraw_pareto.py)
                       "accuracy_best": "" if p["accuracy_best"] is None else f"{p['accuracy_best']:.4f}", "dir": p["dir"], "seeds": p.get("seeds") or "",
                       "accuracy_final_std": "" if p.get("accuracy_final_std") is None
                       else f"{p['accuracy_final_std']:.4f}"}
                      for p in sorted(points, key=lambda p: (_proto_order(p["protocol"]), p["bits_per_peer"], p["run"]))])
    metric_text = "acc_global if present, else acc_mean" if metric == "auto" else metric
    lines = [f"Pareto frontier per protocol: {which} accuracy ({metric_text}) against total bits per peer "
             f"(up + down, last row); {len(front)} of {len(points)} runs."
             + (f" Accuracy is the {seeds_note(points)} (their std: `accuracy_final_std` in "
                f"{Path(paths[2]).name})." if seeds_note(points) else ""), "",
             *overall_lines(front)]
    if any(p["bits_per_peer"] == 0 for p in points):
        lines += ["", f"Runs with 0 bits (no communication, e.g. protocol local) are drawn at x = "
                      f"{ZERO_BITS_X:g} bit on the figure's log axis."]
    atomic.write_text(paths[1], "\n".join(lines) + "\n")
    return paths


def plot(points: list[dict], front: list[dict], out: str, which: str = "final", metric: str = "auto",
         title: str | None = None, also: tuple = ()) -> str:
    """Draw once, write `out` and every path in `also` (a figure's .png and .pdf: drawn and laid out twice
    before, about 0.4 s of CPU per figure); returns `out`."""
    fig, ax = metrics.pyplot().subplots(figsize=(7.0, 4.6))
    draw(ax, points, front, which, metric, title)
    metrics.save_figure(fig, out, *also)
    return out


def draw(ax, points: list[dict], front: list[dict], which: str = "final", metric: str = "auto",
         title: str | None = None, style: dict | None = None) -> None:
    """One Pareto panel on a matplotlib axis: every run faint, each protocol's frontier filled. `style`
    (`styles` of every name a figure's panels hold) keeps a group's look the same across its panels."""
    protos = sorted({p["protocol"] for p in points}, key=_proto_order)
    style = style or styles(protos)
    for proto in protos:
        colour, marker = style[proto]
        pts = [p for p in points if p["protocol"] == proto]
        fr = [p for p in front if p["protocol"] == proto]
        zero = any(p["bits_per_peer"] == 0 for p in pts)
        label = proto + (f" (0 bits, drawn at {ZERO_BITS_X:g} bit)" if zero else "")
        ax.scatter([plotted_bits(p["bits_per_peer"]) for p in pts], [p["accuracy"] for p in pts], color=colour,
                   marker=marker, s=22, alpha=0.45, linewidths=0)
        xs, ys = [plotted_bits(p["bits_per_peer"]) for p in fr], [p["accuracy"] for p in fr]
        ax.step(xs, ys, where="post", color=colour, linewidth=1.4)
        ax.scatter(xs, ys, color=colour, marker=marker, s=40, edgecolors="black", linewidths=0.6,
                   label=label, zorder=3)
    if all(p.get("dir") for p in points):     # plot drew the floor, pareto did not: tally at it looked cheap
        partition_file.draw_floor(ax, [p["dir"] for p in points], metric)
    ax.set_xscale("log")
    ax.set_xlabel("total bits per peer (up + down)")
    note = seeds_note(points)
    ax.set_ylabel(f"{which} test accuracy" + ("" if metric == "auto" else f" ({metric})")
                  + (f", {note}" if note else ""))
    top = ax.secondary_xaxis("top", functions=(lambda b: b / 8e6, lambda mb: mb * 8e6))
    top.set_xlabel("MB per peer")
    ax.set_title(title or f"accuracy vs communication: {len(points)} runs, frontier per protocol",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, title="frontier (filled) / all runs (faint)", title_fontsize=7)


def main(args) -> int:
    check_figure_out(args.out)
    if args.title is not None:
        from tallysim.results.plot_labels import check_text
        check_text("--title", args.title)                            # before the runs are read
    atomic.refuse_symlinks([args.out, *table_paths(args.out)])       # before a file is replaced
    for path, head in zip(table_paths(args.out), TABLE_HEADS):
        metrics.refuse_foreign_beside(args.out, Path(path), head, "pareto's tables")
    points = collect(args.runs, which=args.which, metric=args.metric, names=FLAGS)
    if not points:
        raise ConfigError(f"no complete runs (directories with metrics.jsonl) under {', '.join(args.runs)}")
    front = frontier(points)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    written = [plot(points, front, args.out, args.which, args.metric, args.title)]
    written += write_tables(points, front, args.out, args.which, args.metric)
    for proto in sorted({p["protocol"] for p in front}, key=_proto_order):
        fr = [p for p in front if p["protocol"] == proto]
        print(f"{proto}: " + ", ".join(f"{p['run']} {p['accuracy']:.4f} @ {p['MB_per_peer']:.4g} MB"
                                        for p in fr))
    # "is protocol X on the frontier?" is asked of all protocols at once: the per-protocol lines above
    # never say which points another protocol beats (the figures' landscape tables do: `overall`)
    print("all protocols: " + ", ".join(f"{p['protocol']} {p['run']} {p['accuracy']:.4f} @ {p['MB_per_peer']:.4g} MB"
                                        for p in overall(points)))
    for path in written:
        print(path)
    return 0
