"""FedAvg (McMahan et al. 2017) and FedProx (Li et al. 2020).

Each round the server broadcasts its model to the active peers, they train locally, and the server
sets its model to their average weighted by shard size (`fedavg.aggregate=mean`), or to the
coordinate-wise median (`median`) or trimmed mean (`trimmed`, `fedavg.trim` cut from each end) of the
models it received, unweighted, or a Byzantine-robust rule on the updates (`krum`, `multikrum`, `geomed`,
`cclip`, after an optional `fedavg.pre=bucketing|nnm`; `robust_aggregate`, docs/protocols.md "Robust
aggregation"). FedProx adds (mu/2)||w - w_server||^2 to the local loss
(`fedprox.mu`); mu=0 reproduces FedAvg bit for bit. All peers start from one init.
Bits per active peer per round: `comm.param_bits` * |W| up and the same down (faults.kind=dropout:
up only for the models sent; the broadcast reaches every active peer).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import jax
import jax.numpy as jnp

from tallysim.fields import floats, ints
from tallysim.sim import comm, dp, faults, peers, robust, vote
from tallysim.protocols import Traits
from tallysim.protocols.base import (Context, Protocol, active_set, aggregation_counts, local_round,
                                     round_keys, shard_weights)

# fedavg and fedprox (both built here)
TRAITS = Traits(fedavg_family=True, client_state="", shared_init="it starts every peer from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                reads={"fedavg": ("fedavg", "comm.param_bits", "privacy"),
                       "fedprox": ("fedavg", "fedprox", "comm.param_bits", "privacy")}, privacy="params",
                sections={"fedavg": "FedAvgConfig", "fedprox": "FedProxConfig"})


@dataclass(frozen=True)
class FedAvgConfig:
    # mean: shard-size weighted; median, trimmed, krum, multikrum, cclip unweighted; geomed shard-size weighted
    aggregate: Literal["mean", "median", "trimmed", "krum", "multikrum", "geomed", "cclip"] = "mean"
    trim: float = floats(0.1, "[0, 0.5)")    # trimmed: fraction cut from each end, per coordinate
    pre: Literal["none", "bucketing", "nnm"] = "none"   # pre-aggregation before the aggregate rule
    f: Optional[int] = ints(None, 0)         # krum, multikrum, nnm: Byzantine peers assumed; none = the run's faulty count
    m: Optional[int] = ints(None, 1)         # multikrum: models averaged; none = n - f
    tau: float = floats(1.0, "(0, 1e6]")     # cclip: clipping radius on updates
    clip_iters: int = ints(1, 1, 100)        # cclip: clipping iterations
    geomed_iters: int = ints(8, 1, 1000)     # geomed: smoothed Weiszfeld iterations
    bucket: int = ints(2, 1)                 # bucketing: models per bucket


@dataclass(frozen=True)
class FedProxConfig:
    mu: float = floats(0.01, "[0, 1e6]", lane=True)


AGGREGATE_STREAM = 0xB0C4      # fold_in tag on the round's server key: bucketing's permutation
PRIVACY_STREAM = 0xD9          # ... and DP-FedAvg's noise


def robust_aggregate(ctx: Context, sent_A, sent_mask, weight_A, server, key, f_count):
    """fedavg.pre, then aggregate=krum|multikrum|geomed|cclip (sim/robust.py), on the updates
    u_i = w_i - server: the rules are translation-equivariant, so this is the papers' aggregate of
    the models, but distances between updates keep float32's precision, and centered clipping's
    center is the round-start server model (u = 0). With a pre-aggregator, mean / median / trimmed
    apply to its outputs, unweighted. f: fedavg.f, or this lane's faulty count (faults.faulty_count)."""
    c = ctx.cfg.fedavg
    A = ctx.spec.active
    f = jnp.minimum(f_count, A) if c.f is None else min(c.f, A)
    u_A = jax.tree.map(lambda w, s: w - s[None], sent_A, server)
    zero = jax.tree.map(jnp.zeros_like, server)
    if c.aggregate in robust.AGGREGATORS:
        iters = c.geomed_iters if c.aggregate == "geomed" else c.clip_iters
        # m=None: robust.aggregate takes n - f over what reaches multi-Krum (the buckets, under bucketing)
        u = robust.aggregate(u_A, sent_mask, c.aggregate, f, center=zero, m=c.m, tau=c.tau, iters=iters,
                             pre=c.pre, bucket=c.bucket, key=key, weight_A=weight_A)
    else:                          # mean / median / trimmed after a pre-aggregator
        if c.pre == "nnm":
            u_A, sent_mask = robust.nnm(u_A, sent_mask, f)
        else:
            u_A, sent_mask = robust.bucketing(u_A, sent_mask, c.bucket, key)
        if c.aggregate == "mean":
            w = jnp.ones((jax.tree.leaves(u_A)[0].shape[0],), jnp.float32) if sent_mask is None else sent_mask
            u = robust.weighted_rows(u_A, w / jnp.maximum(jnp.sum(w), 1))
        else:
            u = jax.tree.map(lambda a: vote.coordinate_stat(a, sent_mask, c.aggregate, c.trim), u_A)
    return jax.tree.map(lambda s, d: s + d.astype(s.dtype), server, u)


