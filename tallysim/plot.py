"""metrics.jsonl files -> accuracy against cumulative bits per peer (log x)."""
from __future__ import annotations

import json
from pathlib import Path

from tallysim.config import ConfigError


def read_run(run_dir) -> tuple[dict, list[dict]]:
    """(config dict, metric rows) of one run directory."""
    d = Path(run_dir)
    metrics = d / "metrics.jsonl"
    if not metrics.exists():
        raise ConfigError(f"{d} has no metrics.jsonl; pass directories written by `tallysim run --out`")
    cfg = json.loads((d / "config.json").read_text()) if (d / "config.json").exists() else {}
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return cfg, rows


def run_label(cfg: dict, run_dir) -> str:
    name = cfg.get("protocol", {}).get("name", Path(run_dir).name)
    return f"{name} ({Path(run_dir).name})" if Path(run_dir).name != name else name


def best_accuracy(row: dict) -> float:
    """The server model where there is one, else the mean of the peers' own models."""
    return row["acc_global"] if row.get("acc_global") is not None else row["acc_mean"]


def plot_curves(run_dirs, out: str, metric: str = "auto", title: str | None = None) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for d in run_dirs:
        cfg, rows = read_run(d)
        rows = [r for r in rows if r["bits_per_peer"] > 0] or rows
        x = [max(r["bits_per_peer"], 1.0) for r in rows]
        y = [best_accuracy(r) if metric == "auto" else r[metric] for r in rows]
        ax.plot(x, y, marker="o", markersize=3, label=run_label(cfg, d))
    ax.set_xscale("log")
    ax.set_xlabel("cumulative bits per peer (up + down)")
    ax.set_ylabel("test accuracy" if metric == "auto" else metric)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
