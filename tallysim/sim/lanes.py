"""The run axis: configurations that differ only in values that keep every array's shape run as one
compiled program, one vmapped lane per (configuration, seed).

A lane's values come in three kinds:
- traced (`TRACED`): scalars the round reads as arithmetic (learning rates, weights, temperatures).
  Within a group, a field with one value everywhere stays a Python constant, exactly as in a run of
  its own; a field that varies becomes a per-lane array the compiled round receives as an argument.
- host-side (`HOST`): the partition and the seed build each lane's shards before anything compiles;
  shards are padded to one common shape (local training never reads the padding).
- schedule (`SCHEDULE`): `rounds` and `eval_every`; the group runs to its longest lane and each lane
  logs its own evaluation rounds and stops at its own last round.
Everything else is static: it splits a sweep into groups (`signature`), one program each. So does
whether a `NONZERO` field is zero, since zero switches a term off (no momentum buffer, no exchange,
no abstention bit), which changes the program's structure or the bits.

`faults.fraction` is host-side too when the faulty set is fixed (`faults.redraw=false`): it only
decides which peers the lane's mask `FedData.faulty_P` marks (and which shards `under_trained` cuts),
both built per lane on the host. Whether any peer is faulty (`faults.enabled`) stays in the
signature, since no faulty peer is statically the fault-free program; a lane without faulty peers
ignores the other `faults.*` fields, so it joins any fault-free lane whatever its `faults.kind`.
With `redraw=true` the round draws floor(fraction * P) peers itself, a static count, so the
fraction is static.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from tallysim import config
from tallysim.sim import faults
from tallysim.config import Config

# Declared on the fields (`lane=True`, `nonzero=True`: tallysim/fields.py); these are the built-in ones.
TRACED = config.lane_fields()
NONZERO = tuple(k for k, f in config.declared().items() if f.nonzero)
HOST = ("seed", "seeds", "seed_chunk", "partition.kind", "partition.alpha", "partition.k",
        "partition.min_size", "partition.cap", "partition.scheme", "partition.pick")
SCHEDULE = ("rounds", "eval_every")
HOST_FIXED_FAULTS = ("faults.fraction",)    # host-side when faults.redraw is false (see above)
# A traced field is never put in the Config: the round reads it as an explicit per-lane array,
# ctx.hp(key) (protocols/context.py), the way optax.inject_hyperparams passes hyperparameters. The config a
# protocol is built from (Context.cfg) holds a `LaneField` in its place, in every build: reading the
# first configuration's value there would give every lane of a group lane 0's value (issue 30: scaffold
# divided by lane 0's optim.lr), so any such read fails at trace time, grouped or not, and names ctx.hp.


class LaneFieldRead(TypeError):
    """A protocol read a lane field from the static config instead of ctx.hp."""


class LaneField:
    """What a lane field holds in Context.cfg: no value, only whether it is zero for a NONZERO field
    (static in a group: `signature` splits on it), so `if cfg.x > 0` / `bool(cfg.x)` stay plain Python
    tests. Anything else (arithmetic, float(), jnp.asarray, other comparisons) raises LaneFieldRead."""
    __slots__ = ("key", "on")

    def __init__(self, key: str, on=None):
        self.key, self.on = key, on          # on: None for a field that is not NONZERO

    def _refuse(self, *_, **__):
        raise LaneFieldRead(f"{self.key} is a lane field: each lane of a grouped sweep has its own value, so "
                            f"the config a protocol is built from holds none; read it with "
                            f"ctx.hp({self.key!r}) (a constant, or this lane's traced value)")

    def _switch(self, other) -> bool:
        if self.on is None or isinstance(other, LaneField) or other != 0:
            self._refuse()
        return self.on

    def __bool__(self):
        return self._switch(0)

    def __gt__(self, other):
        return self._switch(other)

    def __ne__(self, other):
        if isinstance(other, LaneField):
            return not self.__eq__(other)
        return self._switch(other)

    def __eq__(self, other):
        if isinstance(other, LaneField):      # two static configs compare equal field by field
            return (self.key, self.on) == (other.key, other.on)
        return not self._switch(other)

    def __hash__(self):
        return hash((LaneField, self.key, self.on))

    def __repr__(self):
        return f"LaneField({self.key!r}: read ctx.hp)"

    __float__ = __int__ = __index__ = __round__ = __abs__ = __neg__ = __pos__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _refuse
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = __rpow__ = __matmul__ = _refuse
    __lt__ = __le__ = __ge__ = __array__ = __jax_array__ = __format__ = __iter__ = __len__ = _refuse


def static_view(cfg: Config) -> tuple[Config, dict]:
    """(cfg with every lane field replaced by a LaneField, {key: its value}): what Context keeps."""
    nz = set(nonzero_keys())
    consts = {k: config.get_field(cfg, k) for k in traced()}
    by_section: dict = {}
    for k, v in consts.items():
        head, _, rest = k.partition(".")
        by_section.setdefault(head, {})[rest] = LaneField(k, bool(v) if k in nz else None)
    core = {f.name for f in dataclasses.fields(cfg)}
    view = dataclasses.replace(cfg, **{h: dataclasses.replace(getattr(cfg, h), **f)
                                      for h, f in by_section.items() if h in core})
    # Protocols' own sections (Config.ext) are set directly: Config's __post_init__ drops a section
    # equal to its default, a comparison a LaneField refuses, and a dropped one would read as defaults.
    ext = dict(view.ext)
    ext.update({h: dataclasses.replace(getattr(cfg, h), **f) for h, f in by_section.items() if h not in core})
    object.__setattr__(view, "ext", tuple(sorted(ext.items(), key=lambda hv: hv[0])))
    return view, consts


def is_view(cfg: Config) -> bool:
    return isinstance(config.get_field(cfg, "optim.lr"), LaneField)


def traced() -> tuple:
    """Every traced key, plugins' sections included."""
    return config.lane_fields()


