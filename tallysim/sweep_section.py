"""The one rule for a config file's `sweep` section outside `tallysim sweep`: a single run (`tallysim
run --config FILE`, or `config.load_file(FILE)` from Python) refuses a file whose sweep axes it is not
each given one value, where it used to run the base alone and drop every axis in silence. Below config
(config.load_file calls it), so it imports only the schema; sweep_axes.file_axes shares `listed`."""
from __future__ import annotations

import json
import math
from typing import Any, Iterable, Optional

from tallysim.fields import ConfigError
from tallysim.schema import field_keys


def listed(key: str, values: Any) -> list:
    """One axis's values as a list: a scalar, one shape such as [28, 28, 1] for a tuple field, or one
    list of model.groups objects is a single value (else [28, 28, 1] would be three runs)."""
    if isinstance(values, dict):
        return [values]
    if not isinstance(values, list) or (field_keys().get(key) is tuple and values
                                        and not isinstance(values[0], (list, str))):
        return [values]
    if key == "model.groups" and values and all(isinstance(v, dict) for v in values):
        return [values]
    return values


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def raw_axes(section: dict) -> dict[str, list[str]]:
    """{key: [value texts]} of a section as the file spells it (load_file has no sweep_axes to parse it)."""
    return {k: [_text(v) for v in listed(k, vals)] for k, vals in section.items()}


def refusal(path: str, axes: dict[str, list[str]], given: Iterable[str] = (), api: bool = False) -> Optional[str]:
    """The error for a single run of `path` whose `sweep` section has `axes` ({key: [value texts]}), with
    the keys in `given` set by key=value items; None when every axis is given a value."""
    missing = [k for k in axes if k not in set(given)]
    if not missing:
        return None
    runs = math.prod(len(v) for v in axes.values())
    items = [f"{k}={axes[k][0] if axes[k] else '...'}" for k in missing]
    reader = "config.load_file" if api else "`tallysim run`"
    one = (f"config.load_file({path!r}, sweep_base=True) for the base alone, with each axis then given one "
           f"value (config.apply_overrides(cfg, {items!r}))" if api
           else f"one run with each axis given one value ({' '.join(items)})")
    return (f"{path} has a `sweep` section ({runs} run{'s' * (runs != 1)} over {', '.join(axes)}), which "
            f"{reader} does not read; allowed: `tallysim sweep --config {path} --out DIR` for its runs, or {one}")


FIGURE_KEYS = ("kind", "base", "groups")


def figure_keys(d: dict) -> list[str]:
    """The keys that make a file a figure config, not a run's (none is a config field): the one rule for
    `run`/`sweep`/config.load_file, which refuse such a file, and `tallysim figure`, which refuses a file
    without them (a file of `groups` without `kind` was an unknown key to one and a figure to the other)."""
    return [k for k in FIGURE_KEYS if k in d]


def check_load(path: str, d: dict, sweep_base: bool) -> None:
    """config.load_file's use, of the file's dict `d`: from Python no key=value item gives an axis a value,
    so any axis refuses; `tallysim sweep` (and `run` once its items gave each axis one) reads the base
    with sweep_base=True. A figure config (figure_keys) is refused first: it was "unknown config key 'title'"."""
    if figure_keys(d):
        raise ConfigError(f"{path} is a figure config (it has {', '.join(f'`{k}`' for k in figure_keys(d))}), not "
                          f"a run's; draw it with `tallysim figure {path}`, or copy one group's fields into a "
                          "run config")
    section = d.get("sweep")
    if isinstance(section, dict) and not sweep_base:    # not an object: load_file says so, naming the file
        error = refusal(str(path), raw_axes(section), api=True)
        if error:
            raise ConfigError(error)
