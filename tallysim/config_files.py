"""Config files as JSON objects: reading one (size, encoding, a key twice, a field written both dotted and
nested), its "extends" chain (`read_file`), and `merge`, the deep merge of a child over its parents. Split
from config.py, which re-exports `read_file`, `merge`, `dotted_once` and the two limits; no Config here,
only dicts (config.from_dict turns one into a Config).
"""
from __future__ import annotations

import copy
import functools
import json
import os

from tallysim.fields import UNDERFLOW, ConfigError, home, is_path, underflows
from tallysim.validation import json_kind, show


def merge(parent: dict, child: dict) -> dict:
    """`child` deep-merged over `parent`: objects merge key by key (the parent's keys keep their order,
    the child's new keys follow); any other value, a list included, replaces. A value the child writes
    in the other spelling (dotted where the parent nests it, or nested where the parent dots it) replaces
    the parent's too: the merged dict holds each field once, the child's (from_dict refuses a field
    written both ways, which within one file is a mistake)."""
    return _merge(_without(parent, _leaf_paths(child)), child)


def _leaf_paths(d: dict, prefix: tuple = ()) -> set:
    """Each value's path as written (key tuples), below objects."""
    out = set()
    for k, v in d.items():
        out |= _leaf_paths(v, prefix + (k,)) if isinstance(v, dict) else {prefix + (k,)}
    return out


def _without(parent: dict, paths: set) -> dict:
    """`parent` (not mutated) less the values written at one of `paths`' dotted names in another spelling."""
    names = {".".join(map(str, p)): p for p in paths}
    other = [p for p in _leaf_paths(parent) if names.get(".".join(map(str, p)), p) != p]
    if not other:
        return parent
    out = copy.deepcopy(parent)
    for p in other:
        obj = out
        for k in p[:-1]:
            obj = obj[k]
        del obj[p[-1]]
    return out


def _merge(parent: dict, child: dict) -> dict:
    out = dict(parent)
    for k, v in child.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


MAX_CONFIG_BYTES = 16 << 20    # a config file larger is refused unread (a device such as /dev/zero never ends)
MAX_EXTENDS_DEPTH = 64          # files in one `extends` chain; deeper is refused (a real chain is 2-3)


def read_file(path: str) -> dict:
    """A JSON object from a file; anything else (missing, a directory, binary, a list...) is one line.
    A top-level "extends" (a path, or a list of paths, relative to this file) names files read first
    (the same way, so chains work; later ones over earlier ones) with this file deep-merged over them
    (`merge`); the result has no "extends". Every reader of experiment and --config files comes here.
    A chain deeper than MAX_EXTENDS_DEPTH files is refused, and each file is read and resolved once
    per call, so a DAG of files each extending the next twice costs linear, not exponential, time. A
    leading `~` is the home, as the CLI's --config (load_file("~/c.json") from Python was "not found")."""
    return _resolve(home(path), (), {})


def extends_of(path: str) -> list[str]:
    """The files `path` names in its "extends", as written (read_file has checked them; [] for none):
    config.load_file names them beside `path` where a field's value is refused, since the value may be
    a base file's ("a.json: peers='3' is a string" of a value only base.json held)."""
    given = _read_json(home(path)).get("extends", [])
    return [given] if isinstance(given, str) else list(given)