def nonzero_keys() -> tuple:
    return tuple(k for k, f in config.declared().items() if f.nonzero)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def signature(cfg: Config) -> str:
    """What a group shares: every static field, and which NONZERO fields are zero."""
    flat = _flat(config.to_dict(cfg))
    per_lane = traced() + HOST + SCHEDULE + (() if cfg.faults.redraw else HOST_FIXED_FAULTS)
    static = {k: v for k, v in flat.items() if k not in per_lane and k != "derived"
              and k.split(".")[0] not in config.NOT_THE_EXPERIMENT}
    static.update({f"{k}!=0": bool(config.get_field(cfg, k)) for k in nonzero_keys()})
    if not faults.enabled(cfg, cfg.peers):      # no faulty peer: faults.* do not touch the program
        static = {k: v for k, v in static.items() if not k.startswith("faults.")}
    static["faults.on"] = faults.enabled(cfg, cfg.peers)
    return json.dumps(static, sort_keys=True, default=str)


def group(cfgs: list[Config]) -> list[list[int]]:
    """Indices of `cfgs` grouped by signature, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        groups.setdefault(signature(cfg), []).append(i)
    return list(groups.values())


def varying(cfgs: list[Config]) -> list[str]:
    """The TRACED fields whose value differs between `cfgs` (these become per-lane arrays)."""
    return [k for k in traced() if len({config.get_field(c, k) for c in cfgs}) > 1]


def lane_values(cfgs: list[Config], lane_cfg: list[int]) -> dict[str, np.ndarray]:
    """{traced key: float32 [Z] value of each lane}, for the fields that vary in the group."""
    return {k: np.asarray([config.get_field(cfgs[i], k) for i in lane_cfg], np.float32)
            for k in varying(cfgs)}


def choices(cfgs: list[Config]) -> tuple:
    """((key, sorted distinct values), ...) of the varying traced fields: static facts about a group
    (protocols.base.Context.choices), e.g. the bridge's largest k."""
    return tuple((k, tuple(sorted({config.get_field(c, k) for c in cfgs}))) for k in varying(cfgs))


def nonzero(x) -> bool:
    """Is this possibly-traced scalar switched on? A traced value is: `signature` keeps lanes with a
    zero and lanes without apart, so a traced NONZERO field is nonzero in every lane."""
    if isinstance(x, LaneField):
        return bool(x)
    if isinstance(x, (int, float)):
        return x != 0
    return True
