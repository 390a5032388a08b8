"""Run configuration files and overrides: `key=value` parsing, JSON round-trip (to_dict / from_dict),
config files (read with "extends" in config_files.py, re-exported), `diff`; and, re-exported, the
schema (tallysim/schema.py: the dataclasses and their declarations) and validation (tallysim/validation.py), so `config.X` keeps working for all.

Errors a user can cause raise `ConfigError` with one line naming the field, the bad value and what is
allowed. They are raised before any data is loaded or anything compiles.
"""
from __future__ import annotations

import dataclasses
from dataclasses import fields
from collections.abc import Iterable
from typing import Any, Optional

from tallysim import protocols as _protocols, sweep_section as _sweep_section
from tallysim import config_files as _config_files, model_groups as _model_groups
from tallysim import validation as _validation
from tallysim.config_files import (MAX_CONFIG_BYTES, MAX_EXTENDS_DEPTH, dotted_once, merge,  # noqa: F401
                                   read_file)
from tallysim.fields import F32_MAX, INT_MAX, ConfigError, floats, ints, one_line, underflows, UNDERFLOW  # noqa: F401 - re-exported
from tallysim.schema import *  # noqa: F401,F403 - the schema's names, as config.X
from tallysim.schema import (DERIVED, Config, plain_value, field_keys, field_type, get_field, with_values,  # noqa: F401
                             default_pool_size, declared, lane_fields,
                             choices, FieldSpec, PROTOCOL_NAMES, with_values_section, suggest)
from tallysim.schema_text import help_table, show_allowed, show_default  # noqa: F401 - config.X
from tallysim.field_checks import SEEDS_COUNT
from tallysim.config_reads import MODE_READS, MODEL_READS, SYNTHETIC_READS  # noqa: F401 - results/table.py blanks what a mode, model or dataset does not read
from tallysim.config_shapes import active_peers  # noqa: F401 - results/headline.py counts a round's cohort as the run does
from tallysim.config_rules import cfd_delta_rule, topk_soft_message  # noqa: F401 - protocols/cfd.py, topk_soft.py: their rules, stated once
from tallysim.model_groups import active_counts as group_active_counts, parse as parse_groups  # noqa: F401 - and a grouped one
from tallysim.validation import TYPE_NAMES, json_kind, show, split_optional, type_ok


# ----------------------------------------------------------------------------- validation

validate = _validation.validate                      # everything that does not need the data
validate_with_data = _validation.validate_with_data  # the checks that need the dataset's size and classes


def _parse_scalar(key: str, text: str, t) -> Any:
    t, optional, _ = field_type(t)
    if optional and text.lower() in ("none", "null"):
        return None
    if t is tuple and "x" in text and "," in text:
        # `28x1,8x1` read as the one 4-D shape (28, 1, 8, 1): two shapes (a sweep's comma list; a shape
        # axis separates its values with ';') or a typo, never meant as one
        raise ConfigError(f"{key}={text!r} mixes 'x' and ',': expected one shape, 28x28x1 or [28, 28, 1] "
                          "(a sweep axis separates shapes with ';': 28x28x1;8x8x1)")
    if t is float and underflows(text):
        # `participation=1e-400` underflowed to 0.0 and was refused as "participation=0.0", not as typed
        raise ConfigError(f"{key}={text} is {UNDERFLOW}; allowed: 0, written 0, where the field takes it, else a "
                          "larger value")
    try:
        if t in (int, float, tuple) and not text.isascii():
            # int() and float() read other scripts' digits: `peers=٣` ran 3 peers, as model.groups' did
            raise ValueError
        if t is bool:
            low = text.lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError
        if t is int:
            return int(text)
        if t is float:
            return float(text)
        if t is tuple:
            parts = text.replace("x", ",").strip("()[] ")
            # an empty dimension (`28x28x`, `x28`, `28xx28`) is a typo, not a shorter shape: it was dropped
            return tuple(int(v) for v in parts.split(",")) if parts else ()
        return text
    except ValueError:
        kind = {bool: "true/false", int: "an integer", float: "a number", tuple: "a shape like 28x28x1"}
        several = "," in text and t in (bool, int, float)     # `run optim.lr=0.1,0.2`: several values are a sweep
        # `peers=٣` (or full-width １): "expected an integer" of what reads as one; say which digits
        digits = " in ASCII digits 0-9" if t in (int, float, tuple) and not text.isascii() else ""
        # `seeds=0,1` was told to sweep seeds=0,1 (seeds=0 refused, seeds=1 one seed): it counts the seeds
        hint = (f" ({SEEDS_COUNT.removeprefix('; ')})" if key == "seeds" else
                f" (several values are a sweep: tallysim sweep {key}={text})" if several else "")
        raise ConfigError(f"{key}={text!r}: expected {kind.get(t, t.__name__)}{digits}{hint}") from None


