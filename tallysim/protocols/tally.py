"""TallyTrain (Achanta and Reed, arXiv:2607.00173, 2026): peers exchange only argmax labels.

Each active peer uploads argmax_c f_i(x) per probe (L = ceil(log2 C) bits); the server takes the
plurality class (`vote.ties`: lowest | random | lowest_word, text only), optionally drops probes whose winning share is below
`vote.min_agreement` or whose margin (top minus runner-up count, over the voters) is below
`vote.min_margin`, or Confident-GNMax's check fails (`privacy.threshold`), one extra downlink bit
per probe marking them, and sends the labels back down.
Peers train on CE(private) + `distill.weight` * CE(probe, consensus), `distill.label_smoothing`.
`comm.topology=allgather`: every peer receives the other peers' votes and tallies locally.
faults.kind=dropout: only the votes sent count (allgather: each is relayed to the other A-1 peers).
`tally.target=counts`: train on the vote histogram, the share of the arrived votes each class got, as a
soft target (KL at temperature 1), instead of the winner. allgather: each peer has every vote, the same
messages and bits. star: the server counts the votes and sends each peer every probe's histogram of the
other A-1 votes (a peer knows its own and adds it back before training), coded as its index among the
compositions of A-1 votes into C classes (comm.vote_histograms); the same target as allgather's, other
downlink bits (under dropout: histogram_senders). A unanimous vote's histogram is the one-hot winner,
and KL to a one-hot at temperature 1 is the CE tally trains with, so the two targets differ only where
the peers disagree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp

from tallysim.sim import comm, lanes, trust
from tallysim.sim.local import hard_label_loss, soft_label_loss
from tallysim import protocols as registry
from tallysim.protocols import Traits
from tallysim.protocols.base import Context, Protocol, exchanging
from tallysim.protocols.distill import LAGGED, distill_round, warmup_init

# every distill field but temperature: the distill loss is a cross-entropy on the vote, which has no
# temperature, so a non-default distill.temperature is refused rather than silently ignored
TRAITS = Traits(distill=True, privacy="votes", defaults={"warmup_epochs": "local_epochs"},
                reads=("distill.weight", "distill.order", "distill.epochs", "distill.label_smoothing",
                       "distill.batch_size", "distill.ramp_rounds", "distill.gate", "vote", "comm.topology",
                       # privacy but clip: GNMax adds noise to the counts and clips nothing
                       "privacy.noise", "privacy.threshold", "privacy.threshold_noise", "privacy.delta",
                       "privacy.accountant"),
                sections={"tally": "TallyConfig"})


@dataclass(frozen=True)
class TallyConfig:
    target: Literal["vote", "counts"] = "vote"   # train on the winner (vote) or on the vote histogram (counts)


def topology_target(cfg) -> tuple[str, str]:
    """(comm.topology, tally.target) as the protocol runs them: its own values where it reads the fields
    (tally), else star and the winner (bridge, fedct, a plugin's vote). A sweep keeps a field in every run
    where some run reads it, so `protocol.name=tally,bridge comm.topology=allgather` charged bridge's star
    vote allgather's (A-1)-fold downlink, and tally.target=counts the histograms (review35)."""
    name = cfg.protocol.name
    return (cfg.comm.topology if registry.reads(name, "comm.topology") else "star",
            cfg.tally.target if registry.reads(name, "tally.target") else "vote")


def vote_bits(ctx: Context) -> comm.RoundBits:
    cfg, spec = ctx.cfg, ctx.spec
    if not exchanging(ctx):
        return comm.RoundBits(0, 0, spec.active)
    topology, target = topology_target(cfg)
    one = comm.hard_labels(spec.messages, spec.classes)     # next_token: a vote per probe position
    if topology == "allgather":
        down = (spec.active - 1) * one
    elif target == "counts":      # abstention and privacy are refused with counts (config_rules)
        # every vote arrives (no dropout): each peer gets the histograms of the other A-1 votes and adds
        # its own back (the target stays the histogram of all A); one peer alone receives nothing
        down = comm.vote_histograms(spec.messages, spec.active - 1, spec.classes)
    else:
        # Confident-GNMax's check (privacy.threshold > 0, which validation allows only with noise) drops
        # probes as abstention does: the peers need the same keep mask, one bit per probe (per token)
        abstains = lanes.nonzero(cfg.vote.min_agreement) or cfg.vote.min_margin > 0 or cfg.privacy.threshold > 0
        down = one + (spec.messages if abstains else 0)
    return comm.RoundBits(one, down, spec.active)


def vote_cost(ctx: Context, info) -> comm.RoundBits:
    """vote_bits, with only the messages sent counted under faults.kind=dropout (info["senders"])."""
    bits = vote_bits(ctx)
    if "senders" not in info:
        return bits
    topology, target = topology_target(ctx.cfg)
    if target == "counts" and topology == "star":
        return histogram_senders(ctx, bits, int(info["senders"]))
    return comm.with_senders(bits, info["senders"], down_per_sender=topology == "allgather")


def lagged_vote_cost(ctx: Context, info) -> comm.RoundBits:
    """vote_cost of a lagged vote (fedct; bridge.vote_at=merge), the vote trained on in the next exchange
    round. With every peer in every round (participation 1) the authors' flow: the vote goes down right
    after it is formed, to the peers that formed it, who are the ones that train on it (vote_cost, the last
    vote sent too). With cohorts (participation < 1) the peers that train on a vote are the next exchange's
    cohort, most of which did not form it and so never received it then: the server keeps the vote and
    sends it to that cohort in the round it trains on it, before training (info[LAGGED]: a vote with at
    least one arrived message is pending). The uplink is this round's vote; the first exchange receives
    nothing, the last vote is never sent down, a peer that drops out between forming and receiving gets
    nothing."""
    bits = vote_cost(ctx, info)
    if ctx.spec.active == ctx.spec.peers or LAGGED not in info:
        return bits
    up_total, _ = bits.totals()
    down = vote_bits(ctx).down if int(info[LAGGED]) else 0
    return comm.RoundBits(bits.up, down, ctx.spec.active, up_total=None if bits.up_total is None else up_total)


def histogram_senders(ctx: Context, bits: comm.RoundBits, senders: int) -> comm.RoundBits:
    """A star counts round under dropout: the target is the histogram of the S votes that arrived (1 <= S
    <= A; S = 0: no vote, nothing sent). A peer cannot know S, nor whether its own vote arrived (a lost
    upload is the network's, not the peer's choice), so the server first sends each peer the pair (how
    many votes its histograms hold, whether its own vote is to be added back): (S-1, yes) to the S peers
    whose vote arrived, (S, no) to the A-S whose vote was lost. The first is one of A pairs (S-1 in
    0..A-1), the second one of A-1 (S in 1..A-1: a lost vote leaves S <= A-1), so the header is one of
    2A-1 messages, ceil(log2(2A-1)) bits (ceil(log2 A) + 1 for A >= 2; 0 for A = 1), the same for
    every peer. Then every message's histogram of the votes that peer lacks: the other S-1 for an
    arrived peer, all S for a lost one. Peers receive different histograms, so the round's down total is
    exact per peer (comm.RoundBits.down_total, as with_senders' totals): S * (header + M * hist(S-1))
    + (A-S) * (header + M * hist(S)), hist the bits of comm.vote_histograms per message."""
    spec = ctx.spec
    if not senders:
        return bits._replace(up_total=0, down_total=0)
    header = comm.exact_log2_ceil(2 * spec.active - 1)
    arrived = header + comm.vote_histograms(spec.messages, senders - 1, spec.classes)
    lost = header + comm.vote_histograms(spec.messages, senders, spec.classes)
    return bits._replace(up_total=senders * bits.up, down_total=senders * arrived + (spec.active - senders) * lost)


def vote_message(p):
    """A peer's vote as a decoded message, one-hot [..., C] of argmax p (the lowest class on a tie, as
    jnp.argmax): summed over the peers it is the vote counts, averaged the histogram."""
    return jax.nn.one_hot(jnp.argmax(p, axis=-1), p.shape[-1], dtype=p.dtype)


def make(ctx: Context) -> Protocol:
    # tally.target=counts' settings: refused by config.validate (config_rules._tally_rules)
    if ctx.cfg.tally.target == "counts":
        # the soft path: each peer's message is its one-hot vote, the target their mean (the histogram)
        lspec = ctx.local_spec(distill_loss=soft_label_loss(1.0))
        return Protocol(init=lambda key, data: warmup_init(ctx, key, data),
                        round=distill_round(ctx, lspec, hard=False, sent_fn=vote_message),
                        cost=lambda info: vote_cost(ctx, info))
    lspec = ctx.local_spec(distill_loss=hard_label_loss(ctx.spec.classes, ctx.hp("distill.label_smoothing")))
    def init(key, data):
        state = warmup_init(ctx, key, data)
        if ctx.cfg.vote.weighting == "history":          # sim/trust.py: every peer's trust starts at 1
            state = state._replace(extra={**(state.extra or {}), **trust.initial(ctx.spec.peers)})
        return state

    return Protocol(init=init,
                    round=distill_round(ctx, lspec, hard=True),
                    cost=lambda info: vote_cost(ctx, info))
