"""The round that the probe-target baselines of the distillation literature share (cfd.py,
selective_fd.py): distill.py's schedule (warm-up, then every round the active peers predict on the
round's probes, the server builds targets, the peers train on private data plus the targets), with the
message and the server's rule left to the protocol.

A protocol gives its exchange in one of two forms. A plain function `exchange(msgs, ...)` sees every
active peer's probabilities at once ([A, M, C]), as `softlabel.aggregate=median` does, on
classification only. A `Streamed` exchange (cfd, selective_fd) says what it needs of each chunk of
peers (a quantiser or a selector acts per message and its results add over peers), and the peers
predict a chunk at a time (exchange.stream, sized like base.probe_exchange's chunks), so no
[A, M, C] array exists: at C = 10,004 and 640 token messages one peer's probabilities are 25.6 MB.
On a next-token task each probe position is a message (sim/tasks.py): [M * pos, C] targets,
unflattened to [M, pos] for the peers to train on. The probe draw, faults (confident_wrong messages,
dropout), the distillation weight's ramp and gate and the metrics rows' probe diagnostics are
distill.py's.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from tallysim.protocols.base import (Context, active_logits, active_set, consensus_acc, draw_probes, exchanging,
                                     gate_agreement, group_rows, local_round, loss_info, predict_probes, round_keys,
                                     text_agreement)
from tallysim.protocols.distill import distill_factor, scaled
from tallysim.sim import exchange as exchange_, faults, local, peers, tasks, vote
from tallysim.sim.fed import pool_examples


class Messages(NamedTuple):
    """What the active peers would send on this round's probes, and the probe draw."""
    pidx_M: jax.Array        # [M] pool positions of the probes
    x_M: jax.Array           # [M, ...] probe inputs
    y_M: jax.Array           # [M] hidden labels (diagnostics only)
    probs_AxMxC: jax.Array   # softmax of each active peer's (fault-replaced) logits
    sent_A: jax.Array        # bool [A]: the message arrived (dropout), else all True
    voters: object           # A, or the traced number of messages that arrived


def messages(ctx: Context, state, data, keys, idx, fr) -> tuple[Messages, dict]:
    """Every active peer's probabilities on the round's probes, and the probe diagnostics of distill.py
    (vote_acc, softavg_acc, agreement, wrong_confidence and their honest versions)."""
    A = ctx.spec.active
    pidx = draw_probes(ctx, data, keys.probe)
    x_M, y_M = pool_examples(data, pidx)
    rows = jnp.arange(A)
    z = active_logits(ctx, state, idx, x_M)          # model.groups: every group's peers, concatenated
    z = faults.message_logits(ctx, fr, z, rows, y_M)
    sent_A, honest_A = faults.chunk_masks(fr, rows)
    sent_A = jnp.ones((A,), bool) if sent_A is None else sent_A
    sums = vote.chunk_sums(z, sent_A, y_M, None, honest_A)
    voters = faults.senders(ctx, fr)
    t = vote.tally_counts(sums.counts_MxC, voters, "lowest", 0.0)
    task = tasks.of(ctx.spec)
    info = vote.finish_diagnostics(sums, voters, y_M, t.winner_M, t.share_M,
                                   scored_M=task.scored_messages(y_M))   # next_token: accuracy's positions
    info.update(text_agreement(task, x_M, t.share_M))     # next_token: the gate's, real positions
    return Messages(pidx, x_M, y_M, jax.nn.softmax(z, axis=-1), sent_A, voters), info