def _resolve(path: str, seen: tuple, done: dict, named_by: str = "") -> dict:
    if not is_path(path):                                                     # load_file(123): a TypeError
        raise ConfigError(f"config file {show(path)} is {type(path).__name__}; expected a path (str or "
                          "pathlib.Path) of a JSON file")
    if "\x00" in str(path):
        raise ConfigError(f"config file {path!r}: the path holds a NUL byte; give a plain file path")
    here = os.path.realpath(path)
    if here in done:                     # a diamond: resolved already; merge copies, never mutates
        return done[here]
    try:
        d = _read_json(path)
    except ConfigError as e:     # a base file that is not JSON was named alone, not the file extending it
        if not named_by:
            raise
        raise ConfigError(f"{e} ({named_by})") from None
    if "extends" not in d:
        done[here] = d
        return d
    given = d.pop("extends")
    parents = [given] if isinstance(given, str) else given
    if not isinstance(parents, list) or not parents or not all(isinstance(p, str) and p for p in parents):
        what = ("empty" if given in ("", []) else "a list with an empty path"
                if isinstance(given, list) and "" in given else json_kind(given))
        raise ConfigError(f'{path}: "extends"={show(given)} is {what}; expected a path or a '   # the value given
                          'list of paths of JSON files, relative to this file, e.g. "base/smoke.json"')
    if len(seen) + 1 >= MAX_EXTENDS_DEPTH:
        raise ConfigError(f'{show(path)}: the "extends" chain is more than {MAX_EXTENDS_DEPTH} files deep '
                          f"(it starts at {show(seen[0] if seen else here)}); allowed: at most "
                          f"{MAX_EXTENDS_DEPTH} files in one chain")
    out: dict = {}
    for p in parents:
        if "\x00" in p:
            raise ConfigError(f'{show(path)}: "extends" {show(p)} holds a NUL byte; give a plain path, '
                              "relative to the file that names it")
        parent = os.path.join(os.path.dirname(path), p)
        if os.path.realpath(parent) in seen + (here,):
            chain = [*seen, here, os.path.realpath(parent)]
            raise ConfigError(f'{path}: "extends" {p!r} is a cycle ({" -> ".join(chain)}); a file may not '
                              "extend itself, directly or through its parents")
        if not os.path.isfile(parent):
            why = "is a directory" if os.path.isdir(parent) else "does not exist"   # said "does not exist" of /tmp
            top = f' (in the "extends" chain from {seen[0]!r})' if seen else ""   # which file led here
            raise ConfigError(f'{path}: "extends" {p!r} is not a file ({parent} {why}){top}; paths are '
                              "relative to the file that names them")
        by = f'named by "extends" {p!r} in {path}' + (f', in the "extends" chain from {seen[0]!r}' if seen else "")
        out = merge(out, _resolve(parent, seen + (here,), done, by))
    done[here] = merge(out, d)
    return done[here]


def _near_file(path: str) -> str:
    """"; did you mean experiments/quick.json?" for a typo of a JSON file that sits beside it."""
    import difflib
    folder = os.path.dirname(path) or "."
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    except OSError:
        return ""
    near = difflib.get_close_matches(os.path.basename(path), names, n=2, cutoff=0.7)
    return f"; did you mean {' or '.join(os.path.join(os.path.dirname(path), n) for n in near)}?" if near else ""


# The files a run or sweep writes beside its config, by name: `--config runs/x/partition.json` (a tab
# completion away from config.json) said "unknown config key 'dataset'; did you mean data.seed?", and
# metrics.jsonl "not valid JSON: Extra data" (hostile19)
RUN_RECORDS = {"metrics.jsonl": "a run's metrics rows", "partition.json": "a run's partition record",
               "sweep.json": "a sweep's index of its runs"}


def _run_record(path: str) -> None:
    name, folder = os.path.basename(path), os.path.dirname(path) or "."
    beside = os.path.join(folder, "config.json")
    if name in RUN_RECORDS and any(os.path.exists(os.path.join(folder, f)) for f in ("config.json", ".tallysim-run",
                                                                                 ".tallysim-lock")):
        how = (f"the run's own config is {beside}" if os.path.isfile(beside) else
               "each run's config is the config.json in its directory")
        raise ConfigError(f"config file {path!r} is {RUN_RECORDS[name]}, not a config; allowed: a JSON config "
                          f"file ({how})")


