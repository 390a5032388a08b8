"""What the probe exchange's two paths share (base.probe_exchange over all probes, blocked_vote.py a
block at a time): the peers' predictions on probes, the targets a vote makes (`vote_targets`), their
accuracy (`consensus_acc`), the gate's agreement and the privacy noise's keys. Split from base.py, which
re-exports every name here: plugins import them from `tallysim.protocols.base` as before.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from tallysim import protocols as registry
from tallysim.sim import exchange, local, vote
from tallysim.sim.fed import to_input
from tallysim.protocols.context import Context

PRIVACY_STREAM = 0xD9             # fold_in tag of the privacy noise (the round's other keys untouched)
GATE_AGREEMENT = vote.GATE_AGREEMENT  # info key: what distill.gate reads when it is not info["agreement"]


class VoteRule(NamedTuple):
    ties: str                 # vote.ties
    min_agreement: object     # vote.min_agreement (a lane field: may be traced)
    min_margin: float         # vote.min_margin


def vote_rule(ctx: Context) -> VoteRule:
    """The vote's rule as the protocol runs it: each of vote.ties, vote.min_agreement and vote.min_margin
    where the protocol reads it (tally, bridge, fedct; softlabel the ties of the vote it reports), else
    the plain plurality, lowest class on a tie, no abstention. A sweep keeps a field in every run where
    some run reads it, so `protocol.name=tally,topk_soft vote.ties=random` broke the ties of topk_soft's
    `vote_acc` at random (leftovers58), as review35 found of comm.topology and tally.target."""
    name, v = ctx.cfg.protocol.name, ctx.cfg.vote
    return VoteRule(v.ties if registry.reads(name, "vote.ties") else "lowest",
                    ctx.hp("vote.min_agreement") if registry.reads(name, "vote.min_agreement") else 0.0,
                    v.min_margin if registry.reads(name, "vote.min_margin") else 0.0)


def privacy_keys(tie_key) -> tuple:
    """(GNMax's noise key, Confident-GNMax's threshold key) of a round: from its tie key, so the
    round's other draws stay those of a run without privacy."""
    return tuple(jax.random.split(jax.random.fold_in(tie_key, PRIVACY_STREAM)))


def gate_agreement(info: dict) -> jax.Array:
    """The agreement distill.gate reads: GATE_AGREEMENT where the round set one (next_token: over the
    real probe positions only, text_agreement; private soft labels: the noised aggregate's), else the
    rows' `agreement` (images: every probe)."""
    return info.get(GATE_AGREEMENT, info["agreement"])


def text_agreement(task, x_M, share_M) -> dict:
    """{GATE_AGREEMENT: the mean winning share over the probe positions that are not PAD} on a
    next_token task, {} on images (whose program stays as it was). Padding positions are voted on and
    counted in the rows' `agreement`, but never trained on (tasks.message_mask): the gate, which decides
    whether the peers train on the vote, reads only the positions they would train on."""
    mask_M = task.message_mask(x_M)
    return {} if mask_M is None else {GATE_AGREEMENT: vote.mean_agreement(share_M, mask_M)}


def consensus_acc(task, target_M, y_M, weight_M=None) -> jax.Array:
    """The accuracy of the targets the peers train on (`weight_M` > 0; None: every probe) against
    the probes' hidden labels; next_token: only at the positions test accuracy scores
    (tasks.scored_messages: not PAD, OOV, BOS or EOS), as vote_acc. NaN where no probe is both kept and
    scored (every vote abstained, no peer's message arrived): there is no target to be right or wrong,
    and 0.0 read as every target wrong. The row writes it null, as vote_acc_honest's NaN with no honest
    peer (results/rows.lane_row); the divergence check reads only the training loss."""
    scored_M = task.scored_messages(y_M)
    w = weight_M if scored_M is None else (scored_M if weight_M is None else weight_M * scored_M)
    return vote.scored_mean((target_M == y_M).astype(jnp.float32), w)     # NaN where w sums to 0


def predict_probes(ctx: Context, params_c, x_M, probes: Optional[int] = None) -> jax.Array:
    """logits [c, M, C] of a stack of c peers on the probes; `probes` at a time where given (the
    exchange's probe split, exchange.model_chunks: one peer's forward pass over all M exceeds the chunk
    budget), else all at once."""
    apply = jax.vmap(ctx.model.apply, in_axes=(0, None))
    return exchange.split_probes(lambda x: apply(params_c, x), to_input(x_M), probes)


def vote_targets(ctx: Context, task, x_M, y_M, t, arrived, answered_M, text_M):
    """Hard labels: the probes the peers train on (the vote's winners where it is kept) and their info
    (`kept`, `consensus_acc`)."""
    keep_M = t.keep_M if arrived is None else t.keep_M * arrived      # no votes: nothing to train on
    if answered_M is not None:
        keep_M = keep_M * answered_M          # Confident-GNMax abstains where the check failed (`kept`)
    info = {"kept": jnp.mean(keep_M)}
    if text_M is not None:                    # padding: voted on and counted, never trained on
        keep_M = keep_M * text_M
    probes = local.Probes(x_M, task.unflatten(t.winner_M, ctx.spec.probes), task.unflatten(keep_M, ctx.spec.probes))
    info["consensus_acc"] = consensus_acc(task, t.winner_M, y_M, keep_M)
    return probes, info
