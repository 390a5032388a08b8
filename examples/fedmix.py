"""`fedmix`: FedAvg whose server moves only part of the way to the average, a protocol that lives outside
tallysim and is loaded as a plugin (docs/write-a-protocol.md walks through this file).

Each round is FedAvg's (broadcast, local training, shard-weighted average `avg`), then the server
mixes: x' = x + mix * (avg - x); mix=1 is FedAvg. Every peer also counts the rounds it took part in
(state with a peer axis, to show how a protocol declares one). Bits: FedAvg's.

    tallysim run --plugin fedmix protocol.name=fedmix fedmix.mix=0.5 --out runs/mix   # from examples/

**`fedmix.*`**: `mix` [0.5] in (0, 1]: how far the server moves toward the average each round; a
grouped sweep may vary it across the lanes of one program.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from tallysim.fields import floats
from tallysim.protocols import Traits, fedavg
from tallysim.protocols.base import Context, Protocol, active_set, round_keys
from tallysim.sim import faults

PROTOCOLS = {"fedmix": "make"}            # protocol.name -> the factory below

TRAITS = Traits(fedavg_family=True, shared_init="it starts every peer from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                reads=("fedavg", "comm.param_bits"), sections={"fedmix": "FedMixConfig"})


@dataclass(frozen=True)
class FedMixConfig:                       # the `fedmix.*` config section
    mix: float = floats(0.5, "(0, 1]", lane=True)


def make(ctx: Context) -> Protocol:
    lspec = ctx.local_spec()
    mix = ctx.hp("fedmix.mix")            # a constant, or this lane's value in a grouped sweep
    P = ctx.spec.peers

    def init(key, data):
        return ctx.init_state(key, data, shared=True, server=True,
                              extra=lambda server: {"rounds_P": jnp.zeros((P,), jnp.int32)})

    def round_fn(state, data, root, r):
        keys = round_keys(root, r)
        idx = active_set(ctx, keys.active, data)               # None: every peer takes part
        fr = faults.for_round(ctx, data, root, r, idx)   # faults.* act here as in FedAvg
        start = state.server
        state, _, _, info = fedavg.fedavg_step(ctx, lspec, state, data, keys, False, fr)
        server = jax.tree.map(lambda x, a: x + mix * (a - x), start, state.server)
        took_part = jnp.ones((P,), jnp.int32) if idx is None else jnp.zeros((P,), jnp.int32).at[idx].set(1)
        rounds_P = state.extra["rounds_P"] + took_part
        info["fedmix_min_rounds"] = jnp.min(rounds_P)     # a scalar of its own in the metrics rows
        return state._replace(server=server, extra={"rounds_P": rounds_P}), info

    return Protocol(init=init, round=round_fn, cost=fedavg.param_cost(ctx), has_server=True,
                    peer_state=("rounds_P",), row_keys={"fedmix_min_rounds": int})
