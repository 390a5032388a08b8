"""`config.validate`: every check on a Config that does not need the data, and the ones that do.

Each failure is a `ConfigError` with one line naming the field, the bad value and what is allowed.
Nothing here loads data, allocates arrays or compiles: types, ranges (every float finite), names that
must fit the file system, and a rough memory estimate that refuses sizes no machine could hold.
"""
from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

from tallysim import model_groups, protocols, robust_checks, sizing
from tallysim.sizing import KNOWN_SHAPES, estimate_bytes  # noqa: F401 - validation.X, as before
from tallysim.schema import (FAULT_KINDS, INT_MAX, PARAM_ATTACKS, Config, ConfigError, declared, field_keys,
                             field_type, get_field)
from tallysim.schema_text import show_default

MAX_NAME = 200          # bytes of a dataset name (it becomes a cache file name; file systems allow 255)

# Views of the declarations in config.py (types, Literal choices, `ints`/`floats` bounds): nothing is
# declared here. Integers: key -> (smallest, largest) allowed (None is allowed where the type is
# Optional). Floats: key -> (low, high, low included, high included); every float must also be finite.
# Choices: key -> the allowed values.
# The checks read them live (`_int_ranges()`...): a plugin loaded later adds its section's fields.


def _int_ranges() -> dict:
    return {k: f.range for k, f in declared().items() if f.type is int and f.range}


def _float_ranges() -> dict:
    return {k: f.range for k, f in declared().items() if f.type is float}


def _choices() -> dict:
    return {k: f.choices for k, f in declared().items() if f.choices}


INT_RANGES, FLOAT_RANGES, CHOICES = _int_ranges(), _float_ranges(), _choices()   # as at import (built-ins)

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
        raise ConfigError(f"{key}={show(value)} has the wrong type ({type(value).__name__}); "
                          f"expected {allowed}")


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
    if "\x00" in path or len(path.encode()) > 4000 or any(len(p.encode()) > 255 for p in path.split("/")):
        raise ConfigError(f"{key}={show(path)} is too long for the file system (or holds a NUL byte); "
                          "allowed: components of at most 255 bytes")


