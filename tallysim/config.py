"""Run configuration: frozen dataclasses, validation, JSON round-trip and `key=value` overrides.

Every field here is documented in README.md ("Config fields"); PROTOCOLS.md gives the semantics.
Errors a user can cause raise `ConfigError` with one line naming the field, the bad value and what is
allowed. They are raised before any data is loaded or anything compiles.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any, Optional


class ConfigError(ValueError):
    """A user-facing configuration problem (the CLI prints it as one line and exits with code 2)."""


PROTOCOLS = ("local", "fedavg", "fedprox", "feddf", "softlabel", "tally", "bridge")
FEDAVG_FAMILY = ("fedavg", "fedprox", "feddf")
DISTILL_PROTOCOLS = ("softlabel", "tally", "bridge")
MODELS = ("mlp", "lenet", "cnn", "resnet8")
PARTITIONS = ("iid", "dirichlet", "label_quantity", "quantity")
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class DataConfig:
    name: str = "fashion_mnist"       # tfds name, "synthetic", or "files" (read `path`)
    path: Optional[str] = None        # directory with IDX (.gz or raw) or .npz files
    seed: int = 0                     # fixes the dataset itself (synthetic draw, max_train subset)
    max_train: Optional[int] = None   # keep only the first N training examples (after a seeded shuffle)
    max_test: Optional[int] = None    # evaluate on the first N test examples
    # synthetic only
    num_classes: int = 10
    input_shape: tuple = (28, 28, 1)
    train_size: int = 12000
    test_size: int = 2000
    difficulty: float = 1.0           # larger = classes overlap more


@dataclass(frozen=True)
class PartitionConfig:
    kind: str = "dirichlet"
    alpha: float = 0.1                # dirichlet / quantity concentration
    k: int = 2                        # label_quantity: classes per peer
    min_size: int = 10                # dirichlet: redraw until every peer holds this many


@dataclass(frozen=True)
class ModelConfig:
    name: str = "mlp"
    dtype: str = "float32"            # compute dtype; parameters stay float32
    width: int = 200                  # mlp hidden width


@dataclass(frozen=True)
class OptimConfig:
    name: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    reset_each_round: Optional[bool] = None   # None: true for the FedAvg family, false otherwise


@dataclass(frozen=True)
class ProbeConfig:
    pool_size: Optional[int] = None   # None: 10% of train, at most 10,000
    per_round: int = 1000             # M
    resample: bool = True
    source: Optional[str] = None      # another prepared dataset to draw the pool from


@dataclass(frozen=True)
class ProtocolConfig:
    name: str = "tally"


@dataclass(frozen=True)
class InitConfig:
    shared: Optional[bool] = None     # None: shared for FedAvg family and bridge, independent otherwise


@dataclass(frozen=True)
class VoteConfig:
    ties: str = "lowest"              # lowest | random
    min_agreement: float = 0.0        # abstain below this winning share (0 = keep all)


@dataclass(frozen=True)
class DistillConfig:
    weight: float = 1.0
    temperature: float = 1.0
    order: str = "mixed"              # mixed | sequential
    epochs: int = 1                   # sequential: passes over the probes first
    label_smoothing: float = 0.0      # tally only
    batch_size: Optional[int] = None  # probe minibatch; None = batch_size


@dataclass(frozen=True)
class SoftlabelConfig:
    aggregate: str = "mean"           # mean | era
    era_temperature: float = 0.1


@dataclass(frozen=True)
class FedProxConfig:
    mu: float = 0.01


@dataclass(frozen=True)
class FedDFConfig:
    target: str = "logits"            # logits | probs
    temperature: float = 1.0
    lr: float = 1e-3
    steps: int = 500
    batch_size: int = 128


@dataclass(frozen=True)
class BridgeConfig:
    density: float = 0.01
    period: int = 5
    scope: str = "global"             # global | per_tensor
    average: str = "weighted"         # weighted | per_coordinate
    reset: str = "hard"               # hard | soft


@dataclass(frozen=True)
class CommConfig:
    param_bits: int = 32
    soft_bits: int = 32               # 32 | 16 | 8
    topology: str = "star"            # star | allgather


@dataclass(frozen=True)
class Config:
    peers: int = 10
    rounds: int = 20
    seed: int = 0
    seeds: int = 1                        # run seeds seed..seed+seeds-1 as one vmapped program
    seed_chunk: Optional[int] = None      # seeds per compiled batch; None = as many as fit in memory
    eval_every: int = 1
    participation: float = 1.0
    local_epochs: int = 1
    local_steps: Optional[int] = None
    warmup_epochs: Optional[int] = None   # None = local_epochs (distillation protocols only)
    batch_size: int = 32
    data: DataConfig = field(default_factory=DataConfig)
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    init: InitConfig = field(default_factory=InitConfig)
    vote: VoteConfig = field(default_factory=VoteConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    softlabel: SoftlabelConfig = field(default_factory=SoftlabelConfig)
    fedprox: FedProxConfig = field(default_factory=FedProxConfig)
    feddf: FedDFConfig = field(default_factory=FedDFConfig)
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    comm: CommConfig = field(default_factory=CommConfig)

    # Derived defaults, resolved once so config.json records what actually ran.
    def resolved(self) -> "Config":
        name = self.protocol.name
        optim, init, warm = self.optim, self.init, self.warmup_epochs
        if optim.reset_each_round is None:
            optim = replace(optim, reset_each_round=name in FEDAVG_FAMILY)
        if init.shared is None:
            init = replace(init, shared=name in FEDAVG_FAMILY or name == "bridge")
        if warm is None:
            warm = self.local_epochs if name in DISTILL_PROTOCOLS else 0
        return replace(self, optim=optim, init=init, warmup_epochs=warm)


# ----------------------------------------------------------------------------- validation

def _choice(key: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not known; allowed: {', '.join(allowed)}")


def _positive(key: str, value, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{key}={value} must be {'>= 0' if allow_zero else '> 0'}")


def validate(cfg: Config) -> Config:
    """Check everything that does not need the data; return the resolved config."""
    _choice("protocol.name", cfg.protocol.name, PROTOCOLS)
    _choice("model.name", cfg.model.name, MODELS)
    _choice("model.dtype", cfg.model.dtype, ("float32", "bfloat16"))
    _choice("partition.kind", cfg.partition.kind, PARTITIONS)
    _choice("optim.name", cfg.optim.name, OPTIMIZERS)
    _choice("vote.ties", cfg.vote.ties, ("lowest", "random"))
    _choice("distill.order", cfg.distill.order, ("mixed", "sequential"))
    _choice("softlabel.aggregate", cfg.softlabel.aggregate, ("mean", "era"))
    _choice("feddf.target", cfg.feddf.target, ("logits", "probs"))
    _choice("bridge.scope", cfg.bridge.scope, ("global", "per_tensor"))
    _choice("bridge.average", cfg.bridge.average, ("weighted", "per_coordinate"))
    _choice("bridge.reset", cfg.bridge.reset, ("hard", "soft"))
    _choice("comm.topology", cfg.comm.topology, ("star", "allgather"))
    if cfg.comm.soft_bits not in (32, 16, 8):
        raise ConfigError(f"comm.soft_bits={cfg.comm.soft_bits} is not supported; allowed: 32, 16, 8")
    for key in ("peers", "rounds", "seeds", "seed_chunk", "eval_every", "batch_size", "local_epochs", "local_steps",
                "data.max_train", "data.max_test", "data.train_size", "data.test_size",
                "probe.per_round", "probe.pool_size", "distill.batch_size", "feddf.batch_size",
                "bridge.period", "comm.param_bits", "model.width", "partition.k"):
        _positive(key, get_field(cfg, key))
    for key in ("optim.lr", "distill.temperature", "softlabel.era_temperature",
                "feddf.temperature", "feddf.lr"):
        _positive(key, get_field(cfg, key))
    for key in ("warmup_epochs", "distill.weight", "distill.epochs", "feddf.steps", "fedprox.mu",
                "optim.weight_decay", "optim.momentum", "partition.min_size", "data.difficulty"):
        _positive(key, get_field(cfg, key), allow_zero=True)
    if cfg.partition.kind in ("dirichlet", "quantity") and not cfg.partition.alpha > 0:
        raise ConfigError(f"partition.alpha={cfg.partition.alpha} must be > 0 "
                          "(small = strong skew, >= 100 ~ IID)")
    if not 0 < cfg.participation <= 1:
        raise ConfigError(f"participation={cfg.participation} must be in (0, 1]")
    if not 0 <= cfg.vote.min_agreement <= 1:
        raise ConfigError(f"vote.min_agreement={cfg.vote.min_agreement} must be in [0, 1]")
    if not 0 <= cfg.bridge.density <= 1:
        raise ConfigError(f"bridge.density={cfg.bridge.density} must be in [0, 1]")
    if not 0 <= cfg.distill.label_smoothing < 1:
        raise ConfigError(f"distill.label_smoothing={cfg.distill.label_smoothing} must be in [0, 1)")
    if cfg.data.num_classes < 2:
        raise ConfigError(f"data.num_classes={cfg.data.num_classes} must be >= 2")
    if cfg.data.name == "files" and not cfg.data.path:
        raise ConfigError("data.name=files needs data.path=DIR (a directory of IDX or .npz files)")
    if cfg.protocol.name == "bridge" and cfg.init.shared is False:
        raise ConfigError("bridge needs a shared init (its merges are deltas from one common "
                          "reference); remove init.shared=false")
    if cfg.protocol.name in FEDAVG_FAMILY and cfg.init.shared is False:
        raise ConfigError(f"{cfg.protocol.name} always starts every peer from the server model; "
                          "init.shared=false is only for local/softlabel/tally")
    return cfg.resolved()


def validate_with_data(cfg: Config, num_classes: int, train_examples: int, pool_examples: int) -> None:
    """Checks that need the dataset's size and class count (still before anything compiles)."""
    if cfg.partition.kind == "label_quantity" and cfg.partition.k > num_classes:
        raise ConfigError(f"partition.k={cfg.partition.k} exceeds the {num_classes} classes of "
                          f"{cfg.data.name}; allowed: 1..{num_classes}")
    min_each = cfg.partition.min_size if cfg.partition.kind == "dirichlet" else 1
    if cfg.peers * max(min_each, 1) > train_examples:
        raise ConfigError(f"peers={cfg.peers} needs at least {cfg.peers * max(min_each, 1)} training "
                          f"examples but {cfg.data.name} has {train_examples} after the probe pool; "
                          f"allowed: peers <= {train_examples // max(min_each, 1)}")
    if cfg.probe.per_round > pool_examples:
        raise ConfigError(f"probe.per_round={cfg.probe.per_round} is larger than the probe pool "
                          f"({pool_examples} examples); allowed: 1..{pool_examples}")