def distinct_values(key: str, texts: list[str]) -> list[str]:
    """A sweep axis's values, each listed once by value, not text, or refused: `seed=0,0`, `peers=4,04` or
    `optim.lr=0.1,0.10` quietly ran one configuration once where the user asked for two runs (and once
    made two directories that `table` showed as different runs). (`1` and `true` stay apart; a text that
    does not parse is itself, and validation refuses it later.)"""
    t, seen = field_keys()[key], {}
    for text in texts:
        try:        # stripped, as parse_override reads it: ["synthetic", "synthetic "] ran synthetic twice
            value = _parse_scalar(key, text.strip(), t)
        except ConfigError:
            value = text.strip()
        if key == "model.groups" and isinstance(value, str):
            try:        # " a:1;b:1" beside "a:1;b:1" (a file's list keeps its spaces) ran one experiment twice
                value = _model_groups.parse(value)
            except ConfigError:
                pass
        k = (type(value).__name__, value)
        if k in seen:
            first = seen[k]
            spelt = "" if first == text else f" ({first!r} and {text!r} are the same value)"
            raise ConfigError(f"sweep axis {key} lists {first} twice{spelt}: a repeated value is one run, not two; "
                              "allowed: each value once"
                              + (" (more runs: more seeds, seed=0,1,2)" if key == "seed" else ""))
        seen[k] = text
    return list(seen.values())


def parse_override(item: str) -> tuple[str, str]:
    if "=" not in item or item.startswith("="):
        raise ConfigError(f"malformed override {item!r}; expected key=value, e.g. protocol.name=tally")
    key, text = item.split("=", 1)
    key = key.strip()
    keys = field_keys()
    if key not in keys and _protocols.installed(key.split(".", 1)[0]):   # an installed plugin's section
        keys = field_keys()
    if key not in keys:
        raise ConfigError(f"unknown config key {key!r}{suggest(key)}")
    return key, text.strip()


def check_repeats(items: list, where: str = "on the command line") -> None:
    """A key given twice in one list of `key=value` items is refused: it used to be silently last-wins.
    (Programs that build override lists, and --config plus overrides, still let later values win.)"""
    seen = {}
    for item in items:
        key = parse_override(item)[0]
        if key in seen:
            raise ConfigError(f"{key} is given twice {where} ({seen[key]!r} and {item!r}); give each key once")
        seen[key] = item


def apply_overrides(cfg: Config, items: list[str]) -> Config:
    if not isinstance(cfg, Config):     # a dict (config.json's) was "replace() should be called on dataclass instances"
        raise ConfigError(f"apply_overrides: expected a tallysim.Config first, got {type(cfg).__name__}" + (
            "; a dict of fields, nested as in config.json, becomes one with tallysim.config.from_dict(d)"
            if isinstance(cfg, dict) else ""))
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        # a str iterated letter by letter ("malformed override 'p'"); None: "'NoneType' object is not iterable"
        raise ConfigError(f"apply_overrides(cfg, {show(items)}): expected a list of key=value strings, e.g. "
                          f"[{show(items) if isinstance(items, str) else repr('peers=4')}] ([] for none)")
    if isinstance(items, dict):         # iterated as its keys: {"rounds": 2} was "malformed override 'rounds'"
        raise ConfigError(f"apply_overrides(cfg, {show(items)}): a dict; expected a list of key=value strings, e.g. "
                          f"{[f'{k}={v}' for k, v in list(items.items())[:2]]!r}, or cfg.replace(**d) for a dict")
    items = list(items)                 # a generator is read twice below (installed plugins, then the values)
    for item in items:                  # an installed package's protocol or model, loaded when named: its
        key, _, text = item.partition("=") if isinstance(item, str) else ("", "", "")   # sections then parse
        if key.strip() in ("protocol.name", "model.name"):
            _protocols.installed(text.strip(), key.strip())
    keys = field_keys()
    values = {}
    for item in items:
        if not isinstance(item, str):    # [4] or [("peers", 4)]: a TypeError from inside the parser
            raise ConfigError(f"apply_overrides: {show(item)} is {type(item).__name__}; expected a key=value "
                              "string such as 'peers=4' (cfg.replace(peers=4) takes Python values)")
        key, text = parse_override(item)
        values[key] = _groups_json(text) if key == "model.groups" and text[:1] in ("[", "{") else \
            _parse_scalar(key, text, keys[key])
    return with_values(cfg, values)


