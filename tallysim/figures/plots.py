"""Drawing and tables for each figure kind. Every figure also writes the numbers behind it as CSV.

`data` maps a group name to [(overrides {key: value text}, run directory)]. Accuracy is the server
model's where there is one (acc_global), else the peers' mean (acc_mean); with several seeds the
metrics rows already hold the mean and `<key>_std`.
"""
from __future__ import annotations

import csv
from pathlib import Path

from tallysim import atomic, config
from tallysim.results.plot_labels import WHICH_ACCURACY
from tallysim.figures.drawing import band, finish_axis, save
from tallysim.results.headline import seed_marks
from tallysim.results.md import cell, footnote, starred
from tallysim.figures.faults_plot import faults_fig
from tallysim.figures.groups_plot import groups_fig
from tallysim.figures.own_axes import columns, own_lines, varying
from tallysim.figures.privacy_plot import privacy_fig
from tallysim.figures.robustness import robustness_fig
from tallysim.figures.vocab_plot import vocab_fig
from tallysim.results.metrics import panel_of, accuracy_std as acc, bits_text, bits_to_target, pyplot, read_partition, \
    headline_key, read_run, save_figure


def curves(spec, data, stem, title) -> dict:
    """Accuracy vs cumulative bits per peer, one line per run; plus a summary table (Markdown)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.6))
    table, summary, marked = [], [], []          # marked: the summary's cells over fewer seeds (footnote)
    target = spec.get("target", 0.6)
    read = {d: read_run(d) for runs in data.values() for _, d in runs}
    which = {d: WHICH_ACCURACY[headline_key(rows[-1])] for d, (_, rows) in read.items() if rows}
    mixed = len(set(which.values())) > 1        # the axis then holds both: each legend entry says which
    for group, runs in data.items():
        for ov, d in runs:
            cfg, rows = read[d]
            label = group if len(runs) == 1 else f"{group} {' '.join(f'{k}={v}' for k, v in ov.items())}"
            pts = [(max(r["bits_per_peer"], 1.0), *acc(r)) for r in rows]
            shown = label + (f" ({which[d]})" if mixed and d in which else "")
            if rows and all(r["bits_per_peer"] == 0 for r in rows):   # `local`: a log axis has no 0
                shown += ", 0 bits (drawn at 1)"
            band(ax, [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], shown)
            table += [{"group": group, "run": d.name, "round": r["round"], "bits_per_peer": r["bits_per_peer"],
                       "accuracy": a, "accuracy_std": s, **seed_marks(r)}
                      for r, (_, a, s) in zip(rows, pts)]
            last = rows[-1]
            hit = bits_to_target(rows, target)
            final = starred(f"{acc(last)[0]:.4f} +- {acc(last)[1]:.4f}", seed_marks(last, final=True), marked, label)
            summary.append(f"| {cell(label)} | {cell(cfg.get('data', {}).get('name'))} | {final} "
                           f"| {last['bits_per_peer'] / 8e6:.4g} | {'not reached' if hit is None else bits_text(hit)} |")
    finish_axis(ax, "cumulative bits per peer (up + down)", "test accuracy (mean +- std over seeds)", title,
            legend_size=7)
    return save(fig, stem, table,
        f"| protocol | dataset | final accuracy | MB per peer | bits per peer to reach {target} |\n"
        "|---|---|---|---|---|\n" + "\n".join(summary + footnote(marked)) + "\n")


def final_vs(spec, data, stem, title) -> dict:
    """Final accuracy against the swept key `spec['x']`, one line per group, and per value of any other
    axis that varies within a group (a group's own `sweep`, `confvote.power=1,4`): such runs were drawn
    as one zigzag line of two points per x and written as CSV rows that differed in nothing but their
    numbers. Those axes are CSV columns too (empty for a group that does not sweep them)."""
    key = spec["x"]
    lines, other = own_lines(data, key)
    curves = {}
    for line, runs in lines.items():
        for ov, d in runs:
            _, rows = read_run(d)
            a, s = acc(rows[-1])
            curves.setdefault(line, []).append((float(ov[key]), a, s, rows[-1]["bits_per_peer"],
                                                {**columns(ov, other), **seed_marks(rows[-1], final=True)}))
    return final_vs_drawn(spec, curves, stem, title)


def final_vs_drawn(spec, curves, stem, title, labels=None) -> dict:
    """final_vs's drawing and CSV from its points: {group: [(x, accuracy, std, bits_per_peer, {more CSV
    columns})]}, the runs' or read back from CSVs (experiments/redraw_final_vs.py: a redraw without the
    runs); `labels` (group -> legend text) where the legend says more than the group's name."""
    plt = pyplot()
    key = spec["x"]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    table = []
    for group, pts in curves.items():
        pts = sorted(pts, key=lambda p: p[0])
        band(ax, [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], (labels or {}).get(group, group))
        table += [{"group": group, key: p[0], "accuracy": p[1], "accuracy_std": p[2], "bits_per_peer": p[3],
                   **p[4]} for p in pts]
    finish_axis(ax, spec.get("xlabel", key), "final test accuracy (mean +- std over seeds)", title,
            logx=spec.get("logx", True))
    return save(fig, stem, table)


