"""Protocol registry: `protocol.name` -> the module that implements it, its traits and its config section.

A protocol is one module. It defines a factory `make(ctx) -> Protocol` (tallysim/protocols/base.py),
`TRAITS = Traits(...)` (what configuration and validation need to know before anything is built) and,
optionally, its own config section: a frozen dataclass named in `TRAITS.sections` ({"fedavgm":
"FedAvgMConfig"} makes `fedavgm.*` fields, with validation, `run --help` and JSON round-trip). See
docs/write-a-protocol.md.

Where the module lives:
- in this package: one line in REGISTRY. TRAITS and the section class are written with literals only
  (and `ints`/`floats` from tallysim.fields), because they are read from the file's source without
  importing it: config and validation stay free of JAX (tests/test_protocols.py checks that what is
  read equals what the module holds once imported);
- anywhere else (a plugin): the module lists its protocols as `PROTOCOLS = {"name": "factory", ...}` and
  is loaded by `--plugin module`, by `"plugins": ["module"]` in a config file (`load_plugin`), or by a
  Python entry point in the group `tallysim.protocols` (`name = "module:factory"`), found on first use.
  A plugin is imported, so its TRAITS and section may be any Python; they are checked when it loads
  (tallysim/plugin_rules.py), and what its factory builds when the run is built (protocols/contract.py).
  An entry point that cannot be used is reported once on stderr and skipped: another package's broken
  install must not stop runs of the built-ins.

Importing this package imports no JAX and nothing above it (`Context` and `Protocol` are in
protocols/base.py); `factory` and `make` import a protocol's module on first use.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import importlib.util
import sys
import typing
from dataclasses import dataclass, field
from typing import Literal, Optional

from tallysim import fields as _fields
from tallysim.fields import ConfigError

REGISTRY = {                       # name -> "module:factory"; this order is the order users see
    "local": "local_only:make",
    "fedavg": "fedavg:make",
    "fedprox": "fedavg:make_fedprox",
    "feddf": "feddf:make",
    "softlabel": "softlabel:make",
    "tally": "tally:make",
    "bridge": "bridge:make",
    "fedavgm": "fedavgm:make",
    "fedadam": "fedadam:make",
    "fedyogi": "fedyogi:make",
    "topk_ef": "topk_ef:make",
    "randk": "randk:make",
    "fedpaq": "fedpaq:make",
    "signsgd": "signsgd:make",
    "scaffold": "scaffold:make",
    "fednova": "fednova:make",
    "cfd": "cfd:make",
    "selective_fd": "selective_fd:make",
    "fedct": "fedct:make",
    "topk_soft": "topk_soft:make",
}
ENTRY_POINTS = "tallysim.protocols"


@dataclass(frozen=True)
class Traits:
    """What a protocol is, as far as configuration and validation are concerned."""
    fedavg_family: bool = False  # averages parameters into a server model each round (fedavg.aggregate,
    #                              robust aggregation's memory)
    distill: bool = False        # peers train on targets for this round's probes (a stale message would be
    #                              about last round's probes: faults.kind=straggler is refused)
    soft: bool = False           # sends probability vectors (the probe outputs' memory estimate)
    shared_init: str = ""        # not empty: needs one common init, for this reason (init.shared=false refused)
    privacy: str = ""            # privacy.noise > 0: the mechanism that protects what it sends (privacy.py):
    #                              "votes" (GNMax on the vote counts), "sum" (clipped, noised soft-label sum),
    #                              "params" (DP-FedAvg: clipped, noised update sum); "xor" (fedct: its own
    #                              fedct.xor_epsilon, not privacy.noise)
    # Derived defaults (config.DERIVED) when the field is left null: a value, or the name of another
    # field whose value it takes. Unlisted ones take BASE_DEFAULTS.
    defaults: dict = field(default_factory=dict)
    # The config sections this module owns: section name -> the name of its frozen dataclass in the
    # module. config.json records a section only for the protocols of its module (or when not default).
    sections: dict = field(default_factory=dict)
    # The protocol-specific fields it reads: dotted keys or whole sections ("vote"), or a dict
    # {protocol name: (...)} when the module builds several. Its own sections count as read (with a
    # dict, only where that protocol's entry lists them).
    # validation refuses a non-default value of a protocol-specific field (one that some protocol
    # reads) that this protocol does not read: it would be silently ignored.
    reads: object = ()
    messages: bool = True        # its peers send messages (faults that act on messages apply)
    sgd_only: str = ""           # not empty: needs plain SGD (optim.name=sgd, optim.momentum=0), for this
    #                              reason (validation refuses momentum and Adam)
    # What a client keeps from one round to the next, said as "<protocol> keeps ..."; "" for none: every
    # active client restarts from the server model, so a run may hold the server model alone and
    # materialise each round's cohort (client_storage=auto, docs/population.md). A plugin is stateful
    # unless it says otherwise. `client_state(cfg)` adds what the configuration keeps.
    client_state: str = "each client's own model"

    def reads_key(self, name: str, key: str) -> bool:
        listed = self.reads.get(name, ()) if isinstance(self.reads, dict) else self.reads
        section = key.split(".")[0]
        # a module that builds several protocols (reads as a dict) says which of its sections each reads
        own = section in self.sections and not isinstance(self.reads, dict)
        return own or any(key == r or key.startswith(r + ".") for r in listed)

    def default(self, key: str, cfg):
        value = {**BASE_DEFAULTS, **self.defaults}[key]
        if isinstance(value, str):
            obj = cfg
            for part in value.split("."):
                obj = getattr(obj, part)
            return obj
        return value


BASE_DEFAULTS = {"optim.reset_each_round": False, "init.shared": False, "warmup_epochs": 0}


def client_state(cfg) -> str:
    """What protocol cfg.protocol.name's clients keep between rounds under `cfg`, as a phrase naming
    the protocol and the cause ("" = nothing: the cohort alone may be materialised each round)."""
    name = cfg.protocol.name
    t = traits(name)
    if t.client_state:
        return f"{name} keeps {t.client_state} between rounds"
    reset = cfg.optim.reset_each_round
    if (t.default("optim.reset_each_round", cfg) if reset is None else reset) is False:
        return f"{name} keeps each client's optimizer state between rounds: optim.reset_each_round=false"
    if cfg.faults.kind == "straggler":
        return f"{name} keeps each client's last model between rounds: faults.kind=straggler sends it"
    return ""

# Plugins: name -> "absolute.module:factory", and which module of those was loaded by name
# (--plugin / "plugins"; an entry point's is found again without being recorded).
_EXTERNAL: dict[str, str] = {}
_LOADED: dict[str, str] = {}          # protocol name -> the plugin module config.json must name
_generation = [0]                     # bumped when plugins add protocols (config's declarations cache)
_entry_points_read = [False]
# Entry points are read once tallysim.config has finished importing (it calls `ready`): an entry-point
# module imports tallysim's protocol code, which imports config, so reading them while config's own
# module-level constants are computed would import config half-initialised. Until then the names are
# the built-ins' and the plugins loaded by name.
_ready = [False]
# Entry points that cannot be used (their module fails to import, a name already taken, a malformed
# value): name -> the one-line reason. An installed package's broken entry point must not stop runs of
# the built-ins or of other plugins, so it is reported once on stderr and skipped; naming it fails.
_BROKEN: dict[str, str] = {}
_FROM_ENTRY_POINT: set = set()
# Names a plugin's section may not take: the Config's own fields and sections, and the top-level keys
# a config file may hold besides them (schema.py adds the fields through `ready`).
_RESERVED = {"plugins", "derived", "extends", "smoke", "sweep", "description", "resumed", "placement"}


def ready(core_fields: tuple = ()) -> None:
    _RESERVED.update(core_fields)
    _ready[0] = True


def generation() -> int:
    _entry_points()
    return _generation[0]


def _entry_points() -> None:
    if _entry_points_read[0] or not _ready[0]:
        return
    _entry_points_read[0] = True
    from importlib.metadata import entry_points
    try:
        found = list(entry_points(group=ENTRY_POINTS))
    except Exception as e:     # noqa: BLE001 - unreadable package metadata: the built-ins still run
        _warn(f"the {ENTRY_POINTS} entry points cannot be read ({_one_line(e)}); none loaded")
        return
    for ep in found:
        where = f"entry point {ep.name} = {ep.value!r}"
        value = ep.value.replace(" ", "")
        try:
            if value.count(":") != 1 or not all(value.split(":")):
                raise ConfigError(f"{where}: expected \"module:factory\"")
            _add(ep.name, value, where)
            _FROM_ENTRY_POINT.add(ep.name)
        except ConfigError as e:
            _skip(ep.name, str(e))


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _warn(text: str) -> None:
    print(f"tallysim: warning: {text}", file=sys.stderr)


def _skip(name: str, why: str) -> None:
    """An entry point that cannot be used: reported once, left out of names(); naming it is an error."""
    if name not in REGISTRY:
        _BROKEN[name] = why
        _EXTERNAL.pop(name, None)
        _generation[0] += 1
    _warn(f"{why}; skipped (the other protocols are unaffected)")


class _Guard:
    """Refuses a plugin that changed REGISTRY while it ran (at import, or in its factory): it would run
    another protocol under a built-in's name, and config.json would record no plugin. The registry is
    restored first."""

    def __init__(self, where: str):
        self.where = where

    def __enter__(self):
        self.before = (REGISTRY, dict(REGISTRY))

    def __exit__(self, *exc):
        g = globals()
        if g["REGISTRY"] is self.before[0] and dict(REGISTRY) == self.before[1]:
            return False
        changed = sorted({k for k, _ in set(self.before[1].items()) ^ set(dict(g["REGISTRY"]).items())})
        g["REGISTRY"] = self.before[0]
        REGISTRY.clear()
        REGISTRY.update(self.before[1])
        raise ConfigError(f"{self.where} changed tallysim.protocols.REGISTRY ({', '.join(changed)}"
                          "), which holds the built-in protocols; allowed: list new protocols, under new names, "
                          "in the module's PROTOCOLS = {\"name\": \"factory\"}") from None


def _import(module: str, where: str):
    """Import a plugin's module; whatever it raises (SystemExit too) is one line naming it."""
    try:
        with _Guard(where):
            return importlib.import_module(module)
    except ConfigError:
        raise
    except (Exception, SystemExit) as e:  # noqa: BLE001 - whatever the plugin raised, say it in one line
        raise ConfigError(f"{where} cannot be imported ({_one_line(e)}); allowed: a module on the Python "
                          "path that defines PROTOCOLS = {\"name\": \"factory\"} and does nothing else "
                          "when imported") from None


