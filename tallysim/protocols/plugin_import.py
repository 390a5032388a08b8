"""Importing a plugin's module so that whatever goes wrong is one line naming it: an exception (SystemExit
too) raised on import, or a change to the built-in registry (tallysim.protocols.REGISTRY) made while the
plugin's code ran, at import or in its factory. An installed package's broken plugin must not leave a
traceback, nor another protocol running under a built-in's name. Its PROTOCOLS and MODELS tables, checked
(plugin_table). And installed packages' plugins (the `tallysim.plugins` entry points), each imported only
when one of its names is asked for.

Imports nothing of tallysim but `fields`: it sits with the registry (tallysim/protocols/__init__.py),
which hands itself in as `registry` (its module object) rather than being imported from here.
"""
from __future__ import annotations

import importlib
import re
import sys

from tallysim.fields import ConfigError, PluginError, one_line  # noqa: F401 - plugin_import.one_line, as before


def warn(text: str) -> None:
    print(f"tallysim: warning: {text}", file=sys.stderr)


class RegistryGuard:
    """Refuses a plugin that changed REGISTRY while it ran (at import, or in its factory): it would run
    another protocol under a built-in's name, and config.json would record no plugin. The registry is
    restored first."""

    def __init__(self, where: str, registry):
        self.where = where
        self.registry = registry          # the module tallysim.protocols

    def __enter__(self):
        self.before = (self.registry.REGISTRY, dict(self.registry.REGISTRY))

    def __exit__(self, *exc):
        g = vars(self.registry)
        if g["REGISTRY"] is self.before[0] and dict(g["REGISTRY"]) == self.before[1]:
            return False
        changed = sorted({k for k, _ in set(self.before[1].items()) ^ set(dict(g["REGISTRY"]).items())})
        g["REGISTRY"] = self.before[0]
        self.before[0].clear()
        self.before[0].update(self.before[1])
        raise ConfigError(f"{self.where} changed tallysim.protocols.REGISTRY ({', '.join(changed)}"
                          "), which holds the built-in protocols; allowed: list new protocols, under new names, "
                          "in the module's PROTOCOLS = {\"name\": \"factory\"}") from None


_IMPORTED: dict = {}        # module -> its file's modification time when this process first imported it


def _mtime(mod):
    try:
        import os
        return os.stat(mod.__file__).st_mtime_ns
    except (OSError, TypeError, AttributeError):    # a namespace or built-in module: nothing to compare
        return None


def source_digest(module: str):
    """A CRC-32 of an imported plugin module's source file ("crc32:..."; None for a module without one): a
    checkpoint records its plugins' (checkpoint.py), so a resume under an edited plugin is said."""
    import zlib
    try:
        with open(sys.modules[module].__file__, "rb") as f:
            return f"crc32:{zlib.crc32(f.read()):08x}"
    except (KeyError, OSError, TypeError, AttributeError):
        return None


def stale_if_changed(module: str, where: str) -> None:
    """A notebook loads a plugin, edits its file and loads it again: Python hands back the module imported
    first, so the edit (a new protocol in PROTOCOLS, a fixed round) was silently not used. Say so."""
    mod = sys.modules.get(module)
    if mod is not None and module in _IMPORTED and _IMPORTED[module] is not None \
            and _mtime(mod) != _IMPORTED[module]:
        warn(f"{where} was imported before and its file has changed since; this process keeps running the "
             "code it imported first (Python imports a module once): restart the Python process or kernel "
             "to use the edit")


def import_plugin(module: str, where: str, registry):
    """Import a plugin's module; whatever it raises (SystemExit too) is one line naming it."""
    if module.endswith(".py") or "/" in module or "\\" in module:   # importlib's "No module named '/x/y'"
        raise ConfigError(f"{where} is a file path, not a module name; allowed: the module's name with its "
                          "folder on the Python path, e.g. PYTHONPATH=DIR tallysim ... --plugin my_protocols")
    if "=" in module:   # `--plugin key=value ...` with the module left out: the override was taken as the module,
        # `data` (a folder of that name in the working directory is a package) imported, and the error named it
        raise ConfigError(f"{where} is a key=value, not a module name (--plugin takes the next word: was the "
                          "module left out?); allowed: --plugin MODULE, the name of a module on the Python path")
    stale_if_changed(module, where)
    try:
        with RegistryGuard(where, registry):
            mod = importlib.import_module(module)
        _IMPORTED.setdefault(module, _mtime(mod))
        return mod
    except ConfigError:
        raise
    except (Exception, SystemExit) as e:  # noqa: BLE001 - whatever the plugin raised, say it in one line
        raise PluginError(f"{where} cannot be imported ({one_line(e)}); allowed: a module on the Python "
                          "path that defines PROTOCOLS = {\"name\": \"factory\"} and does nothing else "
                          f"when imported{_nearby(module, e)}") from None


