"""metrics.jsonl files -> accuracy against cumulative bits per peer (log x).

Reading a run directory checks what the plots rely on, so a corrupt or hand-edited file fails in one
line naming the file (and the line) instead of as a traceback from inside matplotlib.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from tallysim.config import ConfigError


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text (corrupt?); it should hold JSON written by tallysim") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None


def _config(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        cfg = json.loads(_text(path))
    except ValueError as e:
        raise ConfigError(f"{path} is not valid JSON ({str(e)[:80]}); it is corrupt or truncated") from None
    proto = cfg.get("protocol", {}) if isinstance(cfg, dict) else None
    if not isinstance(proto, dict) or not isinstance(proto.get("name", ""), str):
        raise ConfigError(f"{path} is not a tallysim config (expected an object with protocol.name)")
    if "rounds" in cfg and not (isinstance(cfg["rounds"], int) and not isinstance(cfg["rounds"], bool)):
        raise ConfigError(f"{path}: rounds={cfg['rounds']!r} must be an integer")
    return cfg


def read_run(run_dir) -> tuple[dict, list[dict]]:
    """(config dict, metric rows) of one run directory; ConfigError naming the file when corrupt."""
    d = Path(run_dir)
    metrics = d / "metrics.jsonl"
    if not metrics.is_file():
        raise ConfigError(f"{d} has no metrics.jsonl; pass directories written by `tallysim run --out`")
    cfg = _config(d / "config.json")
    rows = []
    for i, line in enumerate(_text(metrics).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise ConfigError(f"{metrics} line {i} is not valid JSON (corrupt or torn by a crash); "
                              "remove that line or rerun") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{metrics} line {i} is not a JSON object of metrics")
        for key in ("bits_per_peer", "acc_mean"):
            if not _number(row.get(key)) or not math.isfinite(row[key]):
                raise ConfigError(f"{metrics} line {i}: {key}={row.get(key)!r} must be a finite number")
        if not isinstance(row.get("round", 0), int) or isinstance(row.get("round"), bool):
            raise ConfigError(f"{metrics} line {i}: round={row['round']!r} must be an integer")
        if row.get("acc_global") is not None and not _number(row["acc_global"]):
            raise ConfigError(f"{metrics} line {i}: acc_global={row['acc_global']!r} must be a number or null")
        rows.append(row)
    return cfg, rows


def columns(rows: list[dict]) -> list[str]:
    """Numeric columns of metric rows (what --metric may name)."""
    return sorted({k for r in rows for k, v in r.items() if _number(v) and k != "round"})


def metric_value(row: dict, metric: str, where) -> float:
    v = best_accuracy(row) if metric == "auto" else row.get(metric)
    if not _number(v):
        raise ConfigError(f"--metric {metric!r} is not a numeric column of {where}; allowed: auto, "
                          f"{', '.join(columns([row]))}")
    return v


def check_figure_out(out) -> Path:
    """A figure file: a supported image extension, not a directory, not under a file."""
    from matplotlib.backend_bases import FigureCanvasBase
    p = Path(out)
    allowed = sorted(FigureCanvasBase.get_supported_filetypes())
    if p.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a figure file such as {p / 'figure.png'}")
    if p.suffix.lower().lstrip(".") not in allowed:
        raise ConfigError(f"--out {out}: {p.suffix or 'no extension'} is not an image format; allowed: "
                          f"{', '.join('.' + a for a in allowed)}")
    for parent in p.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"--out {out}: {parent} is a file, not a directory")
    return p


def run_label(cfg: dict, run_dir) -> str:
    name = cfg.get("protocol", {}).get("name", Path(run_dir).name)
    return f"{name} ({Path(run_dir).name})" if Path(run_dir).name != name else name


def best_accuracy(row: dict) -> float:
    """The server model where there is one, else the mean of the peers' own models."""
    return row["acc_global"] if row.get("acc_global") is not None else row["acc_mean"]


def plot_curves(run_dirs, out: str, metric: str = "auto", title: str | None = None) -> str:
    check_figure_out(out)
    runs = [(d, *read_run(d)) for d in run_dirs]      # every file checked before drawing anything
    series = []
    for d, cfg, rows in runs:
        rows = [r for r in rows if r["bits_per_peer"] > 0] or rows
        series.append(([max(r["bits_per_peer"], 1.0) for r in rows],
                       [metric_value(r, metric, Path(d) / "metrics.jsonl") for r in rows], run_label(cfg, d)))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for x, y, label in series:
        ax.plot(x, y, marker="o", markersize=3, label=label)
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
