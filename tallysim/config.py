"""Run configuration: frozen dataclasses, validation, JSON round-trip and `key=value` overrides.

Every field here is documented in README.md ("Config fields"); docs/protocols.md gives the semantics.
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
PARTITIONS = ("iid", "dirichlet", "label_quantity", "quantity", "dirichlet_mix")
LABEL_QUANTITY_SCHEMES = ("niid_bench", "balanced")   # partition.scheme (label_quantity)
OPTIMIZERS = ("sgd", "adam")
FAULT_KINDS = ("none", "under_trained", "label_flip", "confident_wrong", "dropout", "straggler")
SOFT_AGGREGATES = ("mean", "era", "median", "trimmed")     # softlabel.aggregate
PARAM_AGGREGATES = ("mean", "median", "trimmed")           # fedavg.aggregate


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
    alpha: float = 0.1                # dirichlet / dirichlet_mix / quantity concentration
    k: int = 2                        # label_quantity: classes per peer
    min_size: int = 10                # dirichlet: redraw until every peer holds this many
    # dirichlet: NIID-Bench's cap (a peer holding >= N/P examples gets no more); false = the uncapped
    # split of tallysim before the cap existed, kept so that earlier results reproduce bit for bit.
    cap: bool = True
    scheme: str = "niid_bench"        # label_quantity: niid_bench | balanced (the earlier even split)


@dataclass(frozen=True)
class ModelConfig:
    name: str = "mlp"
    dtype: str = "float32"            # compute dtype; parameters stay float32
    width: int = 200                  # mlp hidden width
    conv: str = "auto"                # conv models: auto (im2col on the CPU, native elsewhere) | xla | im2col


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
    aggregate: str = "mean"           # mean | era | median | trimmed
    era_temperature: float = 0.1
    trim: float = 0.1                 # trimmed: fraction cut from each end, per coordinate


@dataclass(frozen=True)
class FedAvgConfig:
    aggregate: str = "mean"           # mean (shard-size weighted) | median | trimmed (unweighted)
    trim: float = 0.1                 # trimmed: fraction cut from each end, per coordinate


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
class FaultsConfig:
    """Faulty peers (tallysim/faults.py): floor(fraction * P) of them, drawn from the seed."""
    kind: str = "none"                # none | under_trained | label_flip | confident_wrong | dropout | straggler
    fraction: float = 0.0             # of the P peers
    redraw: bool = False              # false: one set for the run; true: a new set every round
    examples: Optional[int] = None    # under_trained: keep only this many examples of each faulty shard
    steps: Optional[int] = None       # under_trained: at most this many private steps per training call
    target: int = -1                  # confident_wrong: -1 = a random wrong class, else this class
    scale: float = 1.0                # confident_wrong, parameters: send w_server - scale * (w_i - w_server)
    drop_prob: float = 1.0            # dropout: chance that a faulty peer's message is lost in a round


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
    ragged_groups: Optional[int] = None   # local training: peer groups by shard size; None = auto
    devices: Optional[int] = None         # devices to shard lanes or peers over; None = every device
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
    fedavg: FedAvgConfig = field(default_factory=FedAvgConfig)
    fedprox: FedProxConfig = field(default_factory=FedProxConfig)
    feddf: FedDFConfig = field(default_factory=FedDFConfig)
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    comm: CommConfig = field(default_factory=CommConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    # Not a config field: the dotted keys resolved() derived (None before). config.json records them as
    # "derived" so that loading it (e.g. with another protocol.name) derives them again.
    derived: tuple = field(default=(), compare=False, repr=False, metadata={"internal": True})

    # Derived defaults, resolved once so config.json records what actually ran.
    def resolved(self) -> "Config":
        name = self.protocol.name
        optim, init, warm = self.optim, self.init, self.warmup_epochs
        derived = set(self.derived)
        if optim.reset_each_round is None:
            optim = replace(optim, reset_each_round=name in FEDAVG_FAMILY)
            derived.add("optim.reset_each_round")
        if init.shared is None:
            init = replace(init, shared=name in FEDAVG_FAMILY or name == "bridge")
            derived.add("init.shared")
        if warm is None:
            warm = self.local_epochs if name in DISTILL_PROTOCOLS else 0
            derived.add("warmup_epochs")
        return replace(self, optim=optim, init=init, warmup_epochs=warm, derived=tuple(sorted(derived)))


DERIVED = ("optim.reset_each_round", "init.shared", "warmup_epochs")   # what resolved() may derive


# ----------------------------------------------------------------------------- validation

def validate(cfg: Config) -> Config:
    """Check everything that does not need the data; return the resolved config (tallysim.validation)."""
    from tallysim import validation
    return validation.validate(cfg)


def validate_with_data(cfg: Config, num_classes: int, train_examples: int, pool_examples: int) -> None:
    """Checks that need the dataset's size and class count (still before anything compiles)."""
    from tallysim import validation
    validation.validate_with_data(cfg, num_classes, train_examples, pool_examples)


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
        if f.metadata.get("internal"):
            continue
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