def _active(cfg: dict) -> int:
    """A run's active peers per round, from its config.json, as the run counts them (its groups' A_g summed).
    Without groups the two fields alone, as before (an older run's config.json need not pass from_dict)."""
    if not cfg.get("model", {}).get("groups"):
        return max(1, int(round(cfg.get("participation", 1.0) * cfg["peers"])))
    c = config.from_dict(cfg, where="config.json")
    return sum(config.group_active_counts(c, config.parse_groups(c.model.groups)))


def classes(spec, data, stem, title) -> dict:
    """Bits per probe and bits to reach the target accuracy against the number of classes."""
    plt = pyplot()
    key, target = spec.get("x", "data.num_classes"), spec.get("target", 0.5)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    table = []
    lines, other = own_lines(data, key)        # a group's own sweep: a line per value
    for group, runs in lines.items():
        pts = []
        for ov, d in runs:
            cfg, rows = read_run(d)
            first = rows[0]
            part = read_partition(d)
            n_classes = len(part["class_counts"][0])      # works for synthetic C and named datasets
            # bits_up counts only the active peers (docs/protocols.md), so divide by them, not by P:
            # one vote costs ceil(log2 C) bits per probe for each peer that sends it. The run's own count
            # of them: with model.groups each group draws max(1, round(participation * P_g)), whose sum
            # may exceed round(participation * P) (small:3;big:1 at 0.5: 3, not 2, read 6 bits a 4-bit vote)
            active = _active(cfg)
            per_probe = first["bits_up"] / (first["round"] * active * cfg["probe"]["per_round"])
            hit = bits_to_target(rows, target)
            pts.append((n_classes, per_probe, hit, acc(rows[-1])[0], {**columns(ov, other),
                                                                        **seed_marks(rows[-1], final=True)}))
        pts.sort(key=lambda p: p[:2])
        a1.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=group)
        reached = [p for p in pts if p[2] is not None]
        a2.plot([p[0] for p in reached], [p[2] for p in reached], marker="o", label=group)
        table += [{"group": group, "classes": p[0], "bits_per_probe_up": p[1], "bits_per_peer_to_target": p[2],
                   "final_accuracy": p[3], **p[4]} for p in pts]
    for ax, ylab in ((a1, "uplink bits per probe"), (a2, f"bits per peer to reach accuracy {target}")):
        finish_axis(ax, "classes C", ylab, logy=True)
    fig.suptitle(title, fontsize=10)
    return save(fig, stem, table)


# Fig. 4's legend: what each metrics key measures, with the key (the CSV's column) beside it.
MECHANISM_LABELS = {"vote_acc": "vote's accuracy (vote_acc)", "softavg_acc": "soft average's accuracy (softavg_acc)",
                    "wrong_confidence": "mean confidence when wrong (wrong_confidence)"}


