"""The axes of a sweep (or a figure's runs): a config file's `sweep` section and `key=v1,v2` items ->
[(run name, [key=value overrides])], their cross product, first axis slowest (tallysim/sweep.py runs
them). Nothing here loads data or imports JAX."""
from __future__ import annotations

import itertools
import math
import re
import sys
from typing import Any, Optional

from tallysim import config, config_reads, sweep_section
from tallysim.config import Config, ConfigError
from tallysim.field_checks import MAX_NAME
from tallysim.fields import first_few

# Runs one sweep (or figure) may have. Validating a configuration takes ~10 ms on a loaded CPU, so
# 10,000 is a couple of minutes of --dry-run; far past any sweep anyone runs to completion.
MAX_RUNS = 10_000
_UNSAFE = {"/": "-", "\\": "-", ":": "-", " ": "_", "\t": "_", "\n": "_"}


# ----------------------------------------------------------------------------- axes & names

def _text(value: Any) -> str:
    """A JSON value from a config file's `sweep` section -> override text."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


def _is_tuple_key(key: str) -> bool:
    return config.field_keys().get(key) is tuple


_GROUP_START = re.compile(r"\s*[A-Za-z0-9_-]+\s*:\s*[0-9]")     # NAME:PEERS, how a model.groups value starts


def _group_values(text: str) -> list[str]:
    """A model.groups axis split at the commas that start another value: a group's own fields are joined
    by commas too (`a:2:mlp,width=8;b:2:mlp`), and a piece that is FIELD=VALUE, not NAME:PEERS, belongs
    to the value before it (split at every comma, one value became two, each refused for its peer count)."""
    out = []
    for piece in text.split(","):
        # `none` (no groups: the comparison with one model for every peer) is a value of its own too; it was
        # glued to the value before it, "group 'b:2,none' is not NAME:PEERS"
        # an empty piece (`a:2;b:2,,none`) is an empty value, refused as any axis' is: glued to the value
        # before it, it vanished in silence
        if out and piece.strip() and not _GROUP_START.match(piece) and piece.strip().lower() not in ("none", "null"):
            out[-1] += "," + piece
        else:
            out.append(piece)
    return out


def parse_axis(item: str) -> tuple[str, list[str]]:
    """`key=v1,v2,...` -> (key, [v1, v2, ...]); the key is checked against the config fields."""
    key, text = config.parse_override(item)
    sep = ";" if _is_tuple_key(key) else ","
    inner = config.split_optional(config.field_keys().get(key, str))[0]
    if inner in (int, float) and ";" in text:       # was "optim.lr='0.1;0.2': expected a number"
        raise ConfigError(f"sweep axis {item!r}: the values of a sweep axis are separated by commas ({key}="
                          f"{text.replace(';', ',')}); ';' separates only shapes (data.input_shape=28x28x1;8x8)")
    values = [v.strip() for v in (_group_values(text) if key == "model.groups" else text.split(sep))]
    if len(values) > 1 and any(v == "" for v in values):
        raise ConfigError(f"sweep axis {item!r} has an empty value; write {key}=v1{sep}v2{sep}...")
    return key, _not_log(key, config.distinct_values(key, values))


def _not_log(key: str, values: list[str]) -> list[str]:
    """log.* is where results also go: sweep grouping and --resume ignore it, and each run's events go to
    DIR/<run name>-<hash> already, so several values ran the same experiment again, once per value."""
    if key.startswith("log.") and len(values) > 1:
        raise ConfigError(f"sweep axis {key} has {len(values)} values, but log.* is where results also go, "
                          "not part of the experiment: each value would run the same experiment again; allowed: "
                          "one value for every run (each run logs under its own name there)")
    return values


def file_axes(section: Any) -> dict[str, list[str]]:
    """A config file's `sweep` section -> {key: [value texts]} (checked, order kept)."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError("the config file's `sweep` section must be an object "
                          '{"key": [values, ...]}, e.g. {"protocol.name": ["tally", "softlabel"]}')
    axes = {}
    for key, values in section.items():
        if not key.strip():     # was "malformed override '=1'", an override never typed, the file unnamed
            raise ConfigError(f"the config file's `sweep` section has an axis with an empty key ({key!r}); "
                              'allowed: a config field, e.g. {"protocol.name": ["tally", "softlabel"]}')
        if isinstance(values, dict):
            raise ConfigError(f"sweep axis {key!r} in the config file: use dotted keys with a list of "
                              f'values, e.g. {{"{key}.<field>": [1, 2]}}')
        values = sweep_section.listed(key, values)    # a scalar, one shape such as [28, 28, 1], one groups list
        if not values:
            raise ConfigError(f"sweep axis {key!r} in the config file has no values")
        if key == "model.groups":      # a value may be a list of group objects, as in the model section
            from tallysim import model_groups
            values = [model_groups.from_json(v, f"sweep axis {key}") for v in values]
        if key in config.field_keys():
            values = [config.json_axis_value(key, v, f"sweep axis {key} in the config file") for v in values]
        k, _ = config.parse_override(f"{key}={_text(values[0])}")
        if k in axes:       # "protocol.name" and "protocol.name ": the later axis replaced the first in silence
            first = next(raw for raw in section if raw != key and raw.strip() == k)
            raise ConfigError(f"the config file's `sweep` section gives {k} twice ({first!r} and {key!r}); "
                              "allowed: each key once, with all its values in one list")
        axes[k] = _not_log(k, config.distinct_values(k, [_text(v) for v in values]))
    return axes


