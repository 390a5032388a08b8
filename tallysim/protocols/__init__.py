"""Protocol registry: `protocol.name` -> the module that implements it, its traits and its config section.

A protocol is one module. It defines a factory `make(ctx) -> Protocol` (tallysim/protocols/context.py),
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
  is loaded by `--plugin module`, by `"plugins": ["module"]` in a config file (`load_plugin`), by an
  installed package's entry point in the group `tallysim.plugins` (`name = "module"`, loaded by `installed`
  only when `name` is asked for, as a protocol, model or section, and recorded in config.json as
  `--plugin` is), or by one in the older group `tallysim.protocols` (`name = "module:factory"`), found on
  first use.
  A plugin is imported, so its TRAITS and section may be any Python; they are checked when it loads
  (tallysim/plugin_rules.py), and what its factory builds when the run is built (protocols/contract.py).
  An entry point that cannot be used is reported once on stderr and skipped: another package's broken
  install must not stop runs of the built-ins.

Importing this package imports no JAX and nothing above it (`Context` and `Protocol` are in
protocols/context.py, re-exported by protocols/base.py); `factory` and `make` import a protocol's
module on first use. What a module declares, and the reading of a built-in's from its source, are in protocols/declaration.py; importing a
plugin in one line whatever it does, in protocols/plugin_import.py; the models a plugin adds, in
protocols/plugin_models.py.
"""
from __future__ import annotations

import functools
import importlib
import sys
from typing import Optional

from tallysim.fields import ConfigError, NameTaken, did_you_mean
from tallysim.protocols.declaration import BASE_DEFAULTS, SECTION_NAMES, Declared, Traits, read_source  # noqa: F401
from tallysim.protocols.plugin_import import (RegistryGuard, import_plugin, load_installed, one_line, plugin_table,
                                              allowed_text, not_loaded, warn, with_installed)
from tallysim.plugin_rules import PROTOCOL_NAME, case_clash, check_name  # noqa: F401 - protocols.PROTOCOL_NAME, as before
# A plugin's models (MODELS): protocols/plugin_models.py; the registry's own names for its tables, as before
from tallysim.protocols.plugin_models import (BUILTIN_MODELS as _BUILTIN_MODELS, MODEL_PLUGIN as _MODEL_PLUGIN,
                                              MODELS as _MODELS, POSITION_BYTES as _POSITION_BYTES, add_models,
                                              check_models, check_position_bytes, model_plugin_of, model_target,
                                              plugin_models, position_bytes)
# The registry's tables: protocols/registry_tables.py; its own names for the ones it changes, as before
from tallysim.protocols.registry_tables import (ALIASES, ENTRY_POINTS, REGISTRY, BROKEN as _BROKEN,  # noqa: F401
                                                ENTRY_POINTS_READ as _entry_points_read, EXTERNAL as _EXTERNAL,
                                                FROM_ENTRY_POINT as _FROM_ENTRY_POINT, GENERATION as _generation,
                                                LOADED as _LOADED, READY as _ready, RESERVED as _RESERVED,
                                                USABLE as _USABLE)


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


def ready(core_fields: tuple = (), models: tuple = ()) -> None:
    _RESERVED.update(core_fields)
    _BUILTIN_MODELS[:] = models
    _ready[0] = True


def _add_models(module: str, listed: dict, position: dict | None = None) -> None:
    """Register a plugin's models and their POSITION_BYTES (plugin_models.add_models), checked by
    check_models and check_position_bytes."""
    if add_models(module, listed, position):
        _generation[0] += 1            # model.name's choices (config's declarations cache)


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
        warn(f"the {ENTRY_POINTS} entry points cannot be read ({one_line(e)}); none loaded")
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


def _skip(name: str, why: str) -> None:
    """An entry point that cannot be used: reported once, left out of names(); naming it is an error."""
    if name not in REGISTRY:
        _BROKEN[name] = why
        _EXTERNAL.pop(name, None)
        _generation[0] += 1
    warn(f"{why}; skipped (the other protocols are unaffected)")


# The guard is handed this module itself: a plugin may rebind tallysim.protocols.REGISTRY, not only
# change the dict, and the guard restores the binding as well as the contents.
def _guard(where: str) -> RegistryGuard:
    return RegistryGuard(where, sys.modules[__name__])


def _import(module: str, where: str):
    return import_plugin(module, where, sys.modules[__name__])


def _check_free(name: str, target: str, where: str) -> Optional[str]:
    """Protocol `name` may be registered as `target`: plain, and not another's. Returns who has it already
    (None: nobody; `target` itself: a plugin loaded again)."""
    check_name(name, where)
    case_clash(name, (*REGISTRY, *_EXTERNAL), where)
    known = REGISTRY.get(name) and f"tallysim.protocols.{REGISTRY[name]}" or _EXTERNAL.get(name)
    if known and known != target:
        raise NameTaken(f"{where}: protocol.name={name!r} is already taken (by {known}); allowed: a name "
                          f"that is not one of {', '.join(names())}")
    return known


def _add(name: str, target: str, where: str) -> None:
    if not _check_free(name, target, where):
        _EXTERNAL[name] = target
        _generation[0] += 1


