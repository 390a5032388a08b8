"""The configuration schema: the top-level Config (its sections' dataclasses are in schema_sections.py,
re-exported here), the fields' declarations (type, choices, bounds, default, whether a sweep may vary
it per lane) and the views read from them (`declared`, `field_keys`, `run --help`'s table). No JAX, no
files, no validation: config.py parses and writes configs, validation.py checks them, both from here. A protocol's own section joins the schema through
the registry (tallysim/protocols/__init__.py, TRAITS.sections).

Every field here is documented in docs/config.md (its tables generated from these declarations by
tallysim/config_reference.py), or, for a protocol's own section, in its module's docstring;
docs/protocols.md gives the semantics.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Optional

from tallysim import key_suggest, protocols as _protocols
from tallysim.fields import F32_MAX, INT_MAX, ConfigError, floats, ints  # noqa: F401 - re-exported
from tallysim.fields import is_path, section_value
from tallysim.key_suggest import FILE_KEYS  # noqa: F401 - schema.FILE_KEYS
# The sections live in schema_sections.py; imported here so that Config's annotations resolve and
# `tallysim.schema.DataConfig` and the like keep working.
from tallysim.schema_sections import (CommConfig, DataConfig, DistillConfig, FaultsConfig,  # noqa: F401
                                      InitConfig, LogConfig, ModelConfig, OptimConfig, PartitionConfig,
                                      PrivacyConfig, ProbeConfig, ProtocolConfig, VoteConfig, BUILTIN_MODELS)
from tallysim.sizing import LIMITS



class UnusableSection(ConfigError, AttributeError):
    """`cfg.<name>` of an installed plugin that cannot load: a ConfigError (one line, naming the package
    and what failed) that is also an AttributeError, so `hasattr(cfg, name)` is False rather than raising."""


# ----------------------------------------------------------------------------- declaring a field
#
# Each field is declared once, on Config below or in its section (schema_sections.py): its type
# (Optional[...] where null is allowed), its allowed values (a Literal[...] annotation), its bounds
# (`ints` / `floats` metadata), its default. Validation (tallysim/validation.py), `key=value` and JSON
# parsing, `run --help`, the docs' reference and its check (tests/test_config_fields.py) all read it
# from here. A new field: one line in its section, e.g.
#     gate: float = floats(0.0, "[0, 1]")
#     scope: Literal["global", "per_tensor"] = "global"
#     steps: Optional[int] = ints(None, 0)
# and a line in docs/config.md's "What each field means". `ints` and `floats` live in tallysim/fields.py, so that a
# protocol's own section (TRAITS.sections, tallysim/protocols/__init__.py) is declared the same way.

# protocol.name's choices: tallysim/protocols/__init__.py's registry (importing it imports no JAX),
# plugins included: read when the field's declaration is (`declared`).
PROTOCOL_NAMES = tuple(_protocols.REGISTRY)


@dataclass(frozen=True)
class Config:
    peers: int = ints(10)
    rounds: int = ints(20, 1, LIMITS["rounds"][0])
    seed: int = ints(0, 0)
    seeds: int = ints(1, 1, LIMITS["seeds"][0])      # run seeds seed..seed+seeds-1 as one vmapped program
    seed_chunk: Optional[int] = ints(None)     # seeds per compiled batch; None = as many as fit in memory
    eval_every: int = ints(1, 1, LIMITS["eval_every"][0])
    eval_peers: Optional[int] = ints(None)    # evaluate N peers only (acc_mean, ensemble); None = all
    eval_sample: Literal["first", "random"] = "first"   # eval_peers: peers 0..N-1, or N drawn once per seed
    # stacked: every client's model (and optimizer state) on a peer axis, as always: per-client accuracy
    # in the rows; auto: where the protocol's clients keep nothing between rounds (protocols.client_state),
    # the server model alone, each round's cohort materialised from it (docs/population.md)
    client_storage: Literal["stacked", "auto"] = "stacked"
    participation: float = floats(1.0, "(0, 1]")
    # who takes part (sim/cohort.py): uniform without replacement, or size: proportional to shard size
    participation_rule: Literal["uniform", "size"] = "uniform"
    # how that cohort is computed (sim/cohort.py): sort, the draws of earlier versions (O(P) random numbers
    # a round); sequential, the same distribution from A random integers, O(A^2 + A log P), other numbers
    cohort_draw: Literal["sort", "sequential"] = "sort"
    local_epochs: int = ints(1, 1, LIMITS["local_epochs"][0])
    local_steps: Optional[int] = ints(None, 1, LIMITS["local_steps"][0])
    warmup_epochs: Optional[int] = ints(None, 0)   # None = local_epochs (distillation protocols only)
    batch_size: int = ints(32)
    ragged_groups: Optional[int] = ints(None)  # local training: peer groups by shard size; None = auto
    devices: Optional[int] = ints(None)        # devices to shard lanes or peers over; None = every device
    data: DataConfig = field(default_factory=DataConfig)
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    init: InitConfig = field(default_factory=InitConfig)
    vote: VoteConfig = field(default_factory=VoteConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    comm: CommConfig = field(default_factory=CommConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    # The sections protocols own (TRAITS.sections: e.g. `mine`), read as cfg.mine like any other;
    # held here as ((name, section), ...) of the sections that are not at their defaults, sorted, so
    # that equal configs compare equal. Set them with Config.replace or with_values.
    ext: tuple = field(default=(), repr=False, metadata={"internal": True})
    # Not a config field: the dotted keys resolved() derived (None before). config.json records them as
    # "derived" so that loading it (e.g. with another protocol.name) derives them again.
    derived: tuple = field(default=(), compare=False, repr=False, metadata={"internal": True})

    def __new__(cls, *args, **kwargs):
        if args:    # Config("c.json") was Config(peers="c.json"), refused later as "peers='c.json' ... an integer"
            raise ConfigError(f"Config({args[0]!r:.40}{', ...' if len(args) > 1 else ''}): fields are given by name, "
                              "e.g. Config(peers=10) or Config().replace(peers=10); a config file is read by "
                              "tallysim.config.load_file(path)")
        return super().__new__(cls)

    def __post_init__(self):
        # Config(protocol={"name": "fedavg"}): a dict for a section is that section's fields
        for f in fields(self):      # a dict for a section is its fields; anything else is refused
            cls = f.default_factory if f.default_factory is not dataclasses.MISSING else None
            if dataclasses.is_dataclass(cls):
                object.__setattr__(self, f.name, section_value(f.name, getattr(self, f.name), cls))
        object.__setattr__(self, "ext", _normal_ext(self.ext))

    def __getattr__(self, name: str):
        # only reached for names that are not dataclass fields: a protocol's own section
        if name.startswith("__"):
            raise AttributeError(name)
        cls = _protocols.sections().get(name)
        try:
            if cls is None and _protocols.installed(name):       # an installed package's plugin's section
                cls = _protocols.sections().get(name)
        except ConfigError as e:
            # a broken installed plugin of that name: `cfg.name` still says why in one line, and
            # hasattr / getattr(cfg, name, default) see an AttributeError, as their contract wants
            raise UnusableSection(str(e)) from None
        if cls is None:
            # a plugin that reads its own section but did not list it in TRAITS.sections lands here
            raise AttributeError(f"Config has no field or section {name!r}; a protocol's own section is one its "
                                 f"file's TRAITS declares (sections={{{name!r}: 'ItsDataclass'}}, "
                                 "docs/write-a-protocol.md)")
        return dict(self.__dict__.get("ext", ())).get(name) or cls()

    def replace(self, **changes) -> "Config":
        """A copy with fields changed: `cfg.replace(peers=20, protocol={"name": "fedprox"},
        fedprox={"mu": 0.5}, **{"optim.lr": 0.1})`. Sections given as dicts change only the fields
        named; values are checked by validate (run does it)."""
        flat = {}
        for key, v in changes.items():
            if key in FILE_KEYS:    # smoke={...} was "unknown config key 'smoke.rounds'; did you mean model.groups?"
                raise ConfigError(f"Config.replace: unknown config key {key!r}{suggest(key)}")
            cls = type(getattr(self, key, None))       # a section: its dataclass (a protocol's too)
            if dataclasses.is_dataclass(cls) and not isinstance(v, dict):
                v = dataclasses.asdict(section_value(key, v, cls))  # the section itself, or one line
            for k, x in ({f"{key}.{k}": x for k, x in v.items()} if isinstance(v, dict) else {key: v}).items():
                if k in flat:       # replace(**{"optim.lr": 0.1}, optim={"lr": 0.2}): the later won in silence
                    raise ConfigError(f"Config.replace: {k} is given twice ({flat[k]!r} and {x!r}), dotted and "
                                      "inside its section; give each field once")
                flat[k] = x
        keys = field_keys()
        for key in flat:
            if key not in keys:
                raise ConfigError(f"unknown config key {key!r}{suggest(key)}")
        return with_values(self, {key: plain_value(v, field_type(keys[key])[0] is tuple) for key, v in flat.items()})

    # Derived defaults, resolved once so config.json records what actually ran: each null DERIVED
    # field takes the default the protocol's module declares (its TRAITS, tallysim/protocols/).
    def resolved(self) -> "Config":
        traits = _protocols.traits(self.protocol.name)
        values = {k: traits.default(k, self) for k in DERIVED if get_field(self, k) is None}
        return replace(with_values(self, values), derived=tuple(sorted(set(self.derived) | set(values))))


_FIELDS_INIT = Config.__init__


def _init_with_sections(self, *args, **kwargs):
    """Config(tally={"k": 1}): a protocol's own section (not a dataclass field, held in ext) given to the
    constructor as Config().replace takes it, as the built-in sections are (`protocol={...}`); it was
    dataclass __init__'s "unexpected keyword argument 'tally'". A name that is no field nor section is
    replace's one line ("unknown config key", with the nearest)."""
    names = {f.name for f in fields(Config) if f.init}
    own = {k: kwargs.pop(k) for k in list(kwargs) if k not in names}
    _FIELDS_INIT(self, *args, **kwargs)
    if own:
        object.__setattr__(self, "ext", self.replace(**own).ext)


