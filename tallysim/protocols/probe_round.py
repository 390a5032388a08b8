"""The round that the probe-target baselines of the distillation literature share (cfd.py,
selective_fd.py): distill.py's schedule (warm-up, then every round the active peers predict on the
round's probes, the server builds targets, the peers train on private data plus the targets), with the
message and the server's rule left to the protocol.

Unlike base.probe_exchange these protocols need every active peer's probabilities at once ([A, M, C]:
a selector or a quantiser acts per message), as `softlabel.aggregate=median` does; the probe draw,
faults (confident_wrong messages, dropout), the distillation weight's ramp and gate and the metrics
rows' probe diagnostics are distill.py's.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from tallysim.protocols.base import (Context, active_set, draw_probes, exchanging, local_round,
                                     predict_probes, round_keys)
from tallysim.protocols.distill import distill_factor, scaled
from tallysim.sim import faults, local, peers, vote
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
    z = predict_probes(ctx, peers.take(state.params, idx), x_M)
    z = faults.message_logits(ctx, fr, z, rows, y_M)
    sent_A, honest_A = faults.chunk_masks(fr, rows)
    sent_A = jnp.ones((A,), bool) if sent_A is None else sent_A
    sums = vote.chunk_sums(z, sent_A, y_M, None, honest_A)
    voters = faults.senders(ctx, fr)
    t = vote.tally_counts(sums.counts_MxC, voters, "lowest", 0.0)
    info = vote.finish_diagnostics(sums, voters, y_M, t.winner_M, t.share_M)
    return Messages(pidx, x_M, y_M, jax.nn.softmax(z, axis=-1), sent_A, voters), info


def make_round(ctx: Context, lspec: local.LocalSpec,
               exchange: Callable[[Messages, dict, Optional[jax.Array], Optional[dict]], tuple]):
    """round(state, data, root, r). exchange(msgs, info, idx, extra) -> (target_MxC, weight_M, info,
    extra): the server's targets from the messages (idx: the active peers, None = all), the probe
    weights (0 drops a probe), the round's info and the protocol's new State.extra (delta coding's
    memory; None if it keeps none)."""
    cfg = ctx.cfg

    def round_fn(state, data, root, r):
        keys = round_keys(root, r, cfg.probe.resample)
        idx = active_set(ctx, keys.active, data)
        fr = faults.for_round(ctx, data, root, r, idx)
        probes, lspec_r, extra = None, lspec, state.extra
        msgs, info = messages(ctx, state, data, keys, idx, fr)
        if exchanging(ctx):
            target, weight, info, extra = exchange(msgs, info, idx, state.extra)
            if not isinstance(msgs.voters, int):
                weight = weight * (msgs.voters > 0).astype(jnp.float32)    # nothing arrived: nothing to learn
            probes = local.Probes(msgs.x_M, target, weight)
            info["consensus_acc"] = (jnp.sum((jnp.argmax(target, -1) == msgs.y_M) * weight)
                                     / jnp.maximum(jnp.sum(weight), 1.0))
            f = distill_factor(cfg, r, info["agreement"], ctx.hp)
            lspec_r = scaled(lspec, f)
            if f is not None:
                info["distill_factor"] = f
            if not isinstance(msgs.voters, int):
                info["senders"] = msgs.voters
        params, opt, _, loss_A, steps = local_round(ctx, lspec_r, state, data, keys, idx, probes=probes, fr=fr)
        info = {**info, "train_loss": jnp.mean(loss_A), **steps, **faults.info(fr)}
        return state._replace(params=params, opt=opt, extra=extra), info

    return round_fn


def normalised(target_MxC):
    """Rows scaled to sum to one (uniform where a row is all zero): what the peers train on."""
    total = jnp.sum(target_MxC, axis=-1, keepdims=True)
    C = target_MxC.shape[-1]
    return jnp.where(total > 0, target_MxC / jnp.where(total > 0, total, 1.0), 1.0 / C)
