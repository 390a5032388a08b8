"""Models defined outside tallysim: a plugin's `MODELS = {"name": "factory"}` (docs/howto/own-model.md),
checked and registered when the registry loads the plugin (protocols/__init__.py's load_plugin, which
re-exports the public names here), and looked up by model.name's choices, sizing and sim/models.py.
Imports only fields and plugin_rules: no JAX."""
from __future__ import annotations

from typing import Optional

from tallysim.fields import ConfigError, NameTaken
from tallysim.plugin_rules import case_clash, check_name

# name -> "module:factory", and name -> the plugin module config.json must name. The built-ins' names
# come from the registry's `ready` (schema_sections.BUILTIN_MODELS), so that a plugin's model cannot take one.
MODELS: dict[str, str] = {}
MODEL_PLUGIN: dict[str, str] = {}
BUILTIN_MODELS: list = []
# name -> the bytes a text model's training step keeps per position of a window besides its logits and
# their gradient (which the estimate counts itself), as its plugin's POSITION_BYTES declares them
# (docs/howto/own-model.md): the memory estimate's hidden values for a plugin's sequence model.
POSITION_BYTES: dict[str, int] = {}


def plugin_models() -> tuple:
    """The names of the models plugins added (model.name's choices after the built-ins)."""
    return tuple(MODELS)


def model_target(name: str) -> Optional[tuple]:
    """(module, factory) of plugin model `name`; None for a built-in or an unknown name."""
    return tuple(MODELS[name].split(":")) if name in MODELS else None


def model_plugin_of(name: str) -> Optional[str]:
    """The plugin module that model `name` needs loaded (None: built in)."""
    return MODEL_PLUGIN.get(name)


def position_bytes(name: str) -> int:
    """What plugin model `name` declared in POSITION_BYTES; 0 where it declared nothing (the estimate then
    counts its logits and their gradient alone: a lower bound)."""
    return POSITION_BYTES.get(name, 0)


def check_position_bytes(module: str, declared, listed: dict) -> None:
    """A plugin's POSITION_BYTES (None: not declared) checked before anything of it is registered: a dict
    from models its MODELS lists to whole numbers of bytes, 0 or more."""
    if declared is None:
        return
    allowed = (f"allowed: POSITION_BYTES = {{\"model name\": bytes}}, a whole number >= 0 for each of the "
               f"models this module's MODELS lists ({', '.join(listed) or 'none'}): what its training step "
               "keeps per position of a text window besides its logits and their gradient")
    if not isinstance(declared, dict):
        raise ConfigError(f"plugin {module!r}: POSITION_BYTES is {type(declared).__name__}; {allowed}")
    for name, value in declared.items():
        if name not in listed:
            raise ConfigError(f"plugin {module!r}: POSITION_BYTES names {name!r}, which its MODELS does not "
                              f"list; {allowed}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"plugin {module!r}: POSITION_BYTES gives {name!r} {value!r}; {allowed}")


def check_models(module: str, listed: dict) -> None:
    """Every model name of a plugin checked (plain, not taken) before any is registered (add_models)."""
    for name, fn in listed.items():
        check_name(name, f"plugin {module!r}", "model")
        case_clash(name, (*BUILTIN_MODELS, *MODELS), f"plugin {module!r}", "model")
        target = f"{module}:{fn}"
        taken = "tallysim (a built-in model)" if name in BUILTIN_MODELS else MODELS.get(name)
        if taken and taken != target:
            raise NameTaken(f"plugin {module!r}: model.name={name!r} is already taken (by {taken}); allowed: "
                              f"a name that is not one of {', '.join((*BUILTIN_MODELS, *MODELS))}")


def add_models(module: str, listed: dict, position: dict | None = None) -> int:
    """Register a plugin's models, checked by check_models (and their POSITION_BYTES, `position`, by
    check_position_bytes); returns how many were new (the registry then bumps its generation:
    model.name's choices changed)."""
    added, position = 0, position or {}
    for name, fn in listed.items():
        if name in position:        # as the module declares it now (a reload may drop or change it)
            POSITION_BYTES[name] = position[name]
        else:
            POSITION_BYTES.pop(name, None)
        if name not in MODELS:
            MODELS[name] = f"{module}:{fn}"
            MODEL_PLUGIN[name] = module
            added += 1
    return added
