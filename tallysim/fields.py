"""How a config field is declared: `ints` and `floats` bounds, and whether a sweep may vary it per lane;
and `is_path`, the one test of what a path argument may be (every layer that takes one imports it here),
and `is_number`, of a metrics row's number (an int or float, never a bool: results/ imports it here);
and the few message helpers every layer shares (`did_you_mean`, `one_line`, `first_few`).

No imports from tallysim and no JAX: config.py declares its sections with these, and so does a
protocol's own section (tallysim/protocols/, or a plugin), which the registry reads before anything
heavy is imported.
"""
from __future__ import annotations

import math
import os
from dataclasses import field, fields

INT_MAX = 2**31 - 1     # jax.random.PRNGKey, numpy and int32 device arrays all hold this
F32_MAX = 3.4e38        # learning rates may be huge (a diverging run stops with exit 1) but fit float32


class ConfigError(ValueError):
    """A user-facing configuration problem (the CLI prints it as one line and exits with code 2)."""


class PluginError(ConfigError):
    """A plugin that cannot be loaded as named (its import fails, or its name clashes): a resume tells it
    from a damaged config.json (outdir.run_config), which it said it was."""


class NameTaken(PluginError):
    """A plugin's protocol or model name another loaded module already registered."""


def _meta(lane: bool, nonzero: bool) -> dict:
    # lane: a grouped sweep may vary it across the lanes of one program (lanes.py); the protocol then
    # reads it with ctx.hp(key), a per-lane array, never from the Config. nonzero: zero switches
    # something off, so lanes with and without zero compile apart (a plain `if x > 0` stays valid).
    # raised, not asserted: a plugin declares its fields with these, and asserts vanish under python -O
    if nonzero and not lane:
        raise ValueError("nonzero=True only means something for a lane field; allowed: lane=True, nonzero=True")
    return {"lane": True, "nonzero": nonzero} if lane else {}


def ints(default, lo: int = 1, hi: int = INT_MAX, *, lane: bool = False, nonzero: bool = False):
    """An integer field allowed in lo..hi (and null, where annotated Optional)."""
    if not lo <= hi or (default is not None and not lo <= default <= hi):
        raise ValueError(f"ints({default!r}, {lo}, {hi}): the default must lie in lo..hi, and lo <= hi")
    return field(default=default, metadata={"range": (lo, hi), **_meta(lane, nonzero)})


def floats(default, interval: str, *, lane: bool = False, nonzero: bool = False):
    """A float field allowed in `interval`, written as the error messages show it: "(0, 1]", "[0, 1e6]";
    every float must also be finite."""
    try:
        lo, hi = (float(x) for x in interval[1:-1].split(","))
    except ValueError:
        lo = hi = math.nan
    lo_in, hi_in = interval[:1] == "[", interval[-1:] == "]"
    inside = default is None or (lo < default < hi or (lo_in and default == lo) or (hi_in and default == hi))
    if interval[:1] not in ("[", "(") or interval[-1:] not in ("]", ")") or not lo <= hi or not inside:
        raise ValueError(f"floats({default!r}, {interval!r}): expected an interval written as the errors show "
                         "it, \"[lo, hi]\", \"(lo, hi]\", \"[lo, hi)\" or \"(lo, hi)\" with lo <= hi, holding "
                         "the default")
    return field(default=default, metadata={"range": (lo, hi, lo_in, hi_in),
                                            **_meta(lane, nonzero)})


def section_value(name: str, v, cls):
    """A Config section's value: `cls` itself, or a dict of its fields (Config(protocol={"name": "fedavg"})).
    Anything else (Config(protocol="fedavg"), dataclasses.replace(cfg, optim="sgd")) is refused here: it
    used to pass and fail far away, at the first cfg.protocol.name."""
    if isinstance(v, cls):
        return v
    names = [f.name for f in fields(cls)]
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        unknown = sorted(set(v) - set(names))
        if unknown:
            raise ConfigError(f"Config({name}={v!r:.80}): {unknown[0]!r} is not a {name}.* field; allowed: "
                              f"{', '.join(names)}")
        return cls(**v)
    raise ConfigError(f"Config({name}={v!r:.80}): {name} is a section, not {type(v).__name__}; expected "
                      f"{cls.__name__}(...) or a dict of its fields, e.g. {name}={{{names[0]!r}: ...}}, or "
                      f"cfg.replace(**{{{name + '.' + names[0]!r}: ...}})")


