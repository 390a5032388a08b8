"""The robustness study's drawing (`kind: robustness`, experiments/robustness.json): each aggregator
scored by its worst case over the attacks, as ByzFL and Blades score them.

Per group (an aggregator of one protocol), per Dirichlet alpha and faulty fraction, the worst-case
accuracy is the minimum over the group's `faults.kind` values of the final accuracy (the server
model's, else the honest peers' mean; mean over seeds). Writes a heatmap per alpha (groups x
fractions), `<stem>_table.md` (the worst case and the attack that achieves it) and `<stem>.csv` (every
run's accuracy next to its cell's worst case, and `seeds_counted` where that accuracy is a mean over only
the seeds that have a value; such a worst case is marked `*` in the Markdown table).
"""
from __future__ import annotations

from typing import Optional

from tallysim.figures.drawing import save
from tallysim.figures.own_axes import own_lines
from tallysim.results.headline import seed_marks
from tallysim.results.md import cell, footnote, starred
from tallysim.results.metrics import HONEST, accuracy_std, headline_key, pyplot, read_run


def worst_cases(data: dict, partial: Optional[dict] = None) -> dict:
    """{(group, alpha, fraction): {attack: accuracy}} from the runs' last rows. `partial`, given, gets
    {(group, alpha, fraction, attack): headline.seed_marks' {seeds_counted: "final over 2 of 3 seeds",
    seeds_nonfinite: ""}} for each accuracy that is a mean over only the seeds that have a value (a seed
    stopped non-finite, say) or holds a diverged seed's NaN or inf ("1 of 3 seeds diverged")."""
    cells: dict = {}
    # a group's own sweep besides the drawn axes (distill.weight=0.5,1): a row per value; the values
    # overwrote each other in a cell, the last run's accuracy kept in silence
    for group, runs in own_lines(data, "partition.alpha", "faults.fraction", "faults.kind")[0].items():
        for ov, d in runs:
            cfg, rows = read_run(d)
            alpha = float(ov.get("partition.alpha", cfg["partition"]["alpha"]))
            frac = float(ov.get("faults.fraction", cfg["faults"]["fraction"]))
            kind = ov.get("faults.kind", cfg["faults"]["kind"])
            cells.setdefault((group, alpha, frac), {})[kind] = accuracy_std(rows[-1], HONEST)[0]
            marks = seed_marks(rows[-1], (headline_key(rows[-1], HONEST),), final=True)
            if partial is not None and any(marks.values()):
                partial[(group, alpha, frac, kind)] = marks
    return cells


def worst_of(cells: dict) -> dict:
    """{cell: (attack, accuracy)} of the attack with the lowest accuracy in each cell; a NaN one (a seed
    diverged under it) the lowest of all: NaN compares false, so min kept it only where it came first and
    otherwise showed a finite attack as the cell's worst case, the divergence unseen."""
    return {k: min(v.items(), key=lambda kv: (float("-inf") if kv[1] != kv[1] else kv[1], kv[0]))   # NaN != NaN
            for k, v in cells.items()}


def robustness_fig(spec, data, stem, title) -> dict:
    plt = pyplot()
    partial: dict = {}
    cells = worst_cases(data, partial)
    groups = [g for g in own_lines(data, "partition.alpha", "faults.fraction", "faults.kind")[0]
              if any(c[0] == g for c in cells)]      # a group whose runs all failed: left out
    alphas = sorted({a for _, a, _ in cells})
    fracs = sorted({f for _, _, f in cells})
    worst = worst_of(cells)
    fig, axes = plt.subplots(1, len(alphas), figsize=(1.0 * len(fracs) * len(alphas) + 3.5, 0.4 * len(groups) + 1.8),
                             squeeze=False)
    for col, a in enumerate(alphas):
        ax = axes[0][col]
        grid = [[worst.get((g, a, f), (None, float("nan")))[1] for f in fracs] for g in groups]
        ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if v == v:
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if v < 0.6 else "black")
        ax.set_xticks(range(len(fracs)), [f"{f:g}" for f in fracs])
        ax.set_yticks(range(len(groups)), groups if col == 0 else [""] * len(groups), fontsize=7)
        ax.set_xlabel("faulty fraction (cells: worst-case accuracy over attacks)" if col == 0 else "faulty fraction",
                      fontsize=8)
        ax.set_title(f"Dirichlet alpha {a:g}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    # seeds_counted, seeds_nonfinite: "" where the accuracy is the mean over every seed, all finite
    table = [{"group": g, "alpha": a, "fraction": f, "attack": k, "accuracy": acc,
              "worst_accuracy": worst[(g, a, f)][1], "worst_attack": worst[(g, a, f)][0],
              **(partial.get((g, a, f, k)) or seed_marks({}))}
             for (g, a, f), v in sorted(cells.items(), key=lambda kv: (groups.index(kv[0][0]), *kv[0][1:]))
             for k, acc in sorted(v.items())]
    return save(fig, stem, table, markdown(groups, alphas, fracs, worst, partial))


def markdown(groups, alphas, fracs, worst, partial: Optional[dict] = None) -> str:
    """The worst case per cell; one that is a mean over fewer seeds than its run has (`partial`, as
    worst_cases fills it) marked `*` and said below the table, as `table` says it of its rows."""
    partial = partial or {}
    head = [f"a={a:g} f={f:g}" for a in alphas for f in fracs]
    lines = ["Worst-case final accuracy over the attacks (the attack reaching it in brackets), per "
             "aggregator, Dirichlet alpha `a` and faulty fraction `f`.", "",
             "| aggregator | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    marked = []
    for g in groups:
        row = []
        for a in alphas:
            for f in fracs:
                k, v = worst.get((g, a, f), (None, None))
                text = "" if v is None else f"{v:.3f}" + ("" if f == 0 else f" ({k})")
                row.append(starred(text, partial.get((g, a, f, k), {}), marked, f"{g} a={a:g} f={f:g} ({k})"))
        lines.append(f"| {cell(g)} | " + " | ".join(row) + " |")
    lines += footnote(marked)
    return "\n".join(lines) + "\n"
