"""The schedule shared by the distillation protocols (softlabel, tally, bridge).

Warm-up on private data, then every round: the active peers predict on the round's probes, the server
aggregates, and the peers train on private data plus the aggregated targets. Only the message and the
aggregation differ between softlabel and tally, so they differ here by one flag and one loss.

The distillation weight of round r (1-based) is `distill.weight` times a factor (`distill_factor`):
`min(1, r / distill.ramp_rounds)` when the ramp is on, times 0 when the mean agreement (winning vote
share, averaged over the round's probes) of the vote trained on is below `distill.gate`. Both off
(0, the defaults) compile the program of a run without them. The gate acts on the weight only: the
votes or soft labels are still sent and counted.

`bridge.vote_at=merge` (`vote_after=True`): the vote is taken from the locally trained models just
before the merge, and the peers train on it in the next round (it travels in `State.votes`); round 1
has no vote yet, so it trains on private data only (its probe weights are zero).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from typing import NamedTuple

from tallysim.sim import faults, lanes, local, trust
from tallysim.sim.fed import cohort_shards, pool_examples
from tallysim.sim.peers import State
from tallysim.protocols.base import (Context, active_set, draw_probes, exchanging, gate_agreement,
                                     local_round, loss_info, probe_exchange, round_keys)


LAGGED = "vote_down"     # info: this round delivers a lagged vote (fedct, bridge.vote_at=merge; tally.lagged_vote_cost)
WARMUP_STREAM = 0x3A2A      # fold_in tag of the warm-up's training keys on the init key (the init keeps it whole)


class PendingVote(NamedTuple):
    """bridge.vote_at=merge: the vote taken before the last merge, trained on in the next round."""
    pidx_M: jax.Array         # [M] int32 pool positions of that round's probes
    target_M: jax.Array       # [M] int32 consensus labels
    weight_M: jax.Array       # [M] float32 probe weights (abstention, lost votes; zeros before round 1)
    agreement: jax.Array      # float32 mean winning share (distill.gate)


def no_vote(ctx: Context) -> PendingVote:
    M = ctx.spec.probes
    return PendingVote(jnp.zeros((M,), jnp.int32), jnp.zeros((M,), jnp.int32), jnp.zeros((M,), jnp.float32),
                       jnp.float32(0.0))


def distill_factor(cfg, r, agreement, hp=None):
    """The factor of round r's distillation weight: None when neither the ramp nor the gate is on
    (the weight is used as it is), else min(1, r / ramp_rounds) and/or (agreement >= gate).
    `hp`: Context.hp, this lane's (possibly traced) values; None: the config's."""
    ramp = cfg.distill.ramp_rounds if hp is None else hp("distill.ramp_rounds")
    gate = cfg.distill.gate if hp is None else hp("distill.gate")
    f = None
    if lanes.nonzero(ramp):                   # may be a traced per-lane value (lanes.py)
        f = jnp.minimum(1.0, jnp.asarray(r).astype(jnp.float32) / ramp)
    if lanes.nonzero(gate):
        g = (agreement >= gate).astype(jnp.float32)
        f = g if f is None else f * g
    return f


def scaled(lspec: local.LocalSpec, f) -> local.LocalSpec:
    return lspec if f is None else lspec._replace(distill_weight=lspec.distill_weight * f)


def warmup_init(ctx: Context, key, data, server: bool = False, error: bool = False,
                votes: bool = False) -> State:
    """Initialise all peers, then `warmup_epochs` of private training before the first exchange.
    `votes`: the state carries a `PendingVote` (bridge.vote_at=merge), empty at first."""
    epochs = ctx.cfg.warmup_epochs
    # The init takes the key whole, with or without a warm-up, as local's and FedAvg's do: the same seed
    # starts every protocol from the same parameters (a seed-paired comparison). The warm-up draws from a
    # stream of its own (fold_in), so it shifts neither the init nor the rounds' keys (round_keys reads the
    # root). Before 2026-12-07 a warm-up split this key, and tally drew another init than local/fedavg.
    state = ctx.init_state(key, data, ctx.cfg.init.shared, server=server, error=error)
    if votes:
        state = state._replace(votes=no_vote(ctx))
    if not epochs:
        return state
    lspec = ctx.local_spec(epochs=epochs)
    keys = jax.random.split(jax.random.fold_in(key, WARMUP_STREAM), ctx.spec.peers)
    if ctx.model_groups:          # each group trains with its own model and optimizer; peer i keeps keys[i]
        trained = [local.train_peers(lspec._replace(apply_fn=g.model.apply, tx=gctx.tx), state.params[i],
                                     state.opt[i], keys[g.lo:g.hi],
                                     cohort_shards(data, jnp.arange(g.lo, g.hi), ctx.spec.shard_max),
                                     data.count_P[g.lo:g.hi], data)
                   for i, (g, gctx) in enumerate(ctx.group_contexts())]
        params, opt = tuple(t[0] for t in trained), tuple(t[1] for t in trained)
        return state._replace(params=params, opt=state.opt if ctx.cfg.optim.reset_each_round else opt)
    params, opt, _, _ = local.train_peers(lspec, state.params, state.opt, keys,
                                       cohort_shards(data, None, ctx.spec.shard_max),
                                       data.count_P, data,
                                       **faults.train_args(ctx.cfg, faults.warmup_set(ctx, data)))
    if ctx.cfg.optim.reset_each_round:
        opt = state.opt
    return state._replace(params=params, opt=opt)


def distill_round(ctx: Context, lspec: local.LocalSpec, hard: bool, vote_after: bool = False,
                  sent_fn=None, target_fn=None):
    """round(state, data, root, r) for a distillation protocol with hard (vote) or soft targets.
    `vote_after` (bridge.vote_at=merge, hard only): train on the vote in `state.votes`, then vote
    with the trained models and leave that vote in `state.votes` for the next round.
    Soft only: `sent_fn` the peers' own message (base.probe_exchange), `target_fn` what reaches the
    peers of the server's target (topk_soft's downlink)."""
    cfg = ctx.cfg
    sequential = cfg.distill.epochs if cfg.distill.order == "sequential" else 0

    def round_fn(state: State, data, root, r):
        keys = round_keys(root, r, cfg.probe.resample)
        idx = active_set(ctx, keys.active, data)
        fr = faults.for_round(ctx, data, root, r, idx)
        if vote_after:
            return _vote_after_round(state, data, r, keys, idx, fr)
        probes, info = probe_exchange(ctx, state, data, keys, idx, hard=hard, fr=fr, sent_fn=sent_fn,
                                      target_fn=target_fn)
        if trust.TRUST in info:                  # vote.weighting=history: the peers' trust, kept
            state = state._replace(extra={**state.extra, trust.TRUST: info.pop(trust.TRUST)})
        lspec_r = lspec
        if not exchanging(ctx):
            probes, sequential_epochs = None, 0
            info.pop("senders", None)            # nothing is sent, whoever drops out
        else:
            sequential_epochs = sequential
            # private soft labels: the gate reads the noised aggregate; text: the real positions only
            f = distill_factor(cfg, r, gate_agreement(info), ctx.hp)
            lspec_r = scaled(lspec, f)
            if f is not None:
                info["distill_factor"] = f
        params, opt, _, loss_A, steps = local_round(ctx, lspec_r, state, data, keys, idx, probes=probes,
                                                    sequential_epochs=sequential_epochs, fr=fr)
        info.update(loss_info(ctx, loss_A, steps))
        info.update(steps)
        info.update(faults.info(fr))
        return state._replace(params=params, opt=opt), info

    def _vote_after_round(state: State, data, r, keys, idx, fr):
        probes, lspec_r, sequential_epochs, f = None, lspec, 0, None
        if exchanging(ctx):
            pv = state.votes
            x_M, _ = pool_examples(data, pv.pidx_M)
            probes = local.Probes(x_M, pv.target_M, pv.weight_M)
            f = distill_factor(cfg, r, pv.agreement, ctx.hp)
            lspec_r, sequential_epochs = scaled(lspec, f), sequential
        params, opt, _, loss_A, steps = local_round(ctx, lspec_r, state, data, keys, idx, probes=probes,
                                                    sequential_epochs=sequential_epochs, fr=fr)
        state = state._replace(params=params, opt=opt)
        new, info = probe_exchange(ctx, state, data, keys, idx, hard=True, fr=fr)   # the trained models
        if not exchanging(ctx):
            info.pop("senders", None)
        else:
            pidx_M = draw_probes(ctx, data, keys.probe)                   # the draw probe_exchange made
            state = state._replace(votes=PendingVote(pidx_M.astype(jnp.int32), new.target_M.astype(jnp.int32),
                                                     new.weight_M.astype(jnp.float32),
                                                     gate_agreement(info).astype(jnp.float32)))
            if f is not None:
                info["distill_factor"] = f
            # the vote trained on this round (one formed: agreement > 0, no_vote's is 0), for the cost of
            # a lagged vote under participation < 1 (tally.lagged_vote_cost)
            info[LAGGED] = (pv.agreement > 0).astype(jnp.int32)
        info.update(loss_info(ctx, loss_A, steps))
        info.update(steps)
        info.update(faults.info(fr))
        return state, info

    return round_fn
