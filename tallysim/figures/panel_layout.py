"""A figure config's panels: each panel's overrides and runs (`panels`, `with_panels`), and the layout the
text and model-group figures share (runs split by panel, one axis per panel)."""
from __future__ import annotations

import json

from tallysim import config, outdir
from tallysim.config import ConfigError
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


def panels(spec: dict, smoke: bool) -> dict:
    """panel name -> [key=value overrides] ({} when the figure has no panels)."""
    own = spec.get("smoke", {}).get("panels") if smoke else None
    if own is not None and not isinstance(own, dict):   # [] was falsy: the full figure's panels, in silence
        raise ConfigError('a figure config\'s `smoke.panels` must be an object {"panel name": {config fields}}')
    p = own or spec.get("panels") or {}
    if not isinstance(p, dict) or not all(isinstance(v, dict) for v in p.values()):
        raise ConfigError('a figure config\'s `panels` must be an object {"panel name": {config fields}}')
    out = {}
    for name, fields in p.items():
        outdir.check_name(name, "figure panel")
        if "__" in name:    # a run's panel is its directory's name up to the first "__" (panel_of)
            raise ConfigError(f"figure panel {name!r}: a panel's name may not hold '__', which ends it in its "
                              f"runs' directory names (they are <panel>__<run>: {name.split('__')[0]!r} would "
                              f"be read back as its panel); allowed: e.g. {name.replace('__', '_')!r}")
        # each value as a config file's body takes it: a list for one value ({"partition.kind": ["iid",
        # "dirichlet"]}) became the text '["iid", "dirichlet"]', refused as "is not known"
        flat = {k: config.json_axis_value(k, v, f"figure panel {name!r}") if k in config.field_keys() else v
                for k, v in _flat(fields).items()}
        out[name] = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in flat.items()]
    return out


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, prefix + k + ".") if isinstance(v, dict) else {prefix + k: v})
    return out


def with_panels(runs: list, panel_overrides: dict) -> list:
    """Every run once per panel, named `<panel>__<run>` (`<panel>` for a sweep's single `base` run)."""
    if not panel_overrides:
        return runs
    return [(p if name == "base" else f"{p}__{name}", ov + items)
            for p, ov in panel_overrides.items() for name, items in runs]
