"""FedAvg (McMahan et al. 2017) and FedProx (Li et al. 2020).

Each round the server broadcasts its model to the active peers, they train locally, and the server
sets its model to their average weighted by shard size. FedProx adds (mu/2)||w - w_server||^2 to the
local loss (`fedprox.mu`); mu=0 reproduces FedAvg bit for bit. All peers start from one init.
Bits per active peer per round: `comm.param_bits` * |W| up and the same down.
"""
from __future__ import annotations

import jax.numpy as jnp

from tallysim import comm, peers
from tallysim.protocols.base import (Context, Protocol, active_set, local_round, round_keys,
                                     shard_weights)


def fedavg_step(ctx: Context, lspec, state, data, keys, prox: bool):
    """Broadcast, train, average. Returns (state, params_A, weight_A, info) for FedDF to extend."""
    idx = active_set(ctx, keys.active)
    start_A = peers.broadcast(state.server, ctx.spec.active)
    params, opt, params_A, loss_A, steps = local_round(ctx, lspec, state, data, keys, idx, params_A=start_A,
                                                anchor=state.server if prox else None)
    weight_A = shard_weights(peers.take(data.count_P, idx))
    server = peers.weighted_mean(params_A, weight_A)
    info = {"train_loss": jnp.mean(loss_A), **steps}
    return state._replace(params=params, opt=opt, server=server), params_A, weight_A, info


def param_bits(ctx: Context) -> comm.RoundBits:
    b = comm.dense_params(ctx.num_params, ctx.cfg.comm.param_bits)
    return comm.RoundBits(b, b, ctx.spec.active)


def make(ctx: Context, prox: bool = False) -> Protocol:
    lspec = ctx.local_spec(prox_mu=ctx.cfg.fedprox.mu if prox else None)

    def round_fn(state, data, root, r):
        state, _, _, info = fedavg_step(ctx, lspec, state, data, round_keys(root, r), prox)
        return state, info

    bits = param_bits(ctx)
    return Protocol(init=lambda key, data: ctx.init_state(key, data, True, server=True),
                    round=round_fn, cost=lambda info: bits, has_server=True)


def make_fedprox(ctx: Context) -> Protocol:
    return make(ctx, prox=True)
