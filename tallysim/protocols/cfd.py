"""`cfd`: Compressed Federated Distillation (Sattler, Marban, Rischke and Samek, "Communication-Efficient
Federated Distillation", arXiv:2012.00632, 2020), on distill.py's probe schedule.

Each active peer computes its probabilities p_i on the round's M probes and quantises each value to
b = `cfd.bits` bits, levels l = round(p * (2^b - 1)) (the paper's quantisation of soft labels); the
server averages the dequantised messages l / (2^b - 1) over the messages that arrived, quantises the
average the same way and sends it down; the peers train on it renormalised to sum to one per probe
(CE(private) + `distill.weight` * T^2 KL, as softlabel). `cfd.labels=hard` is the paper's hard-label
variant: peers upload argmax_c p_i (L = ceil(log2 C) bits per probe) and the server's soft target is the
one-hot votes averaged, vote counts / A (A: the messages that arrived), quantised for the downlink.

Delta coding (`cfd.delta=true`; the paper's, which needs the same probes every round: probe.resample=
false, refused otherwise): a message is coded against the sender's previous message on the same probes
(a peer against its own last upload, which the server keeps; the server against its last broadcast),
as a change bitmask over the M*C values plus the new b-bit level of each changed value, or dense when
that is shorter. Without a previous message (a peer's first upload), dense. The downlink is delta coded
only when every peer takes part every round (participation=1): a peer that missed a round lacks the
reference.

Bits per message of n = M*C values: dense n*b; delta min(n*b, n + changed*b). Up per active peer: that
(soft), or M*L (hard); down per active peer: the server's message. Under faults.kind=dropout only the
messages sent count up, and the server's reply goes to every active peer when one arrived (a round
without a reply leaves the downlink's delta reference as it was: the peers never received another).

**`cfd.*`**: `labels` [soft] soft | hard; `bits` [8] b, 1..16 bits per soft-label value; `delta`
[false] delta coding against the last round's message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp

from tallysim import config
from tallysim.fields import ints
from tallysim.protocols import Traits
from tallysim.protocols.base import Context, Protocol, exchanging
from tallysim.protocols.distill import warmup_init
from tallysim.protocols.probe_round import Streamed, make_round, normalised
from tallysim.sim import comm, peers
from tallysim.sim.local import soft_label_loss

# reads: probe_round.py's schedule (distill.weight, its ramp and gate) and the soft-label loss's
# temperature; distill.batch_size sizes the probe batches (Context.local_spec)
TRAITS = Traits(distill=True, soft=True, defaults={"warmup_epochs": "local_epochs"},
                reads=("distill.weight", "distill.temperature", "distill.ramp_rounds", "distill.gate",
                       "distill.batch_size"),
                sections={"cfd": "CFDConfig"})


@dataclass(frozen=True)
class CFDConfig:
    labels: Literal["soft", "hard"] = "soft"
    bits: int = ints(8, 1, 16)
    delta: bool = False


def quantise(p, bits: int):
    """int32 levels round(p * (2^bits - 1)) of probabilities p."""
    return jnp.round(p * (2 ** bits - 1)).astype(jnp.int32)


def coded_bits(n: int, bits: int, changed: int) -> int:
    """A message of n values at `bits` bits: dense (changed < 0: no previous message), or the
    cheaper of dense and a change bitmask plus the changed values."""
    return n * bits if changed < 0 else min(n * bits, n + changed * bits)


def make(ctx: Context) -> Protocol:
    cfg, spec = ctx.cfg, ctx.spec
    c = cfg.cfd
    config.cfd_delta_rule(cfg)        # validation refuses it first; a Context built by hand too
    # M: messages per round, a probe's positions each on a next-token task (sim/tasks.py)
    P, A, M, C, b = spec.peers, spec.active, spec.messages, spec.classes, c.bits
    Q = 2 ** b - 1
    hard = c.labels == "hard"
    delta_up = c.delta and not hard
    delta_down = c.delta and A == P
    lspec = ctx.local_spec(distill_loss=soft_label_loss(ctx.hp("distill.temperature")))

    def chunk(probs, sent_c, rows_c, idx, extra):
        """One chunk of peers: their summed levels (or one-hot votes) and, delta coding, their new
        reference levels and changed counts."""
        arrived = sent_c.astype(jnp.float32)
        if hard:
            onehot = jax.nn.one_hot(jnp.argmax(probs, -1), C, dtype=jnp.float32)
            return {"levels": jnp.einsum("a,amc->mc", arrived, onehot)}, {}
        levels = quantise(probs, b)
        # the mean in level units: integer sums (exact), one division, so a tie is a true tie
        sums = {"levels": jnp.einsum("a,amc->mc", arrived, levels.astype(jnp.float32),
                                     precision=jax.lax.Precision.HIGHEST)}
        if not delta_up:
            return sums, {}
        ids = rows_c if idx is None else idx[rows_c]
        prev, had = extra["up_P"][ids], extra["has_up_P"][ids]
        return sums, {"changed": jnp.where(had, jnp.sum(levels != prev, axis=(1, 2)), -1).astype(jnp.int32),
                      "up": jnp.where(sent_c[:, None, None], levels, prev),   # a lost message leaves no reference
                      "has_up": had | sent_c}

    def finish(sums, per_row, sent_A, voters, info, idx, extra):
        # dropout: a round in which no message arrived sends no reply (cost: down 0), so the peers'
        # reference for the next downlink stays the last reply actually sent
        replied = None if isinstance(voters, int) else voters > 0
        voters = voters if isinstance(voters, int) else jnp.maximum(voters, 1)
        extra = dict(extra)
        mean_levels = sums["levels"] * Q / voters if hard else sums["levels"] / voters
        if delta_up:
            info["cfd_changed_A"] = per_row["changed"]
            extra["up_P"] = peers.put(extra["up_P"], idx, per_row["up"])
            extra["has_up_P"] = peers.put(extra["has_up_P"], idx, per_row["has_up"])
            info["cfd_sent_A"] = sent_A.astype(jnp.int32)
        down = jnp.round(mean_levels).astype(jnp.int32)
        if delta_down:
            info["cfd_down_changed"] = jnp.where(extra["has_down"], jnp.sum(down != extra["down"]), -1
                                                 ).astype(jnp.int32)
            if replied is None:
                extra["down"], extra["has_down"] = down, jnp.array(True)
            else:
                extra["down"] = jnp.where(replied, down, extra["down"])
                extra["has_down"] = extra["has_down"] | replied
        weight = jnp.ones((M,), jnp.float32)
        return normalised(down.astype(jnp.float32) / Q), weight, info, extra

    def init(key, data):
        state = warmup_init(ctx, key, data)
        extra = {}
        if delta_up:
            extra.update(up_P=jnp.zeros((P, M, C), jnp.int32), has_up_P=jnp.zeros((P,), bool))
        if delta_down:
            extra.update(down=jnp.zeros((M, C), jnp.int32), has_down=jnp.array(False))
        return state._replace(extra=extra)

    n = M * C
    up_static = comm.hard_labels(M, C) if hard else n * b

    def cost(info) -> comm.RoundBits:
        if not exchanging(ctx):
            return comm.RoundBits(0, 0, A)
        down = coded_bits(n, b, info["cfd_down_changed"]) if delta_down else n * b
        sent = info.get("cfd_sent_A", [1] * A)
        up_A = None
        if delta_up:
            per_peer = [coded_bits(n, b, ch) for ch in info["cfd_changed_A"]]
            up = max(per_peer)
            up_A = comm.uneven(tuple(x if s else 0 for x, s in zip(per_peer, sent)))   # each peer's own (model.groups)
            up_total = sum(x for x, s in zip(per_peer, sent) if s)
        else:
            up = up_static
            up_total = up_static * (int(info["senders"]) if "senders" in info else A)
        senders = int(info["senders"]) if "senders" in info else A
        return comm.RoundBits(up, down, A, up_total=up_total, down_total=A * down if senders else 0, up_A=up_A)

    return Protocol(init=init, round=make_round(ctx, lspec, Streamed(chunk, finish)), cost=cost,
                    peer_state=("up_P", "has_up_P") if delta_up else ())
