"""What a protocol module declares, and how the registry reads a built-in's declaration from its source.

A protocol module declares `TRAITS = Traits(...)` (what configuration and validation need to know before
anything is built) and, optionally, its own config sections (frozen dataclasses named in
`TRAITS.sections`, defined in the module or imported by name from another module of the package). A built-in's are read here with `ast`, without importing the module, so that
configuration stays free of JAX: that is why they are written with literals only (and `ints`/`floats`
from tallysim.fields). A plugin is imported instead, and checked by tallysim/plugin_rules.py.

Imports nothing of tallysim but `fields`: it sits with the registry (tallysim/protocols/__init__.py),
below config.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
import typing
from dataclasses import dataclass, field
from typing import Literal, Optional

from tallysim import fields as _fields


@dataclass(frozen=True)
class Traits:
    """What a protocol is, as far as configuration and validation are concerned."""
    fedavg_family: bool = False  # averages parameters into a server model each round (fedavg.aggregate,
    #                              robust aggregation's memory)
    distill: bool = False        # peers train on targets for this round's probes (a stale message would be
    #                              about last round's probes: faults.kind=straggler is refused)
    soft: bool = False           # sends probability vectors (the probe outputs' memory estimate)
    shared_init: str = ""        # not empty: needs one common init, for this reason (init.shared=false refused)
    privacy: str = ""            # privacy.noise > 0: the mechanism that protects what it sends (privacy.py):
    #                              "votes" (GNMax on the vote counts), "sum" (clipped, noised soft-label sum),
    #                              "params" (DP-FedAvg: clipped, noised update sum); "xor" (fedct: its own
    #                              fedct.xor_epsilon, not privacy.noise)
    # Derived defaults (config.DERIVED) when the field is left null: a value, or the name of another
    # field whose value it takes. Unlisted ones take BASE_DEFAULTS.
    defaults: dict = field(default_factory=dict)
    # The config sections this module owns: section name -> the name of its frozen dataclass in the
    # module. config.json records a section only for the protocols of its module (or when not default).
    sections: dict = field(default_factory=dict)
    # The protocol-specific fields it reads: dotted keys or whole sections ("vote"), or a dict
    # {protocol name: (...)} when the module builds several. Its own sections count as read (with a
    # dict, only where that protocol's entry lists them).
    # validation refuses a non-default value of a protocol-specific field (one that some protocol
    # reads) that this protocol does not read: it would be silently ignored.
    reads: object = ()
    messages: bool = True        # its peers send messages (faults that act on messages apply)
    sgd_only: str = ""           # not empty: needs plain SGD (optim.name=sgd, optim.momentum=0), for this
    #                              reason (validation refuses momentum and Adam)
    fresh_momentum: str = ""     # not empty: SGD momentum needs optim.reset_each_round=true, for this reason
    #                              (validation refuses optim.momentum > 0 with a buffer carried between rounds)
    # What a client keeps from one round to the next, said as "<protocol> keeps ..."; "" for none: every
    # active client restarts from the server model, so a run may hold the server model alone and
    # materialise each round's cohort (client_storage=auto, docs/population.md). A plugin is stateful
    # unless it says otherwise. `client_state(cfg)` adds what the configuration keeps.
    client_state: str = "each client's own model"
    # Its round runs model.groups (peers of several architectures, docs/groups.md): it exchanges
    # predictions only and builds its round from the helpers that stream each group's peers with their own
    # model (distill.distill_round and warmup_init, round_helpers.local_round). The built-ins that do are
    # model_groups.GROUP_PROTOCOLS; a plugin says so here (examples/softsharp.py), else groups are refused.
    model_groups: bool = False

    def reads_key(self, name: str, key: str) -> bool:
        listed = self.reads.get(name, ()) if isinstance(self.reads, dict) else self.reads
        section = key.split(".")[0]
        # a module that builds several protocols (reads as a dict) says which of its sections each reads
        own = section in self.sections and not isinstance(self.reads, dict)
        return own or any(key == r or key.startswith(r + ".") for r in listed)

    def default(self, key: str, cfg):
        value = {**BASE_DEFAULTS, **self.defaults}[key]
        if isinstance(value, str):
            obj = cfg
            for part in value.split("."):
                obj = getattr(obj, part)
            return obj
        return value


BASE_DEFAULTS = {"optim.reset_each_round": False, "init.shared": False, "warmup_epochs": 0}


class Declared(typing.NamedTuple):
    traits: Traits
    sections: dict                  # section name -> dataclass


SECTION_NAMES = {"dataclass": dataclass, "field": field, "Literal": Literal, "Optional": Optional,
                 "ints": _fields.ints, "floats": _fields.floats, "INT_MAX": _fields.INT_MAX,
                 "F32_MAX": _fields.F32_MAX}


def section_class(path: str, cls: str, imported: bool = True):
    """(file, source text, ast.ClassDef) of the section class a built-in module's TRAITS.sections names
    `cls`: a top-level class of its file, or (`imported`) one the file imports by name from another
    module of this package (`from tallysim.protocols.server_opt import FedOptConfig as FedAdamConfig`),
    a top-level class of that module's file: protocols whose sections have the same fields declare them
    once. None: neither."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    tree = ast.parse(text, path)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            return path, text, node
    for node in tree.body if imported else ():
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(__package__ + "."):
            for alias in node.names:
                if (alias.asname or alias.name) == cls:
                    return section_class(importlib.util.find_spec(node.module).origin, alias.name, False)
    return None


def read_source(module: str) -> Declared:
    """TRAITS = Traits(key=literal, ...) and its section classes, from a module's file, without importing it."""
    path = importlib.util.find_spec(module).origin
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    traits = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["TRAITS"]:
            call = node.value
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Traits" and not call.args:
                try:
                    traits = Traits(**{k.arg: ast.literal_eval(k.value) for k in call.keywords})
                except ValueError:
                    pass
            break
    if traits is None:
        raise TypeError(f"{path}: define TRAITS = Traits(keyword=literal, ...) at the top level "
                        "(read without importing the module)")
    sections = {}
    for section, cls in traits.sections.items():
        found = section_class(path, cls)
        if found is None:
            raise TypeError(f"{path}: TRAITS.sections names {cls!r}, which is not a top-level class there "
                            "(nor one imported by name from another tallysim.protocols module)")
        source, _, node = found
        # executed as if written in this module, one in sys.modules (dataclass reads it): its annotations,
        # strings under `from __future__ import annotations`, are resolved in this module's globals later,
        # which is why `Literal` and `Optional` are imported here
        namespace = dict(SECTION_NAMES, __name__=__name__)
        exec(compile(ast.Module(body=[node], type_ignores=[]), source, "exec"), namespace)  # noqa: S102
        sections[section] = namespace[node.name]
        if not dataclasses.is_dataclass(sections[section]):     # raised: an assert vanishes under python -O
            raise TypeError(f"{path}: {cls} must be a frozen dataclass")
    return Declared(traits, sections)
