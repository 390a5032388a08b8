"""What every protocol shares: the interface, the round's keys, the active set, and the probe exchange.
The interface (Context, Protocol, ModelGroup) is in context.py, the round's keys, active set and local
training in round_helpers.py, what the exchange's two paths share (predictions on probes, a vote's
targets) in probe_targets.py, the vote a block of probes at a time in blocked_vote.py; this module holds
the probe exchange and re-exports the first three, so plugins and protocols import every name from
`tallysim.protocols.base` as before.

A protocol is a NamedTuple of pure functions (the optax factory shape):
  init(key, data) -> State                       all peers, stacked
  round(state, data, root_key, r) -> (State, info)   one communication round, jit-compiled once
  cost(info) -> RoundBits                        exact Python-int bits, from static shapes (+ host info)
`run.py` owns the jit boundary. Data is always an argument, never a closure, so it is not baked
into the compiled program as a constant.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from tallysim import protocols as registry
from tallysim.sim import dp, exchange, faults, lanes, local, peers, tasks, trust, vote
from tallysim.sim.fed import FedData, pool_examples, to_input
from tallysim.sim.peers import State
from tallysim.protocols.blocked_vote import blocked_vote
from tallysim.protocols.context import Context, ModelGroup, Protocol  # noqa: F401 - base.X, as before
from tallysim.protocols.probe_targets import (GATE_AGREEMENT, PRIVACY_STREAM, consensus_acc,  # noqa: F401
                                              gate_agreement, predict_probes, privacy_keys, text_agreement,
                                              vote_rule, vote_targets)
from tallysim.protocols.round_helpers import (FIXED_PROBE_STREAM, RoundKeys, active_set,  # noqa: F401
                                              aggregation_counts, group_rows, local_round, loss_info,
                                              round_keys, shard_weights)


def draw_probes(ctx: Context, data: FedData, key) -> jax.Array:
    """Indices of this round's M probes; every party derives them from the shared key, so free."""
    return jax.random.permutation(key, ctx.spec.pool)[:ctx.spec.probes]


def active_logits(ctx: Context, state: State, idx, x_M) -> jax.Array:
    """logits [A, M, C] of every active peer (all groups', concatenated in active order)."""
    if not ctx.model_groups:
        return predict_probes(ctx, peers.take(state.params, idx), x_M)
    return jnp.concatenate([predict_probes(gctx, peers.take(state.params[i], group_rows(g, idx)[0]), x_M)
                            for i, (g, gctx) in enumerate(ctx.group_contexts())])


def _grouped_sums(ctx: Context, state: State, idx, x_M, y_M, soft_bits, chunk, sent_fn, vote_fn) -> vote.Sums:
    """The exchange's vote.Sums over every group's active peers: each group streams its own messages
    (exchange.py) and the sums add, so the tally and the soft-label mean are over all A peers.
    `sent_fn`, `vote_fn`: as probe_exchange's (vote_fn sees global peer ids)."""
    task, sums = tasks.of(ctx.spec), None
    for i, (g, gctx) in enumerate(ctx.group_contexts()):
        rows, glob = group_rows(g, idx)

        A_g = g.a_hi - g.a_lo          # each group's chunk counts its own model's forward pass
        c, split = exchange.model_chunks(gctx.model.apply, state.params[i], x_M, A_g, y_M.shape[0],
                                         ctx.spec.classes, ctx.lanes)
        c = chunk or c

        def logits_fn(rows_c, i=i, gctx=gctx, rows=rows, glob=glob, split=split):
            z = task.messages(predict_probes(gctx, peers.take(state.params[i], rows_c if rows is None
                                                              else rows[rows_c]), x_M, split))
            return z if vote_fn is None else vote_fn(glob[rows_c], z)
        s = exchange.stream_sums(logits_fn, A_g, y_M, ctx.spec.classes, soft_bits, c,
                                 sent_fn=sent_fn, lanes=ctx.lanes)
        sums = s if sums is None else vote.add_sums(sums, s)
    return sums


class Exchanged(NamedTuple):
    """What the peers' messages add up to, before the server's aggregation: `sums` (vote.Sums), the
    per-chunk messages (`logits_fn(rows_c)`, for a second pass: the trust-weighted vote), the `chunk` it
    streamed with, and (softlabel.aggregate=median|trimmed only) every message at once as `robust`:
    (logits [A, M, C], sent_A)."""
    sums: vote.Sums
    logits_fn: Callable
    chunk: Optional[int]
    robust: Optional[tuple] = None