def _groups_json(text: str) -> str:
    """`model.groups='[{"name": "a", "peers": 2}, ...]'`, the list a config file may hold, typed as one
    key=value: read as the file's list is (it was refused as one group named by the whole JSON text)."""
    import json
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"model.groups={text[:60]!r} starts as JSON but is not JSON ({e.msg} at "
                          f"character {e.pos}); allowed: NAME:PEERS[:MODEL][,FIELD=VALUE...] joined by ';', or a "
                          "JSON list of group objects") from None
    return _model_groups.from_json(obj, "model.groups on the command line")


def to_dict(cfg: Config) -> dict:
    """The nested dict config.json holds. A protocol's own section is there when the chosen protocol
    owns it or it is not at its defaults; a plugin loaded by name is recorded as "plugins", so that
    loading the file (--resume, a sweep) finds the protocol, or the plugin's model, again."""
    if not isinstance(cfg, Config):     # a dict (config.json's) was dataclasses' "called with a dataclass"
        raise ConfigError(f"to_dict: expected a tallysim.Config, got {type(cfg).__name__}")
    d = {f.name: dataclasses.asdict(getattr(cfg, f.name)) if dataclasses.is_dataclass(getattr(cfg, f.name))
         else getattr(cfg, f.name) for f in fields(cfg) if f.name not in ("ext", "derived")}
    present = dict(cfg.ext)
    for name in _protocols.sections():
        if name in present or cfg.protocol.name in _protocols.section_owners(name):
            d[name] = dataclasses.asdict(getattr(cfg, name))
    try:                 # a group's own model may be a plugin's too (an unparsable string: validation's to say)
        groups = _model_groups.parse(cfg.model.groups)
    except ConfigError:
        groups = ()
    models = [cfg.model.name] + [dict(g.values).get("model.name", "") for g in groups]
    plugins = [_protocols.plugin_of(cfg.protocol.name), *map(_protocols.model_plugin_of, models)]
    plugins = list(dict.fromkeys(p for p in plugins if p))
    if plugins:
        d["plugins"] = plugins
    d["derived"] = cfg.derived
    return d


def _coerce(key: str, v, t, where: str):
    inner, optional = split_optional(t)
    # a dict built in a notebook: np.int64(3) was "int64; expected an integer" (a list stays one: its message)
    v = [plain_value(x) for x in v] if isinstance(v, list) else plain_value(v)
    if key == "model.groups":          # a JSON list of group objects reads as the compact string
        v = _model_groups.from_json(v, where)
    if v is None and optional:
        return None
    if isinstance(v, str) and inner is not str:     # "0.1", "none", "28x28x1": key=value's text, not JSON's
        example = {tuple: "[28, 28, 1]", bool: "true", int: "10", float: "0.1"}.get(inner, "")
        raise ConfigError(f"{where}: {key}={show(v)} is a string; expected {TYPE_NAMES.get(inner, inner.__name__)}"
                          f"{' or null' if optional else ''}, written without quotes (e.g. {example}"
                          f"{', null' if optional else ''})")
    if inner is tuple and isinstance(v, (list, tuple)) and all(type_ok(x, int) or _whole(x) for x in v):
        return tuple(int(x) for x in v)          # [8.0, 8.0, 1.0]: whole numbers, as 1e5 for an integer
    if inner is int and isinstance(v, float) and v.is_integer():
        return int(v)                            # 1e5 in JSON is a float
    if inner is not tuple and type_ok(v, inner):
        return float(v) if inner is float else v
    raise ConfigError(f"{where}: {key}={show(v)} is {json_kind(v)}; expected "
                      f"{TYPE_NAMES.get(inner, inner.__name__)}{' or null' if optional else ''}")


