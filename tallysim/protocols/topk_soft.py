"""`topk_soft`: soft labels at hard-label budgets. Per probe (per token on text) each active peer sends
its k most probable classes and their probabilities, k * ceil(log2 C) + k * b bits (k = `topk_soft.k`,
b = `topk_soft.value_bits`), instead of softlabel's C * b; the server averages the sparse vectors into a
soft target and sends its top k back in the same format. On distill.py's schedule (warm-up, then every
round: exchange, then CE(private) + `distill.weight` * T^2 KL(target || softmax(f / T)), as softlabel).

The message of a probability vector p (C classes), `message`:
- k < C: the k largest p_j (jax.lax.top_k: the lower class first on a tie), each quantised to b bits
  by cfd's (and vote.quantize_probs' 8-bit) rule, v_j = round(p_j (2^b - 1)) / (2^b - 1); b = 32 sends
  p_j as float32. The receiver spreads what is left, max(0, 1 - sum v), evenly over the C - k classes
  not sent (the maximum-entropy completion; so k = 1 is the top-1 index plus its quantised confidence).
  Not renormalised over the k: that would make every top-1 value 1, whatever b. b = 0 sends no value:
  each index stands for 1 / k and nothing is left to spread (k = 1 is a hard vote).
- k = C: every class in class order, quantised, nothing to spread, so no index is sent (0 index bits)
  and the message is softlabel's with comm.soft_bits = b (b = 8 or 32; softlabel's 16 is float16,
  topk_soft's 16 is uniform levels).
The server's target is the mean of the messages that arrived (zeros elsewhere), and the downlink is that
mean's own message (the same rule: top k, quantised, the rest spread), what the peers train on. So down =
up bits per probe. Degenerate cases (tests/test_topk_soft.py): k = C, b = 32 trains on softlabel's
targets exactly (b = 8: the same messages, sums and 8-bit downlink, so softlabel's 8-bit run bit for bit,
tests/test_softdown_dec21h.py); k = 1, b = 0 sends tally's vote (the server's sum
is tally's counts) and trains on the plurality winner (lowest class on a tie, tally's default rule).

The messages are built and summed a chunk of peers at a time (exchange.stream_sums), as softlabel's.

**`topk_soft.*`**: `k` [1] classes per message, 1..C; `value_bits` [8] b, 0..16 or 32 (not 0 with k = C:
that message would carry nothing).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from tallysim import config
from tallysim.fields import ints
from tallysim.protocols import Traits
from tallysim.protocols.base import Context, Protocol, exchanging
from tallysim.protocols.distill import distill_round, warmup_init
from tallysim.sim import comm
from tallysim.sim.local import soft_label_loss

TRAITS = Traits(distill=True, soft=True, defaults={"warmup_epochs": "local_epochs"},
                reads=("distill.weight", "distill.temperature", "distill.order", "distill.epochs",
                       "distill.batch_size", "distill.ramp_rounds", "distill.gate"),
                sections={"topk_soft": "TopkSoftConfig"})


@dataclass(frozen=True)
class TopkSoftConfig:
    k: int = ints(1, 1, 1_000_000)          # classes per message; at most C (checked when C is known)
    value_bits: int = ints(8, 0, 32)        # b per value: 0..16 uniform levels, or 32 (float32)


def check(k: int, value_bits: int, classes: int) -> None:
    """The message's rules against the data's class count (config_rules states them, for validation too)."""
    config.topk_soft_message(k, value_bits, classes)


def quantise(v, bits: int):
    """What arrives of values v in [0, 1] sent with `bits` bits each (32: float32 as is)."""
    if bits == 32:
        return v
    q = 2.0 ** bits - 1
    return jnp.round(v * q) / q


def message(p, k: int, bits: int):
    """The decoded top-k message of probability vectors p [..., C], dense [..., C] (zeros off the k)."""
    C = p.shape[-1]
    if k == C:
        return quantise(p, bits)
    v, i = jax.lax.top_k(p, k)
    rows_p, i_n = p.reshape(-1, C), i.reshape(-1, k)
    if bits == 0:
        fill = jnp.zeros_like(rows_p)                    # k guesses of 1 / k: nothing left over
        v = jnp.full_like(v, 1.0 / k)
    else:
        v = quantise(v, bits)
        rest = jnp.maximum(1.0 - jnp.sum(v, axis=-1), 0.0).reshape(-1, 1)
        fill = jnp.broadcast_to(rest / (C - k), rows_p.shape)
    dense = fill.at[jnp.arange(rows_p.shape[0])[:, None], i_n].set(v.reshape(-1, k))
    return dense.reshape(p.shape)


def message_bits(k: int, bits: int, classes: int) -> int:
    """Bits of one message (one probe, or one token): the indices (none at k = C) and the values."""
    return (0 if k == classes else k * comm.ceil_log2(classes)) + k * bits


def make(ctx: Context) -> Protocol:
    cfg, spec = ctx.cfg, ctx.spec
    k, b = cfg.topk_soft.k, cfg.topk_soft.value_bits
    check(k, b, spec.classes)
    lspec = ctx.local_spec(distill_loss=soft_label_loss(ctx.hp("distill.temperature")))
    per_peer = spec.messages * message_bits(k, b, spec.classes) if exchanging(ctx) else 0
    bits = comm.RoundBits(per_peer, per_peer, spec.active)

    def cost(info) -> comm.RoundBits:
        return comm.with_senders(bits, info["senders"]) if "senders" in info else bits

    return Protocol(init=lambda key, data: warmup_init(ctx, key, data),
                    round=distill_round(ctx, lspec, hard=False, sent_fn=lambda p: message(p, k, b),
                                        target_fn=lambda t: message(t, k, b)),
                    cost=cost)