# A case-insensitive file system (macOS's and Windows' default) opens `a` as `A`: two runs whose names differ only
# in case (data.path=A.npz,a.npz) wrote one directory there, the second's rows over the first's (and the two
# paths are one file there too). Refused on every system, before anything is compiled: a sweep's folder moves.
CASE_ONLY = "differ only in case: one directory on a case-insensitive file system (macOS's and Windows' default)"


def check_count(n: int, what: str) -> None:
    """Refuse, before a single run is listed or validated, a sweep (or figure) of more than MAX_RUNS
    runs: 10^9 combinations would otherwise be built one by one and never finish."""
    if n > MAX_RUNS:
        raise ConfigError(f"the {what} has {n:,} runs (the product of its axes' value counts); allowed: at "
                          f"most {MAX_RUNS:,} (sweep.MAX_RUNS); split it into several sweeps or use fewer values")


def safe_name(text: str) -> str:
    for a, b in _UNSAFE.items():
        text = text.replace(a, b)
    return text


def merged(cfg_file_axes: dict, cli_items: list[str]) -> dict[str, list[str]]:
    """The sweep's axes, {key: [value texts]} in run-name order: the file's, then the command line's
    (which replace a file axis of the same key)."""
    axes = file_axes(cfg_file_axes)
    for item in cli_items:
        key, values = parse_axis(item)
        axes.pop(key, None)            # the command line wins, and its axes follow the file's
        axes[key] = values
    return axes


def axis_texts(axes: dict[str, list[str]]) -> list[str]:
    """merged()'s axes as sweep.json records them, one `key=v1,v2` each as the command line spells it
    (';' between shapes), whichever way they were given: a file's `sweep` section was recorded as []."""
    return [f"{k}={(';' if _is_tuple_key(k) else ',').join(v)}" for k, v in axes.items()]


def expand(cfg_file_axes: dict, cli_items: list[str]) -> list[tuple[str, list[str]]]:
    """Cross product of the axes -> [(run name, [key=value overrides])], first axis slowest.

    `cfg_file_axes` is a config file's `sweep` section ({key: [values]}, JSON values allowed);
    `cli_items` are `key=v1,v2` strings, which replace file axes with the same key. The name is built
    from the keys with more than one value; a sweep with none of those has the single run `base`.
    """
    axes = merged(cfg_file_axes, cli_items)
    keys = list(axes)
    check_count(math.prod(len(axes[k]) for k in keys), "sweep")
    varying = [k for k in keys if len(axes[k]) > 1]
    runs, seen = [], {}
    for combo in itertools.product(*(axes[k] for k in keys)):
        chosen = dict(zip(keys, combo))
        name = "__".join(safe_name(f"{k}={chosen[k]}") for k in varying) or "base"
        # each run said by its varying axes' values alone: the whole dict of every axis and base item
        # (a dozen keys of TINY's) buried the two values that collide
        said = " ".join(f"{k}={chosen[k]}" for k in varying)
        if len(name.encode()) > MAX_NAME:   # was "use one plain name of 1..200 bytes", a name the user never gave
            raise ConfigError(f"sweep run {name[:60]!r}... is {len(name.encode())} bytes, its directory's name "
                              f"made of the values of its axes ({', '.join(varying)}); allowed: at most {MAX_NAME} "
                              "bytes: shorter values (model.groups' group names, a path's folders) or fewer axes "
                              "with several values")
        if name.casefold() in seen:
            other, first = seen[name.casefold()]
            if first == name:
                raise ConfigError(f"sweep runs {other!r} and {said!r} would share the directory {name!r}; "
                                  "make the values differ by more than '/' or spaces")
            raise ConfigError(f"sweep runs {first!r} and {name!r} (their directories' names) {CASE_ONLY}; "
                              "make the values differ by more than case")
        seen[name.casefold()] = said, name
        runs.append((name, [f"{k}={v}" for k, v in chosen.items()]))
    return runs