def _add(name: str, target: str, where: str) -> None:
    known = REGISTRY.get(name) and f"tallysim.protocols.{REGISTRY[name]}" or _EXTERNAL.get(name)
    if known and known != target:
        raise ConfigError(f"{where}: protocol.name={name!r} is already taken (by {known}); allowed: a name "
                          f"that is not one of {', '.join(names())}")
    if not known:
        _EXTERNAL[name] = target
        _generation[0] += 1


def load_plugin(module: str) -> list[str]:
    """Import a plugin module and register the protocols its `PROTOCOLS` lists; returns their names."""
    if not isinstance(module, str) or not module.strip():
        raise ConfigError(f"plugin {module!r} is not a module name; allowed: a dotted importable module, "
                          "e.g. my_protocols")
    if not _ready[0]:
        importlib.import_module("tallysim.config")   # the built-in sections a plugin's may not shadow
    mod = _import(module, f"plugin {module!r}")
    listed = getattr(mod, "PROTOCOLS", None)
    if not isinstance(listed, dict) or not listed or not all(
            isinstance(k, str) and k and isinstance(v, str) and callable(getattr(mod, v, None))
            for k, v in listed.items()):
        raise ConfigError(f"plugin {module!r} defines no PROTOCOLS; allowed: a module-level dict "
                          "PROTOCOLS = {\"name\": \"factory function in this module\"}")
    _declared(module, False)               # its TRAITS and sections, checked now: one line at load
    for name, fn in listed.items():
        _add(name, f"{module}:{fn}", f"plugin {module!r}")
        _LOADED[name] = module
    return list(listed)