def load_plugin(module: str) -> list[str]:
    """Import a plugin module and register the protocols its `PROTOCOLS` lists and the models its
    `MODELS` lists (either or both); returns their names."""
    if not isinstance(module, str) or not module.strip():
        raise ConfigError(f"plugin {module!r} is not a module name; allowed: a dotted importable module, "
                          "e.g. my_protocols")
    if not _ready[0]:
        importlib.import_module("tallysim.config")   # the built-in sections a plugin's may not shadow
    mod = _import(module, f"plugin {module!r}")
    models = plugin_table(mod, module, "MODELS", "model factory")
    listed = plugin_table(mod, module, "PROTOCOLS", "factory")
    position = getattr(mod, "POSITION_BYTES", None)     # its text models' activations (the memory estimate)
    check_position_bytes(module, position, models or {})
    if models is not None and listed is None:     # a module of models only (docs/howto/own-model.md)
        check_models(module, models)
        _add_models(module, models, position)
        return list(models)
    if listed is None:
        raise ConfigError(f"plugin {module!r} defines no PROTOCOLS; allowed: a module-level dict PROTOCOLS = "
                          "{\"name\": \"factory function in this module\"}, or for models MODELS = {\"name\": "
                          "\"model factory function\"} (docs/howto/own-model.md)")
    # All or nothing: every protocol name, the module's TRAITS and sections, and every model name checked
    # before anything is registered. A model name that clashed left the module's protocols registered in
    # the process (in a notebook: usable, yet "the plugin failed to load"), and so did a protocol name
    # that clashed after the first.
    for name, fn in listed.items():
        _check_free(name, f"{module}:{fn}", f"plugin {module!r}")
    _declared(module, False)               # its TRAITS and sections, checked now: one line at load
    _check_shared_sections(module)
    if models is not None:
        check_models(module, models)
    for name, fn in listed.items():
        _add(name, f"{module}:{fn}", f"plugin {module!r}")
        _LOADED[name] = module
    if models is not None:
        _add_models(module, models, position)
    return list(listed) + list(models or ())


def _check_shared_sections(module: str) -> None:
    """A config section another loaded plugin declares too must have the same fields: the later module's
    dataclass replaced the earlier's in the Config, so the earlier plugin's runs read the later one's
    defaults and bounds in silence (its `mix` declared 0.5, run at 0.9)."""
    from tallysim.plugin_rules import section_fields
    mine = _declared(module, False).sections
    for other in dict.fromkeys(t.split(":")[0] for t in _EXTERNAL.values()):
        try:
            theirs = _declared(other, False).sections if other != module else {}
        except ConfigError:         # a broken entry point: reported where it is used
            continue
        for section in set(mine) & set(theirs):
            if section_fields(mine[section]) != section_fields(theirs[section]):
                raise ConfigError(f"plugin {module!r}: TRAITS.sections names {section!r}, which plugin {other!r} "
                                  f"declares with other fields or defaults ({theirs[section].__name__}); allowed: the "
                                  f"same dataclass (import it from {other}), or a section name of its own")


def installed(name, what: str = "") -> bool:
    """Load the installed package's plugin that provides `name` (its `tallysim.plugins` entry point), if
    any and not loaded yet: plugin_import.load_installed. `what` names the field asking (protocol.name)."""
    return load_installed(name, what, sys.modules[__name__])


def listed(allowed) -> list:
    """`allowed`, then the installed plugins not loaded yet, marked (plugin_import.with_installed)."""
    return with_installed(tuple(allowed), sys.modules[__name__])


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
    """names(), after importing the entry points' modules; one that fails is skipped (`_skip`); memoised."""
    key = (_entry_points(), _generation[0], _ready[0], tuple(REGISTRY.items()),       # entry points read first
           tuple(_EXTERNAL.items()), tuple(_BROKEN))
    if _USABLE[0] == key:
        return _USABLE[1]
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
    _USABLE[:] = [key, tuple(out), {s: c for n in out for s, c in _declared(*_target(n)[::2]).sections.items()}]
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
    if installed(name, "protocol.name"):    # an installed package's plugin, loaded now that it is named
        return _target(name)
    raise ConfigError(f"protocol.name={name!r} is not known; allowed: {allowed_text(names(), sys.modules[__name__])}"
                      f"{did_you_mean(name, names() + not_loaded(sys.modules[__name__]), ALIASES)}")


def module_of(name: str) -> str:
    """The module that implements protocol `name` (not imported)."""
    return _target(name)[0]


@functools.lru_cache(maxsize=None)
def _declared(module: str, builtin: bool) -> Declared:
    if not builtin:
        from tallysim.plugin_rules import check_declared
        mod = _import(module, f"plugin {module!r}")
        t = getattr(mod, "TRAITS", Traits())
        taken = {s: n for n in REGISTRY for s in _declared(_target(n)[0], True).sections}
        return Declared(t, check_declared(module, mod, t, Traits, _RESERVED, taken))
    return read_source(module)


def traits(name: str) -> Traits:
    """The traits protocol `name`'s module declares."""
    module, _, builtin = _target(name)
    return _declared(module, builtin).traits


def sections() -> dict:
    """section name -> its dataclass, of every known protocol (a module's once), in names() order."""
    _usable()
    return dict(_USABLE[2])


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
    with _guard(f"protocol {name!r}'s factory ({_EXTERNAL.get(name)})"):
        return factory(name)(ctx)


__all__ = ["BASE_DEFAULTS", "REGISTRY", "Traits", "client_state", "factory", "load_plugin", "make",
           "names", "plugin_of", "sections", "traits"]