def _whole(x) -> bool:
    return isinstance(x, float) and x.is_integer()


def json_axis_value(key: str, v, where: str):
    """A value of a config file's sweep axis, as the file's body takes it: an integer field takes a whole
    number written as one (2.0, 1e5) and a shape whole numbers, both refused there as the text '2.0';
    anything else keeps its text (a sweep axis's values are key=value texts)."""
    inner, optional = split_optional(field_keys()[key])
    # a list for a field of one value ({"optim.lr": [[0.1, 0.2]]}) was joined into the shape text
    # '0.1x0.2' ("expected a number" of a value never written), and [[0.1]] ran 0.1 in silence
    if (inner is int and isinstance(v, float)) or (inner is not tuple and isinstance(v, list)) \
            or (inner is tuple and isinstance(v, list) and any(isinstance(x, float) for x in v)):
        return _coerce(key, v, field_keys()[key], where)
    # a bool for a number or null for a field that takes none, as the file's body refuses them: true was
    # the text 'true' ("peers='true'"), and null for protocol.name the name 'none' ("'none' is not known").
    # A string that reads as the field's value stays an axis value's text: "0.10" is 0.1, its run
    # directory keeps the text as typed (optim.lr=0.10), and tests/test_hostile_dec05.py deduplicates it
    # against 0.1. One that does not ("abc", "1.5" for seed) was refused only when its run was built, as
    # "sweep run optim.lr=abc: ...", never naming the file's axis: refused here, as the file's body would.
    if (inner in (int, float) and isinstance(v, bool)) or (v is None and not optional):
        return _coerce(key, v, field_keys()[key], where)
    if isinstance(v, str) and inner in (int, float, bool, tuple):
        try:
            _parse_scalar(key, v, field_keys()[key])
        except ConfigError as e:
            if not str(e).startswith(f"{key}={v!r}: expected"):     # its own reason (1e-400 underflows)
                raise ConfigError(f"{where}: {e}") from None
            example = {tuple: "[28, 28, 1]", bool: "true", int: "10", float: "0.1"}[inner]
            kind = TYPE_NAMES.get(inner, inner.__name__)
            raise ConfigError(f"{where}: {key}={show(v)} is a string that is not {kind}; allowed: {kind}"
                              f"{' or null' if optional else ''}, written without quotes (e.g. {example})"
                              ) from None
    return v


