"""Importing a plugin's module so that whatever goes wrong is one line naming it: an exception (SystemExit
too) raised on import, or a change to the built-in registry (tallysim.protocols.REGISTRY) made while the
plugin's code ran, at import or in its factory. An installed package's broken plugin must not leave a
traceback, nor another protocol running under a built-in's name.

Imports nothing of tallysim but `fields`: it sits with the registry (tallysim/protocols/__init__.py),
which hands itself in as `registry` (its module object) rather than being imported from here.
"""
from __future__ import annotations

import importlib
import sys

from tallysim.fields import ConfigError, PluginError


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


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