def memory_limit() -> int:
    """This machine's physical memory in bytes (refuse beyond it: nothing bigger can be allocated)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


_fmt = sizing.fmt


def check_memory(cfg: Config, limit: int | None = None) -> None:
    limit = memory_limit() if limit is None else limit
    parts = sizing.estimate_bytes(cfg)
    total = sum(b for _, b, _ in parts)
    if total > limit:
        what, size, keys = max(parts, key=lambda p: p[1])
        fix = keys if keys.startswith("set ") else f"lower {keys}"     # sizing: a field to set, or to lower
        raise ConfigError(f"this configuration needs at least {_fmt(total)} of memory ({what} alone "
                          f"{_fmt(size)}), more than this machine's {_fmt(limit)}; {fix}")


def _rules(cfg: Config) -> None:
    if cfg.data.name == "files" and not cfg.data.path:
        raise ConfigError("data.name=files needs data.path=DIR (a directory of IDX or .npz files)")
    if cfg.probe.source == "files":
        raise ConfigError("probe.source=files is not supported (data.path belongs to the training data); "
                          "import the pool's files first with `python -m tallysim prepare NAME --path DIR` "
                          "and set probe.source=NAME")
    reason = protocols.traits(cfg.protocol.name).shared_init
    if reason and cfg.init.shared is False:
        free = [n for n in protocols.names() if not protocols.traits(n).shared_init]
        raise ConfigError(f"{cfg.protocol.name} needs a shared init ({reason}); remove init.shared=false "
                          f"(it is only for {'/'.join(free)})")
    reason = protocols.traits(cfg.protocol.name).sgd_only
    if reason and (cfg.optim.name != "sgd" or cfg.optim.momentum > 0):
        now = f"optim.name={cfg.optim.name}" if cfg.optim.name != "sgd" else f"optim.momentum={cfg.optim.momentum}"
        raise ConfigError(f"{now} is not allowed with protocol.name={cfg.protocol.name}: {reason}; allowed: "
                          f"optim.name=sgd with optim.momentum=0")
    if cfg.eval_sample == "random" and cfg.eval_peers is not None and cfg.model.groups:
        raise ConfigError("eval_sample=random is not supported with model.groups (each group stacks its own "
                          "peers); allowed: eval_sample=first, or no model.groups")
    _fault_rules(cfg)
    _privacy_rules(cfg)
    _group_rules(cfg)
    _cohort_rules(cfg)


def _group_rules(cfg: Config) -> None:
    """model.groups: each group's own fields checked as a run of its own would be, then the groups' rules."""
    for g in model_groups.parse(cfg.model.groups):
        gcfg = model_groups.group_config(cfg, g)
        try:
            check_types(gcfg)
            for key, allowed in _choices().items():
                if key.startswith(("model.", "optim.")) and get_field(gcfg, key) not in allowed:
                    raise ConfigError(f"{key}={show(get_field(gcfg, key))} is not known; allowed: "
                                      f"{', '.join(map(str, allowed))}")
            check_ranges(gcfg)
        except ConfigError as e:
            raise ConfigError(f"model.groups, group {g.name}: {e}") from None
    model_groups.check(cfg)


def _cohort_rules(cfg: Config) -> None:
    """participation_rule=size and cohort_draw=sequential only where there is a cohort to draw, and size
    only where nothing assumes uniform draws (cohort_draw=sequential under uniform is the same
    distribution as sort, so the privacy accountant's fixed-size uniform sampling still holds)."""
    active = max(1, int(round(cfg.participation * cfg.peers)))     # fed.build's A
    if cfg.cohort_draw == "sequential" and active >= cfg.peers:
        raise ConfigError(f"cohort_draw=sequential draws a cohort, but participation={cfg.participation} "
                          f"makes all {cfg.peers} peers active every round; allowed: participation below "
                          f"{(cfg.peers - 0.5) / cfg.peers:.4g} (fewer than all peers), or cohort_draw=sort")
    if cfg.participation_rule != "size":
        return
    if active >= cfg.peers:
        raise ConfigError(f"participation_rule=size draws a cohort, but participation={cfg.participation} "
                          f"makes all {cfg.peers} peers active every round; allowed: participation below "
                          f"{(cfg.peers - 0.5) / cfg.peers:.4g} (fewer than all peers), or "
                          "participation_rule=uniform")
    if cfg.privacy.noise > 0:
        raise ConfigError("participation_rule=size with privacy.noise > 0: the privacy accountant's "
                          "amplification by subsampling assumes a uniform cohort; allowed: "
                          "participation_rule=uniform with privacy, or privacy.noise=0")


def _privacy_rules(cfg: Config) -> None:
    """privacy.* only where it protects something, and only in settings the accountant is exact for."""
    pv, traits = cfg.privacy, protocols.traits(cfg.protocol.name)
    with_privacy = [n for n in protocols.names() if protocols.traits(n).privacy not in ("", "xor")]
    if traits.privacy == "xor":          # fedct: the XOR mechanism (fedct.xor_epsilon), not privacy.noise
        if pv.noise > 0:
            raise ConfigError(f"privacy.noise={pv.noise} with protocol.name={cfg.protocol.name}: its privacy is "
                              "the XOR mechanism on the one-hot votes; allowed: fedct.xor_epsilon > 0 with "
                              "privacy.noise=0")
        if pv.accountant == "pld" and cfg.fedct.xor_epsilon > 0:
            raise ConfigError("privacy.accountant=pld with fedct.xor_epsilon: dp-accounting's PLD accountant "
                              "does not compose randomised response (it reports one response's epsilon for "
                              "any count); allowed: privacy.accountant=rdp")
    if pv.noise == 0:
        if pv.threshold > 0 or pv.threshold_noise > 0:
            raise ConfigError("privacy.threshold / privacy.threshold_noise need privacy.noise > 0 (the "
                              "GNMax noise on the votes); allowed: set privacy.noise, or leave both at 0")
        return
    _tiny_noise(cfg, traits.privacy)
    if not traits.privacy:
        raise ConfigError(f"privacy.noise={pv.noise} is not implemented for protocol.name="
                          f"{cfg.protocol.name} (its messages would go unprotected while epsilon is "
                          f"reported); allowed: {', '.join(with_privacy)}, or privacy.noise=0")
    if (pv.threshold > 0 or pv.threshold_noise > 0) and traits.privacy != "votes":
        raise ConfigError(f"privacy.threshold is Confident-GNMax's, for votes; protocol.name="
                          f"{cfg.protocol.name} sends soft labels; allowed: privacy.threshold=0")
    if pv.threshold_noise > 0 and pv.threshold == 0:
        raise ConfigError("privacy.threshold_noise needs privacy.threshold > 0 (Confident-GNMax's T)")
    if pv.threshold > 0 and pv.threshold_noise == 0:
        raise ConfigError("privacy.threshold needs privacy.threshold_noise > 0: a noiseless threshold "
                          "check on the top count is not private")
    if traits.privacy == "params" and (cfg.fedavg.aggregate != "mean" or cfg.fedavg.pre != "none"):
        raise ConfigError(f"privacy.noise with fedavg.aggregate={cfg.fedavg.aggregate}, fedavg.pre={cfg.fedavg.pre}: "
                          "DP-FedAvg's noise is calibrated to the clipped mean; allowed: fedavg.aggregate=mean, "
                          "fedavg.pre=none")
    if traits.privacy == "sum" and cfg.softlabel.aggregate in ("median", "trimmed"):
        raise ConfigError(f"privacy.noise with softlabel.aggregate={cfg.softlabel.aggregate}: the noise is "
                          "calibrated to a clipped sum; allowed: softlabel.aggregate=mean or era")
    if cfg.vote.weighting != "none":
        raise ConfigError(f"privacy.noise with vote.weighting={cfg.vote.weighting}: the noise is calibrated to "
                          "one vote per peer; allowed: vote.weighting=none")
    if cfg.comm.topology == "allgather":
        raise ConfigError("privacy.noise with comm.topology=allgather: every peer would see the others' "
                          "messages without noise; allowed: comm.topology=star")
    if pv.accountant == "pld" and cfg.participation < 1:
        raise ConfigError(f"privacy.accountant=pld with participation={cfg.participation}: dp-accounting's "
                          "PLD accountant has no fixed-size participation sampling; allowed: "
                          "privacy.accountant=rdp, or participation=1")


def _tiny_noise(cfg: Config, mechanism: str) -> None:
    """Positive noise so small that the device draws none (float32) or the accountant overflows
    (privacy.MIN_NOISE says why); the std drawn for soft labels and DP-FedAvg is noise * clip."""
    from tallysim.privacy import MIN_NOISE
    pv = cfg.privacy
    for key, value in (("privacy.noise", pv.noise), ("privacy.threshold_noise", pv.threshold_noise)):
        if 0 < value < MIN_NOISE:
            raise ConfigError(f"{key}={value:g} is too small to draw in float32 or to account (epsilon "
                              f"overflows); allowed: {key}=0 (off) or >= {MIN_NOISE:g}")
    if mechanism in ("sum", "params") and pv.noise * pv.clip < MIN_NOISE:
        raise ConfigError(f"privacy.noise * privacy.clip={pv.noise * pv.clip:g} (the noise std) is too small "
                          f"to draw in float32; allowed: privacy.noise * privacy.clip >= {MIN_NOISE:g}")


def _fault_rules(cfg: Config) -> None:
    f = cfg.faults
    if f.kind == "under_trained" and f.examples is None and f.steps is None:
        raise ConfigError("faults.kind=under_trained needs faults.examples=N (keep N examples of each faulty "
                          "shard) and/or faults.steps=N (at most N private steps per round); allowed: "
                          "either or both, integers >= 0")
    if f.kind == "under_trained" and f.redraw and f.examples is not None:
        raise ConfigError(f"faults.redraw=true with faults.examples={f.examples} is not supported: shards "
                          "are cut once, before the run; allowed: faults.redraw=false, or faults.steps alone")
    traits = protocols.traits(cfg.protocol.name)
    if f.kind in PARAM_ATTACKS and not traits.fedavg_family:
        raise ConfigError(f"faults.kind={f.kind} attacks parameter updates, which protocol.name={cfg.protocol.name} "
                          f"does not send; allowed there: {', '.join(k for k in FAULT_KINDS if k not in PARAM_ATTACKS)}"
                          f" ({'/'.join(PARAM_ATTACKS)} are for the FedAvg family)")
    if f.kind == "least_likely" and not traits.distill:
        raise ConfigError(f"faults.kind=least_likely attacks probe predictions, which protocol.name={cfg.protocol.name} "
                          f"does not send; allowed there: {', '.join(k for k in FAULT_KINDS if k != 'least_likely')}"
                          " (least_likely is for tally, softlabel and bridge)")
    robust_checks.check(cfg)
    if cfg.vote.weighting == "history" and cfg.protocol.name != "tally":
        raise ConfigError(f"vote.weighting=history is implemented for protocol.name=tally only, not "
                          f"{cfg.protocol.name}; allowed there: vote.weighting=none")
    if f.kind == "straggler" and protocols.traits(cfg.protocol.name).distill:
        raise ConfigError(f"faults.kind=straggler is not implemented for protocol.name={cfg.protocol.name} "
                          f"(its stale message would be about last round's probes); allowed there: "
                          f"{', '.join(k for k in FAULT_KINDS if k != 'straggler')}")


MESSAGE_FAULTS = ("confident_wrong", "dropout", "straggler")   # faults that act on what peers send


def check_read(cfg: Config) -> None:
    """A protocol-specific field (one some protocol reads, TRAITS.reads) set away from its default for a
    protocol that does not read it would be silently ignored: refuse it. So is a message fault for a
    protocol whose peers send nothing. A single run checks this (`tallysim run`, tallysim.run); a sweep
    or figure does not, since there one base serves several protocols and each ignores some of it."""
    name = cfg.protocol.name
    for key, spec in declared().items():
        if protocols.reads(name, key) or get_field(cfg, key) == spec.default:
            continue
        readers = [n for n in protocols.names() if protocols.reads(n, key)]
        raise ConfigError(f"{key}={show(get_field(cfg, key))} is not read by protocol.name={name} (only by "
                          f"{', '.join(readers)}); allowed there: its default {show_default(spec.default)}")
    if cfg.faults.kind in MESSAGE_FAULTS and not protocols.traits(name).messages:
        raise ConfigError(f"faults.kind={cfg.faults.kind} acts on messages, and protocol.name={name} sends none; "
                          f"allowed there: none, label_flip, under_trained")


# log.*'s backends (tallysim/tracking.py): config field -> (module to import, pip extra)
TRACKING_PACKAGES = {"tensorboard": ("tensorboardX", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def check_tracking(cfg: Config) -> None:
    """One-line errors before anything loads: a usable directory, an installed backend."""
    for backend, value in (("tensorboard", cfg.log.tensorboard), ("mlflow", cfg.log.mlflow)):
        if value is None:
            continue
        module, extra = TRACKING_PACKAGES[backend]
        if not value.strip() or "\x00" in value:
            raise ConfigError(f"log.{backend}={value!r} is empty; allowed: "
                              f"{'a directory' if backend == 'tensorboard' else 'an experiment name'} or none")
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"log.{backend} needs the {module} package, which is not installed; "
                              f"pip install 'tallysim[{extra}]' (or leave log.{backend} unset)")
    if cfg.log.tensorboard is not None:
        d = Path(cfg.log.tensorboard)
        for p in (d, *d.parents):
            if p.exists() and not p.is_dir():
                raise ConfigError(f"log.tensorboard={cfg.log.tensorboard}: {p} is a file; allowed: a directory "
                                  "(created if missing)")


def warnings(cfg: Config) -> list[str]:
    """Configured events that can never happen in this run (allowed, but probably not meant): one line
    each, printed by `tallysim run` before it starts."""
    out, name = [], cfg.protocol.name
    if name == "bridge" and cfg.bridge.density > 0 and cfg.bridge.period > cfg.rounds:
        out.append(f"bridge.period={cfg.bridge.period} > rounds={cfg.rounds}: no merge happens in this run, so "
                   "it is tally, and its server model (acc_global, the summary's headline) stays the shared "
                   "init: read the peers' mean (acc_mean)")
    if cfg.eval_every > cfg.rounds:
        out.append(f"eval_every={cfg.eval_every} > rounds={cfg.rounds}: only the last round is evaluated")
    if protocols.traits(name).distill and cfg.distill.ramp_rounds > cfg.rounds:
        out.append(f"distill.ramp_rounds={cfg.distill.ramp_rounds} > rounds={cfg.rounds}: the distillation "
                   f"weight never reaches distill.weight (at most {cfg.rounds / cfg.distill.ramp_rounds:.2g} of it)")
    if cfg.faults.kind != "none" and cfg.faults.fraction > 0 and int(cfg.faults.fraction * cfg.peers) == 0:
        out.append(f"faults.fraction={cfg.faults.fraction} of peers={cfg.peers} is no faulty peer "
                   "(floor(fraction * P) = 0): the run has no faults")
    out += robust_checks.warnings(cfg)
    return out


def validate(cfg: Config) -> Config:
    """Check everything that does not need the data; return the resolved config."""
    if not isinstance(cfg, Config):
        raise ConfigError(f"expected a Config, got {type(cfg).__name__}")
    check_types(cfg)
    for key, allowed in _choices().items():
        value = get_field(cfg, key)
        if value not in allowed and key == "protocol.name" and protocols.unusable(value):
            raise ConfigError(f"protocol.name={show(value)} cannot be used: {protocols.unusable(value)}")
        if value not in allowed:
            raise ConfigError(f"{key}={show(value)} is not known; allowed: {', '.join(map(str, allowed))}")
    check_ranges(cfg)
    check_name("data.name", cfg.data.name)
    if cfg.probe.source is not None:
        check_name("probe.source", cfg.probe.source)
    if cfg.data.path is not None:
        check_path("data.path", cfg.data.path)
    if cfg.log.tensorboard is not None:
        check_path("log.tensorboard", cfg.log.tensorboard)
    check_tracking(cfg)
    _rules(cfg)
    check_memory(cfg)
    return cfg.resolved()


def validate_with_data(cfg: Config, num_classes: int, train_examples: int, pool_examples: int) -> None:
    """Checks that need the dataset's size and class count (still before anything compiles)."""
    if cfg.partition.kind == "label_quantity" and cfg.partition.k > num_classes:
        raise ConfigError(f"partition.k={cfg.partition.k} exceeds the {num_classes} classes of "
                          f"{cfg.data.name}; allowed: 1..{num_classes}")
    min_each = cfg.partition.min_size if cfg.partition.kind in ("dirichlet", "population") else 1
    reused = cfg.partition.kind == "population" and cfg.partition.reuse     # clients may share examples
    if cfg.peers * max(min_each, 1) > train_examples and not reused:
        raise ConfigError(f"peers={cfg.peers} needs at least {cfg.peers * max(min_each, 1)} training "
                          f"examples but {cfg.data.name} has {train_examples} after the probe pool; "
                          f"allowed: peers <= {train_examples // max(min_each, 1)}")
    if cfg.faults.kind == "confident_wrong" and cfg.faults.target >= num_classes:
        raise ConfigError(f"faults.target={cfg.faults.target} is not a class of {cfg.data.name} "
                          f"({num_classes} classes); allowed: -1 (a random wrong class) or 0..{num_classes - 1}")
    if cfg.probe.per_round > pool_examples:
        why = ("probe.pool_size" if cfg.probe.pool_size is not None else
               "probe.pool_size is unset: 10% of the training examples, at most 10,000")
        raise ConfigError(f"probe.per_round={cfg.probe.per_round} is larger than the probe pool "
                          f"({pool_examples} examples; {why}); allowed: probe.per_round=1..{pool_examples}, "
                          "or a larger probe.pool_size")