def probe_exchange(ctx: Context, state: State, data: FedData, keys: RoundKeys, idx, hard: bool,
                   chunk: Optional[int] = None, fr: Optional[faults.RoundFaults] = None,
                   sent_fn: Optional[Callable] = None, vote_fn: Optional[Callable] = None,
                   target_fn: Optional[Callable] = None):
    """Peers predict on the round's probes; the server aggregates. Returns (Probes, info).

    The active peers predict `chunk` at a time (default: what fits exchange.CHUNK_BYTES, shared by the
    ctx.lanes lanes of the program), so no
    [A, M, C] array exists; see exchange.py. The exception is `softlabel.aggregate=median|trimmed`,
    which needs every message at once ([A, M, C]). `fr`: this round's faulty peers (confident_wrong
    replaces their messages, dropout loses them; the honest peers' vote is summed alongside).
    `sent_fn` (soft, probs [c, M, C] -> the decoded messages): a protocol's own soft message (topk_soft);
    `vote_fn(peer_ids_c, logits [c, M, C]) -> logits` (hard): what a peer's vote becomes before it is
    sent (fedct's XOR mechanism); the returned logits' argmax is the vote counted.
    """
    cfg = ctx.cfg
    task = tasks.of(ctx.spec)        # next_token: one message per probe position (sim/tasks.py)
    x_M, y_probe = pool_examples(data, draw_probes(ctx, data, keys.probe))
    y_M = task.message_labels(y_probe)          # [M] labels, or [M * pos] targets: one per message
    private = cfg.privacy.noise > 0            # noise 0 compiles the program without privacy (lanes' nonzero)
    block = exchange.probe_block(ctx.spec.probes, y_M.shape[0] // ctx.spec.probes, ctx.spec.classes,
                                 exchange.CHUNK_BYTES, ctx.lanes)
    if hard and block < ctx.spec.probes and vote_fn is None and exchange.blocks_votes(cfg):
        return blocked_vote(ctx, state, idx, task, x_M, y_M, block, chunk, keys, fr)
    ex = _exchange_sums(ctx, state, idx, x_M, y_M, hard, chunk, fr, sent_fn, vote_fn)
    voters = faults.senders(ctx, fr)          # A, or (dropout) the traced number of messages that arrived
    sums, counts_MxC, answered_M = ex.sums, ex.sums.counts_MxC, None
    if private:
        sums, counts_MxC, answered_M = _privatised(ctx, keys, sums, hard)
    history = {}
    if hard and cfg.vote.weighting == "history":        # sim/trust.py: the trust-weighted vote
        t, history = _trusted_tally(ctx, state, idx, fr, keys, ex.logits_fn, ex.chunk)
    else:
        rule = vote_rule(ctx)                 # the fields the protocol reads (topk_soft: none of them)
        t = vote.tally_counts(counts_MxC, voters, rule.ties, rule.min_agreement, keys.tie, rule.min_margin)
    scored_M = task.scored_messages(y_M)      # next_token: the positions test accuracy scores (tasks.py)
    info = vote.finish_diagnostics(sums, voters, y_M, t.winner_M, t.share_M, _honest_winner(ctx, sums, keys),
                                   scored_M)
    arrived = None if isinstance(voters, int) else (voters > 0).astype(jnp.float32)
    text_M = task.message_mask(x_M)       # next_token: the probe positions that are not padding (tasks.py)
    if hard:
        probes, targets_info = vote_targets(ctx, task, x_M, y_M, t, arrived, answered_M, text_M)
    else:
        down = target_fn or soft_downlink(ctx.cfg, sent_fn)
        probes, targets_info = _soft_targets(ctx, task, x_M, y_M, sums, voters, arrived, text_M, ex.robust, down)
    info.update(targets_info)
    # next_token: the gate's agreement over the real positions, unless the targets set it (private soft
    # labels); vote.none_arrived's GATE_AGREEMENT (dropout) is every message's, which the text one replaces
    if GATE_AGREEMENT not in targets_info:
        info.update(text_agreement(task, x_M, t.share_M))
    if fr is not None and fr.lost_A is not None:
        info["senders"] = voters
    info.update(history)          # vote.weighting=history: the new trust, for the round to keep
    return probes, info