Config.__init__ = _init_with_sections


def plain_value(v, shape: bool = False):
    """A value a notebook passes to Config.replace, as config.json holds it: a numpy scalar (np.int64 from
    np.arange, np.float32 from an array) as its Python value, and for a shape field a list as the tuple.
    They were refused as "peers=np.int64(4) has the wrong type (int64); expected an integer" and
    "data.input_shape=[28, 28, 1] ... expected a list of positive integers like [28, 28, 1]". A pathlib.Path
    (data.path, log.tensorboard: the API takes a path as str or Path everywhere) as its text."""
    if type(v).__module__ == "numpy" and getattr(v, "shape", None) == () and hasattr(v, "item"):
        return v.item()
    if is_path(v) and not isinstance(v, str):   # data.path=Path(...): "has the wrong type (PosixPath); expected a string"
        return os.fspath(v)
    if shape and isinstance(v, list):
        return tuple(plain_value(x) for x in v)
    return v


DERIVED = ("optim.reset_each_round", "init.shared", "warmup_epochs")   # what resolved() may derive
# Sections that say where results go, not what runs: config comparisons (resume, sweep) skip them.
NOT_THE_EXPERIMENT = ("log",)


def _normal_ext(ext) -> tuple:
    """((name, section), ...) without the sections at their defaults, sorted by name."""
    items = ext.items() if isinstance(ext, dict) else ext
    return tuple(sorted(((n, v) for n, v in items if not _at_default(v)), key=lambda nv: nv[0]))


