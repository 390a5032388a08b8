"""`bridge`: TallyTrain (Achanta and Reed, arXiv:2607.00173, 2026) with periodic sparse parameter merges.

Every round is a `tally` round (votes up, consensus labels down). Every `bridge.period` rounds
(round r, 1-based, merges when r % period == 0) the active peers also send the top-k of
u_i = (theta_i - theta_ref) + e_i, k = ceil(`bridge.density` * |W|) over the whole model
(`bridge.scope=global`) or per leaf (`per_tensor`), and keep e_i = u_i - s_i (error feedback).
The server adds sum_i w_i s_i to theta_ref (shard-size weights, `bridge.average=weighted`) or each
coordinate's mean over the peers that sent it (`per_coordinate`) and broadcasts the merged update;
peers then take theta_ref (`bridge.reset=hard`) or add merged - s_i to their weights (`soft`; the
unsent residual then stays in the weights, so the error buffer is not added again).
theta_ref starts at the shared init and is the global model (`acc_global`).
`bridge.vote_at`: the votes come from the round-start models (`start`: after a hard reset all the
same model) or from the locally trained models just before the merge (`merge`); a `merge` vote is
trained on in the next round (distill.py). Either way one vote per active peer per round up and one
consensus down; under participation < 1 a `merge` vote goes down to the next round's cohort, which trains
on it (tally.lagged_vote_cost: round 1 receives none, the last vote is never sent).
Bits: tally's every round; on merge rounds, per active peer, up the cheapest coding of k entries
and down that of the merged update's nnz non-zeros (`comm.sparse_params`, `comm.param_bits`).
Under participation < 1 an active peer that missed a merge since the last one it took part in holds
an old theta_ref, which it needs to form u_i and which no sparse update rebuilds: it first receives
theta_ref dense (b * |W|) on top (`stale` peers; State.extra counts each peer's last merge).
density=0 is tally exactly; density=1, period=1, distill.weight=0 is FedAvg up to float rounding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp

from tallysim.fields import floats, ints
from tallysim.sim import comm, faults, peers, sparse
from tallysim.sim.local import hard_label_loss
from tallysim.sim.peers import State
from tallysim.protocols.base import (Context, Protocol, active_set, aggregation_counts, round_keys,
                                     shard_weights)
from tallysim.protocols import Traits
from tallysim.protocols.distill import distill_round, warmup_init
from tallysim.protocols.tally import lagged_vote_cost, vote_cost

TRAITS = Traits(distill=True, shared_init="its merges are deltas from one common reference",
                client_state="each peer's own model and error-feedback buffer",
                defaults={"init.shared": True, "warmup_epochs": "local_epochs"},
                # not distill.temperature: its distill loss is tally's cross-entropy on the vote; not
                # vote.weighting/vote.history: the trust-weighted vote is tally's (config_rules refuses it here)
                reads=("distill.weight", "distill.order", "distill.epochs", "distill.label_smoothing",
                       "distill.batch_size", "distill.ramp_rounds", "distill.gate", "vote.ties",
                       "vote.min_agreement", "vote.min_margin", "bridge", "comm.param_bits"),
                sections={"bridge": "BridgeConfig"})


@dataclass(frozen=True)
class BridgeConfig:
    density: float = floats(0.01, "[0, 1]", lane=True, nonzero=True)
    period: int = ints(5, lane=True)
    scope: Literal["global", "per_tensor"] = "global"
    average: Literal["weighted", "per_coordinate"] = "weighted"
    reset: Literal["hard", "soft"] = "hard"
    vote_at: Literal["start", "merge"] = "start"   # start: vote with the round-start models | merge: the trained ones


LAST, MERGES = "ref_merge_P", "ref_merges"    # State.extra: each peer's last merge taken part in, merges so far


def stale_peers(state: State, idx):
    """(state, number of active peers holding an outdated theta_ref) at a merge; they are then up to
    date. Only under participation < 1 (State.extra has LAST); else (state, 0)."""
    if state.extra is None or LAST not in state.extra:
        return state, jnp.int32(0)
    m = state.extra[MERGES] + 1                    # this merge's number; every peer held merge 0's theta_ref
    last_P = state.extra[LAST]
    stale = jnp.sum(peers.take(last_P, idx) < m - 1, dtype=jnp.int32)
    return state._replace(extra={**state.extra, LAST: peers.put(last_P, idx, jnp.full(idx.shape, m, jnp.int32)),
                                 MERGES: m}), stale


def merge_step(ctx: Context, lay: sparse.Layout, state: State, data, idx, fr=None, lk=None):
    """One sparse merge of the active peers. Returns (state, nnz of the merged update, stale peers).
    `fr` (faults.py): confident_wrong peers send -scale * s_i; dropout loses the lost peers' s_i
    (they keep their error buffers as if it had arrived: they cannot tell). `lk`: this lane's k when
    a grouped sweep varies `bridge.density` (sparse.lane_k)."""
    cfg = ctx.cfg.bridge
    theta_AxW = sparse.flatten_stacked(peers.take(state.params, idx))
    error_AxW = sparse.flatten_stacked(peers.take(state.error, idx))
    if cfg.reset == "soft":
        # A soft reset leaves the unsent residual in the peer's own weights (theta_i - theta_ref
        # already contains it), so adding e_i again would count it twice.
        error_AxW = jnp.zeros_like(error_AxW)
    ref_W = sparse.flatten(state.server)
    sp = jax.vmap(lambda t, e: sparse.sparsify(t, ref_W, e, ctx.hp("bridge.density"), lay, cfg.scope, lk))(theta_AxW, error_AxW)
    sent_W, mask_W = sp.sent_W, sp.mask_W
    if fr is not None and ctx.cfg.faults.kind == "confident_wrong":
        sent_W = jnp.where(fr.faulty_A[:, None], -ctx.cfg.faults.scale * sent_W, sent_W)
    if fr is not None and fr.lost_A is not None:
        weight_A = faults.receive_weights(aggregation_counts(ctx, peers.take(data.count_P, idx)), fr.sent_A)
        mask_W = mask_W & fr.sent_A[:, None]
        sent_W = jnp.where(fr.sent_A[:, None], sent_W, 0.0)
    else:
        weight_A = shard_weights(aggregation_counts(ctx, peers.take(data.count_P, idx)))
    merged_W = sparse.merge(sent_W, mask_W, weight_A, cfg.average)
    ref_new_W = ref_W + merged_W
    server = lay.unravel(ref_new_W)
    if cfg.reset == "hard":
        params_A = peers.broadcast(server, ctx.spec.active)
    else:
        params_A = sparse.unflatten_stacked(lay, sparse.reset(theta_AxW, ref_new_W, merged_W, sp.sent_W, "soft"))
    state = state._replace(params=peers.put(state.params, idx, params_A),
                           error=peers.put(state.error, idx, sparse.unflatten_stacked(lay, sp.error_W)),
                           server=server)
    state, stale = stale_peers(state, idx)     # every active peer receives the merge, lost upload or not
    return state, jnp.count_nonzero(merged_W).astype(jnp.int32), stale


def make(ctx: Context) -> Protocol:
    cfg = ctx.cfg
    lspec = ctx.local_spec(distill_loss=hard_label_loss(ctx.spec.classes, ctx.hp("distill.label_smoothing")))
    vote_after = cfg.bridge.vote_at == "merge"      # vote with the trained models, just before the merge
    tally_round = distill_round(ctx, lspec, hard=True, vote_after=vote_after)
    dummy = jnp.zeros((1,) + tuple(ctx.spec.input_shape), jnp.float32)
    lay = sparse.layout(jax.eval_shape(ctx.model.init, jax.random.PRNGKey(0), dummy))
    assert lay.size == ctx.num_params, (lay.size, ctx.num_params)
    # A grouped sweep may trace bridge.density and bridge.period (lanes.py): k then comes per lane
    # from the group's densities (exact, host-side), and top-k runs to the group's largest k.
    # lanes.NONZERO keeps density-0 lanes (tally, statically) in a group of their own.
    choices = ctx.choices_of("bridge.density")
    lk = None if choices is None else sparse.lane_k(ctx.hp("bridge.density"), choices, lay, cfg.bridge.scope)
    k = sparse.num_selected(max(choices) if choices else ctx.hp("bridge.density"), lay, cfg.bridge.scope)
    period = ctx.hp("bridge.period")
    traced_period = ctx.choices_of("bridge.period") is not None

    def round_fn(state: State, data, root, r):
        state, info = tally_round(state, data, root, r)
        if k == 0:    # nothing would ever be sent: tally exactly, statically
            info["merged"], info["nnz"] = jnp.int32(0), jnp.int32(0)
            return state, info
        idx = active_set(ctx, round_keys(root, r, cfg.probe.resample).active, data)   # the tally round's set
        fr = faults.for_round(ctx, data, root, r, idx)                             # ... and its faults
        if not traced_period and period == 1:
            state, nnz, stale = merge_step(ctx, lay, state, data, idx, fr, lk)
            merged = jnp.int32(1)
        else:
            merged = (r % jnp.asarray(period).astype(jnp.int32) == 0).astype(jnp.int32)
            state, nnz, stale = jax.lax.cond(merged > 0, lambda s: merge_step(ctx, lay, s, data, idx, fr, lk),
                                             lambda s: (s, jnp.int32(0), jnp.int32(0)), state)
        info["merged"], info["nnz"] = merged, nnz
        if idx is not None:
            info["stale"] = stale
        if fr is not None and fr.lost_A is not None:
            info["merge_senders"] = faults.senders(ctx, fr)
        return state, info

    b, W = cfg.comm.param_bits, ctx.num_params
    up = comm.sparse_params(k, W, b)

    def cost(info) -> comm.RoundBits:
        votes = lagged_vote_cost(ctx, info) if vote_after else vote_cost(ctx, info)
        if not info["merged"]:
            return votes
        down = comm.sparse_params(int(info["nnz"]), W, b)
        bits = comm.RoundBits(votes.up + up, votes.down + down, ctx.spec.active)
        stale = int(info.get("stale", 0))
        if "merge_senders" not in info and not stale:
            return bits
        # dropout: the sparse updates sent go up; the merged update reaches every active peer
        # (nothing when none arrived: then nnz = 0 and its coding costs 0 bits); a stale peer also
        # receives theta_ref dense first
        s = int(info.get("merge_senders", ctx.spec.active))
        v_up, v_down = votes.totals()
        return bits._replace(up_total=v_up + s * up,
                             down_total=v_down + ctx.spec.active * down + stale * comm.dense_params(W, b))

    def init(key, data):
        state = warmup_init(ctx, key, data, server=True, error=True, votes=vote_after)
        if ctx.spec.active < ctx.spec.peers and k > 0:      # peers may miss merges: track who holds which
            state = state._replace(extra={LAST: jnp.zeros((ctx.spec.peers,), jnp.int32), MERGES: jnp.int32(0)})
        return state

    return Protocol(init=init, round=round_fn, cost=cost, has_server=True, peer_state=(LAST,))
