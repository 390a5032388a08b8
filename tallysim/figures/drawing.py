"""What every figure kind shares (plots.py and the kinds in modules of their own): an axis finished the
same way, and the files a figure writes: `<stem>.png` and `.pdf`, the numbers behind it as `<stem>.csv`
and, for a kind that has one, its Markdown table `<stem>_table.md`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from tallysim import atomic
from tallysim.results.metrics import bits_text, save_figure


def save(fig, stem: Path, table: list[dict], markdown: Optional[str] = None) -> dict:
    """Writes the figure (PNG, PDF), its rows (CSV) and, given `markdown`, `<stem>_table.md`; returns
    {kind: path}, as the figure's `<tag>.json` records them."""
    paths = {"png": f"{stem}.png", "pdf": f"{stem}.pdf", "csv": f"{stem}.csv"}
    save_figure(fig, paths["png"], paths["pdf"])
    # every count of bits (bits_per_peer, bits_per_peer@<group>, bits_per_peer_to_target) in the one format
    table = [{k: bits_text(v) if k.startswith("bits_per_peer") else v for k, v in r.items()} for r in table]
    atomic.write_csv(paths["csv"], list(table[0]) if table else ["empty"], table)
    if markdown is not None:
        paths["table"] = f"{stem}_table.md"
        atomic.write_text(paths["table"], markdown)
    return paths


def finish_axis(ax, xlabel: str, ylabel: str, title: str = None, logx=True, logy=False, legend_size=8):
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size)
