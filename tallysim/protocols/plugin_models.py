"""Models defined outside tallysim: a plugin's `MODELS = {"name": "factory"}` (docs/howto/own-model.md),
checked and registered when the registry loads the plugin (protocols/__init__.py's load_plugin, which
re-exports the public names here), and looked up by model.name's choices, sizing and sim/models.py.
Imports only fields and plugin_rules: no JAX."""
from __future__ import annotations

from typing import Optional

from tallysim.fields import NameTaken
from tallysim.plugin_rules import check_name

# name -> "module:factory", and name -> the plugin module config.json must name. The built-ins' names
# come from the registry's `ready` (schema_sections.BUILTIN_MODELS), so that a plugin's model cannot take one.
MODELS: dict[str, str] = {}
MODEL_PLUGIN: dict[str, str] = {}
BUILTIN_MODELS: list = []


def plugin_models() -> tuple:
    """The names of the models plugins added (model.name's choices after the built-ins)."""
    return tuple(MODELS)


def model_target(name: str) -> Optional[tuple]:
    """(module, factory) of plugin model `name`; None for a built-in or an unknown name."""
    return tuple(MODELS[name].split(":")) if name in MODELS else None


def model_plugin_of(name: str) -> Optional[str]:
    """The plugin module that model `name` needs loaded (None: built in)."""
    return MODEL_PLUGIN.get(name)


def check_models(module: str, listed: dict) -> None:
    """Every model name of a plugin checked (plain, not taken) before any is registered (add_models)."""
    for name, fn in listed.items():
        check_name(name, f"plugin {module!r}", "model")
        target = f"{module}:{fn}"
        taken = "tallysim (a built-in model)" if name in BUILTIN_MODELS else MODELS.get(name)
        if taken and taken != target:
            raise NameTaken(f"plugin {module!r}: model.name={name!r} is already taken (by {taken}); allowed: "
                              f"a name that is not one of {', '.join((*BUILTIN_MODELS, *MODELS))}")


def add_models(module: str, listed: dict) -> int:
    """Register a plugin's models, checked by check_models; returns how many were new (the registry
    then bumps its generation: model.name's choices changed)."""
    added = 0
    for name, fn in listed.items():
        if name not in MODELS:
            MODELS[name] = f"{module}:{fn}"
            MODEL_PLUGIN[name] = module
            added += 1
    return added
