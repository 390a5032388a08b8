"""The round's steps every protocol shares, before any exchange: its keys (`round_keys`), who takes part
(`active_set`), the weights of the server's mean (`aggregation_counts`, `shard_weights`) and the local
training of the active peers (`local_round`, one model or model.groups). Split from base.py, which
re-exports every name here: plugins import them from `tallysim.protocols.base`.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from tallysim.sim import cohort, faults, local, peers
from tallysim.config import ConfigError
from tallysim.sim.fed import FedData, cohort_shards
from tallysim.sim.peers import State
from tallysim.protocols.context import Context, ModelGroup

FIXED_PROBE_STREAM = 2**31 - 1    # fold_in tag of the one probe draw reused when probe.resample=false


class RoundKeys(NamedTuple):
    active: jax.Array
    probe: jax.Array
    tie: jax.Array
    train: jax.Array
    server: jax.Array


def round_keys(root, r, resample: bool = True) -> RoundKeys:
    key = jax.random.fold_in(root, r)
    k = jax.random.split(key, 5)
    probe = k[1] if resample else jax.random.fold_in(root, FIXED_PROBE_STREAM)
    return RoundKeys(k[0], probe, k[2], k[3], k[4])


def active_set(ctx: Context, key, data: Optional[FedData] = None) -> Optional[jax.Array]:
    """Sorted indices of this round's participating peers; None when all take part (no gather).
    `participation_rule` (sim/cohort.py): uniform, or size (reads the shard sizes: pass `data`);
    `cohort_draw`: sort (the draws of earlier versions) or sequential (O(A) random integers)."""
    P, A = ctx.spec.peers, ctx.spec.active
    if A == P:
        return None
    sequential = ctx.cfg.cohort_draw == "sequential"
    if ctx.model_groups:      # A_g of each group's P_g (model_groups.active_counts), in group order
        def group(k, peers_g, active_g):
            if sequential:
                return cohort.uniform_sequential(k, peers_g, active_g)
            return jnp.sort(jax.random.permutation(k, peers_g)[:active_g])
        # one group is one model for every peer: it draws the one-model run's cohort (the round key itself;
        # fold_in(key, 0) drew another cohort than the run without groups, review24)
        one = len(ctx.model_groups) == 1
        return jnp.concatenate([g.lo + group(key if one else jax.random.fold_in(key, i), g.hi - g.lo, g.a_hi - g.a_lo)
                                for i, g in enumerate(ctx.model_groups)])
    if ctx.cfg.participation_rule == "size":
        if data is None:
            raise ConfigError(f"participation_rule=size reads the shard sizes, but protocol.name="
                              f"{ctx.cfg.protocol.name} calls active_set(ctx, key) without the data; "
                              "allowed: participation_rule=uniform, or pass `data` to active_set")
        if sequential:
            return cohort.by_size_sequential(key, data.offset_P, data.count_P, A)
        return cohort.by_size(key, data.count_P, A)
    return cohort.uniform_sequential(key, P, A) if sequential else cohort.uniform(key, P, A)


def aggregation_counts(ctx: Context, count_A) -> jax.Array:
    """The counts the server's mean weighs the cohort by (shard sizes; ones under participation_rule=size,
    sim/cohort.py): give them to `shard_weights` or faults.receive_weights."""
    return cohort.aggregation_counts(ctx.cfg.participation_rule, count_A)


def group_rows(g: ModelGroup, idx):
    """(rows of group g's stacked trees, global peer indices) of its active peers; (None, its range)
    when every peer is active (no gather of its trees)."""
    if idx is None:
        return None, jnp.arange(g.lo, g.hi)
    glob = idx[g.a_lo:g.a_hi]
    return glob - g.lo, glob


def shard_weights(count_A) -> jax.Array:
    """Shard-size weights summing to one; uniform when every active shard is empty (min_size=0)."""
    c = count_A.astype(jnp.float32)
    total = jnp.sum(c)
    return jnp.where(total > 0, c / jnp.maximum(total, 1.0), 1.0 / c.shape[0])


def loss_info(ctx: Context, loss_A, steps: Optional[dict] = None) -> dict:
    """The round's info entries of the local loss: `train_loss`, the mean over the active peers, and under
    model.groups `train_loss@NAME`, the mean over group NAME's active peers (loss_A holds them in group
    order, A_g each: _grouped_local_round). G scalars more a lane, computed in the round's own program and
    read with the rest of its info (no other transfer, no other compile); without groups the one mean, as
    before. A plugin's round that runs groups calls it for the per-group losses its rows then hold.
    `steps`: local_round's; with its `stepped@NAME` a group in which no peer took a step is left out of
    `train_loss` (the A_g-weighted mean of the groups that stepped; where every group did, the mean over all
    A as before, bit for bit) instead of counting 0, and its row reports `train_loss@NAME` missing. Without
    `steps` it cannot tell (a group's losses are 0 whether or not it stepped): the run warns once where a
    group reports exactly 0 and the info holds no `stepped@NAME` (results/rows.unreported_steps)."""
    info = {"train_loss": jnp.mean(loss_A)}
    for g in ctx.model_groups:
        info[f"train_loss@{g.name}"] = jnp.mean(loss_A[g.a_lo:g.a_hi])
    if ctx.model_groups and steps is not None and all(f"stepped@{g.name}" in steps for g in ctx.model_groups):
        w_G = jnp.stack([jnp.float32(g.a_hi - g.a_lo) * (steps[f"stepped@{g.name}"] > 0) for g in ctx.model_groups])
        mean_G = jnp.stack([info[f"train_loss@{g.name}"] for g in ctx.model_groups])
        some = jnp.sum(w_G * mean_G) / jnp.maximum(jnp.sum(w_G), 1.0)
        info["train_loss"] = jnp.where(jnp.all(w_G > 0), info["train_loss"], some)
    return info


def local_round(ctx: Context, lspec: local.LocalSpec, state: State, data: FedData, keys: RoundKeys,
                idx, params_A=None, probes=None, anchor=None, sequential_epochs: int = 0,
                fr: Optional[faults.RoundFaults] = None, linear_A=None):
    """Train the active peers (from `params_A` if given, else their own params) and write them back.

    Returns (params, opt, params_A_trained, loss_A, steps), steps = {steps_real, steps_computed}
    for the round's info. The optimizer restarts from scratch when optim.reset_each_round is set.
    `fr`: this round's faulty peers (label_flip and under_trained's step cap act here).
    `linear_A`: per active peer, a linear term <linear_i, w> added to the local loss (SCAFFOLD).
    """
    if ctx.model_groups:
        return _grouped_local_round(ctx, lspec, state, data, keys, idx, probes, anchor, sequential_epochs)
    if params_A is None:
        params_A = peers.take(state.params, idx)
    opt_A = jax.vmap(ctx.tx.init)(params_A) if ctx.cfg.optim.reset_each_round else peers.take(state.opt, idx)
    shard, count = cohort_shards(data, idx, ctx.spec.shard_max), peers.take(data.count_P, idx)
    keys_A = jax.random.split(keys.train, ctx.spec.active)
    params_A, opt_A, loss_A, steps = local.train_peers(lspec, params_A, opt_A, keys_A, shard, count, data,
                                                       probes, anchor, sequential_epochs,
                                                       linear_A=linear_A, **faults.round_train_args(ctx, fr))
    if state.params is None:        # Context.cohort: nothing per client outlives the round
        return None, None, params_A, loss_A, steps
    return peers.put(state.params, idx, params_A), peers.put(state.opt, idx, opt_A), params_A, loss_A, steps


def _grouped_local_round(ctx, lspec, state, data, keys, idx, probes, anchor, sequential_epochs):
    """local_round of a grouped run: each group's active peers trained by its own vmapped program (its
    model, its optimizer); peer i keeps the one-model run's key, split(keys.train, A)[i]."""
    keys_A = jax.random.split(keys.train, ctx.spec.active)
    params, opt, trained, losses, steps = [], [], [], [], []
    for i, (g, gctx) in enumerate(ctx.group_contexts()):
        rows, glob = group_rows(g, idx)
        params_g = peers.take(state.params[i], rows)
        opt_g = jax.vmap(gctx.tx.init)(params_g) if ctx.cfg.optim.reset_each_round else peers.take(state.opt[i], rows)
        p, o, loss, st = local.train_peers(lspec._replace(apply_fn=g.model.apply, tx=gctx.tx), params_g, opt_g,
                                           keys_A[g.a_lo:g.a_hi], cohort_shards(data, glob, ctx.spec.shard_max),
                                           data.count_P[glob], data,
                                           probes, anchor, sequential_epochs)
        params.append(peers.put(state.params[i], rows, p))
        opt.append(peers.put(state.opt[i], rows, o))
        trained.append(p)
        losses.append(loss)
        steps.append(st)
    total = {k: sum(st[k] for st in steps) for k in steps[0]}
    # each group's stepping peers: loss_info leaves a group where none stepped out of train_loss, and its
    # row reports train_loss@NAME missing (results/rows.py); G int32 scalars more, as train_loss@NAME
    total.update({f"stepped@{g.name}": st["stepped"] for g, st in zip(ctx.model_groups, steps)})
    return tuple(params), tuple(opt), tuple(trained), jnp.concatenate(losses), total