def check_fields_read(runs: list[tuple[str, list[str]]], cfgs: list[Config]) -> None:
    """A field a sweep's runs do not read, refused in one line before anything runs (a single run refuses
    any it does not read: config_reads.check_read; a sweep's shared base may hold fields some runs ignore):
    - a sweep axis of several values that every run setting it away from its default leaves unread
      (`partition.alpha=0.1,1` with partition.kind=iid, `softlabel.trim=0.1,0.2` with the mean aggregate)
      ran the same experiment once per value, and `table` showed the values beside equal results;
    - any other field every run leaves unread (`partition.pick=largest` over runs none of which has
      partition.kind=natural) ran every run as if unset.
    Each names the first such run's line; a field some run reads stays allowed. config_reads.unread is
    asked once per run, and only of runs up to the first that reads each field (a usual sweep: its first)."""
    lines: dict[int, dict[str, str]] = {}

    def unread_of(i: int) -> dict[str, str]:        # run i's unread fields -> their refusal line
        if i not in lines:
            lines[i] = {}
            for key, line in config_reads.unread(cfgs[i]):
                lines[i].setdefault(key, line)
        return lines[i]

    values: dict = {}
    for _, overrides in runs:
        for item in overrides:
            key, text = item.split("=", 1)
            values.setdefault(key, set()).add(text)
    declared = config.declared()
    axes = {key: texts for key, texts in values.items() if len(texts) >= 2 and key in declared}
    for key, texts in axes.items():
        away = [i for i, c in enumerate(cfgs) if config.get_field(c, key) != declared[key].default]
        if away and all(key in unread_of(i) for i in away):
            raise ConfigError(f"sweep axis {key} ({len(texts)} values) is read by no run of this sweep "
                              f"({unread_of(away[0])[key]}): each value would run the same experiment; allowed: "
                              "drop the axis, or sweep it with the fields that make it read")
    if not cfgs:
        return
    check_eval_peers(runs, cfgs)
    for key, line in unread_of(0).items():       # unread by every run: by the first, then by each other
        if key not in axes and all(key in unread_of(i) for i in range(1, len(cfgs))):
            raise config_reads.UnreadField(key, f"{key} is not read by any run of the sweep (each of its {len(cfgs)} run(s) "
                                   f"would refuse it as a single run); sweep run {runs[0][0]}: {line}")
    # a TYPED_RULES field (data.num_classes on real datasets): at its default, `unread` passes it
    for key, rule in config_reads.TYPED_RULES.items():
        typed = [i for i, (_, overrides) in enumerate(runs) if any(o.split("=", 1)[0].strip() == key for o in overrides)]
        refused = [(i, line) for i in typed if (line := _typed_line(rule, cfgs[i], key, runs[i][1]))]
        # a run that reads it (synthetic, the one dataset whose fields these are): allowed, as any field is
        if refused and not any(cfgs[i].data.name.lower() == "synthetic" for i in typed):
            raise ConfigError(f"sweep run {runs[refused[0][0]][0]}: {refused[0][1]}")


def _typed_line(rule, cfg, key: str, overrides) -> str | None:
    """The refusal of `key` as a sweep run typed it (its last value among the run's overrides), or None."""
    return rule(cfg, [o.split("=", 1)[1].strip() for o in overrides if o.split("=", 1)[0].strip() == key][-1])