class Streamed(NamedTuple):
    """An exchange that streams the active peers in chunks (exchange.stream).

    chunk(probs_cxMxC, sent_c, rows_c, idx, extra) -> (sums, per_row): what one chunk of peers adds
      (pytrees; `sums` added over chunks, `per_row` [c, ...] concatenated over peers). probs: the
      softmax of the messages (M: messages, probe positions on text); sent_c: bool, the row is a
      peer (not padding) whose message arrived; rows_c: active positions; idx: the active peers
      (None = all); extra: State.extra.
    finish(sums, per_row_A, sent_A, voters, info, idx, extra) -> (target_MxC, weight_M, info, extra):
      the server's targets, as the plain form's exchange returns them."""
    chunk: Callable
    finish: Callable

    def __call__(self, msgs: Messages, info: dict, idx, extra):
        """The plain form on every active peer's messages at once (one chunk): for tests and tools."""
        A = msgs.probs_AxMxC.shape[0]
        sums, per_row = self.chunk(msgs.probs_AxMxC, msgs.sent_A, jnp.arange(A), idx, extra)
        return self.finish(sums, per_row, msgs.sent_A, msgs.voters, info, idx, extra)


def streamed(ctx: Context, state, data, keys, idx, fr, ex: Streamed, chunk: Optional[int] = None):
    """The round's probes, the diagnostics `messages` reports and the protocol's finished exchange,
    predicting `chunk` active peers at a time (default: what fits sizing.CHUNK_BYTES with their
    forward passes over the probes, exchange.model_chunks, shared by the ctx.lanes lanes the program
    vmaps together; the probes a slice at a time where one peer's pass over them all exceeds it).
    Returns (x_M, y_M message labels, voters, info, (sums, per_row_A, sent_A))."""
    spec = ctx.spec
    A, task = spec.active, tasks.of(spec)
    pidx = draw_probes(ctx, data, keys.probe)
    x_M, y_probe = pool_examples(data, pidx)
    y_M = task.message_labels(y_probe)

    def finish_chunk(z, rows_c, valid_c):
        """One chunk's messages (logits z of the peers at active positions rows_c) -> its sums."""
        z = faults.message_logits(ctx, fr, z, rows_c, y_M)
        sent_c, honest_c = faults.chunk_masks(fr, rows_c)
        sent_c = valid_c if sent_c is None else valid_c & sent_c
        sums, per_row = ex.chunk(jax.nn.softmax(z, axis=-1), sent_c, rows_c, idx, state.extra)
        return (vote.chunk_sums(z, sent_c, y_M, None, honest_c), sums), per_row

    if ctx.model_groups:
        (diag, sums), per_row = _grouped_stream(ctx, state, idx, x_M, task, finish_chunk, chunk)
    else:
        c, split = exchange_.model_chunks(ctx.model.apply, state.params, x_M, A, spec.messages, spec.classes,
                                          ctx.lanes)

        def one(rows_c, valid_c):
            ids = rows_c if idx is None else idx[rows_c]
            return finish_chunk(task.messages(predict_probes(ctx, peers.take(state.params, ids), x_M, split)),
                                rows_c, valid_c)
        (diag, sums), per_row = exchange_.stream(one, A, chunk or c)
    voters = faults.senders(ctx, fr)
    t = vote.tally_counts(diag.counts_MxC, voters, "lowest", 0.0)
    info = vote.finish_diagnostics(diag, voters, y_M, t.winner_M, t.share_M,
                                   scored_M=task.scored_messages(y_M))   # next_token: accuracy's positions
    info.update(text_agreement(task, x_M, t.share_M))     # next_token: the gate's, over the real positions
    sent_A, _ = faults.chunk_masks(fr, jnp.arange(A))
    sent_A = jnp.ones((A,), bool) if sent_A is None else sent_A
    return x_M, y_M, voters, info, (sums, per_row, sent_A)