def plugin_of(name: str) -> Optional[str]:
    """The plugin module that protocol `name` needs loaded by name (None: built in, or an entry point)."""
    return _LOADED.get(name)


def names() -> tuple:
    """Every known protocol name: the built-ins in REGISTRY's order, then the plugins'."""
    _entry_points()
    return tuple(REGISTRY) + tuple(n for n in _EXTERNAL if n not in REGISTRY)


def unusable(name) -> Optional[str]:
    """Why an installed entry point named `name` was skipped (None: it was not)."""
    _entry_points()
    return _BROKEN.get(name) if name not in REGISTRY and name not in _EXTERNAL else None


def _usable() -> tuple:
    """names(), after importing the entry points' modules; one that fails is skipped (`_skip`)."""
    out = []
    for n in names():
        try:
            _declared(*_target(n)[::2])
        except ConfigError as e:
            if n not in _FROM_ENTRY_POINT:
                raise
            _skip(n, str(e))
            continue
        out.append(n)
    return tuple(out)


def _target(name: str) -> tuple[str, str, bool]:
    """(module, factory, built in) of protocol `name`."""
    _entry_points()
    if name in _BROKEN and name not in REGISTRY:
        raise ConfigError(f"protocol.name={name!r} cannot be used: {_BROKEN[name]}")
    if name in REGISTRY:
        module, fn = REGISTRY[name].split(":")
        return f"{__name__}.{module}", fn, True
    if name in _EXTERNAL:
        module, fn = _EXTERNAL[name].split(":")
        return module, fn, False
    raise ConfigError(f"protocol.name={name!r} is not known; allowed: {', '.join(names())}")