def check_runs(runs, out_dir, **flags) -> list:
    """run_sweep's `runs` and `out_dir` as a Python caller gives them, checked before anything is validated
    or written (`tallysim sweep` builds them with `expand`): a run that is no (name, overrides) pair was a
    ValueError from tuple unpacking, runs=[] made the directory and an empty index in silence, out_dir=5
    a TypeError from inside os, and two runs of one name ran as two lanes writing one directory, the
    second's rows over the first's; `flags` (progress, grouped) True or False: grouped="no", a truthy
    string, ran the runs grouped. Returns the runs as a list."""
    from tallysim.fields import is_path
    from tallysim.schema import plain_value
    for flag, value in flags.items():
        if not isinstance(plain_value(value), bool):
            raise ConfigError(f"run_sweep({flag}={value!r:.40}): expected True or False")
    if not is_path(out_dir):
        raise ConfigError(f"run_sweep(out_dir={out_dir!r:.60}): {type(out_dir).__name__}; allowed: a directory "
                          "path (str or pathlib.Path)")
    if isinstance(runs, (str, bytes, dict)) or not isinstance(runs, (list, tuple)):
        raise ConfigError(f"run_sweep(runs={runs!r:.60}): {type(runs).__name__}; allowed: a list of (name, "
                          "[key=value overrides]) pairs, e.g. [('lr0.02', ['optim.lr=0.02'])] (sweep.expand makes them)")
    if not runs:
        raise ConfigError("run_sweep(runs=[]): no run to do; allowed: a list of at least one (name, [key=value "
                          "overrides]) pair")
    for run in runs:
        if not isinstance(run, (list, tuple)) or len(run) != 2:
            raise ConfigError(f"run_sweep: run {run!r:.60} is not a (name, [key=value overrides]) pair; allowed: "
                              "e.g. ('lr0.02', ['optim.lr=0.02'])")
        if not isinstance(run[0], str):     # a list name was a TypeError (unhashable) from the check below
            raise ConfigError(f"run_sweep: run {run!r:.60} is named by a {type(run[0]).__name__}; allowed: a name "
                              "as a str (the run's directory), e.g. ('lr0.02', ['optim.lr=0.02'])")
    seen, folded = {}, {}
    for name, overrides in runs:
        if name.casefold() in folded and folded[name.casefold()] != name:
            raise ConfigError(f"run_sweep: runs {folded[name.casefold()]!r} and {name!r} {CASE_ONLY}; allowed: names "
                              "that differ by more than case")
        folded[name.casefold()] = name
        if name in seen:
            raise ConfigError(f"run_sweep: two runs are named {name!r} ({' '.join(map(str, seen[name])) or 'the base'}"
                              f" and {' '.join(map(str, overrides)) if isinstance(overrides, (list, tuple)) else overrides}"
                              f"), and would write one directory; allowed: one name per run")
        seen[name] = overrides if isinstance(overrides, (list, tuple)) else [overrides]
    return list(runs)


def check_eval_peers(runs: list[tuple[str, list[str]]], cfgs: list[Config]) -> None:
    """eval_peers above a run's peers, refused naming those runs, as a single run refuses it
    (config_reads._unread_eval's rule): `peers=4,10 eval_peers=6` evaluated every peer of the 4-peer run
    and 6 of the 10-peer one, in silence, the sweep reading eval_peers in some run; the rows then averaged
    over different shares of the peers side by side."""
    over = [(name, cfg) for (name, _), cfg in zip(runs, cfgs)
            if cfg.eval_peers is not None and cfg.eval_peers > cfg.peers]
    if not over:
        return
    least = min(cfg.peers for cfg in cfgs)
    shown = first_few([f"{name} (peers={cfg.peers}, eval_peers={cfg.eval_peers})" for name, cfg in over], 3)
    raise config_reads.UnreadField("eval_peers", (
        f"eval_peers is more than the peers of {len(over)} of the sweep's {len(cfgs)} runs: {shown} (a single "
        f"run refuses it; these would evaluate every peer); allowed: eval_peers at most {least} (the sweep's fewest "
        "peers), none (every peer), or a sweep per peer count"))


