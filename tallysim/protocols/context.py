"""What a protocol is built from and returns: `Context` (the config as a protocol may read it, the run's
static facts, the model, the lane hyperparameters `hp`, the initial state), `Protocol` (the NamedTuple
of pure functions every protocol module's `make(ctx)` returns) and `ModelGroup` (one model group of a
model.groups run). Split from base.py, which re-exports every name here: plugins import them from
`tallysim.protocols.base`.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from tallysim import protocols
from tallysim.sim import lanes, local, peers, tasks
from tallysim.sim.comm import RoundBits
from tallysim.config import Config
from tallysim.sim.fed import FedData, Spec
from tallysim.sim.peers import State


class ModelGroup(NamedTuple):
    """One model group of a grouped run (model.groups, tallysim/model_groups.py): static facts."""
    name: str
    lo: int                  # its global peer range [lo, hi)
    hi: int
    a_lo: int                # its slots on the active axis [a_lo, a_hi) (active_set concatenates groups)
    a_hi: int
    model: Any
    num_params: int
    values: tuple            # ((dotted key, value), ...): its own model.* / optim.* fields


class Protocol(NamedTuple):
    init: Callable[[jax.Array, FedData], State]
    round: Callable[[State, FedData, jax.Array, jax.Array], tuple[State, dict]]
    cost: Callable[[dict], RoundBits]
    has_server: bool = False
    peer_state: tuple = ()      # State.extra entries with a peer axis (sharded like params on a mesh)
    row_keys: dict = {}         # scalars of the round's info that go into the metrics rows: name -> int | float


@dataclass(frozen=True)
class Context:
    # Built from a full Config; keeps it as lanes.static_view's copy, with every lane field (`lane=True`,
    # tallysim/fields.py) a lanes.LaneField that raises when read: a protocol reads those with `hp`, so
    # no lane can see the first configuration's value (issue 30). Their values are in `consts`.
    cfg: Config
    spec: Spec
    model: Any
    num_params: int
    # ((key, (value, ...)), ...): the distinct values of each traced field that varies across the
    # lanes of a grouped sweep (lanes.choices). A protocol that needs a static bound for a traced
    # value (the bridge's largest k) reads it here.
    choices: tuple = ()
    # key -> per-lane (traced) value of each `lane=True` field that varies in a grouped sweep
    # (tallysim/fields.py); read them with `hp`.
    hparams: dict = dataclass_field(default_factory=dict)
    # key -> the lane fields' values in the config the Context was built from (set in __post_init__)
    consts: Optional[dict] = dataclass_field(default=None, repr=False)
    # model.groups: one ModelGroup per group (State.params and State.opt are then tuples, one stacked
    # tree per group); () for a run of one model, which takes exactly the code paths it took before
    model_groups: tuple = ()
    # The lanes (seeds, a grouped sweep's configurations) one compiled program vmaps together on a
    # device (programs.round_programs): they stream their exchange chunks at the same time, so the
    # chunk budget (sizing.CHUNK_BYTES) is shared by them, not given to each
    lanes: int = 1

    def __post_init__(self):
        if not lanes.is_view(self.cfg):      # a full Config (a new Context, or replace(ctx, cfg=...))
            view, consts = lanes.static_view(self.cfg)
            object.__setattr__(self, "cfg", view)
            object.__setattr__(self, "consts", consts)
        elif self.consts is None:
            raise ValueError("Context: a static config view needs its consts")

    def hp(self, key: str):
        """A lane field's value: this lane's array in a grouped sweep where it varies, else the
        config's constant. Like optax.inject_hyperparams: the value is an argument, never in the Config."""
        if key in self.hparams:
            return self.hparams[key]
        if key in self.consts:
            return self.consts[key]
        obj = self.cfg                       # not a lane field: the static config's value
        for part in key.split("."):
            obj = getattr(obj, part)
        return obj

    def group_contexts(self) -> list:
        """[(ModelGroup, Context of its peers as a run of their own)]: its model, its optimizer (a field
        the group sets replaces the lane's value), spec.peers = P_g and spec.active = A_g."""
        out = []
        for g in self.model_groups:
            own = dict(g.values)
            view = copy.copy(self.cfg)            # a static view: replace() would compare its LaneFields
            model = {k.removeprefix("model."): v for k, v in own.items() if k.startswith("model.")}
            object.__setattr__(view, "model", dataclasses.replace(view.model, groups=None, **model))
            if "optim.name" in own:
                object.__setattr__(view, "optim", dataclasses.replace(view.optim, name=own["optim.name"]))
            object.__setattr__(view, "peers", g.hi - g.lo)
            lane_own = {k: v for k, v in own.items() if k in self.consts}       # optim.lr, momentum, decay
            out.append((g, dataclasses.replace(
                self, cfg=view, model=g.model, num_params=g.num_params, model_groups=(),
                spec=self.spec._replace(peers=g.hi - g.lo, active=g.a_hi - g.a_lo),
                consts={**self.consts, **lane_own},
                hparams={k: v for k, v in self.hparams.items() if k not in lane_own})))
        return out

    def choices_of(self, key: str) -> Optional[tuple]:
        return dict(self.choices).get(key)

    @property
    def tx(self):
        return peers.make_optimizer(self.cfg.optim, self.hp("optim.lr"), self.hp("optim.momentum"),
                                    self.hp("optim.weight_decay"))

    def local_spec(self, epochs: Optional[int] = None, distill_loss=None, prox_mu=None) -> local.LocalSpec:
        cfg = self.cfg
        return local.LocalSpec(
            apply_fn=self.model.apply, tx=self.tx, batch_size=cfg.batch_size,
            shard_max=self.spec.shard_max,
            epochs=cfg.local_epochs if epochs is None else epochs,
            local_steps=cfg.local_steps if epochs is None else None,
            distill_loss=distill_loss, distill_weight=self.hp("distill.weight"),
            probe_batch=cfg.distill.batch_size or cfg.batch_size, prox_mu=prox_mu, groups=self.spec.groups,
            task=tasks.of(self.spec))

    @property
    def cohort(self) -> bool:
        """client_storage=auto and a protocol whose clients keep nothing between rounds: the State holds
        the server model and no [P, ...] params or optimizer state; local_round materialises the
        round's A clients from the server model (docs/population.md)."""
        return self.cfg.client_storage == "auto" and not protocols.client_state(self.cfg)

    def init_state(self, key, data: FedData, shared: bool, server: bool = False, error: bool = False,
                   extra=None) -> State:
        if self.cohort:
            if not (shared and server) or error:
                raise ValueError("client_storage=auto: a stateless protocol's state is its server model "
                                 "(shared init, no error buffers); declare its TRAITS.client_state")
            # the same model as the stacked path's peer 0 (a broadcast of this one init), bit for bit
            first = self.model.init(key, jnp.zeros((1,) + tuple(self.spec.input_shape), jnp.float32))
            return State(params=None, opt=None, server=first, error=None,
                         extra=None if extra is None else extra(first))
        if self.model_groups:       # peer i's init key is the one-model run's: split(key, P)[i]
            # through peers.init_range, which draws a model whose init runs a QR (the LSTM) one peer at a
            # time: a plain vmap here hung an LSTM + transformer run on words (docs/text.md, "A run that
            # hangs on a CPU")
            params = tuple(peers.init_range(g.model, key, self.spec.peers, g.lo, g.hi, self.spec.input_shape)
                           if not shared else peers.init_params(g.model, key, g.hi - g.lo, self.spec.input_shape, True)
                           for g in self.model_groups)
            opt = tuple(jax.vmap(gctx.tx.init)(p) for (_, gctx), p in zip(self.group_contexts(), params))
            return State(params=params, opt=opt, server=None, error=None,
                         extra=None if extra is None else extra(None))
        params = peers.init_params(self.model, key, self.spec.peers, self.spec.input_shape, shared)
        first = jax.tree.map(lambda a: a[0], params)
        return State(
            params=params,
            opt=jax.vmap(self.tx.init)(params),
            server=first if server else None,
            error=jax.tree.map(jnp.zeros_like, params) if error else None,
            extra=None if extra is None else extra(first))


def _dummy(spec: Spec):
    return jnp.zeros((1,) + tuple(spec.input_shape), jnp.float32)
