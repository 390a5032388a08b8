"""The schedule shared by the distillation protocols (softlabel, tally, bridge).

Warm-up on private data, then every round: the active peers predict on the round's probes, the server
aggregates, and the peers train on private data plus the aggregated targets. Only the message and the
aggregation differ between softlabel and tally, so they differ here by one flag and one loss.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from tallysim import faults, local
from tallysim.peers import State
from tallysim.protocols.base import (Context, active_set, exchanging, local_round, probe_exchange,
                                     round_keys)


def warmup_init(ctx: Context, key, data, server: bool = False, error: bool = False) -> State:
    """Initialise all peers, then `warmup_epochs` of private training before the first exchange."""
    epochs = ctx.cfg.warmup_epochs
    # Without warm-up the init takes the key whole, as FedAvg's does: bridge's FedAvg invariant
    # (warmup_epochs=0) then holds from the same seed.
    k_init, k_warm = jax.random.split(key) if epochs else (key, None)
    state = ctx.init_state(k_init, data, ctx.cfg.init.shared, server=server, error=error)
    if not epochs:
        return state
    lspec = ctx.local_spec(epochs=epochs)
    keys = jax.random.split(k_warm, ctx.spec.peers)
    params, opt, _, _ = local.train_peers(lspec, state.params, state.opt, keys, data.shard_PxS,
                                       data.count_P, data,
                                       **faults.train_args(ctx.cfg, faults.warmup_set(ctx, data)))
    if ctx.cfg.optim.reset_each_round:
        opt = state.opt
    return state._replace(params=params, opt=opt)


def distill_round(ctx: Context, lspec: local.LocalSpec, hard: bool):
    """round(state, data, root, r) for a distillation protocol with hard (vote) or soft targets."""
    cfg = ctx.cfg
    sequential = cfg.distill.epochs if cfg.distill.order == "sequential" else 0

    def round_fn(state: State, data, root, r):
        keys = round_keys(root, r, cfg.probe.resample)
        idx = active_set(ctx, keys.active)
        fr = faults.for_round(ctx, data, root, r, idx)
        probes, info = probe_exchange(ctx, state, data, keys, idx, hard=hard, fr=fr)
        if not exchanging(ctx):
            probes, sequential_epochs = None, 0
            info.pop("senders", None)            # nothing is sent, whoever drops out
        else:
            sequential_epochs = sequential
        params, opt, _, loss_A, steps = local_round(ctx, lspec, state, data, keys, idx, probes=probes,
                                                    sequential_epochs=sequential_epochs, fr=fr)
        info["train_loss"] = jnp.mean(loss_A)
        info.update(steps)
        info.update(faults.info(fr))
        return state._replace(params=params, opt=opt), info

    return round_fn
