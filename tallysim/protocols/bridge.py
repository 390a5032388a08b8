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
trained on in the next round (distill.py). Either way one vote per active peer per round: same bits.
Bits: tally's every round; on merge rounds, per active peer, up the cheapest coding of k entries
and down that of the merged update's nnz non-zeros (`comm.sparse_params`, `comm.param_bits`).
density=0 is tally exactly; density=1, period=1, distill.weight=0 is FedAvg up to float rounding.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from tallysim.sim import comm, faults, peers, sparse
from tallysim.sim.local import hard_label_loss
from tallysim.sim.peers import State
from tallysim.protocols.base import Context, Protocol, active_set, round_keys, shard_weights
from tallysim.protocols import Traits
from tallysim.protocols.distill import distill_round, warmup_init
from tallysim.protocols.tally import vote_cost

TRAITS = Traits(distill=True, shared_init="its merges are deltas from one common reference",
                defaults={"init.shared": True, "warmup_epochs": "local_epochs"},
                reads=("distill", "vote", "bridge", "comm.param_bits"))


def merge_step(ctx: Context, lay: sparse.Layout, state: State, data, idx, fr=None, lk=None):
    """One sparse merge of the active peers. Returns (state, nnz of the merged update).
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
        weight_A = faults.receive_weights(peers.take(data.count_P, idx), fr.sent_A)
        mask_W = mask_W & fr.sent_A[:, None]
        sent_W = jnp.where(fr.sent_A[:, None], sent_W, 0.0)
    else:
        weight_A = shard_weights(peers.take(data.count_P, idx))
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
    return state, jnp.count_nonzero(merged_W).astype(jnp.int32)


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
        idx = active_set(ctx, round_keys(root, r, cfg.probe.resample).active)   # the tally round's set
        fr = faults.for_round(ctx, data, root, r, idx)                             # ... and its faults
        if not traced_period and period == 1:
            state, nnz = merge_step(ctx, lay, state, data, idx, fr, lk)
            merged = jnp.int32(1)
        else:
            merged = (r % jnp.asarray(period).astype(jnp.int32) == 0).astype(jnp.int32)
            state, nnz = jax.lax.cond(merged > 0, lambda s: merge_step(ctx, lay, s, data, idx, fr, lk),
                                      lambda s: (s, jnp.int32(0)), state)
        info["merged"], info["nnz"] = merged, nnz
        if fr is not None and fr.lost_A is not None:
            info["merge_senders"] = faults.senders(ctx, fr)
        return state, info

    b, W = cfg.comm.param_bits, ctx.num_params
    up = comm.sparse_params(k, W, b)

    def cost(info) -> comm.RoundBits:
        votes = vote_cost(ctx, info)
        if not info["merged"]:
            return votes
        down = comm.sparse_params(int(info["nnz"]), W, b)
        bits = comm.RoundBits(votes.up + up, votes.down + down, ctx.spec.active)
        if "merge_senders" not in info:
            return bits
        # dropout: the sparse updates sent go up; the merged update reaches every active peer
        # (nothing when none arrived: then nnz = 0 and its coding costs 0 bits)
        s = int(info["merge_senders"])
        v_up, v_down = votes.totals()
        return bits._replace(up_total=v_up + s * up, down_total=v_down + ctx.spec.active * down)

    return Protocol(init=lambda key, data: warmup_init(ctx, key, data, server=True, error=True,
                                                       votes=vote_after),
                    round=round_fn, cost=cost, has_server=True)
