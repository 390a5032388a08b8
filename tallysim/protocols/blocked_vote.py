"""tally's vote a block of probes at a time (exchange.blocked_tally), where the exchange's [M, C]
totals exceed the budget (sizing.probe_block; which runs may: probe_blocks.blocks_votes).

Each block's peers stream in the chunks the all-probes exchange would use (model.groups: each group
its own, the groups' sums added in group order, as base's grouped exchange adds them; faults: the same
masks, the honest peers' sums beside), so every count, probability sum, winner, share and keep is the
all-probes vote's bit for bit. What the all-probes vote draws over every message (the random tie scores
of vote.ties=random, GNMax's noise and Confident-GNMax's check, confident_wrong's wrong classes), a block
draws as its own rows of the same draws (sim/row_draws.py), so those votes are the same too.
vote.weighting=history weighs each block's votes by the round's trust and updates the trust from every
peer's votes, kept over the blocks ([A, M] int32), after them. Kept of each message: its Tally, its
soft-average hit, whether its plurality was tied (`tied`) and what the settings add (answered, the
honest peers' hits, the peers' votes).
Memory O(block x C), not O(M x C): words' 5,716-window rounds were refused at 45.8 GB.
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from tallysim.sim import dp, exchange, faults, lanes, peers, trust, vote
from tallysim.sim.peers import State
from tallysim.protocols.context import Context
from tallysim.protocols.probe_targets import predict_probes, privacy_keys, text_agreement, vote_rule, vote_targets
from tallysim.protocols.round_helpers import group_rows


def _streams(ctx: Context, state: State, idx, task, x_M, messages: int, block: int,
             chunk: Optional[int]) -> list:
    """(active peers, peer chunk, logits_fn of a block's probes) per model (one, or each group's): the
    chunk sized for all probes, as the all-probes exchange sizes it (so its float sums add in the same
    order), each forward pass's probe split for one block."""
    C, positions, lanes = ctx.spec.classes, messages // ctx.spec.probes, ctx.lanes
    if ctx.model_groups:
        models = [(gctx, state.params[i], g.a_hi - g.a_lo, group_rows(g, idx)[0])
                  for i, (g, gctx) in enumerate(ctx.group_contexts())]
    else:
        models = [(ctx, state.params, ctx.spec.active, idx)]
    out = []
    for mctx, params, A, rows in models:
        c, _ = exchange.model_chunks(mctx.model.apply, params, x_M, A, messages, C, lanes)
        _, split = exchange.model_chunks(mctx.model.apply, params, x_M[:block], A, block * positions, C, lanes)

        def make(x_b, mctx=mctx, params=params, rows=rows, split=split):
            def logits_fn(rows_c):
                ids_c = rows_c if rows is None else rows[rows_c]
                return task.messages(predict_probes(mctx, peers.take(params, ids_c), x_b, split))
            return logits_fn
        out.append((A, chunk or c, make))
    return out


