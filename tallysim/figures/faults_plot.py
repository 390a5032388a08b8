"""The faults figure (fig8, `kind: faults`): final accuracy against the faulty fraction, a panel per facet,
a line per group (and per value of a group's own sweep, own_axes.py), and below the probe group's vote
and soft average; its table the largest fraction each group tolerates."""
from __future__ import annotations

from tallysim.figures.drawing import band, finish_axis, save
from tallysim.figures.own_axes import columns, own_lines
from tallysim.results.headline import seed_marks
from tallysim.results.md import cell, footnote, starred
from tallysim.results.metrics import HONEST, accuracy_std as acc, headline_key, pyplot, read_run


def honest_acc(row: dict) -> tuple[float, float]:
    """The server model's accuracy where there is one, else the mean over the honest peers (those
    outside the faulty set; `acc_mean` without faults), else the peers' mean."""
    return acc(row, HONEST)


def tolerated(points: list[tuple[float, float]], within: float):
    """The largest x such that every point at or below it is within `within` of the accuracy at the
    smallest x (the fault-free one); None when there is no point."""
    points = sorted(points)
    if not points:
        return None
    base, best = points[0][1], points[0][0]
    for x, a in points[1:]:
        if a < base - within:
            break
        best = x
    return best


PROBE_STYLE = (("vote_acc", "-", "C0"), ("softavg_acc", "--", "C1"),
               ("vote_acc_honest", ":", "C0"), ("softavg_acc_honest", ":", "C1"))


def faults_fig(spec, data, stem, title) -> dict:
    """Final accuracy against the faulty fraction `spec['x']`, one panel per value of the `facets`
    keys (e.g. fault kind x partition), one line per group (top row); below, on the probes of the
    `probe_group`'s runs, the vote's and the soft average's accuracy (and the same over the honest
    peers alone, dotted) against the fraction. Also `<stem>_table.md`: per panel and group, the
    fault-free accuracy and the largest fraction up to which the accuracy stays within `within`
    (default 0.05) of it."""
    plt = pyplot()
    key, keys = spec.get("x", "faults.fraction"), spec.get("facets", ["faults.kind", "partition.kind"])
    within, probe_group = spec.get("within", 0.05), spec.get("probe_group", "tally")
    panels: dict[tuple, dict[str, list]] = {}
    lines, other = own_lines(data, key, *keys)      # a group's own sweep: a line per value
    own = {}                                        # (panel, line, x) -> its own axes' CSV columns
    origin = {line: g for g, runs in data.items() for line in own_lines({g: runs}, key, *keys)[0]}
    for group, runs in lines.items():
        for ov, d in runs:
            cfg, rows = read_run(d)
            p = tuple(ov.get(k, "") for k in keys)
            panels.setdefault(p, {}).setdefault(group, []).append((float(ov[key]), cfg, rows[-1]))
            own[(p, group, float(ov[key]))] = columns(ov, other)
    order = sorted(panels)
    table_fracs = sorted({x for g in panels.values() for pts in g.values() for x, _, _ in pts})
    fig, axes = plt.subplots(2, len(order), figsize=(4.2 * len(order), 7.4), squeeze=False)
    table, summary, marked = [], [], []          # marked: the table's cells over fewer seeds (footnote)
    for col, p in enumerate(order):
        name = ", ".join(p)
        top, bottom = axes[0][col], axes[1][col]
        for group, pts in panels[p].items():
            pts.sort(key=lambda t: t[0])
            cfg = pts[0][1]
            if "dirichlet" in p:
                name = ", ".join(f"{v} {cfg['partition']['alpha']:g}" if v == "dirichlet" else v for v in p)
            accs = [honest_acc(r) for _, _, r in pts]
            band(top, [x for x, _, _ in pts], [a for a, _ in accs], [s for _, s in accs], group)
            for (x, _, r), (a, s) in zip(pts, accs):
                table.append({"group": group, **dict(zip(keys, p)), **own[(p, group, x)], key: x,
                              "accuracy": a, "accuracy_std": s,
                              **{k: r.get(k) for k, _, _ in PROBE_STYLE}, "acc_mean": r.get("acc_mean"),
                              "faulty": r.get("faulty"), "bits_per_peer": r["bits_per_peer"],
                              **seed_marks(r, (headline_key(r, HONEST), *(k for k, _, _ in PROBE_STYLE)), final=True)})
            tol = tolerated([(x, a) for (x, _, _), (a, _) in zip(pts, accs)], within)
            at = {x: (a, seed_marks(r, (headline_key(r, HONEST),), final=True)) for (x, _, r), (a, _) in zip(pts, accs)}
            row = " | ".join("" if x not in at else starred(f"{at[x][0]:.3f}", at[x][1], marked, f"{name} {group} {key}={x:g}")
                             for x in table_fracs)
            summary.append(f"| {cell(name)} | {cell(group)} | {row} | {tol:g} |")
            if origin[group] == probe_group:         # each of its own sweep's lines too
                for k, style, color in PROBE_STYLE:
                    # the points with a value (null: no honest peer, or nothing scored), not none of them
                    xy = [(x, r.get(k)) for x, _, r in pts if r.get(k) is not None]
                    if xy:
                        bottom.plot([x for x, _ in xy], [y for _, y in xy], marker="o", markersize=3,
                                    linestyle=style, color=color, label=k + group[len(probe_group):])
        finish_axis(top, key, "final test accuracy" if col == 0 else "", name, logx=False, legend_size=6)
        top.set_ylim(0, 1)
        if bottom.lines:
            finish_axis(bottom, key, f"on the probes, {probe_group} runs" if col == 0 else "", None, logx=False,
                        legend_size=6)
        else:
            bottom.text(0.5, 0.5, f"no {probe_group} runs", ha="center", transform=bottom.transAxes)
        bottom.set_ylim(0, 1)
    fig.suptitle(title, fontsize=10)
    head = " | ".join(f"{x:g}" for x in table_fracs)
    return save(fig, stem, table,
        f"Final accuracy (server model, else the honest peers' mean; mean over seeds) at {key} = {head}, "
        f"and the largest {key} up to which it stays within {within:g} of the fault-free accuracy.\n\n"
        f"| setting | aggregator | {head} | within {within:g} up to |\n"
        f"|---|---|{'---|' * len(table_fracs)}---|\n" + "\n".join(summary + footnote(marked)) + "\n")
