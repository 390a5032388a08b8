"""What every figure kind shares (plots.py and the kinds in modules of their own): an axis finished the
same way, and the files a figure writes: `<stem>.png` and `.pdf`, the numbers behind it as `<stem>.csv`
and, for a kind that has one, its Markdown table `<stem>_table.md`; and the note naming the runs whose
points are means over fewer seeds than they have, or hold a diverged seed's NaN or inf (partial_notes; every
table and CSV a figure writes marks such a point too: `seeds_counted` and `seeds_nonfinite` CSV columns,
headline.seed_marks, and in a Markdown table the value followed by `*` and a footnote naming it, or by
"(1 of 3 seeds diverged)", md.starred and md.footnote)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from tallysim import atomic
from tallysim.results.headline import seed_notes
from tallysim.results.metrics import HONEST, bits_text, headline_key, read_run, save_figure
from tallysim.results.rows import SEEDS_COUNTED, SEEDS_NONFINITE


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



# The row keys each figure kind draws ("auto": the headline, acc_global else acc_mean; "honest": the fault
# kinds' acc_global else acc_mean_honest else acc_mean, HONEST; "acc_mean@": each model group's); the kinds
# not named draw the headline alone; speed reads no run.
DRAWN = {"mechanism": ("vote_acc", "softavg_acc", "wrong_confidence"),
         "faults": ("honest", "vote_acc", "softavg_acc", "vote_acc_honest", "softavg_acc_honest"),
         "robustness": ("honest",), "model_groups": ("acc_mean@",), "speed": ()}


def _drawn(key: str, rows: list) -> list[str]:
    """The row keys `key` (a DRAWN entry) stands for in a run's rows."""
    if key == "honest":
        return [headline_key(rows[-1], HONEST)] if rows else []
    if key == "acc_mean@":
        return sorted({k for r in rows for f in (SEEDS_COUNTED, SEEDS_NONFINITE) for k in (r.get(f) or {})
                       if k.startswith(key)})
    return [key]


def partial_notes(kind: str, data: dict, who: str) -> list[str]:
    """For each key figure kind `kind` draws, the line `table`, `plot` and `pareto` say (headline.partial_note)
    naming the runs of `data` ({group: [(overrides, run directory)]}) where a point is a mean over only the
    seeds that have a value (metrics.jsonl's seeds_counted: a 3-seed dropout run's vote_acc where one seed's
    vote never arrived), and where one holds a diverged seed's NaN or inf (seeds_nonfinite); [] where every
    point is over every seed. A figure drew such a point as any other."""
    runs = {(f"{group} {d.name}", d): read_run(d)[1] for group, rs in data.items() for _, d in rs} \
        if kind != "speed" else {}
    lines = []
    for key in DRAWN.get(kind, ("auto",)):
        short = {}
        for (label, _), rows in runs.items():
            for name in _drawn(key, rows):
                short.setdefault(name if key == "acc_mean@" else key, []).append((label, rows, name))
        for k, named in short.items():
            lines += seed_notes(who, "auto" if k in ("auto", "honest") else k, named)
    return lines


def band(ax, x, y, s, label, **kw):
    # a null value (vote_acc where a text round scored no probe position) is no point: drawn without it,
    # as `plot --metric` draws it; None in the band's arithmetic raised a TypeError
    keep = [i for i, v in enumerate(y) if v is not None and not (isinstance(v, float) and math.isnan(v))]
    x, y, s = [x[i] for i in keep], [y[i] for i in keep], [s[i] or 0.0 for i in keep]
    line, = ax.plot(x, y, marker="o", markersize=3, label=label, **kw)
    if any(s):
        ax.fill_between(x, [a - b for a, b in zip(y, s)], [a + b for a, b in zip(y, s)],
                        color=line.get_color(), alpha=0.15, linewidth=0)