def blocked_vote(ctx: Context, state: State, idx, task, x_M, y_M, block: int, chunk: Optional[int], keys,
                 fr: Optional[faults.RoundFaults] = None):
    """base.probe_exchange's hard vote, `block` probes at a time: the same (Probes, info), every info
    key equal but `wrong_confidence` (a float sum over the blocks, in another order). `fr`: this
    round's faults, as probe_exchange's."""
    cfg, spec = ctx.cfg, ctx.spec
    C, M = spec.classes, y_M.shape[0]
    positions = M // spec.probes
    streams = _streams(ctx, state, idx, task, x_M, M, block, chunk)
    private = cfg.privacy.noise > 0            # as probe_exchange: 0 compiles the program without privacy
    threshold = private and cfg.privacy.threshold > 0
    k_noise, k_threshold = privacy_keys(keys.tie) if private else (None, None)
    voters = faults.senders(ctx, fr)           # A, or (dropout) the traced number of messages that arrived
    history = cfg.vote.weighting == "history"  # images, one model (tasks.check, model_groups.check)
    rule = vote_rule(ctx)                      # the vote fields the protocol reads (a plugin's: maybe none)
    if history:
        w_A, weighted_voters = trust.weights(peers.take(state.extra[trust.TRUST], idx), None if fr is None else fr.sent_A)
    masks_fn = None if fr is None else (lambda rows_c: faults.chunk_masks(fr, rows_c))

    def block_fn(rows_b, y_b, valid_b):
        x_b, draws = x_M[rows_b], (rows_b[0] * positions, M)     # the block's rows of every [M, ...] draw
        s, per = None, {}
        for A_g, c, make in streams:          # model.groups: each group's sums, added in group order
            logits_fn = _faulty(ctx, fr, make(x_b), y_b, draws)
            if history:                       # each peer's votes too, for the weights and the trust
                s_g, votes = exchange.stream(_with_votes(logits_fn, y_b, valid_b, masks_fn), A_g, c)
                per["votes"] = votes.T                       # [M_b, A]: per message, as blocked_tally keeps
            else:
                s_g = exchange.stream_sums(logits_fn, A_g, y_b, C, None, c, masks_fn, lanes=ctx.lanes,
                                           valid_M=valid_b)
            s = s_g if s is None else vote.add_sums(s, s_g)
        counts = s.counts_MxC
        if threshold:                          # base._privatised's order: the check on the clean counts
            per["answered"] = dp.confident(counts, cfg.privacy.threshold, cfg.privacy.threshold_noise,
                                           k_threshold, draws)
        if history:                            # _trusted_tally: the weighted votes (the noise unread)
            counts = trust.weighted_counts(w_A, per["votes"].T, C)
        elif private:
            counts = dp.gnmax(counts, ctx.hp("privacy.noise"), k_noise, draws)
        per["t"] = vote.tally_counts(counts, weighted_voters if history else voters, rule.ties,
                                     rule.min_agreement, keys.tie, rule.min_margin, draws)
        scale = jnp.maximum(voters, 1) if isinstance(voters, jax.Array) else voters   # finish_diagnostics'
        per["softavg_hit"] = jnp.argmax(s.probs_MxC / scale, axis=-1) == y_b
        per["tied"] = vote.tied(s.counts_MxC)      # finish_diagnostics': the arrived votes' own counts
        if s.honest_counts_MxC is not None:    # base._honest_winner and finish_diagnostics' honest keys
            per["honest_hit"] = vote.tally_counts(s.honest_counts_MxC, jnp.maximum(s.honest, 1), rule.ties,
                                                  0.0, keys.tie, rows=draws).winner_M == y_b
            per["honest_softavg_hit"] = jnp.argmax(s.honest_probs_MxC, -1) == y_b
            per["honest"] = jnp.broadcast_to(s.honest, y_b.shape)        # the same in every block
        return per, (s.wrong_conf, s.wrong)

    per, (wrong_conf, wrong) = exchange.blocked_tally(block_fn, spec.probes, block, y_M)
    t, scored_M = per["t"], task.scored_messages(y_M)
    if not lanes.nonzero(rule.min_agreement) and not rule.min_margin > 0:
        # no abstention: tally_counts' keep is the constant 1, which the all-probes program folds into
        # consensus_acc's division (by 7 as a multiplication by 1/7, a last bit apart); fold it here too
        t = t._replace(keep_M=jnp.ones_like(t.share_M))
    info = {"vote_acc": vote.scored_mean(t.winner_M == y_M, scored_M),      # as vote.finish_diagnostics
            "softavg_acc": vote.scored_mean(per["softavg_hit"], scored_M),
            "agreement": jnp.mean(t.share_M),
            "tied": jnp.mean(per["tied"].astype(jnp.float32)),
            "wrong_confidence": wrong_conf / jnp.maximum(wrong, 1).astype(jnp.float32)}
    info = vote.none_arrived(info, voters)
    if "honest" in per:
        nan, some = jnp.float32(jnp.nan), per["honest"][0] > 0
        info["vote_acc_honest"] = jnp.where(some, vote.scored_mean(per["honest_hit"], scored_M), nan)
        info["softavg_acc_honest"] = jnp.where(some, vote.scored_mean(per["honest_softavg_hit"], scored_M), nan)
    else:
        info["vote_acc_honest"], info["softavg_acc_honest"] = info["vote_acc"], info["softavg_acc"]
    arrived = None if isinstance(voters, int) else (voters > 0).astype(jnp.float32)
    probes, targets_info = vote_targets(ctx, task, x_M, y_M, t, arrived, per.get("answered"), task.message_mask(x_M))
    info.update(targets_info)
    info.update(text_agreement(task, x_M, t.share_M))
    if fr is not None and fr.lost_A is not None:
        info["senders"] = voters
    if history:                               # the trust from every vote on every probe, as _trusted_tally
        info[trust.TRUST] = trust.updated(state.extra[trust.TRUST], idx, per["votes"].T, t,
                                          None if fr is None else fr.sent_A, cfg.vote.history)
    return probes, info


def _faulty(ctx: Context, fr, logits_fn, y_b, draws):
    """logits_fn with faults.message_logits applied, as the all-probes exchange's logits_fn applies it
    (confident_wrong's wrong classes: the block's rows of each peer's draw over all messages)."""
    if fr is None:
        return logits_fn
    return lambda rows_c: faults.message_logits(ctx, fr, logits_fn(rows_c), rows_c, y_b, draws)


def _with_votes(logits_fn, y_b, valid_b, masks_fn):
    """exchange.stream's fn: a chunk's vote.Sums (as stream_sums adds them: lost messages and padding
    out, the honest peers' beside) and its peers' votes [c, M_b] (their argmax, as trust.votes takes
    them)."""
    def fn(rows_c, valid_c):
        sent_c, honest_c = masks_fn(rows_c) if masks_fn is not None else (None, None)
        z = logits_fn(rows_c)
        return (vote.chunk_sums(z, valid_c if sent_c is None else valid_c & sent_c, y_b, None, honest_c,
                                valid_M=valid_b), jnp.argmax(z, axis=-1).astype(jnp.int32))
    return fn
