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
from tallysim.figures.own_axes import own_lines, varying
from tallysim.results.headline import seed_marks
from tallysim.results.md import cell, footnote, starred
from tallysim.figures.panel_layout import panel_grid
from tallysim.results.metrics import bits_text, read_run
from tallysim import model_groups
from tallysim.fields import ConfigError

MARKERS = "osD^v<>pX*"                                   # one per model group (protocol lines)
LOCAL_STYLES = (":", "-.", "--", (0, (1, 4)), (0, (5, 2, 1, 2)))       # one per model group (local lines)


def model_group_names(cfg: dict) -> list[str]:
    """The model groups of a run's config.json (its model.groups string), in declaration order."""
    return [g.name for g in model_groups.parse(cfg.get("model", {}).get("groups"))]


def local_baselines(panel: str, read: list):
    """baseline(line, overrides) -> {model group: final accuracy} of the panel's local-training run that a
    protocol's run gains over. A local group that sweeps an axis of its own (local_epochs=1,2) has a run per
    value, and each overwrote the last as every protocol's baseline: a run is paired with the local run of
    its own value of that axis, and refused in one line where none matches."""
    local = [(line, ov, rows, model_group_names(cfg)) for line, ov, (cfg, rows) in read
             if cfg.get("protocol", {}).get("name") == "local"]
    axes = varying([(ov, None) for _, ov, _, _ in local])

    def baseline(line: str, ov: dict) -> dict:
        match = [(n, rows, names) for n, lov, rows, names in local if all(lov.get(k) == ov.get(k) for k in axes)]
        if axes and not match:      # check_plan refuses it before any run; here, a figure drawn from results
            raise _no_local_run(panel, axes, [n for n, *_ in local], line)
        # several matches differ in no override (two local groups alike): one baseline, the last, as before
        return {g: rows[-1][f"acc_mean@{g}"] for _, rows, names in match for g in names}
    return baseline


def _no_local_run(panel: str, axes: list, local: list, line: str) -> ConfigError:
    return ConfigError(
        f"model_groups figure{f', panel {panel}' if panel else ''}: local training sweeps "
        f"{', '.join(axes)} of its own ({', '.join(local)}), so '{line}' has no local "
        "run of its value to gain over; allowed: the same values swept in the protocol's group (each "
        "run paired with the local run of its value), or one local run per panel")


def check_plan(plans: dict, configs: dict, has_panels: bool) -> None:
    """local_baselines' refusal from a figure's plan (figures.plans: group -> (cfg, [(run name, overrides)]) and
    each run's Config), before any run: raised while drawing, it came after every run of the figure had run."""
    from tallysim.results.metrics import panel_of
    per_panel: dict = {}
    for g, (_, runs) in plans.items():
        for (name, ov), cfg in zip(runs, configs[g]):
            per_panel.setdefault(panel_of(name) if has_panels else "", {}).setdefault(g, []).append(
                (dict(o.split("=", 1) for o in ov), cfg.protocol.name))
    for panel, by_group in per_panel.items():      # as groups_fig: a line per value of a group's own sweep
        lines = [(line, ov, proto) for line, runs in own_lines(by_group)[0].items() for ov, proto in runs]
        local = [(line, ov) for line, ov, proto in lines if proto == "local"]
        axes = varying([(ov, None) for _, ov in local])
        for line, ov, proto in lines:
            if proto != "local" and axes and not any(all(lov.get(k) == ov.get(k) for k in axes) for _, lov in local):
                raise _no_local_run(panel, axes, [n for n, _ in local], line)


def groups_fig(spec, data, stem, title) -> dict:
    triples, order, fig, axes = panel_grid(spec, data)
    per_panel = {}
    for p, t in triples.items():        # a group's own sweep in a panel (distill.weight=0.5,1): a line per value
        by_group: dict = {}
        for protocol, ov, d in t:
            by_group.setdefault(protocol, []).append((ov, d))
        per_panel[p] = [(line, ov, d) for line, runs in own_lines(by_group)[0].items() for ov, d in runs]
    colours = {p: f"C{i}" for i, p in enumerate(dict.fromkeys(line for t in per_panel.values() for line, _, _ in t))}
    table, lines, marked = [], [], []            # marked: the table's cells over fewer seeds (footnote)
    for ax, panel in zip(axes[0], order):
        # local training is the baseline by the run's protocol, not by its figure group's name: a user's
        # group "alone" of protocol local was drawn as a protocol, and no gain over it tabled (hostile19)
        read = [(protocol, ov, read_run(d)) for protocol, ov, d in per_panel[panel]]
        read.sort(key=lambda r: r[2][0].get("protocol", {}).get("name") != "local")     # local first
        baseline = local_baselines(panel, read)
        for protocol, ov, (cfg, rows) in read:
            is_local = cfg.get("protocol", {}).get("name") == "local"
            local = {} if is_local else baseline(protocol, ov)    # model group -> its local final accuracy
            for i, g in enumerate(model_group_names(cfg)):
                ys = [r[f"acc_mean@{g}"] for r in rows]
                xs = [max(float(r[f"bits_per_peer@{g}"]), 1.0) for r in rows]
                if is_local:
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
