"""A figure config's keys checked before anything runs (figures.preflight): each top-level and smoke key
one a figure reads, and a final_vs or faults figure's `x` one of its sweep axes."""
from __future__ import annotations

from tallysim import config
from tallysim.config import ConfigError
from tallysim.fields import did_you_mean


# A figure config's own keys (the module docstring) and its smoke section's. Any other was ignored in
# silence: `"peers": 8` beside `base` (meant for it), a misspelt `"sweeps"` or `"titel"`.
SPEC_KEYS = ("title", "description", "notes", "kind", "base", "groups", "sweep", "smoke", "x", "xlabel", "logx",
             "target", "facets", "within", "probe_group", "panels", "every_round", "overall")
SMOKE_KEYS = ("base", "sweep", "groups", "only", "panels")

def _fraction(v, lo_open: bool) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and (0 < v if lo_open else 0 <= v) and v <= 1


# The values a figure reads from its own keys. "target": "0.6" (a string) was compared with accuracies
# when drawn, and 60 (a percentage) was never reached, in silence; "logx": "no" drew a log axis (a
# non-empty string is true). (`groups` is figures.group_plans'.)
VALUE_RULES = (
    ("target", lambda v: _fraction(v, True), "an accuracy in (0, 1], e.g. 0.6"),
    ("within", lambda v: _fraction(v, False), "an accuracy difference in [0, 1], e.g. 0.05"),
    ("logx", lambda v: isinstance(v, bool), "true or false"),
    ("overall", lambda v: isinstance(v, bool), "true or false"),
    ("every_round", lambda v: isinstance(v, list) and all(isinstance(g, str) for g in v), "a list of group names"),
    ("title", lambda v: isinstance(v, str), "a string"),
    ("xlabel", lambda v: isinstance(v, str), "a string"),
)
# the kinds whose `x` is a swept key drawn on the x axis (plots.py; classes reads C from the partition)
X_KINDS = ("final_vs", "faults")
# The keys of SPEC_KEYS that only some kinds read (plots.py, privacy_plot.py, panel_layout.py), by kind. A
# kind that does not read one ignored it in silence: `panels` on a curves figure ran every group once per
# panel and drew the runs as lines of one label, `target` on a pareto figure or `x` on curves changed nothing.
KIND_KEYS = {"curves": ("target",), "final_vs": ("x", "xlabel", "logx"), "classes": ("x", "target"),
             "mechanism": ("x",), "pareto": ("panels", "every_round", "overall"), "speed": (),
             "faults": ("x", "facets", "within", "probe_group"), "privacy": ("facets",), "robustness": (),
             "vocab": ("panels",), "model_groups": ("panels",)}


def check_spec_keys(spec: dict, path, kind: str) -> None:
    """Every key of a figure config is one a figure reads, and `x` (final_vs, faults) is swept."""
    smoke = spec.get("smoke")
    for keys, allowed, where in ((spec, SPEC_KEYS, ""), (smoke if isinstance(smoke, dict) else {}, SMOKE_KEYS,
                                                          "smoke.")):
        for key in keys:
            if key not in allowed:
                near = did_you_mean(key, list(allowed))
                field = " (a config field: put it in `base`, or in a group)" if key in config.field_keys() or \
                    key in {k.split(".")[0] for k in config.field_keys()} else ""
                raise ConfigError(f"{path}: `{where}{key}` is not a figure config key{field}{near}; allowed: "
                                  f"{', '.join(allowed)}")
    for key, ok, allowed in VALUE_RULES:
        if key in spec and not ok(spec[key]):
            raise ConfigError(f"{path}: `{key}`={spec[key]!r:.60} ({type(spec[key]).__name__}); allowed: {allowed}")
    check_kind_keys(spec, path, kind)       # after the values: a wrong value is named as such on any kind
    groups = spec.get("groups") if isinstance(spec.get("groups"), dict) else {}
    # group names and facet keys: a misspelt one was drawn as if absent, in silence (no run of a group in
    # `every_round` gave its per-round points; facets grouped every run under one "None" facet)
    named = ([("every_round", g) for g in spec.get("every_round", [])]
             + ([("probe_group", spec["probe_group"])] if "probe_group" in spec else []))
    for key, g in named:
        if groups and g not in groups:
            raise ConfigError(f"{path}: `{key}` names {g!r:.60}, not one of the figure's groups; allowed: "
                              f"{', '.join(groups)}")
    facets = spec.get("facets", [])
    if not isinstance(facets, list) or not all(isinstance(f, str) and f in config.field_keys() for f in facets):
        raise ConfigError(f"{path}: `facets`={facets!r:.80}; allowed: a list of config fields, e.g. "
                          '["faults.kind", "partition.kind"]')
    if kind in X_KINDS and "x" in spec and not any(isinstance(g, dict) and "include" in g for g in groups.values()):
        if not isinstance(spec["x"], str):        # a list or an object: "unhashable type" from the set below
            raise ConfigError(f"{path}: x={spec['x']!r:.60} is {type(spec['x']).__name__}; allowed: the name of "
                              "one sweep axis (a string, e.g. \"partition.alpha\")")
        sections = [spec.get("sweep"), smoke.get("sweep") if isinstance(smoke, dict) else None]
        sections += [g.get("sweep") for g in groups.values() if isinstance(g, dict)]
        if any(s is not None and not isinstance(s, dict) for s in sections):
            return                  # group_plans refuses a sweep that is not an object, in its own words
        swept = {k for s in sections if s for k in s}
        if spec["x"] not in swept:
            raise ConfigError(f"{path}: x={spec['x']!r} is not a sweep axis, so each group draws one point; "
                              f"allowed: a key of `sweep` ({', '.join(sorted(swept)) or 'none'})")


def check_kind_keys(spec: dict, path, kind: str) -> None:
    """Each per-kind key (KIND_KEYS), the smoke section's panels too, one that `kind` draws with."""
    smoke = spec.get("smoke") if isinstance(spec.get("smoke"), dict) else {}
    own = KIND_KEYS.get(kind, ())
    for where, keys in (("", spec), ("smoke.", {k: v for k, v in smoke.items() if k == "panels"})):
        for key in keys:
            readers = [k for k, read in KIND_KEYS.items() if key in read]
            if readers and key not in own:
                why = (": every group would run once per panel and be drawn as one group's lines, the panels "
                       "told apart nowhere" if key == "panels" else "")
                raise ConfigError(f"{path}: `{where}{key}` is not read by a kind={kind} figure (only by "
                                  f"{', '.join(readers)}){why}; allowed: leave it out, or a kind that reads it")
