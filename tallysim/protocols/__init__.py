"""Protocol registry: `protocol.name` -> the module of this package that implements it, and its traits.

A new protocol is one file here plus one line in REGISTRY. The file defines a factory
`make(ctx) -> Protocol` and `TRAITS = Traits(...)`: what the rest of tallysim needs to know before
building the protocol (the defaults config.resolved() derives, the checks validation.py makes). TRAITS
is written with literal values only, because `traits(name)` reads it from the file's source without
importing the module: config and validation stay free of JAX (tests/test_protocols.py checks that
what is read equals the imported TRAITS). Importing this package imports no JAX either; `Context`,
`Protocol` and `make` load the modules on first use.
"""
from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
from dataclasses import dataclass, field

REGISTRY = {                       # name -> "module:factory"; this order is the order users see
    "local": "local_only:make",
    "fedavg": "fedavg:make",
    "fedprox": "fedavg:make_fedprox",
    "feddf": "feddf:make",
    "softlabel": "softlabel:make",
    "tally": "tally:make",
    "bridge": "bridge:make",
}


@dataclass(frozen=True)
class Traits:
    """What a protocol is, as far as configuration and validation are concerned."""
    fedavg_family: bool = False  # averages parameters into a server model each round (fedavg.aggregate,
    #                              robust aggregation's memory)
    distill: bool = False        # peers train on targets for this round's probes (a stale message would be
    #                              about last round's probes: faults.kind=straggler is refused)
    soft: bool = False           # sends probability vectors (the probe outputs' memory estimate)
    shared_init: str = ""        # not empty: needs one common init, for this reason (init.shared=false refused)
    # Derived defaults (config.DERIVED) when the field is left null: a value, or the name of another
    # field whose value it takes. Unlisted ones take BASE_DEFAULTS.
    defaults: dict = field(default_factory=dict)

    def default(self, key: str, cfg):
        value = {**BASE_DEFAULTS, **self.defaults}[key]
        if isinstance(value, str):
            from tallysim.config import get_field
            return get_field(cfg, value)
        return value


BASE_DEFAULTS = {"optim.reset_each_round": False, "init.shared": False, "warmup_epochs": 0}


def _module(name: str) -> str:
    if name not in REGISTRY:
        raise ValueError(f"protocol.name={name!r} is not known; allowed: {', '.join(REGISTRY)}")
    return REGISTRY[name].split(":")[0]


@functools.lru_cache(maxsize=None)
def _read_traits(module: str) -> Traits:
    """`TRAITS = Traits(key=literal, ...)` from tallysim/protocols/<module>.py, without importing it."""
    path = importlib.util.find_spec(f"{__name__}.{module}").origin
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["TRAITS"]:
            call = node.value
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Traits" and not call.args):
                break
            try:
                return Traits(**{k.arg: ast.literal_eval(k.value) for k in call.keywords})
            except ValueError:
                break
    raise TypeError(f"{path}: define TRAITS = Traits(keyword=literal, ...) at the top level "
                    "(read without importing the module)")


def traits(name: str) -> Traits:
    """The traits protocol `name`'s module declares."""
    return _read_traits(_module(name))


def factory(name: str):
    """The function that builds protocol `name` from a Context (imports its module, and JAX)."""
    _module(name)
    module, fn = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), fn)


def make(ctx):
    """The Protocol ctx.cfg.protocol.name names, built for ctx."""
    return factory(ctx.cfg.protocol.name)(ctx)


def __getattr__(name: str):
    if name in ("Context", "Protocol"):     # tallysim.protocols.base needs JAX: import it on first use
        from tallysim.protocols import base
        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BASE_DEFAULTS", "Context", "Protocol", "REGISTRY", "Traits", "factory", "make", "traits"]