# The on/off environment variables. Each was read its own way: TALLYSIM_NO_DEBIAN=2 or
# TALLYSIM_NO_AUTO_PREPARE=maybe counted as on, TALLYSIM_PALLAS_INTERPRET=yes or =true as off (only "1"
# was on there), all in silence. One reading now, anything else refused before a command runs anything.
ENV_FLAGS = ("TALLYSIM_NO_DEBIAN", "TALLYSIM_NO_AUTO_PREPARE", "TALLYSIM_PALLAS_INTERPRET")
ENV_ON, ENV_OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def env_flag(var: str) -> bool:
    """An on/off environment variable: 1/true/yes/on, 0/false/no/off or unset; any other value a ConfigError."""
    raw = os.environ.get(var, "")
    value = raw.strip().lower()
    if value in ENV_ON or value in ENV_OFF:
        return value in ENV_ON
    raise ConfigError(f"{var}={raw!r}: allowed 1 (or true, yes, on) to turn it on, 0 (or false, no, off) or "
                      "unset to leave it off")


def one_line(e: BaseException) -> str:
    """"KeyError: its first line" of an error raised in a user's code (a plugin), for a refusal that stays
    one line whatever the message holds."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def did_you_mean(value, allowed, aliases: dict | None = None) -> str:
    """"; did you mean tally?" for a near-miss of a choice (`tallly`, `fedAvg`, `TallyTrain`), else "":
    appended to a "not known; allowed: ..." message, whose list alone leaves a newcomer to spot the typo.
    `aliases` maps other names of a choice (lower case; a paper's name, e.g. "fedmd") to it."""
    import difflib
    text = str(value).strip().lower()
    names = [str(a) for a in allowed]
    by_lower = {a.lower(): a for a in names}
    if text in by_lower:                                            # only the case differs
        near = [by_lower[text]]
    elif aliases and text.replace("-", "").replace("_", "") in aliases:
        near = [aliases[text.replace("-", "").replace("_", "")]]
    else:
        near = difflib.get_close_matches(text, list(by_lower), n=2, cutoff=0.6)
        near += [a for a in by_lower if len(a) >= 3 and text.startswith(a)]    # TallyTrain -> tally
    near = list(dict.fromkeys(by_lower.get(n, n) for n in near if n != str(value)))[:3]
    return f"; did you mean {' or '.join(near)}?" if near else ""


def first_few(items, n: int, rest: str = " and {} more") -> str:
    """"a, b, c and 4 more": the first n items (as str) joined by ", ", then `rest` with how many were left
    out ("" when none was), for a message that names what it found without listing hundreds. `rest` holds
    `{}` for that count (table's ", ... ({} more)"), or none to say only that more exist (", ...")."""
    items = [str(x) for x in items]
    return ", ".join(items[:n]) + (rest.format(len(items) - n) if len(items) > n else "")


def count(n: int, noun: str, plural: str = "") -> str:
    """"1 run", "4 runs", "0 compiled programs": a count with its noun in the number it takes (`plural`
    where adding "s" is wrong), for the lines that count what a sweep or figure did ("1 runs" before)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def is_number(v) -> bool:
    """A number a metrics row may hold: an int or float, never a bool (True is an int to isinstance)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_path(p) -> bool:
    """A path as tallysim takes one: a str or an os.PathLike (pathlib.Path), never bytes (b"runs" would be
    written as a directory named "b'runs'", or fail inside pathlib) nor a number (a TypeError deep inside)."""
    return isinstance(p, (str, os.PathLike)) and not isinstance(p, bytes)


def home(p):
    """A path (`is_path`) with a leading `~` as the home, the rule of every path tallysim reads or writes:
    Python calls and quoted arguments get no shell to expand it, and `~/runs` read as a directory named `~`
    here (whose `rm -rf ~` takes the home). A pathlib.Path stays one; anything else comes back as given,
    for the caller's own type check to name."""
    if isinstance(p, os.PathLike) and hasattr(p, "expanduser"):
        # os.path's rule, not pathlib's: `~nosuchuser` stays as it is (as a shell leaves it), where
        # Path.expanduser raised RuntimeError("Could not determine home directory."), a traceback
        return type(p)(os.path.expanduser(p))
    return os.path.expanduser(p) if is_path(p) else p


def underflows(text: str) -> bool:
    """Whether a number's text has a nonzero digit before its exponent yet reads as 0.0 (1e-400): a
    key=value override's (config.py) and a config file's JSON number (config_files.py), refused as typed."""
    try:
        return float(text) == 0 and any(c in "123456789" for c in text.lower().partition("e")[0])
    except ValueError:
        return False


UNDERFLOW = "smaller in size than the smallest float, 5e-324, so it reads as 0.0"
