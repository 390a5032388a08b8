"""The panel layout the text and model-group figures share: runs split by panel, one axis per panel."""
from __future__ import annotations

from tallysim.results.metrics import panel_of, pyplot


def panel_grid(spec: dict, data: dict):
    """(per_panel, order, fig, axes): per_panel maps a panel name to its (group, overrides, run dir)
    triples (one panel "" when the spec has none); order is the spec's panel order, then any other; one
    axis per panel in a row."""
    plt = pyplot()
    names = list(spec.get("panels") or {}) or [""]
    per_panel: dict[str, list] = {}
    for group, runs in data.items():
        for ov, d in runs:
            per_panel.setdefault(panel_of(d) if spec.get("panels") else "", []).append((group, ov, d))
    order = [n for n in names if n in per_panel] + [n for n in per_panel if n not in names]
    fig, axes = plt.subplots(1, max(len(order), 1), figsize=(6.0 * max(len(order), 1), 4.4), squeeze=False)
    return per_panel, order, fig, axes
