"""The path an output names, checked before anything is written or deleted there (split from outdir.py,
which re-exports these names): UTF-8 text, a `..` that means another directory to the file system than
as written (through a link), a group or run name that is one plain path component, and the directories
never to be cleared (the root, the working directory or above, a home or above).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from tallysim.fields import ConfigError
from tallysim.validation import MAX_NAME      # one limit for every name that becomes a path component

_BAD_CHARS = re.compile(r"[/\\\x00-\x1f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Given:
    """How a refusal names the folder it refuses, and what to choose instead, in the words of the option the
    user gave (`flag`). Its own value (a run's or a sweep's --out): "--out DIR" and "another --out". A folder
    below the value given (`under`, what `whose` owns: a figure group's RES/<figure>/<group> under --results
    RES) is not what the user typed, so it is "the folder D of group 'g' (under --results RES)" and "another
    --results than RES (the runs of group 'g' go in D)": "--results RES/fig/g ...; choose another --results"
    named the group's folder as the value given to --results."""

    def __init__(self, flag: str = "--out", under=None, whose: str = ""):
        self.flag, self.under, self.whose = flag, under, whose

    def named(self, out) -> str:
        if self.under is None:
            return f"{self.flag} {out}"
        return f"the folder {out} of {self.whose} (under {self.flag} {self.under})"

    def another(self, out) -> str:
        if self.under is None:
            return f"another {self.flag}"
        return f"another {self.flag} than {self.under} (the runs of {self.whose} go in {out})"


def given(flag) -> Given:
    """`flag` as a Given: a plain flag's name ("--out", "out" for Python's keyword) names the value itself."""
    return flag if isinstance(flag, Given) else Given(flag)


def check_text(value, what) -> None:
    """A path or name holding bytes that are not UTF-8 (Python keeps them as lone surrogates) cannot be
    printed, encoded into JSON or measured in bytes: refuse it in one line rather than fail later."""
    text = os.fsdecode(value)           # bytes (from Python) decode as the file system would
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{given(what).named(ascii(text))} is not valid UTF-8 (it holds undecodable bytes); use UTF-8 "
                          "text") from None


def destination(out, flag="--out") -> Path:
    """The directory `out` really names. A `..` is resolved by the file system after following the
    links before it, but by anyone reading the path as text (and by `mkdir -p`, which creates missing
    components first) lexically: `A/missing/../../B` is `B`, however far `A/missing` exists. So a path
    with `..` is normalised when both readings name one directory, and refused when they differ (a
    link before the `..`); every check and write then sees the real destination. `flag`: a Given, or the
    name of the option that gave `out`."""
    flag = given(flag)
    if out is None or str(out).strip() == "":
        raise ConfigError(f"{flag.flag} is empty; give the directory the run should write into")
    check_text(out, flag)
    # "~/runs/a" from a quoted argument, a config or Python: a literal directory `~` in the current one
    # (the next `rm -rf ~` meant for it takes the home), where data.path and TALLYSIM_DATA expand it
    text = os.path.expanduser(os.fsdecode(out))
    if ".." not in Path(text).parts:
        return _plain_new_names(Path(text), out, flag)
    lexical = os.path.normpath(os.path.abspath(text))
    physical = os.path.realpath(text)
    if os.path.realpath(lexical) != physical:
        raise ConfigError(f"{flag.named(text)}: its '..' follows a symbolic link, so it means {physical} to the "
                          f"file system but {lexical} as written; give the directory without '..'")
    return _plain_new_names(Path(os.path.normpath(text)), out, flag)


def _plain_new_names(p: Path, out, flag: Given) -> Path:
    """`out="runs\\n"` (a line read from a file) or " runs " silently created a folder whose name differs
    from the one the user sees (and the next `ls runs` misses it): refuse a directory still to be created
    whose name starts or ends with whitespace or holds a control character. Existing directories are
    only checked by the file system: one made so before stays usable (resumed, read, cleaned)."""
    d = p
    while d.name and not (d.exists() or d.is_symlink()):     # the components still to be created
        if d.name != d.name.strip() or _CONTROL.search(d.name):
            raise ConfigError(f"{flag.named(repr(os.fsdecode(out)))}: the directory {d.name!r} it would create starts or ends "
                              "with whitespace or holds a control character; allowed: names without control "
                              "characters that neither start nor end with whitespace (strip a path read from a file)")
        d = d.parent
    return p


def check_name(name, what: str, parent=None) -> str:
    """A group or run name must be one plain path component, so it stays inside its parent. With `parent`
    (a sweep's folder), a directory still to be made there may not start or end with whitespace, as
    _plain_new_names refuses of an out path: reached only as each run started, a sweep ran the runs before
    it and then made the folder with the failed run's error.txt."""
    if isinstance(name, str):
        check_text(name, what)
    if not isinstance(name, str) or not name or name in (".", "..") or _BAD_CHARS.search(name) \
            or len(name.encode()) > MAX_NAME or Path(name).is_absolute():
        raise ConfigError(f"{what} {name!r} is not allowed as a directory name: use one plain name of "
                          f"1..{MAX_NAME} bytes without '/', '\\', control characters, or '.'/'..'")
    if parent is not None and (name != name.strip() or _CONTROL.search(name)) \
            and not (Path(parent) / name).exists() and not (Path(parent) / name).is_symlink():
        raise ConfigError(f"{what} {name!r}: its directory, still to be created, would start or end with whitespace "
                          "or hold a control character; allowed: a name without them (strip a name read from a file)")
    return name


def root_or_home(p: Path) -> str | None:
    """Why p (resolved) is the file-system root, a home directory or a folder above one, or None."""
    if p == Path(p.anchor):
        return "it is the file-system root"
    homes = {Path.home().resolve()}
    if os.environ.get("HOME"):
        homes.add(Path(os.environ["HOME"]).resolve())
    if p in homes or any(p in h.parents for h in homes):
        return "it is a home directory or above one"
    return None


def protected(p: Path) -> str | None:
    """Why p (resolved) must never be cleared, or None."""
    cwd = Path.cwd().resolve()
    if p != Path(p.anchor) and (p == cwd or p in cwd.parents):
        return "it is the working directory or a directory above it"
    return root_or_home(p)