def _at_default(v) -> bool:
    """A section equal to its default, field by field in value and type: `topk_soft={"k": True}` equals
    TopkSoftConfig() (True == 1), so the section was dropped before validation saw the bool it refuses
    everywhere else (`cfd={"bits": True}` is refused: 8 is its default)."""
    d = type(v)()
    if not dataclasses.is_dataclass(v):
        return v == d
    return all(a == b and isinstance(a, bool) == isinstance(b, bool) and not (type(b) is int and isinstance(a, float))
               for a, b in ((getattr(v, f.name), getattr(d, f.name)) for f in dataclasses.fields(v)))


def default_pool_size(train_examples: int) -> int:
    return min(10_000, max(1, math.ceil(0.1 * train_examples)))


# ----------------------------------------------------------------------------- fields & overrides

def get_field(cfg: Config, key: str):
    obj = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


@functools.lru_cache(maxsize=None)      # validate asks it of every field of every config (typing introspection)
def field_type(t) -> tuple[type, bool, Optional[tuple]]:
    """(value type, whether null is allowed, the allowed values or None) of a field's annotation:
    Optional[int] -> (int, True, None); Literal["a", "b"] -> (str, False, ("a", "b"))."""
    optional = typing.get_origin(t) is typing.Union and type(None) in typing.get_args(t)
    if optional:
        t = next(a for a in typing.get_args(t) if a is not type(None))
    allowed = None
    if typing.get_origin(t) is Literal:
        allowed = typing.get_args(t)
        t = type(allowed[0])
    return t, optional, allowed