def dp_aggregate(ctx: Context, sent_A, sent_mask, server, key):
    """DP-FedAvg (McMahan et al., ICLR 2018): each update u_i = w_i - server clipped to L2 norm
    `privacy.clip` (S) over the whole model, the sum over the messages that arrived plus N(0, (z S)^2)
    per coordinate (z = privacy.noise), divided by the A active peers (a fixed denominator, so one
    peer's weight is bounded: uniform, not shard-size, weights). sim/dp.py, privacy.py."""
    clip = ctx.cfg.privacy.clip
    u_A = dp.clip_rows(jax.tree.map(lambda w, s: w - s[None], sent_A, server), clip)
    if sent_mask is not None:
        u_A = jax.tree.map(lambda u: jnp.where(sent_mask.reshape((-1,) + (1,) * (u.ndim - 1)), u, 0), u_A)
    total = dp.noisy_sum(u_A, clip, ctx.hp("privacy.noise"), key)
    return jax.tree.map(lambda s, t: s + (t / ctx.spec.active).astype(s.dtype), server, total)


def aggregate(ctx: Context, sent_A, count_A, server, fr=None, key=None, f_count=0):
    """The server's new model from the models it received. Returns (server, weight_A): weight_A the
    shard-size weights (mean) over the models that arrived; `server` unchanged when none did.
    `key`: bucketing's permutation; `f_count`: this lane's faulty count (the robust rules' default f)."""
    sent_mask = None if fr is None else fr.sent_A
    how = ctx.cfg.fedavg.aggregate
    count_A = aggregation_counts(ctx, count_A)        # ones under participation_rule=size (sim/cohort.py)
    weight_A = shard_weights(count_A) if sent_mask is None else faults.receive_weights(count_A, sent_mask)
    if ctx.cfg.privacy.noise > 0:          # noise 0 compiles the plain program (privacy.noise is nonzero=)
        base = jax.random.PRNGKey(0) if key is None else key
        new = dp_aggregate(ctx, sent_A, sent_mask, server, jax.random.fold_in(base, PRIVACY_STREAM))
    elif how in robust.AGGREGATORS or ctx.cfg.fedavg.pre != "none":
        key = jax.random.PRNGKey(0) if key is None else key
        new = robust_aggregate(ctx, sent_A, sent_mask, weight_A, server, key, f_count)
    elif how == "mean":
        new = peers.weighted_mean(sent_A, weight_A)
    else:
        new = jax.tree.map(lambda a: vote.coordinate_stat(a, sent_mask, how, ctx.cfg.fedavg.trim), sent_A)
    if sent_mask is None:
        return new, weight_A
    arrived = jnp.any(sent_mask)
    return jax.tree.map(lambda n, o: jnp.where(arrived, n, o), new, server), weight_A


def fedavg_step(ctx: Context, lspec, state, data, keys, prox: bool, fr=None):
    """Broadcast, train, average. Returns (state, sent_A, weight_A, info) for FedDF to extend:
    sent_A the models the server received (faulty peers' as faults.py says)."""
    idx = active_set(ctx, keys.active, data)
    start_A = peers.broadcast(state.server, ctx.spec.active)
    params, opt, params_A, loss_A, steps = local_round(ctx, lspec, state, data, keys, idx, params_A=start_A,
                                                       anchor=state.server if prox else None, fr=fr)
    f_count = faults.faulty_count(ctx, data)
    sent_A = faults.sent_params(ctx, fr, params_A, state.server,
                                peers.take(state.params, idx) if fr is not None else None, f_count)
    server, weight_A = aggregate(ctx, sent_A, peers.take(data.count_P, idx), state.server, fr,
                                 jax.random.fold_in(keys.server, AGGREGATE_STREAM), f_count)
    info = {"train_loss": jnp.mean(loss_A), **steps, **faults.info(fr)}
    if fr is not None and fr.lost_A is not None:
        info["senders"] = faults.senders(ctx, fr)
    return state._replace(params=params, opt=opt, server=server), sent_A, weight_A, info


def param_bits(ctx: Context) -> comm.RoundBits:
    b = comm.dense_params(ctx.num_params, ctx.cfg.comm.param_bits)
    return comm.RoundBits(b, b, ctx.spec.active)


def senders_cost(bits: comm.RoundBits):
    """cost(info): `bits` each round; under dropout (info["senders"]) only the messages sent go up, the
    broadcast (sent before anyone trains) reaches every active peer. Every FedAvg-type protocol's cost."""
    def cost(info) -> comm.RoundBits:
        if "senders" not in info:
            return bits
        return bits._replace(up_total=int(info["senders"]) * bits.up)
    return cost


def param_cost(ctx: Context):
    """cost(info): FedAvg's bits (param_bits), as senders_cost counts them."""
    return senders_cost(param_bits(ctx))


def make(ctx: Context, prox: bool = False) -> Protocol:
    lspec = ctx.local_spec(prox_mu=ctx.hp("fedprox.mu") if prox else None)

    def round_fn(state, data, root, r):
        keys = round_keys(root, r)
        fr = faults.for_round(ctx, data, root, r, active_set(ctx, keys.active, data))
        state, _, _, info = fedavg_step(ctx, lspec, state, data, keys, prox, fr)
        return state, info

    return Protocol(init=lambda key, data: ctx.init_state(key, data, True, server=True),
                    round=round_fn, cost=param_cost(ctx), has_server=True)


def make_fedprox(ctx: Context) -> Protocol:
    return make(ctx, prox=True)
