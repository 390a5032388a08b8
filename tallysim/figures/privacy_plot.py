"""The privacy figure (fig10): final accuracy against the run's final epsilon, one panel per value of
the `facets` keys (e.g. the Dirichlet alpha), one line per group (protocol); each group's non-private run
(privacy.noise=0, epsilon infinite) is a dashed horizontal line. Also `<stem>_table.md`: per panel and
group, epsilon, accuracy and bits per peer at every noise level."""
from __future__ import annotations

import json
import math

from tallysim.figures.drawing import finish_axis, save
from tallysim.figures.own_axes import columns, own_lines
from tallysim.results.headline import seed_marks
from tallysim.results.md import cell, footnote, starred
from tallysim.results.metrics import accuracy_std as acc, pyplot, read_run


def privacy_fig(spec, data, stem, title) -> dict:
    plt = pyplot()
    keys = spec.get("facets", ["partition.alpha"])
    panels: dict[tuple, dict[str, list]] = {}
    cfgs = []
    # a group's own sweep besides the noise (distill.weight=0.5,1): a line per value, as final_vs
    lines, other = own_lines(data, "privacy.noise", *keys)
    for group, runs in lines.items():
        for ov, d in runs:
            cfg, rows = read_run(d)
            cfgs.append(cfg)
            p = tuple(ov.get(k, "") for k in keys)
            noise = float(cfg.get("privacy", {}).get("noise", 0.0))
            a, s = acc(rows[-1])
            eps = rows[-1].get("epsilon", math.inf) if noise > 0 else math.inf
            panels.setdefault(p, {}).setdefault(group, []).append(
                (noise, eps, a, s, rows[-1]["bits_per_peer"], seed_marks(rows[-1], final=True), columns(ov, other)))
    order = sorted(panels)
    fig, axes = plt.subplots(1, max(len(order), 1), figsize=(4.6 * max(len(order), 1), 4.0), squeeze=False)
    table, lines, marked = [], [], []            # marked: the table's cells over fewer seeds (footnote)
    for col, p in enumerate(order):
        ax = axes[0][col]
        for group, pts in panels[p].items():
            pts.sort(key=lambda t: t[0])
            private = [t for t in pts if math.isfinite(t[1])]
            line = None
            if private:
                line, = ax.plot([t[1] for t in private], [t[2] for t in private], marker="o", markersize=3,
                                label=group)
            for noise, eps, a, s, bits, part, cols in pts:
                if not math.isfinite(eps):
                    ax.axhline(a, linestyle="--", linewidth=1, color=line.get_color() if line else None,
                               label=None if line else f"{group} (no noise)")
                table.append({"group": group, **dict(zip(keys, p)), **cols, "noise": noise, "epsilon": eps,
                              "accuracy": a, "accuracy_std": s, "bits_per_peer": bits, **part})
                lines.append(f"| {cell(', '.join(p))} | {cell(group)} | {noise:g} | "
                             f"{'inf' if not math.isfinite(eps) else f'{eps:.3g}'} | "
                             f"{starred(f'{a:.3f}', part, marked, f'{group} noise {noise:g}')} | {bits / 8e6:.3g} |")
        finish_axis(ax, "epsilon at delta (cumulative, user level)", "final test accuracy" if col == 0 else "",
                ", ".join(f"{k}={v}" for k, v in zip(keys, p)), logx=True, legend_size=7)
        ax.set_ylim(0, 1)
    fig.suptitle(title, fontsize=10)
    return save(fig, stem, table,
        "Final accuracy (server model, else the peers' mean; mean over seeds) against the final epsilon "
        f"{epsilon_terms(cfgs)}.\n\n"
        f"| {', '.join(keys)} | protocol | privacy.noise | epsilon | accuracy | MB per peer |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(lines + footnote(marked)) + "\n")


def _shared(cfgs: list[dict], *path):
    """The value of a config field shared by every run (None when they differ or lack it)."""
    vals = set()
    for c in cfgs:
        for k in path:
            c = c.get(k) if isinstance(c, dict) else None
        vals.add(json.dumps(c))
    return json.loads(vals.pop()) if len(vals) == 1 else None


def epsilon_terms(cfgs: list[dict]) -> str:
    """What the table's epsilon is and in which setting, from the runs' configs: per peer (user level:
    one peer's whole data replaced), cumulative over the run's rounds, at the runs' privacy.delta."""
    delta = _shared(cfgs, "privacy", "delta")
    acct = _shared(cfgs, "privacy", "accountant") or "rdp"
    setting = [x for x in (
        _shared(cfgs, "data", "name"),
        (lambda p: p is not None and f"{p} peers")(_shared(cfgs, "peers")),
        (lambda m: m and f"model {m}")(_shared(cfgs, "model", "name")),
        (lambda r: r is not None and f"{r} rounds")(_shared(cfgs, "rounds")),
        (lambda q: q is not None and f"participation {q:g}")(_shared(cfgs, "participation")),
        (lambda m: m is not None and f"{m} probes per round")(_shared(cfgs, "probe", "per_round")),
        (lambda s: s is not None and f"{s} seed{'' if s == 1 else 's'}")(_shared(cfgs, "seeds"))) if x]
    at = f"delta = {delta:g}" if delta is not None else "each run's privacy.delta"
    return (f"(epsilon per peer, user level: one peer's whole dataset replaced; cumulative over the run's "
            f"rounds, at {at}, dp-accounting's {acct.upper()} accountant; inf: no noise)"
            + (f". Setting: {', '.join(setting)}" if setting else ""))