class FieldSpec(typing.NamedTuple):
    """A config field as declared on its dataclass (see "declaring a field" above)."""
    key: str
    type: type                       # bool, int, float, str or tuple
    optional: bool                   # null allowed
    choices: Optional[tuple]         # Literal[...]: the allowed values
    range: Optional[tuple]           # ints: (lo, hi); floats: (lo, hi, lo included, hi included)
    default: Any
    lane: bool = False               # a grouped sweep may vary it per lane (tallysim/fields.py)
    nonzero: bool = False            # ... and lanes where it is zero compile apart


def declared(cls=None, prefix: str = "") -> dict[str, FieldSpec]:
    """Every dotted key -> its declaration, in declaration order (do not modify the dict); the
    protocols' own sections (plugins' included) follow the built-in ones."""
    return _declared(cls, prefix, _protocols.generation())


@functools.lru_cache(maxsize=None)
def _declared(cls, prefix: str, generation: int) -> dict[str, FieldSpec]:
    out = {}
    for key, t, f in _leaves(cls or Config, prefix):
        kind, optional, allowed = field_type(t)
        if callable(f.metadata.get("choices")):
            allowed = tuple(f.metadata["choices"]())
        out[key] = FieldSpec(key, kind, optional, allowed, f.metadata.get("range"), f.default,
                             f.metadata.get("lane", False), f.metadata.get("nonzero", False))
    return out


def lane_fields() -> tuple:
    """The keys declared with `lane=True` (tallysim.fields): a protocol reads them with ctx.hp(key)."""
    return tuple(k for k, f in declared().items() if f.lane)


def _leaves(cls, prefix: str = ""):
    """(dotted key, annotated type, dataclass field) of every user field, sections flattened in order."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.metadata.get("internal"):
            continue
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            yield from _leaves(t, prefix + f.name + ".")
        else:
            yield prefix + f.name, t, f
    if cls is Config:
        for name, section in _protocols.sections().items():
            yield from _leaves(section, prefix + name + ".")


def suggest(key: str, where: str = "") -> str:
    """"; did you mean peers?" for a near-miss of a config key or section, in any section (`peer`,
    `optim.lrr`, `optm.lr`, `lr`), else where the fields are listed (key_suggest.py). `where`: " in FILE",
    before it."""
    return key_suggest.near_key(key, list(field_keys()), where)


def choices(key: str) -> tuple:
    """The allowed values of a Literal field, in declaration order."""
    return declared()[key].choices


def field_keys(cls=Config, prefix: str = "") -> dict[str, Any]:
    """Every dotted key -> its annotated type (do not modify the dict). Cached per plugin generation like
    `declared`: typing.get_type_hints on every section cost about 24 ms a call, and every key=value
    override, sweep axis and suggestion asks."""
    return _field_keys(cls, prefix, _protocols.generation())


@functools.lru_cache(maxsize=None)
def _field_keys(cls, prefix: str, generation: int) -> dict[str, Any]:
    return {key: t for key, t, _ in _leaves(cls, prefix)}


# The choices other modules name, read from the declarations above.
PROTOCOLS = choices("protocol.name")
MODELS = BUILTIN_MODELS                  # the built-in models (plugins' follow in choices("model.name"))
# A plugin's models (docs/howto/own-model.md), for sim/, which imports the configuration, not the registry.
plugin_models, model_target = _protocols.plugin_models, _protocols.model_target
PARTITIONS = choices("partition.kind")
LABEL_QUANTITY_SCHEMES = choices("partition.scheme")
FAULT_KINDS = choices("faults.kind")
PARAM_ATTACKS = ("sign_flip", "gaussian", "alie", "ipm")    # faults.kind on parameter updates (FedAvg family)
# Protocols by trait (each module's TRAITS), for code that wants the names.
FEDAVG_FAMILY = tuple(n for n in PROTOCOL_NAMES if _protocols.traits(n).fedavg_family)
DISTILL_PROTOCOLS = tuple(n for n in PROTOCOL_NAMES if _protocols.traits(n).distill)


def with_values(cfg: Config, values: dict[str, Any]) -> Config:
    """Return cfg with dotted keys set to already-typed values."""
    for key, value in values.items():
        head, _, rest = key.partition(".")
        if rest and head not in _CORE:            # a protocol's own section (Config.ext)
            cfg = replace(cfg, ext={**dict(cfg.ext), head: with_values_section(getattr(cfg, head), rest, value)})
        elif rest:
            cfg = replace(cfg, **{head: with_values_section(getattr(cfg, head), rest, value)})
        else:
            cfg = replace(cfg, **{head: value})
    return cfg


_CORE = frozenset(f.name for f in fields(Config))


def with_values_section(section, key: str, value):
    return replace(section, **{key: value})