def _exchange_sums(ctx: Context, state: State, idx, x_M, y_M, hard: bool, chunk: Optional[int],
                  fr: Optional[faults.RoundFaults], sent_fn: Optional[Callable],
                  vote_fn: Optional[Callable]) -> Exchanged:
    """The active peers' messages on the probes x_M, summed as they stream (probe_exchange's arguments):
    every group's in turn with model groups, all at once for the robust soft means, else `chunk` peers
    at a time (exchange.stream_sums; the privacy clip applied per message)."""
    cfg, spec = ctx.cfg, ctx.spec
    A = spec.active
    task = tasks.of(spec)
    soft_bits = None if hard else cfg.comm.soft_bits
    private = cfg.privacy.noise > 0
    robust = not hard and soft_aggregate(cfg) in vote.ROBUST
    split = None                # probes per forward pass (exchange.model_chunks): all of them unless too big
    if not ctx.model_groups:    # the chunk counts the forward pass over the probes, not only logits
        c, split = exchange.model_chunks(ctx.model.apply, state.params, x_M, A, y_M.shape[0], spec.classes,
                                         ctx.lanes)
        chunk = chunk or (None if robust else c)

    def logits_fn(rows_c):
        ids_c = rows_c if idx is None else idx[rows_c]
        z = task.messages(predict_probes(ctx, peers.take(state.params, ids_c), x_M, split))
        z = faults.message_logits(ctx, fr, z, rows_c, y_M)
        return z if vote_fn is None else vote_fn(ids_c, z)

    masks_fn = None if fr is None else (lambda rows_c: faults.chunk_masks(fr, rows_c))
    if ctx.model_groups:           # faults, privacy and the robust means are refused with groups
        return Exchanged(_grouped_sums(ctx, state, idx, x_M, y_M, soft_bits, chunk, sent_fn, vote_fn),
                         logits_fn, chunk)
    if robust:
        rows = jnp.arange(A)
        sent_A, honest_A = faults.chunk_masks(fr, rows)
        logits_AxMxC = logits_fn(rows)
        sums = vote.chunk_sums(logits_AxMxC, jnp.ones((A,), bool) if sent_A is None else sent_A, y_M,
                               soft_bits, honest_A)
        return Exchanged(sums, logits_fn, chunk, (logits_AxMxC, sent_A))
    sums = exchange.stream_sums(logits_fn, A, y_M, spec.classes, soft_bits, chunk, masks_fn,
                                clip=cfg.privacy.clip if private and not hard else None, sent_fn=sent_fn,
                                lanes=ctx.lanes)
    return Exchanged(sums, logits_fn, chunk)


def _honest_winner(ctx: Context, sums, keys: RoundKeys):
    """The honest peers' own vote (faults with an honest tally summed alongside), for the diagnostics'
    comparison with the vote the server took; None without faults."""
    if sums.honest_counts_MxC is None:
        return None
    return vote.tally_counts(sums.honest_counts_MxC, jnp.maximum(sums.honest, 1), vote_rule(ctx).ties, 0.0,
                             keys.tie).winner_M


def soft_aggregate(cfg) -> str:
    """softlabel.aggregate where the protocol reads it, else the plain mean: a sweep's shared base may set
    it for its softlabel runs (sweeps refuse only a field no run reads), and tally.target=counts (or
    topk_soft) beside them then trained on the median of the peers' probabilities, its own messages
    (sent_fn) never summed, or on a sharpened histogram, in silence."""
    return cfg.softlabel.aggregate if registry.reads(cfg.protocol.name, "softlabel.aggregate") else "mean"


def soft_downlink(cfg, sent_fn: Optional[Callable] = None) -> Callable:
    """What the peers receive of the server's soft target [M, C]: rounded as the uplink's messages are,
    comm.soft_bits per value (vote.quantize_probs; 32 sends it as is), the bits the downlink is charged.
    Not renormalised: at 8 bits and C = 1000 a diffuse target's values under 1/510 arrive as 0. A
    protocol with its own message (sent_fn: topk_soft, tally.target=counts) sends its own downlink."""
    if sent_fn is not None or cfg.comm.soft_bits == 32:
        return lambda t: t
    return lambda t: vote.quantize_probs(t, cfg.comm.soft_bits)