def _nearby(module: str, e: BaseException) -> str:
    """"; examples/fedmix.py is here: ..." when the module itself was not found but a file of its name
    sits in a folder below the working directory: `--plugin fedmix` from a checkout's root, where the
    example plugins are in examples/, is the first plugin run a newcomer tries."""
    from pathlib import Path
    if not isinstance(e, ModuleNotFoundError) or e.name != module.split(".")[0] or "." in module:
        return ""
    try:
        found = sorted(p.parent.relative_to(Path.cwd()).as_posix() for p in Path.cwd().glob(f"*/{module}.py"))
    except OSError:
        return ""
    if not found:
        return ""
    return (f"; {found[0]}/{module}.py is here: put its folder on the Python path, e.g. "
            f"PYTHONPATH={found[0]} tallysim ... --plugin {module}")


def plugin_table(mod, module: str, attr: str, what: str):
    """A plugin's PROTOCOLS or MODELS table ({name: factory function's name}), None when the module has none.
    One line for each way it is wrong (it said "defines no PROTOCOLS" of an empty dict, a list, and a
    factory name with no function behind it)."""
    listed = getattr(mod, attr, None)
    if listed is None:
        return None
    allowed = f"allowed: a non-empty dict {attr} = {{\"name\": \"{what} function in this module\"}}"
    if not isinstance(listed, dict) or not listed:
        raise ConfigError(f"plugin {module!r}: {attr} is {'an empty dict' if listed == {} else type(listed).__name__}; "
                          f"{allowed}")
    for k, v in listed.items():
        if not (isinstance(k, str) and k and isinstance(v, str)):
            raise ConfigError(f"plugin {module!r}: {attr} entry {k!r}: {v!r} is not a name and a factory's name "
                              f"(two strings); {allowed}")
        if not callable(getattr(mod, v, None)):
            raise ConfigError(f"plugin {module!r}: {attr} gives {k!r} the factory {v!r}, but the module has no "
                              f"function {v}; allowed: the name of a function defined in {module}")
    return listed


# Installed packages' plugins: `[project.entry-points."tallysim.plugins"]` with `NAME = "module"`, NAME a
# protocol.name, model.name or config section the module provides (one line for each). Read from the
# packages' metadata only: a module is imported when one of its names is asked for (protocols.installed),
# so an installed plugin that is broken (a missing dependency, a bad PROTOCOLS) stops no run that does not
# name it, and the run that does is told which package's plugin failed and why.
PLUGIN_GROUP = "tallysim.plugins"
_INSTALLED: list = []          # [{name: (module, where)}] once read; a list so a test may empty it


def installed_plugins() -> dict:
    """{name: (module, where)} of the `tallysim.plugins` entry points, `where` naming the entry point and
    its package for messages; {} where package metadata cannot be read (the built-ins still run)."""
    if _INSTALLED:
        return _INSTALLED[0]
    from importlib.metadata import entry_points
    found = {}
    try:
        eps = list(entry_points(group=PLUGIN_GROUP))
    except Exception as e:     # noqa: BLE001 - unreadable metadata of some package: say it, load none
        warn(f"the {PLUGIN_GROUP} entry points cannot be read ({one_line(e)}); none loaded")
        eps = []
    for ep in eps:
        dist = getattr(getattr(ep, "dist", None), "name", None)
        where = f"entry point {ep.name} = {ep.value!r} in [{PLUGIN_GROUP}]{f' of package {dist}' if dist else ''}"
        found.setdefault(ep.name, (ep.value.strip(), where))   # the first package's, as importlib lists them
    _INSTALLED.append(found)
    return found


