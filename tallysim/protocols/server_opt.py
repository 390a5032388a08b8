"""A server optimizer on FedAvg's pseudo-gradient (FedOpt, Reddi et al. 2021): the round that the
server-optimizer protocols share; each of them is one file that only chooses the optax transformation.

Each round runs FedAvg's broadcast, local training and aggregation (fedavg.fedavg_step: faults,
`fedavg.aggregate` and partial participation included); with x the round-start server model and
avg the aggregate, the pseudo-gradient is g = x - avg, and the server applies `tx` to it:
u, s = tx.update(g, s); x' = x + u. It is computed as avg + (g + u), equal to x + u, so that a
transformation with u = -g exactly (plain SGD, lr 1) gives FedAvg's model bit for bit. The optimizer
state s never leaves the server (State.extra["server_opt"], no peer axis): the bits are FedAvg's.
"""
from __future__ import annotations

import jax
import optax

from tallysim.protocols import fedavg
from tallysim.protocols.base import Context, Protocol, active_set, round_keys
from tallysim.sim import faults


def server_step(tx: optax.GradientTransformation, server, avg, opt_state):
    """(new server model, new optimizer state) from the round-start model and the aggregate."""
    g = jax.tree.map(lambda x, a: x - a, server, avg)
    u, opt_state = tx.update(g, opt_state, server)
    return jax.tree.map(lambda a, gi, ui: a + (gi + ui), avg, g, u), opt_state


def make(ctx: Context, tx: optax.GradientTransformation) -> Protocol:
    """FedAvg with `tx` on the server (tx's hyperparameters may be per-lane arrays, ctx.hp)."""
    lspec = ctx.local_spec()

    def init(key, data):
        return ctx.init_state(key, data, True, server=True, extra=lambda server: {"server_opt": tx.init(server)})

    def round_fn(state, data, root, r):
        keys = round_keys(root, r)
        fr = faults.for_round(ctx, data, root, r, active_set(ctx, keys.active))
        start = state.server
        state, _, _, info = fedavg.fedavg_step(ctx, lspec, state, data, keys, False, fr)
        server, opt = server_step(tx, start, state.server, state.extra["server_opt"])
        return state._replace(server=server, extra={**state.extra, "server_opt": opt}), info

    return Protocol(init=init, round=round_fn, cost=fedavg.param_cost(ctx), has_server=True)