def _read_json(path: str) -> dict:
    """A JSON object from a file; anything else (missing, a directory, binary, a list...) is one line."""
    _run_record(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)      # `--config /dev/zero` read until memory ran out
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist{_near_file(path)}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path!r} is a directory; give a JSON file") from None
    except OSError as e:
        raise ConfigError(f"config file {show(path)} cannot be read: {e.strerror or e}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path!r} is larger than {MAX_CONFIG_BYTES >> 20} MiB; allowed: a JSON "
                          "config file (a few KB)")
    try:
        # utf-8-sig: a byte-order mark (Windows editors save one) is read past, not "Unexpected UTF-8 BOM"
        # parse_float: a number that reads as 0.0 (1e-400) is kept as typed, to be refused by its key
        d = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=functools.partial(_unique_keys, path),
                       parse_float=_Typed.parse)
        _no_underflow(path, "", d)                 # one in a top-level list (no key to name)
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path!r} is not UTF-8 text (binary?); expected a JSON object") from None
    except ConfigError:                          # a key twice (_unique_keys)
        raise
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {path!r} is not valid JSON: {e}{_json5_hint(e)}") from None
    except (ValueError, RecursionError) as e:   # e.g. an integer of > 4300 digits, absurd nesting
        raise ConfigError(f"config file {path!r} cannot be parsed: {show(str(e), 100)}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"config file {path!r} holds {json_kind(d)}, not a JSON object; expected "
                          '{"peers": 10, "protocol": {"name": "tally"}, ...}')
    dotted_once(d, f"config file {path!r}")
    return d


def dotted_once(d: dict, where: str) -> None:
    """A field written twice in one mapping, dotted and inside its section ({"optim": {"lr": 0.1},
    "optim.lr": 0.2}): the later key won in silence. Refused, naming `where`, the field and both values,
    for each file as it is read (a file may still set dotted what a file it extends sets inside the
    section: `merge` keeps the child's) and for every dict `config.from_dict` is given."""
    seen: dict = {}

    def walk(obj, prefix):
        for k, v in obj.items():
            key = prefix + str(k)
            if isinstance(v, dict):
                walk(v, key + ".")
            elif key in seen:
                raise ConfigError(f"{where}: {key} is given twice ({show(seen[key])} and {show(v)}), "
                                  "dotted and inside its section; give each field once")
            else:
                seen[key] = v
    walk(d, "")


def _unique_keys(path: str, pairs: list) -> dict:
    """json.loads' objects, refusing a key given twice in one object (JSON itself lets the last win), and
    a number that reads as 0.0 (_Typed)."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise ConfigError(f"config file {path!r}: the key {k!r} is given twice in one object; give each "
                              "key once")
        _no_underflow(path, k, v)
        out[k] = v
    return out


class _Typed(str):
    """A JSON number's text that reads as 0.0 yet has a nonzero digit (1e-400): json.load made it 0.0 and
    it was refused as `0.0`, not as typed (key=value overrides refuse it as typed: config.py)."""

    @staticmethod
    def parse(text: str):
        return _Typed(text) if underflows(text) else float(text)


def _no_underflow(path: str, key: str, v) -> None:
    """Refuses a _Typed number in `v` (a value, or a list's items at any depth) under `key`."""
    if isinstance(v, _Typed):
        name = f"the key {key!r} is {v}" if key else f"{v}"
        raise ConfigError(f"config file {path!r}: {name}, {UNDERFLOW}; allowed: 0, written 0, where the field "
                          "takes it, else a larger value")
    if isinstance(v, list):
        for x in v:
            _no_underflow(path, key, x)


def _json5_hint(e: json.JSONDecodeError) -> str:
    """What a config written as JavaScript or JSON5 holds that JSON does not, where the parser stopped:
    "Expecting property name enclosed in double quotes: line 3 column 1" of a trailing comma, or
    "Expecting value" of a comment, said nothing of what to change."""
    rest, before = e.doc[e.pos:].lstrip(), e.doc[:e.pos].rstrip()
    if rest.startswith(("//", "/*", "#")):
        return "; JSON has no comments: remove them (a note can go in a \"description\" string)"
    if before.endswith(",") and rest[:1] in ("}", "]"):
        return "; JSON allows no comma before a closing } or ]: remove it"
    if rest.startswith("'"):
        return "; JSON strings and keys take double quotes (\"tally\"), not single ones"
    if rest[:1] in ("T", "F", "N") and rest.split(None, 1)[0].rstrip(",}]").lower() in ("true", "false", "none", "null"):
        return "; JSON writes true, false and null in lower case"
    return ""