_INSTALLED_FAILED: dict = {}     # entry-point name -> why its module could not be loaded (said again if asked)
# How the lists of allowed names (run --help, a refused protocol.name or model.name) mark an installed
# plugin's name not loaded yet: from the entry points alone, nothing imported, so which of a protocol, a
# model or a section the name is cannot be told, and it is listed for both fields.
INSTALLED_MARK = " (installed)"
INSTALLED_NOTE = ("\"(installed)\": an installed package's plugin (a tallysim.plugins entry point), loaded when "
                  "named; it provides a protocol, model or config section of that name")


def not_loaded(registry) -> tuple:
    """The installed plugins' names (entry points) that are not known yet as a protocol or model, nor
    failed to load: what `run --help` and the refusals list after the known names, marked INSTALLED_MARK."""
    known = (registry.REGISTRY, registry._EXTERNAL, registry._MODELS, registry._BUILTIN_MODELS, _INSTALLED_FAILED)
    # a module loaded already has its names known (a section's too, which no table above holds)
    loaded = {*registry._LOADED.values(), *registry._MODEL_PLUGIN.values()}
    return tuple(n for n, (module, _) in installed_plugins().items()
                 if not any(n in k for k in known) and module not in loaded)


def with_installed(allowed, registry) -> list:
    """`allowed` as text, then the installed plugins' names not loaded yet, each marked as installed."""
    return [*map(str, allowed), *(n + INSTALLED_MARK for n in not_loaded(registry))]


def allowed_text(allowed, registry) -> str:
    """"a, b, c (installed)" as a refusal lists them and, where an installed name is listed, what
    "(installed)" means."""
    every = with_installed(allowed, registry)
    return ", ".join(every) + (f" ({INSTALLED_NOTE})" if len(every) > len(tuple(allowed)) else "")


def load_installed(name, what: str, registry) -> bool:
    """Load the installed package's plugin that provides `name` (a protocol.name, model.name or section: its
    `tallysim.plugins` entry point's name), if there is one and it is not loaded yet; True when it was
    loaded now. Loaded as `--plugin module` would be (registry.load_plugin), so config.json names the module
    under "plugins" and `--resume` loads it again. Only a name that is asked for loads: another installed
    plugin that is broken stops nothing; this one, broken, is one line naming its package, the entry point
    and what failed. `registry` is tallysim.protocols (handed in: this module sits beneath it)."""
    # a built-in model's name is never an installed plugin's: apply_overrides asks for every model.name, and
    # a package with an entry point `cnn` (its model refused as a built-in's name) stopped model.name=cnn
    if not isinstance(name, str) or name in registry.REGISTRY or name in registry._EXTERNAL \
            or name in registry._MODELS or name in registry._BUILTIN_MODELS:
        return False
    found = installed_plugins().get(name)
    if found is None:
        return False
    module, where = found
    asked = f"{what}={name!r}" if what else repr(name)
    if name in _INSTALLED_FAILED:
        raise ConfigError(f"{asked} cannot be used: {_INSTALLED_FAILED[name]}")
    try:
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module):
            raise ConfigError(f"{module!r} is not a module name; allowed: NAME = \"module\" (a dotted "
                              "importable module that lists NAME in its PROTOCOLS or MODELS)")
        # all or nothing, as load_plugin: whether the module provides `name` is asked before any of its
        # names is registered (loaded first, a module without it left its protocols and models behind)
        mod = import_plugin(module, f"plugin {module!r}", registry)
        provides = [*(plugin_table(mod, module, "PROTOCOLS", "factory") or ()),
                    *(plugin_table(mod, module, "MODELS", "model factory") or ())]
        if provides and name not in provides and name not in _sections_of(registry, module):
            raise ConfigError(f"plugin {module!r} provides {', '.join(provides)}, not {name!r}; allowed: an entry "
                              "point named after a protocol, model or config section its module lists")
        registry.load_plugin(module)        # a module with neither table: its own refusal
    except ConfigError as e:
        _INSTALLED_FAILED[name] = f"its installed plugin cannot be loaded ({where}): {e}"
        raise ConfigError(f"{asked} cannot be used: {_INSTALLED_FAILED[name]}") from None
    return True


def _sections_of(registry, module: str) -> tuple:
    """The config sections a loaded plugin module declares (TRAITS.sections)."""
    try:
        return tuple(registry._declared(module, False).sections)
    except ConfigError:
        return ()
