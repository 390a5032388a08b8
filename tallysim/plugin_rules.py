"""What a plugin module must declare (TRAITS, its config sections), checked when it is loaded, so that
a mistake is one line naming the plugin and what is expected, not a traceback from deep in validation.

No JAX and nothing above the registry (tallysim/protocols/__init__.py calls this): the checks read the
module's objects only. What a plugin's Protocol must return is checked when it is built
(tallysim/protocols/contract.py).
"""
from __future__ import annotations

import dataclasses
import re
import typing
from typing import Literal

from tallysim.fields import ConfigError

SCALARS = (bool, int, float, str)
PROTOCOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}$")


def check_name(name: str, where: str, what: str = "protocol") -> None:
    """A protocol name is a key=value value, a sweep axis value (split at commas), a run directory's name
    and a table cell: `My Proto!` or `a,b` registered, then could not be swept or named on a command line."""
    if not PROTOCOL_NAME.match(name):
        raise ConfigError(f"{where}: {what} name {name!r} is not a plain name; allowed: 1 to 64 letters, "
                          "digits, '_' and '-'")


def case_clash(name: str, taken, where: str, what: str = "protocol") -> None:
    """A name that differs from a taken one only in case (`Tally` beside tally, `MLP` beside mlp) is refused:
    registered, `protocol.name=Tally`, a slip for tally, ran the plugin with no "did you mean", and a sweep
    over both wrote two run directories that a case-insensitive file system (macOS, Windows) holds as one."""
    other = next((t for t in taken if t != name and t.casefold() == name.casefold()), None)
    if other is not None:
        raise ConfigError(f"{where}: {what} name {name!r} differs from the {what} {other!r} only in case; "
                          f"allowed: a name that differs from every {what}'s in more than case")


def _field_kind(t):
    """(scalar type, allowed) of an annotation validation understands, or None: bool, int, float, str,
    tuple (a shape), Literal[...] of one of those, each possibly Optional."""
    if typing.get_origin(t) is typing.Union:
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(t)) != 2:
            return None
        t = args[0]
    if typing.get_origin(t) is Literal:
        values = typing.get_args(t)
        kinds = {type(v) for v in values}
        return (kinds.pop(), values) if len(kinds) == 1 and type(values[0]) in SCALARS else None
    return (t, None) if t in SCALARS + (tuple,) else None


def check_section(module: str, section: str, cls) -> None:
    """A plugin's config section: a frozen dataclass of fields validation can check (a number needs
    bounds, declared with tallysim.fields.ints / floats)."""
    where = f"plugin {module!r}: the {section}.* section ({getattr(cls, '__name__', cls)!s})"
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):
        raise ConfigError(f"{where} is not a frozen dataclass; expected @dataclass(frozen=True) class "
                          "...: field: float = floats(default, \"(0, 1]\")")
    try:
        hints = typing.get_type_hints(cls)
        cls()                                   # every field needs a default: sections are optional
    except Exception as e:     # noqa: BLE001 - whatever the class raised, say it in one line
        raise ConfigError(f"{where} cannot be read ({type(e).__name__}: {e}); expected annotations "
                          "that resolve at import and a default for every field") from None
    for f in dataclasses.fields(cls):
        kind = _field_kind(hints[f.name])
        key = f"{section}.{f.name}"
        if kind is None:
            raise ConfigError(f"{where}: {key} is annotated {hints[f.name]!r}; expected bool, int, float, str, "
                              "tuple, Literal[...] of one of them, or Optional[...] of those")
        if kind[0] in (int, float) and kind[1] is None and "range" not in f.metadata:
            helper = "ints(default, lo, hi)" if kind[0] is int else 'floats(default, "(0, 1]")'
            raise ConfigError(f"{where}: {key} is a number without bounds; declare it with "
                              f"tallysim.fields.{helper}")


def check_declared(module: str, mod, traits, traits_cls, reserved: set, taken: dict) -> dict:
    """A plugin module's TRAITS and sections -> {section name: dataclass}; ConfigError otherwise.
    `reserved`: names a section may not take (the Config's fields, a config file's other keys);
    `taken`: section -> the built-in protocol that owns it."""
    if not isinstance(traits, traits_cls):
        raise ConfigError(f"plugin {module!r}: TRAITS is {type(traits).__name__} {traits!r:.60}; expected "
                          "tallysim.protocols.Traits(...) (or no TRAITS: the defaults)")
    if not isinstance(traits.sections, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                        for k, v in traits.sections.items()):
        raise ConfigError(f"plugin {module!r}: TRAITS.sections={traits.sections!r:.60}; expected a dict "
                          "{\"section\": \"the name of its frozen dataclass in the module\"}")
    if not isinstance(traits.defaults, dict) or not isinstance(traits.reads, (tuple, list, dict)):
        raise ConfigError(f"plugin {module!r}: TRAITS.defaults must be a dict and TRAITS.reads a tuple of "
                          "dotted keys (or a dict protocol name -> tuple)")
    out = {}
    for section, cls_name in traits.sections.items():
        if section in reserved or section in taken or "." in section or not section.isidentifier():
            owner = f"protocol {taken[section]}'s section" if section in taken else "a built-in config section or field"
            raise ConfigError(f"plugin {module!r}: TRAITS.sections names {section!r}, which is "
                              f"{owner if section in reserved or section in taken else 'not an identifier'}; "
                              "allowed: a new name of letters, digits and _, e.g. the protocol's own name")
        cls = getattr(mod, cls_name, None)
        check_section(module, section, cls)
        out[section] = cls
    return out


def section_fields(cls) -> tuple:
    """A section dataclass's fields as a comparable value (name, annotation, default, bounds): two plugins
    may share a section only where these agree (protocols.load_plugin)."""
    return tuple((f.name, str(f.type), repr(f.default), repr(dict(f.metadata))) for f in dataclasses.fields(cls))
