"""The config reference of the documentation site (docs/config.md), generated from the field
declarations, the one source `run --help` and validation read: every dotted key with its default and
allowed values (config.declared), the comment written beside (or just above) its declaration, and the
protocols that read it (protocols.reads, the rule `run` enforces).

The site's build runs it through mkdocs_hooks.py; `python -m tallysim.config_reference` prints it.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import io
import textwrap
import tokenize
import typing

from tallysim import config, protocols
from tallysim.protocols import declaration

MARKER = "<!-- config-reference -->"       # where docs/config.md takes the generated tables


def _class_source(cls) -> str:
    """The class's source; a built-in protocol's section is read from its module's file, not imported
    (tallysim/protocols/__init__.py), so it is found there by name."""
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        section = next((s for s, c in protocols.sections().items() if c is cls), "")
        for owner in protocols.section_owners(section):
            path = importlib.util.find_spec(protocols.module_of(owner)).origin
            found = declaration.section_class(path, protocols.traits(owner).sections[section])
            if found is not None:
                return ast.get_source_segment(found[1], found[2])
        return ""


def _comments(cls) -> dict[str, str]:
    """Field name -> its comment in the class's source: the trailing one on its line, else the
    comment lines right above it (a line continuing a comment, `#   ...`, joins it)."""
    src = textwrap.dedent(_class_source(cls))
    out, line_of = {}, {}
    names = {f.name for f in dataclasses.fields(cls)}
    tokens = list(tokenize.generate_tokens(io.StringIO(src).readline))
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.NAME and tok.start[1] == 4 and tok.string in names and \
                i + 1 < len(tokens) and tokens[i + 1].string == ":" and tok.string not in line_of:
            line_of[tok.string] = tok.start[0]
    by_line: dict[int, str] = {}
    continued = set()              # comment lines indented past the fields: they go on the line above's comment
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            by_line[tok.start[0]] = tok.string.lstrip("#").strip()
            if tok.start[1] > 4 and not tok.line[:tok.start[1]].strip():
                continued.add(tok.start[0])
    lines = src.splitlines()
    for name, ln in line_of.items():
        text = by_line.get(ln)
        if text is None:
            k, above = ln - 1, []
            while k >= 1 and lines[k - 1].strip().startswith("#") and k not in continued:
                above.insert(0, by_line.get(k, ""))
                k -= 1
            text = " ".join(a for a in above if a)
        else:                       # a trailing comment may go on over the next comment-only lines
            k = ln + 1
            while k in continued:
                text += " " + by_line[k]
                k += 1
        out[name] = " ".join(text.split())
    return out


def _sections() -> list[tuple[str, type]]:
    """("", Config) for the top level, then (section name, its dataclass) in declaration order."""
    hints = typing.get_type_hints(config.Config)
    shared = [("", config.Config)] + [(f.name, hints[f.name]) for f in dataclasses.fields(config.Config)
                                      if dataclasses.is_dataclass(hints[f.name])]
    # then the sections protocols own (TRAITS.sections), documented in each protocol module's docstring
    return shared + [(name, cls) for name, cls in protocols.sections().items() if name not in dict(shared)]


def _cell(text: str) -> str:
    """Text as one Markdown table cell (a `|` would end it, `<...>` would be read as HTML)."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def read_by(key: str) -> str:
    """Which protocols read `key` (protocols.reads, what `run` enforces: a field set away from its default
    for a protocol that does not read it is refused): "every protocol", or their names."""
    names = protocols.names()
    readers = [n for n in names if protocols.reads(n, key)]
    return "every protocol" if len(readers) == len(names) else ", ".join(readers)


def markdown() -> str:
    """One table per section: field, default, allowed values, what the declaration's comment says and
    which protocols read it."""
    declared = config.declared()
    parts = []
    for name, cls in _sections():
        notes = _comments(cls)
        keys = [k for k in declared if (k.rsplit(".", 1)[0] if "." in k else "") == name]
        if not keys:
            continue
        doc = inspect.getdoc(cls) if cls is not config.Config else None
        parts.append(f"### `{name}.*`" if name else "### Top level")
        owners = protocols.section_owners(name) if name else ()
        if owners:
            parts.append(f"Owned by `{'`, `'.join(owners)}`; what each field means: its module's docstring "
                         "(tallysim/protocols/), shown by `tallysim run --help`.")
        elif doc and not doc.startswith(cls.__name__ + "("):       # a dataclass's default doc is its signature
            parts.append(" ".join(doc.split()))
        rows = ["| field | default | allowed | note at its declaration | read by |", "|---|---|---|---|---|"]
        for k in keys:
            spec = declared[k]
            default = config.show_default(spec.default) + (" (derived)" if k in config.DERIVED else "")
            rows.append(f"| `{k}` | `{default}` | {_cell(config.show_allowed(spec))} | "
                        f"{_cell(notes.get(k.rsplit('.', 1)[-1], ''))} | {read_by(k)} |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts) + "\n"


def fill(page: str) -> str:
    """docs/config.md with the generated tables in place of MARKER."""
    return page.replace(MARKER, markdown())


if __name__ == "__main__":
    import sys
    sys.stdout.write(markdown())