def from_dict(d: dict, base: Optional[Config] = None, where: str = "config file") -> Config:
    """Nested dict (as in config.json) -> Config; unknown keys and wrong JSON types are errors naming
    `where`. Keys listed in a top-level "derived" (written by `run`) are left for validate to derive."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a JSON object of config fields, got {json_kind(d)}")
    if base is not None and not isinstance(base, Config):      # a TypeError from dataclasses.replace
        raise ConfigError(f"from_dict(base={base!r:.40}): expected a tallysim.Config (or None: the defaults)")
    d = dict(d)
    plugins = d.pop("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError(f"{where}: \"plugins\"={show(plugins)} must be a list of module names, e.g. "
                          '["my_protocols"]')
    for module in plugins:
        _protocols.load_plugin(module)       # before the keys are read: a plugin adds sections
    keys = dict(field_keys())
    sections = {k.rsplit(".", 1)[0] for k in keys if "." in k}
    run_written = "derived" in d
    if run_written:     # config.json's records, not fields (load_file drops them too): from_dict(Results.config)
        for record in ("resumed", "placement", "code"):        # was "unknown config key 'placement'"
            d.pop(record, None)
    derived = d.pop("derived", [])
    # a tuple: to_dict's own (config.json holds a list), so from_dict(to_dict(cfg)) was refused
    if not isinstance(derived, (list, tuple)) or not all(k in DERIVED for k in derived):
        raise ConfigError(f"{where}: \"derived\"={show(derived)} must be a list of {', '.join(DERIVED)}")
    dotted_once(d, where)       # {"optim.lr": 0.1, "optim": {"lr": 0.2}}: the later one won in silence
    flat = {}

    def walk(obj, prefix):
        for k, v in obj.items():
            key = prefix + str(k)
            if key in sections:
                if not isinstance(v, dict):
                    raise ConfigError(f"{where}: {key} must be an object of {key}.* fields, not "
                                      f"{json_kind(v)}{'' if v is None else ' ' + show(v)}")
                walk(v, key + ".")
            elif key in keys:
                flat[key] = v
            elif _protocols.installed(key.split(".", 1)[0]):     # an installed plugin's section: loaded now
                keys.update(field_keys())
                sections.update(k.rsplit(".", 1)[0] for k in keys if "." in k)
                walk({k: v}, prefix)
            else:
                raise ConfigError(f"unknown config key {key!r}{suggest(key, f' in {where}')}")
    walk(d, "")
    if run_written and "partition.kind" in flat:
        # A config.json from before partition.cap / partition.scheme existed: that run used the
        # uncapped Dirichlet and balanced label_quantity splits, so rerunning or resuming it must too.
        flat.setdefault("partition.cap", False)
        flat.setdefault("partition.scheme", "balanced")
    values = {key: _coerce(key, v, keys[key], where) for key, v in flat.items() if key not in derived}
    return with_values(base or Config(), values)


def source_name(path: str) -> str:
    """`path` and the files it extends, as a message names where a value came from: a value a base file
    holds was refused as the extending file's alone ("set by --config words.json" of a field only the
    base.json it extends set)."""
    parents = _config_files.extends_of(path)
    return f"{path} (or the file{'s' * (len(parents) > 1)} it extends: {', '.join(parents)})" if parents else path


def load_file(path: str, smoke: bool = False, sweep_base: bool = False) -> Config:
    """A JSON config. Two optional top-level sections are not fields: `smoke` (overrides that shrink the
    experiment, applied with smoke=True) and `sweep` (read by `sweep`; refused unless sweep_base=True)."""
    smoke, sweep_base = plain_value(smoke), plain_value(sweep_base)
    for name, flag in (("smoke", smoke), ("sweep_base", sweep_base)):
        if not isinstance(flag, bool):      # smoke="no" is truthy: the smoke section was applied, in silence
            raise ConfigError(f"load_file({name}={flag!r}): expected True or False")
    d = read_file(path)
    _sweep_section.check_load(path, d, sweep_base)     # a sweep section, as `run --config` refuses it; a figure's
    has_smoke = "smoke" in d
    shrink = d.pop("smoke", {})
    if not isinstance(shrink, dict):
        raise ConfigError(f"{path}: the `smoke` section must be an object of config fields, not "
                          f"{json_kind(shrink)}")
    if not isinstance(d.pop("sweep", None), (dict, type(None))):
        raise ConfigError(f'{path}: the `sweep` section must be an object {{"key": [values, ...]}}')
    d.pop("description", None)
    d.pop("resumed", None)           # config.json's record of resumes (run.py), not a field
    d.pop("placement", None)         # config.json's record of how the run sat on the devices (mesh.py)
    d.pop("code", None)              # config.json's record of the code that ran it (code_identity.py)
    cfg = from_dict(d, where=source_name(path))
    if smoke and not has_smoke:      # --smoke would silently run the full-size experiment
        validate(cfg)                # a bad value in the file is the first thing to say
        raise ConfigError(f"--smoke applies the `smoke` section of {path}, and it has none; allowed: a file "
                          'with a "smoke": {...} section (or one it extends), or leave out --smoke')
    if smoke:
        return from_dict(shrink, cfg, where=f"{path} (smoke section)")
    try:        # a stale or misspelt key there showed only with --smoke, after the full-size runs had run
        from_dict(shrink, cfg, where=f"{path} (smoke section)")
    except ConfigError as e:
        raise ConfigError(f"{e} (the `smoke` section is what --smoke applies; it is checked without --smoke "
                          "too)") from None
    return cfg


def diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """`key=old->new` for every dotted key whose value differs between two nested config dicts (the
    "derived" bookkeeping list is not a value: a field set explicitly to its derived value is equal)."""
    out = []
    for k in sorted(set(old) | set(new)):
        if not prefix and (k == "derived" or k in NOT_THE_EXPERIMENT):
            continue
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff(a, b, prefix + k + ".")
        elif a != b:
            out.append(f"{prefix}{k}={a!r}->{b!r}")
    return out


# config is complete: the registry may now import entry-point plugins, whose sections may not take the
# name of a Config field or section
_protocols.ready(tuple(f.name for f in fields(Config)), MODELS)