def module_of(name: str) -> str:
    """The module that implements protocol `name` (not imported)."""
    return _target(name)[0]


class Declared(typing.NamedTuple):
    traits: Traits
    sections: dict                  # section name -> dataclass


@functools.lru_cache(maxsize=None)
def _declared(module: str, builtin: bool) -> Declared:
    if not builtin:
        from tallysim.plugin_rules import check_declared
        mod = _import(module, f"plugin {module!r}")
        t = getattr(mod, "TRAITS", Traits())
        taken = {s: n for n in REGISTRY for s in _declared(_target(n)[0], True).sections}
        return Declared(t, check_declared(module, mod, t, Traits, _RESERVED, taken))
    return _read_source(module)


SECTION_NAMES = {"dataclass": dataclass, "field": field, "Literal": Literal, "Optional": Optional,
                 "ints": _fields.ints, "floats": _fields.floats, "INT_MAX": _fields.INT_MAX,
                 "F32_MAX": _fields.F32_MAX}


def _read_source(module: str) -> Declared:
    """TRAITS = Traits(key=literal, ...) and its section classes, from a module's file, without importing it."""
    path = importlib.util.find_spec(module).origin
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    traits = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["TRAITS"]:
            call = node.value
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Traits" and not call.args:
                try:
                    traits = Traits(**{k.arg: ast.literal_eval(k.value) for k in call.keywords})
                except ValueError:
                    pass
            break
    if traits is None:
        raise TypeError(f"{path}: define TRAITS = Traits(keyword=literal, ...) at the top level "
                        "(read without importing the module)")
    sections = {}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    for section, cls in traits.sections.items():
        if cls not in classes:
            raise TypeError(f"{path}: TRAITS.sections names {cls!r}, which is not a top-level class there")
        namespace = dict(SECTION_NAMES, __name__=__name__)   # a module in sys.modules (dataclass reads it)
        exec(compile(ast.Module(body=[classes[cls]], type_ignores=[]), path, "exec"), namespace)  # noqa: S102
        sections[section] = namespace[cls]
        assert dataclasses.is_dataclass(sections[section]), f"{path}: {cls} must be a frozen dataclass"
    return Declared(traits, sections)


def traits(name: str) -> Traits:
    """The traits protocol `name`'s module declares."""
    module, _, builtin = _target(name)
    return _declared(module, builtin).traits


def sections() -> dict:
    """section name -> its dataclass, of every known protocol (a module's once), in names() order."""
    out = {}
    for n in _usable():
        out.update(_declared(*_target(n)[::2]).sections)
    return out


def section_owners(section: str) -> tuple:
    """The protocols whose module owns config section `section`."""
    return tuple(n for n in _usable() if section in _declared(*_target(n)[::2]).sections)


def reads(name: str, key: str) -> bool:
    """Does protocol `name` read config field `key`? (Fields no protocol lists are read by all.)"""
    if not specific(key):
        return True
    return traits(name).reads_key(name, key)


def specific(key: str) -> bool:
    """Is `key` a protocol-specific field: listed in some protocol's reads, or in a protocol's section?"""
    return any(traits(n).reads_key(n, key) for n in _usable())


def factory(name: str):
    """The function that builds protocol `name` from a Context (imports its module, and JAX)."""
    module, fn, builtin = _target(name)
    if builtin:
        return getattr(importlib.import_module(module), fn)
    made = getattr(_import(module, f"plugin {module!r}"), fn, None)
    if not callable(made):
        raise ConfigError(f"protocol.name={name!r}: plugin {module!r} has no function {fn!r}; expected the "
                          "factory its PROTOCOLS (or entry point) names, make(ctx) -> Protocol")
    return made


def make(ctx):
    """The Protocol ctx.cfg.protocol.name names, built for ctx (a plugin's checked by build.py)."""
    name = ctx.cfg.protocol.name
    if name in REGISTRY:
        return factory(name)(ctx)
    with _Guard(f"protocol {name!r}'s factory ({_EXTERNAL.get(name)})"):
        return factory(name)(ctx)


__all__ = ["BASE_DEFAULTS", "REGISTRY", "Traits", "client_state", "factory", "load_plugin", "make",
           "names", "plugin_of", "sections", "traits"]
