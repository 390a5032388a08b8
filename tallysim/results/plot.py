"""`tallysim plot`: metrics.jsonl files -> accuracy against cumulative bits per peer (log x).

Reading the run directories (metrics.py) checks every file before anything is drawn. Beside the image,
`<stem>.csv` holds every point drawn (label, protocol, run, round, bits_per_peer, metric, value), so a
figure can be checked, or redrawn elsewhere, from the numbers behind it.
"""
from __future__ import annotations

import csv
from pathlib import Path

from tallysim import atomic
from tallysim.config import ConfigError
from tallysim.results import metrics
from tallysim.results.metrics import check_figure_out, columns, read_run

WHICH_ACCURACY = {"acc_global": "server model", "acc_mean": "peer mean"}
CSV_COLUMNS = ("label", "protocol", "run", "round", "bits_per_peer", "metric", "value")


def metric_value(row: dict, metric: str, where) -> float:
    v = metrics.metric(row, metric)
    if v is None:
        raise ConfigError(f"--metric {metric!r} is not a numeric column of {where}; allowed: auto, "
                          f"{', '.join(columns([row]))}")
    return v


def run_label(cfg: dict, run_dir) -> str:
    name = cfg.get("protocol", {}).get("name", Path(run_dir).name)
    return f"{name} ({Path(run_dir).name})" if Path(run_dir).name != name else name


def run_labels(cfgs: list[dict], run_dirs) -> list[str]:
    """The protocol name, and the run directory's name only where two runs share a protocol (without
    repeating the protocol name inside it: runs/tally_a01 of tally reads `tally (a01)`)."""
    protos = [c.get("protocol", {}).get("name", Path(d).name) for c, d in zip(cfgs, run_dirs)]
    out = []
    for p, d in zip(protos, run_dirs):
        if protos.count(p) == 1:
            out.append(p)
            continue
        rest = Path(d).name.replace(p, "").strip("_-=. ") or Path(d).parent.name
        out.append(f"{p} ({rest})")
    return out


def default_title(cfgs: list[dict]) -> str:
    """What the runs share: dataset, partition and peers (when they all agree)."""
    def same(get):
        vals = {str(get(c)) for c in cfgs}
        return vals.pop() if len(vals) == 1 else None
    data = same(lambda c: c.get("data", {}).get("name"))
    part = same(lambda c: (lambda p: f"Dirichlet {p.get('alpha')}" if p.get("kind") == "dirichlet"
                           else p.get("kind"))(c.get("partition", {})))
    peers = same(lambda c: c.get("peers"))
    bits = [x for x in (data, part, peers and f"{peers} peers") if x]
    return ", ".join(bits) if bits else "test accuracy vs communication"


def y_label(rows_per_run: list[list[dict]], metric: str) -> str:
    if metric != "auto":
        return metric
    which = sorted({WHICH_ACCURACY[metrics.headline_key(rows[-1])] for rows in rows_per_run if rows})
    return "test accuracy" + (f" ({' / '.join(which)})" if which else "")


def plot_curves(run_dirs, out: str, metric: str = "auto", title: str | None = None) -> str:
    check_figure_out(out)
    runs = [(d, *read_run(d)) for d in run_dirs]      # every file checked before drawing anything
    labels = run_labels([cfg for _, cfg, _ in runs], [d for d, _, _ in runs])
    series, points, kept = [], [], []
    for (d, cfg, rows), label in zip(runs, labels):
        rows = [r for r in rows if r["bits_per_peer"] > 0] or rows
        kept.append(rows)
        ys = [metric_value(r, metric, Path(d) / metrics.METRICS) for r in rows]
        series.append(([max(r["bits_per_peer"], 1.0) for r in rows], ys, label))
        name = metrics.headline_key(rows[-1]) if metric == "auto" and rows else metric
        points += [(label, cfg.get("protocol", {}).get("name", ""), str(d), r["round"], r["bits_per_peer"],
                    name, y) for r, y in zip(rows, ys)]
    fig, ax = metrics.pyplot().subplots(figsize=(6.4, 4.4))
    for x, y, label in series:
        ax.plot(x, y, marker="o", markersize=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("cumulative bits per peer (up + down)")
    ax.set_ylabel(y_label(kept, metric))
    ax.set_title(title or default_title([cfg for _, cfg, _ in runs]), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    metrics.save_figure(fig, out)
    write_points(Path(out).with_suffix(".csv"), points)
    return out


def write_points(path: Path, points) -> None:
    import io
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    w.writerows(points)
    atomic.write_text(path, buf.getvalue())