def default_pool_size(train_examples: int) -> int:
    return min(10_000, max(1, math.ceil(0.1 * train_examples)))


# ----------------------------------------------------------------------------- fields & overrides

def get_field(cfg: Config, key: str):
    obj = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def field_keys(cls=Config, prefix: str = "") -> dict[str, Any]:
    """Every dotted key -> its annotated type."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            out.update(field_keys(t, prefix + f.name + "."))
        else:
            out[prefix + f.name] = t
    return out


def _parse_scalar(key: str, text: str, t) -> Any:
    optional = typing.get_origin(t) is typing.Union and type(None) in typing.get_args(t)
    if optional:
        if text.lower() in ("none", "null"):
            return None
        t = next(a for a in typing.get_args(t) if a is not type(None))
    try:
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
            return tuple(int(v) for v in text.replace("x", ",").strip("()[] ").split(",") if v)
        return text
    except ValueError:
        kind = {bool: "true/false", int: "an integer", float: "a number", tuple: "a shape like 28x28x1"}
        raise ConfigError(f"{key}={text!r}: expected {kind.get(t, t.__name__)}") from None


def parse_override(item: str) -> tuple[str, str]:
    if "=" not in item or item.startswith("="):
        raise ConfigError(f"malformed override {item!r}; expected key=value, e.g. protocol.name=tally")
    key, text = item.split("=", 1)
    key = key.strip()
    keys = field_keys()
    if key not in keys:
        near = [k for k in keys if k.split(".")[-1] == key.split(".")[-1]]
        hint = f"; did you mean {', '.join(near)}?" if near else "; see README 'Config fields'"
        raise ConfigError(f"unknown config key {key!r}{hint}")
    return key, text.strip()


def with_values(cfg: Config, values: dict[str, Any]) -> Config:
    """Return cfg with dotted keys set to already-typed values."""
    for key, value in values.items():
        head, _, rest = key.partition(".")
        if rest:
            cfg = replace(cfg, **{head: with_values_section(getattr(cfg, head), rest, value)})
        else:
            cfg = replace(cfg, **{head: value})
    return cfg


def with_values_section(section, key: str, value):
    return replace(section, **{key: value})


def apply_overrides(cfg: Config, items: list[str]) -> Config:
    keys = field_keys()
    values = {}
    for item in items:
        key, text = parse_override(item)
        values[key] = _parse_scalar(key, text, keys[key])
    return with_values(cfg, values)


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(d: dict, base: Optional[Config] = None) -> Config:
    """Nested dict (as in config.json) -> Config; unknown keys are errors."""
    keys = field_keys()
    flat = {}

    def walk(obj, prefix):
        for k, v in obj.items():
            if isinstance(v, dict):
                walk(v, prefix + k + ".")
            else:
                flat[prefix + k] = v
    walk(d, "")
    values = {}
    for key, v in flat.items():
        if key not in keys:
            raise ConfigError(f"unknown config key {key!r} in config file; see README 'Config fields'")
        values[key] = _parse_scalar(key, str(v), keys[key]) if isinstance(v, str) and keys[key] is not str \
            else (tuple(v) if keys[key] is tuple else v)
    return with_values(base or Config(), values)


def read_file(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {path!r} is not valid JSON: {e}") from None


def load_file(path: str, smoke: bool = False) -> Config:
    """A JSON config. Two optional top-level sections are not fields: `smoke` (overrides that shrink
    the experiment, applied with smoke=True) and `sweep` (key -> list of values, read by `sweep`)."""
    d = read_file(path)
    shrink = d.pop("smoke", {})
    d.pop("sweep", None)
    d.pop("description", None)
    cfg = from_dict(d)
    return from_dict(shrink, cfg) if smoke else cfg
