"""`tallysim plot`: metrics.jsonl files -> accuracy against cumulative bits per peer (log x).

Reading the run directories (metrics.py) checks every file before anything is drawn.
"""
from __future__ import annotations

from pathlib import Path

from tallysim.config import ConfigError
from tallysim.results import metrics
from tallysim.results.metrics import check_figure_out, columns, read_run


def metric_value(row: dict, metric: str, where) -> float:
    v = metrics.metric(row, metric)
    if v is None:
        raise ConfigError(f"--metric {metric!r} is not a numeric column of {where}; allowed: auto, "
                          f"{', '.join(columns([row]))}")
    return v


def run_label(cfg: dict, run_dir) -> str:
    name = cfg.get("protocol", {}).get("name", Path(run_dir).name)
    return f"{name} ({Path(run_dir).name})" if Path(run_dir).name != name else name


def plot_curves(run_dirs, out: str, metric: str = "auto", title: str | None = None) -> str:
    check_figure_out(out)
    runs = [(d, *read_run(d)) for d in run_dirs]      # every file checked before drawing anything
    series = []
    for d, cfg, rows in runs:
        rows = [r for r in rows if r["bits_per_peer"] > 0] or rows
        series.append(([max(r["bits_per_peer"], 1.0) for r in rows],
                       [metric_value(r, metric, Path(d) / metrics.METRICS) for r in rows], run_label(cfg, d)))
    fig, ax = metrics.pyplot().subplots(figsize=(6.4, 4.4))
    for x, y, label in series:
        ax.plot(x, y, marker="o", markersize=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("cumulative bits per peer (up + down)")
    ax.set_ylabel("test accuracy" if metric == "auto" else metric)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    metrics.save_figure(fig, out)
    return out