def _soft_targets(ctx: Context, task, x_M, y_M, sums, voters, arrived, text_M, robust, down: Callable):
    """Soft labels: the probes the peers train on (the aggregated distributions as `down` delivers them,
    padding and lost rounds at weight 0) and their info (`consensus_acc` of what the peers receive; with
    privacy the gate's agreement, GATE_AGREEMENT). `robust`: Exchanged.robust (median|trimmed), else the
    streamed sums are aggregated."""
    cfg, spec = ctx.cfg, ctx.spec
    private = cfg.privacy.noise > 0
    info = {}
    if robust is not None:
        logits_AxMxC, sent_A = robust
        sent = vote.quantize_probs(jax.nn.softmax(logits_AxMxC, axis=-1), cfg.comm.soft_bits)
        target = vote.robust_soft(sent, sent_A, cfg.softlabel.aggregate, cfg.softlabel.trim)
    else:
        target = vote.soft_targets(sums.sent_MxC, voters, soft_aggregate(cfg),
                                   ctx.hp("softlabel.era_temperature"))
        if private and soft_aggregate(cfg) == "mean":
            target = vote.renormalize(target)    # the noise can push a mean below 0 (post-processing)
        if private:
            # distill.gate's bit reaches every peer, so it may only read the noised sum: the mean
            # top value of its renormalised mean (the un-noised vote share would leak the data)
            # (next_token: over the real positions, text_M, as text_agreement's)
            # (as the peers receive it: `down`, the mean aggregation's target itself)
            info[GATE_AGREEMENT] = vote.mean_agreement(jnp.max(down(vote.renormalize(
                vote.soft_targets(sums.sent_MxC, voters))), axis=-1), text_M)
    target = down(target)        # after renormalising: the server rounds what it sends
    weight = jnp.ones((spec.messages,), jnp.float32) if text_M is None else text_M
    probes = local.Probes(x_M, task.unflatten(target, spec.probes),
                          task.unflatten(weight if arrived is None else weight * arrived, spec.probes))
    info["consensus_acc"] = consensus_acc(task, jnp.argmax(target, axis=-1), y_M, text_M)
    return probes, info


def _privatised(ctx: Context, keys: RoundKeys, sums, hard: bool):
    """privacy.noise > 0: (sums, vote counts, answered_M) as the server sees them. Votes: GNMax (Papernot
    et al. 2018), noisy counts, and Confident-GNMax's check (answered_M; None without a threshold); soft
    labels: the clipped sum plus N(0, (z * clip)^2) per value."""
    cfg = ctx.cfg
    counts_MxC, answered_M = sums.counts_MxC, None
    k_noise, k_threshold = privacy_keys(keys.tie)
    if hard:
        if cfg.privacy.threshold > 0:
            answered_M = dp.confident(counts_MxC, cfg.privacy.threshold, cfg.privacy.threshold_noise, k_threshold)
        counts_MxC = dp.gnmax(counts_MxC, ctx.hp("privacy.noise"), k_noise)
    else:
        noisy = dp.noisy_sum({"s": sums.sent_MxC[None]}, cfg.privacy.clip, ctx.hp("privacy.noise"), k_noise)
        sums = sums._replace(sent_MxC=noisy["s"])
    return sums, counts_MxC, answered_M


def _trusted_tally(ctx: Context, state: State, idx, fr, keys: RoundKeys, logits_fn, chunk):
    """vote.weighting=history (sim/trust.py): the tally with each vote weighted by its peer's trust, and
    the trust updated from it ({trust.TRUST: ...}, for the round to keep)."""
    cfg, spec = ctx.cfg, ctx.spec
    sent_A = None if fr is None else fr.sent_A
    votes_AxM = trust.votes(logits_fn, spec.active, spec.probes, spec.classes, ctx.lanes, chunk)
    t, _ = trust.weighted_tally(peers.take(state.extra[trust.TRUST], idx), votes_AxM, sent_A, spec.classes,
                                cfg.vote.ties, ctx.hp("vote.min_agreement"), keys.tie, cfg.vote.min_margin)
    return t, {trust.TRUST: trust.updated(state.extra[trust.TRUST], idx, votes_AxM, t, sent_A, cfg.vote.history)}


def exchanging(ctx: Context) -> bool:
    """Distillation with zero weight sends nothing: the peers have no use for the targets."""
    return lanes.nonzero(ctx.hp("distill.weight"))     # may be traced (lanes.py): then it is nonzero