def _coerce(key: str, v, t, where: str):
    from tallysim.validation import TYPE_NAMES, json_kind, show, split_optional, type_ok
    inner, optional = split_optional(t)
    if v is None and optional:
        return None
    if isinstance(v, str) and inner is not str:
        try:
            return _parse_scalar(key, v, t)      # "28x28x1", "none", "0.1" as in key=value
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    if inner is tuple and isinstance(v, (list, tuple)) and all(type_ok(x, int) for x in v):
        return tuple(v)
    if inner is int and isinstance(v, float) and v.is_integer():
        return int(v)                            # 1e5 in JSON is a float
    if inner is not tuple and type_ok(v, inner):
        return float(v) if inner is float else v
    raise ConfigError(f"{where}: {key}={show(v)} is {json_kind(v)}; expected "
                      f"{TYPE_NAMES.get(inner, inner.__name__)}{' or null' if optional else ''}")


def from_dict(d: dict, base: Optional[Config] = None, where: str = "config file") -> Config:
    """Nested dict (as in config.json) -> Config; unknown keys and wrong JSON types are errors naming
    `where`. Keys listed in a top-level "derived" (written by `run`) are left for validate to derive."""
    from tallysim.validation import json_kind, show
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a JSON object of config fields, got {json_kind(d)}")
    keys = field_keys()
    sections = {k.rsplit(".", 1)[0] for k in keys if "." in k}
    d = dict(d)
    run_written = "derived" in d
    derived = d.pop("derived", [])
    if not isinstance(derived, list) or not all(k in DERIVED for k in derived):
        raise ConfigError(f"{where}: \"derived\"={show(derived)} must be a list of {', '.join(DERIVED)}")
    flat = {}

    def walk(obj, prefix):
        for k, v in obj.items():
            key = prefix + str(k)
            if key in sections:
                if not isinstance(v, dict):
                    raise ConfigError(f"{where}: {key} must be an object of {key}.* fields, not "
                                      f"{json_kind(v)} {show(v)}")
                walk(v, key + ".")
            elif key in keys:
                flat[key] = v
            else:
                raise ConfigError(f"unknown config key {key!r} in {where}; see README 'Config fields'")
    walk(d, "")
    if run_written and "partition.kind" in flat:
        # A config.json from before partition.cap / partition.scheme existed: that run used the
        # uncapped Dirichlet and balanced label_quantity splits, so rerunning or resuming it must too.
        flat.setdefault("partition.cap", False)
        flat.setdefault("partition.scheme", "balanced")
    values = {key: _coerce(key, v, keys[key], where) for key, v in flat.items() if key not in derived}
    return with_values(base or Config(), values)


def read_file(path: str) -> dict:
    """A JSON object from a file; anything else (missing, a directory, binary, a list...) is one line."""
    from tallysim.validation import json_kind, show
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path!r} is a directory; give a JSON file") from None
    except OSError as e:
        raise ConfigError(f"config file {show(path)} cannot be read: {e.strerror or e}") from None
    try:
        d = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path!r} is not UTF-8 text (binary?); expected a JSON object") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {path!r} is not valid JSON: {e}") from None
    except (ValueError, RecursionError) as e:   # e.g. an integer of > 4300 digits, absurd nesting
        raise ConfigError(f"config file {path!r} cannot be parsed: {show(str(e), 100)}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"config file {path!r} holds {json_kind(d)}, not a JSON object; expected "
                          '{"peers": 10, "protocol": {"name": "tally"}, ...}')
    return d


def load_file(path: str, smoke: bool = False) -> Config:
    """A JSON config. Two optional top-level sections are not fields: `smoke` (overrides that shrink
    the experiment, applied with smoke=True) and `sweep` (key -> list of values, read by `sweep`)."""
    from tallysim.validation import json_kind
    d = read_file(path)
    shrink = d.pop("smoke", {})
    if not isinstance(shrink, dict):
        raise ConfigError(f"{path}: the `smoke` section must be an object of config fields, not "
                          f"{json_kind(shrink)}")
    if not isinstance(d.pop("sweep", None), (dict, type(None))):
        raise ConfigError(f'{path}: the `sweep` section must be an object {{"key": [values, ...]}}')
    d.pop("description", None)
    d.pop("resumed", None)           # config.json's record of resumes (run.py), not a field
    d.pop("placement", None)         # config.json's record of how the run sat on the devices (mesh.py)
    cfg = from_dict(d, where=path)
    return from_dict(shrink, cfg, where=f"{path} (smoke section)") if smoke else cfg


def diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """`key=old->new` for every dotted key whose value differs between two nested config dicts (the
    "derived" bookkeeping list is not a value: a field set explicitly to its derived value is equal)."""
    out = []
    for k in sorted(set(old) | set(new)):
        if not prefix and k == "derived":
            continue
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff(a, b, prefix + k + ".")
        elif a != b:
            out.append(f"{prefix}{k}={a!r}->{b!r}")
    return out