def mechanism(spec, data, stem, title) -> dict:
    """Over rounds: vote vs soft-average accuracy on the probes and wrong-prediction confidence."""
    plt = pyplot()
    key = spec.get("x", "partition.alpha")
    # a panel per run: with two groups, or a group's own sweep (distill.weight=0.5,1), at one x its
    # panels were titled alike and its CSV rows told apart by nothing; they say the group and the values
    runs = sorted(((g, ov, d) for g, rs in data.items() for ov, d in rs), key=lambda r: float(r[1][key]))
    split = varying([(ov, d) for _, ov, d in runs], key)
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.8), squeeze=False)
    table = []
    for ax, (group, ov, d) in zip(axes[0], runs):
        _, rows = read_run(d)
        t = [r["round"] for r in rows]
        for k, style in (("vote_acc", "-"), ("softavg_acc", "-"), ("wrong_confidence", "--")):
            band(ax, t, [r[k] for r in rows], [r.get(k + "_std", 0.0) for r in rows], MECHANISM_LABELS[k],
                  linestyle=style)
        named = {"group": group} if len(data) > 1 else {}
        ax.set_title(" ".join([*named.values(), f"{key}={ov[key]}", *(f"{k}={ov.get(k, '')}" for k in split)]),
                     fontsize=9)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))     # rounds are whole numbers
        ax.set_ylim(0, 1)
        ax.grid(True, alpha=0.3)
        shown = ("vote_acc", "softavg_acc", "wrong_confidence", "agreement")
        table += [{**named, key: ov[key], **columns(ov, split), "round": r["round"], **{k: r[k] for k in shown},
                   **seed_marks(r, shown)} for r in rows]
    axes[0][0].set_ylabel("on the round's probes (fraction)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return save(fig, stem, table)


def _every_round(point: dict) -> list[dict]:
    """One point per evaluated round of a run (`every_round` groups): for a protocol whose rounds do not
    depend on the total (FedAvg, FedProx, FedDF, tally), round r of a longer run is the run of r rounds,
    so one run gives the whole rounds axis. Its label is `<run>@r<round>`."""
    _, rows = read_run(point["dir"])
    out = []
    for r in rows:
        a = acc(r)[0]
        out.append({**point, "run": f"{point['run']}@r{r['round']}", "bits_per_peer": float(r["bits_per_peer"]),
                    "MB_per_peer": r["bits_per_peer"] / 8e6, "accuracy": a, "accuracy_final": a,
                    "accuracy_best": a, "rounds": r["round"], **seed_marks(r)})
    return out


def pareto_fig(spec, data, stem, title) -> dict:
    """Accuracy vs bits, each group's frontier (the groups in `every_round`: every evaluated round of
    their runs is a point). With `panels` (figures.panels), one panel per panel
    name, each with its own frontiers, tables `<stem>_<panel>_frontier.md|csv`, `_points.csv`, and
    `<stem>_frontier.md` gathering every panel's."""
    from tallysim.results import pareto
    points = []
    for group, runs in data.items():
        pts = pareto.collect([d for _, d in runs], log=lambda m: None)
        if group in spec.get("every_round", ()):
            pts = [q for p in pts for q in _every_round(p)]
        for p in pts:
            # A group that is not simply a protocol (e.g. an ablation) gets its own frontier.
            p["protocol"] = p["protocol"] if group in (p["protocol"], "distill") else group
        points += pts
    return pareto_drawn(spec, points, stem, title)


def pareto_drawn(spec, points, stem, title) -> dict:
    """pareto_fig's drawing and tables from its points (pareto.collect's dicts, or the rows of the
    figure's own `<stem>.csv` read back by figure_csv.points: a redraw without the runs)."""
    from tallysim.results import pareto
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    names = list(spec.get("panels") or {})
    if not names:
        front = pareto.frontier(points)
        png = pareto.plot(points, front, f"{stem}.png", title=title, also=(f"{stem}.pdf",))
        tables = pareto.write_tables(points, front, f"{stem}.png", "final", "auto")
        # every file written, as the figure's "wrote ..." line and its OUT/<name>.json list them: the
        # frontier's CSV was written and named nowhere
        return {"png": png, "pdf": f"{stem}.pdf", "csv": tables[2], "frontier": tables[1], "frontier_csv": tables[0]}
    by_panel = {n: [p for p in points if panel_of(p["dir"]) == n] for n in names}
    by_panel = {n: pts for n, pts in by_panel.items() if pts}
    plt = pyplot()
    fig, axes = plt.subplots(1, len(by_panel), figsize=(6.2 * len(by_panel), 4.8), squeeze=False)
    lines, rows = [f"# {title}", ""], []
    style = pareto.styles(p["protocol"] for p in points)     # one look per group in every panel
    landscape, landscape_rows = [], []     # spec "overall": the frontier over all protocols, per panel
    panel_files = []                       # each panel's own tables, listed with the figure's files
    for ax, (n, pts) in zip(axes[0], by_panel.items()):
        front = pareto.frontier(pts)
        pareto.draw(ax, pts, front, title=f"{n}: {len(pts)} runs", style=style)
        tables = pareto.write_tables(pts, front, f"{stem}_{n}.png", "final", "auto")
        panel_files += [(f"{n}_frontier_csv", tables[0]), (f"{n}_frontier", tables[1]), (f"{n}_points", tables[2])]
        if spec.get("overall"):
            best = pareto.overall(pts)
            ax.step([pareto.plotted_bits(p["bits_per_peer"]) for p in best], [p["accuracy"] for p in best],
                    where="post",
                    color="black", linestyle="--", linewidth=1.0, zorder=4, label="frontier over all protocols")
            ax.legend(fontsize=6, title="frontier (filled) / all runs (faint)", title_fontsize=6)
            landscape += [f"## {n}: the frontier over all protocols ({len(best)} of {len(pts)} points)", "",
                          *pareto.overall_lines(best), ""]
            landscape_rows += [{"panel": n, **pareto.table_row(p)} for p in best]
        lines += [f"## {n}", "", Path(tables[1]).read_text(), ""]
        with open(tables[2], newline="") as f:
            rows += [{"panel": n, **r} for r in csv.DictReader(f)]
    fig.suptitle(title, fontsize=11)
    save_figure(fig, f"{stem}.png", f"{stem}.pdf")
    atomic.write_text(f"{stem}_frontier.md", "\n".join(lines))
    atomic.write_csv(f"{stem}.csv", list(rows[0]) if rows else ["panel"], rows)
    out = {"png": f"{stem}.png", "pdf": f"{stem}.pdf", "csv": f"{stem}.csv", "frontier": f"{stem}_frontier.md",
           **dict(panel_files)}
    if landscape:
        atomic.write_text(f"{stem}_overall.md", "\n".join([f"# {title}: the frontier over all protocols", "",
                                                            *landscape]))
        atomic.write_csv(f"{stem}_overall.csv", list(landscape_rows[0]), landscape_rows)
        out.update(overall=f"{stem}_overall.md", overall_csv=f"{stem}_overall.csv")
    return out


SPEED_STYLE = {"tallysim": ("C0", "o"), "loop": ("C1", "s"), "vmap_ref": ("C2", "^"), "torch_ref": ("C3", "v")}


def speed(spec, rows, stem, title) -> dict:
    """One panel per model: samples/s of each implementation against P (bfloat16 dashed)."""
    plt = pyplot()
    models = list(dict.fromkeys(r["model"] for r in rows)) or ["mlp"]
    fig, axes = plt.subplots(1, len(models), figsize=(max(6.4, 4.6 * len(models)), 4.4), squeeze=False)
    for ax, m in zip(axes[0], models):
        for impl, (color, marker) in SPEED_STYLE.items():
            for dtype in dict.fromkeys(r["dtype"] for r in rows):
                pts = sorted((r["peers"], r["samples_per_s"]) for r in rows
                             if r["model"] == m and r["impl"] == impl and r["dtype"] == dtype)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, marker=marker,
                            linestyle="--" if dtype == "bfloat16" else "-",
                            label=impl + ("" if dtype == "float32" else f" {dtype}"))
        finish_axis(ax, "peers P", "local-training samples / s", m, logy=True, legend_size=7)
    fig.suptitle(f"{title}\n{rows[0]['device'] if rows else ''}", fontsize=10)
    keys = ("model", "peers", "dtype", "impl", "samples_per_s", "device", "sec", "compile_s", "conv", "steps", "batch")
    return save(fig, stem, [{k: r.get(k) for k in keys} for r in rows])


DRAW = {"curves": curves, "final_vs": final_vs, "classes": classes, "mechanism": mechanism,
        "pareto": pareto_fig, "speed": speed, "faults": faults_fig, "privacy": privacy_fig, "vocab": vocab_fig,
        "robustness": robustness_fig, "model_groups": groups_fig}


def draw(kind: str, spec: dict, data, stem: Path, title: str) -> dict:
    return DRAW[kind](spec, data, Path(stem), title)
