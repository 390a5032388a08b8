"""The schema's declarations as people read them: a default as `key=value` writes it, what a field
accepts, and `run --help`'s table. Split from schema.py; config re-exports them (`config.show_default`).
"""
from __future__ import annotations

from tallysim.schema import DERIVED, FieldSpec, declared


def show_default(value) -> str:
    """A default as `key=value` would write it: none, true, 28x28x1, 0.001."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def show_allowed(spec: FieldSpec) -> str:
    """What a field accepts, as the error messages say it: `a|b`, `1..2147483647`, `(0, 1]`."""
    if spec.choices:
        text = "|".join(map(str, spec.choices))
    elif spec.type is bool:
        text = "true|false"
    elif spec.type is tuple:
        text = "a shape: 1 to 4 positive integers, e.g. 28x28x1"
    elif spec.type is int:
        text = f"{spec.range[0]}..{spec.range[1]}"
    elif spec.type is float:
        lo, hi, lo_in, hi_in = spec.range
        text = f"{'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"
    else:
        text = "text"
    return text + (" or none" if spec.optional else "")


def help_table() -> str:
    """Every field with its default and allowed values (`tallysim run --help`), from the declarations;
    protocol.name's and model.name's followed by the installed plugins' names not loaded yet, marked."""
    from tallysim import protocols
    from tallysim.protocols.plugin_import import INSTALLED_NOTE
    installed = protocols.listed(())
    rows = [(k, show_default(f.default) + (" (derived)" if k in DERIVED else ""),
             "|".join([show_allowed(f), *installed]) if k in ("protocol.name", "model.name") else show_allowed(f))
            for k, f in declared().items()]
    w0, w1 = (max(len(r[i]) for r in rows) for i in (0, 1))
    lines = [f"  {k:<{w0}}  {d:<{w1}}  {a}" for k, d, a in rows]
    return ("config fields (key=value; default; allowed values). \"(derived)\": none derives the value from "
            "protocol.name. What each field means: docs/config.md."
            + (f" {INSTALLED_NOTE}." if installed else "") + "\n"
            f"  {'field':<{w0}}  {'default':<{w1}}  allowed\n" + "\n".join(lines))
