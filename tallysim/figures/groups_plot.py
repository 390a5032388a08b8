"""The model-groups figure (fig12, issue 34): peers of different architectures in one run (model.groups,
docs/groups.md). One panel per `panels` entry (Dirichlet 0.1 and 1.0), one colour per protocol (the
figure's groups), one marker per model group: the group's mean accuracy (`acc_mean@NAME`) against its
cumulative bits per peer (`bits_per_peer@NAME`). Local training sends nothing: its groups are dotted
horizontal lines (one style per model group) at their final accuracy. Also `<stem>_table.md`: per panel, protocol and model group,
the final accuracy, the bits per peer and the gain over local training of the same group (which group
gains from the others, which loses).
"""
from __future__ import annotations

from tallysim.figures.drawing import finish_axis, save
from tallysim.figures.own_axes import own_lines
from tallysim.results.headline import seed_marks
from tallysim.results.md import cell, footnote, starred
from tallysim.figures.panel_layout import panel_grid
from tallysim.results.metrics import bits_text, read_run
from tallysim import model_groups

MARKERS = "osD^v<>pX*"                                   # one per model group (protocol lines)
LOCAL_STYLES = (":", "-.", "--", (0, (1, 4)), (0, (5, 2, 1, 2)))       # one per model group (local lines)


def model_group_names(cfg: dict) -> list[str]:
    """The model groups of a run's config.json (its model.groups string), in declaration order."""
    return [g.name for g in model_groups.parse(cfg.get("model", {}).get("groups"))]


def groups_fig(spec, data, stem, title) -> dict:
    triples, order, fig, axes = panel_grid(spec, data)
    per_panel = {}
    for p, t in triples.items():        # a group's own sweep in a panel (distill.weight=0.5,1): a line per value
        by_group: dict = {}
        for protocol, ov, d in t:
            by_group.setdefault(protocol, []).append((ov, d))
        per_panel[p] = [(line, d) for line, runs in own_lines(by_group)[0].items() for _, d in runs]
    colours = {p: f"C{i}" for i, p in enumerate(dict.fromkeys(line for t in per_panel.values() for line, _ in t))}
    table, lines, marked = [], [], []            # marked: the table's cells over fewer seeds (footnote)
    for ax, panel in zip(axes[0], order):
        local = {}                                    # model group -> local training's final accuracy
        # local training is the baseline by the run's protocol, not by its figure group's name: a user's
        # group "alone" of protocol local was drawn as a protocol, and no gain over it tabled (hostile19)
        read = [(protocol, read_run(d)) for protocol, d in per_panel[panel]]
        read.sort(key=lambda r: r[1][0].get("protocol", {}).get("name") != "local")     # local first
        for protocol, (cfg, rows) in read:
            is_local = cfg.get("protocol", {}).get("name") == "local"
            for i, g in enumerate(model_group_names(cfg)):
                ys = [r[f"acc_mean@{g}"] for r in rows]
                xs = [max(float(r[f"bits_per_peer@{g}"]), 1.0) for r in rows]
                if is_local:
                    local[g] = ys[-1]
                    ax.axhline(ys[-1], color="0.4", linestyle=LOCAL_STYLES[i % len(LOCAL_STYLES)],
                               linewidth=1, label=f"{protocol} {g}")
                else:
                    ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], markersize=4, color=colours[protocol],
                            label=f"{protocol} {g}")
                gain = ys[-1] - local[g] if g in local and not is_local else None
                table += [{"panel": panel, "protocol": protocol, "model_group": g, "round": r["round"],
                           "bits_per_peer": r[f"bits_per_peer@{g}"], "accuracy": a,
                           **seed_marks(r, (f"acc_mean@{g}",))} for r, a in zip(rows, ys)]
                lines.append(f"| {cell(panel)} | {cell(protocol)} | {g} | {rows[-1]['round']} | "
                             f"{starred(f'{ys[-1]:.4f}', seed_marks(rows[-1], (f'acc_mean@{g}',), final=True), marked, f'{panel} {protocol} {g}')} | "
                             f"{bits_text(rows[-1][f'bits_per_peer@{g}'])} | "
                             f"{'-' if gain is None else f'{gain:+.4f}'} |")
        finish_axis(ax, "cumulative bits per peer of the group (up + down)", "group's mean test accuracy",
                panel, logx=True, legend_size=6)
    fig.suptitle(title, fontsize=10)
    return save(fig, stem, table,
        "Final mean test accuracy of each model group's peers, its cumulative bits per peer (up + down), and "
        "its gain over local training of the same group in the same panel (positive: the group gains from "
        "the others' predictions; negative: it loses).\n\n"
        "| panel | protocol | model group | rounds | final accuracy | bits per peer | gain over local |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(lines + footnote(marked)) + "\n")