def repeated_runs(runs: list[tuple[str, list[str]]], cfgs: list[Config]) -> Optional[str]:
    """The warning for a sweep whose runs repeat one experiment, or None: an axis crossed with a protocol
    that does not read it (`protocol.name=tally,fedmix fedmix.mix=0.25,0.5`) runs tally once per value of
    fedmix.mix, the same run each time. Not refused (the runs are valid, and check_fields_read already
    refuses an axis that no run reads); said once, naming two such runs, before anything runs."""
    values: dict = {}
    for _, overrides in runs:
        for item in overrides:
            key, text = item.split("=", 1)
            values.setdefault(key, set()).add(text)
    axes = [key for key, texts in values.items() if len(texts) >= 2 and key != "protocol.name"]
    from tallysim import protocols
    first: dict = {}
    repeats, example = 0, None
    for (name, overrides), cfg in zip(runs, cfgs):
        proto = cfg.protocol.name
        unread = {k for k in axes if not protocols.reads(proto, k)}
        if not unread:
            continue
        same = tuple(item for item in overrides if item.split("=", 1)[0] not in unread)
        if same in first:
            repeats += 1
            example = example or (first[same], name, proto, sorted(unread))
        else:
            first[same] = name
    if not repeats:
        return None
    a, b, proto, keys = example
    return (f"sweep runs {a} and {b} are the same experiment: protocol.name={proto} does not read "
            f"{', '.join(keys)}, so each value of that axis reruns it ({repeats} run(s) of this sweep repeat "
            "another); to compare protocols that have knobs of their own, sweep each protocol into its own "
            "folder of one directory (`tallysim table DIR` and `tallysim pareto DIR` read them together)")


def warn_repeated_runs(runs: list[tuple[str, list[str]]], cfgs: list[Config]) -> None:
    """repeated_runs' line on stderr, once: `run_sweep` (the CLI's sweep and the API's) and
    `tallysim sweep --dry-run` call it."""
    line = repeated_runs(runs, cfgs)
    if line:
        print(f"tallysim: warning: {line}", file=sys.stderr)


def warn_unmerged(runs: list[tuple[str, list[str]]], cfgs: list[Config]) -> None:
    """One line on stderr naming the bridge runs that never merge (bridge.period > rounds): their
    headline, the one `table`, `plot` and `pareto` show, is the shared initialisation's accuracy (a
    sweep of period 1,2,5 at rounds=4 put two bridge points at chance on the Pareto plot, unsaid).
    A sweep prints no other validation.warnings (its grids hold such points on purpose: fig8's
    fault-free runs), but this one turns a run's number into another quantity."""
    from tallysim import validation
    names = [name for (name, _), cfg in zip(runs, cfgs) if validation.never_merges(cfg)]
    if names:
        print(f"tallysim: warning: sweep run {first_few(names, 1)}: bridge.period > rounds, so no merge happens: "
              "each is tally, and its headline accuracy (acc_global: table, plot, pareto) stays the shared "
              "initialisation's; read acc_mean, or make rounds at least bridge.period", file=sys.stderr)


def warn_soft_zero(runs: list[tuple[str, list[str]]], cfgs: list[Config]) -> None:
    """validation.soft_rounds_to_zero's line for a sweep's runs, once, naming them: fig11's 8-bit softlabel
    runs on words (C = 10,004) send a near-uniform distribution as all zeros, which a single run warns of
    and a sweep, printing no other validation.warnings, said nothing about."""
    from tallysim import validation
    hit = [(name, lines[0]) for (name, _), cfg in zip(runs, cfgs) if (lines := validation.soft_rounds_to_zero(cfg))]
    if hit:
        print(f"tallysim: warning: sweep run {first_few([n for n, _ in hit], 1)}: {hit[0][1]}", file=sys.stderr)


def run_numbers(batch: list[int]) -> str:
    """A group's run numbers (from 1) in its log line: `1..4` when consecutive, else `1,3,5,7` (it read
    `1..7`, as if seven runs), past eight `1,4,7,...,28`."""
    if (nums := [i + 1 for i in batch]) == list(range(nums[0], nums[-1] + 1)):
        return f"{nums[0]}..{nums[-1]}"
    return ",".join(str(x) for x in (nums if len(nums) <= 8 else [*nums[:3], "...", nums[-1]]))