def _grouped_stream(ctx: Context, state, idx, x_M, task, finish_chunk, chunk: Optional[int]):
    """model.groups: each group streams its own active peers in chunks (a chunk of traced rows cannot
    pick its group's model, so the groups are a Python loop, as base._grouped_sums), at active positions
    a_lo + row; the sums add over the groups and the per-peer rows concatenate in active order (the
    groups are contiguous in it). So no [A, M, C] array: at C = 10,004, M = 256 and A = 10 that was
    about 1 GB of a 4-lane round's temporaries (docs/groups.md)."""
    acc, rows_out = None, []
    for i, (g, gctx) in enumerate(ctx.group_contexts()):
        rows_g, _ = group_rows(g, idx)
        A_g = g.a_hi - g.a_lo
        c, split = exchange_.model_chunks(gctx.model.apply, state.params[i], x_M, A_g, ctx.spec.messages,
                                          ctx.spec.classes, ctx.lanes)

        def one(rows_c, valid_c, i=i, g=g, gctx=gctx, rows_g=rows_g, split=split):
            ids = rows_c if rows_g is None else rows_g[rows_c]
            z = task.messages(predict_probes(gctx, peers.take(state.params[i], ids), x_M, split))
            return finish_chunk(z, g.a_lo + rows_c, valid_c)
        sums, per_row = exchange_.stream(one, A_g, chunk or c)
        acc = sums if acc is None else jax.tree.map(jnp.add, acc, sums)
        rows_out.append(per_row)
    return acc, jax.tree.map(lambda *a: jnp.concatenate(a), *rows_out)


def make_round(ctx: Context, lspec: local.LocalSpec, exchange):
    """round(state, data, root, r). `exchange` a Streamed, or a function exchange(msgs, info, idx,
    extra) -> (target_MxC, weight_M, info, extra): the server's targets from the messages (idx: the
    active peers, None = all), the probe weights (0 drops a probe), the round's info and the
    protocol's new State.extra (delta coding's memory; None if it keeps none)."""
    cfg = ctx.cfg
    task = tasks.of(ctx.spec)

    def round_fn(state, data, root, r):
        keys = round_keys(root, r, cfg.probe.resample)
        idx = active_set(ctx, keys.active, data)
        fr = faults.for_round(ctx, data, root, r, idx)
        probes, lspec_r, extra = None, lspec, state.extra
        if isinstance(exchange, Streamed):
            x_M, y_M, voters, info, (sums, per_row, sent_A) = streamed(ctx, state, data, keys, idx, fr, exchange)
        else:
            msgs, info = messages(ctx, state, data, keys, idx, fr)
            x_M, y_M, voters = msgs.x_M, msgs.y_M, msgs.voters
        if exchanging(ctx):
            if isinstance(exchange, Streamed):
                target, weight, info, extra = exchange.finish(sums, per_row, sent_A, voters, info, idx,
                                                              state.extra)
            else:
                target, weight, info, extra = exchange(msgs, info, idx, state.extra)
            if not isinstance(voters, int):
                weight = weight * (voters > 0).astype(jnp.float32)    # nothing arrived: nothing to learn
            text_M = task.message_mask(x_M)       # next_token: padding positions are not trained on
            if text_M is not None:
                weight = weight * text_M
            probes = local.Probes(x_M, task.unflatten(target, ctx.spec.probes),
                                  task.unflatten(weight, ctx.spec.probes))
            info["consensus_acc"] = consensus_acc(task, jnp.argmax(target, -1), y_M, weight)
            f = distill_factor(cfg, r, gate_agreement(info), ctx.hp)
            lspec_r = scaled(lspec, f)
            if f is not None:
                info["distill_factor"] = f
            if not isinstance(voters, int):
                info["senders"] = voters
        params, opt, _, loss_A, steps = local_round(ctx, lspec_r, state, data, keys, idx, probes=probes, fr=fr)
        info = {**info, **loss_info(ctx, loss_A, steps), **steps, **faults.info(fr)}
        return state._replace(params=params, opt=opt, extra=extra), info

    return round_fn


def normalised(target_MxC):
    """Rows scaled to sum to one (uniform where a row is all zero): what the peers train on."""
    total = jnp.sum(target_MxC, axis=-1, keepdims=True)
    C = target_MxC.shape[-1]
    return jnp.where(total > 0, target_MxC / jnp.where(total > 0, total, 1.0), 1.0 / C)
