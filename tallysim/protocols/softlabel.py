"""Soft-label federated distillation (FedMD, Li and Wang 2019; DS-FL's ERA, Itahara et al. 2021).

Each active peer uploads its probability vector on every probe (C values of `comm.soft_bits` bits:
32, or 16 / 8 meaning fp16 / 8-bit uniform quantisation of what the server receives). The server
averages them (`softlabel.aggregate=mean`) or sharpens the average, softmax(mean / T_era)
(`era`, `softlabel.era_temperature`), or takes the coordinate-wise median (`median`) or trimmed mean
(`trimmed`, `softlabel.trim` cut from each end) renormalised, and broadcasts the targets at
`comm.soft_bits` per value as well (base.soft_downlink: the peers train on the target rounded to the bits
the downlink is charged; 32 sends it as is). The robust
two need all A messages at once ([A, M, C]); mean and era stream them (exchange.py). Peers train on
CE(private) + w * T^2 * KL(target || softmax(f / T)) with `distill.weight`, `distill.temperature`;
`distill.order=sequential` digests the probes for `distill.epochs` first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tallysim.fields import floats
from tallysim.sim import comm
from tallysim.sim.local import soft_label_loss
from tallysim.protocols import Traits
from tallysim.protocols.base import Context, Protocol, exchanging
from tallysim.protocols.distill import distill_round, warmup_init

# not distill.label_smoothing (hard labels only) nor vote.min_agreement (no abstention); vote.ties breaks the
# ties of the vote it reports as vote_acc
TRAITS = Traits(distill=True, soft=True, privacy="sum", defaults={"warmup_epochs": "local_epochs"},
                reads=("distill.weight", "distill.temperature", "distill.order", "distill.epochs", "distill.batch_size",
                       "distill.ramp_rounds", "distill.gate", "softlabel", "comm.soft_bits", "vote.ties", "privacy"),
                sections={"softlabel": "SoftlabelConfig"})


@dataclass(frozen=True)
class SoftlabelConfig:
    aggregate: Literal["mean", "era", "median", "trimmed"] = "mean"
    era_temperature: float = floats(0.1, "(0, 1000]", lane=True)
    trim: float = floats(0.1, "[0, 0.5)")    # trimmed: fraction cut from each end, per coordinate


def make(ctx: Context) -> Protocol:
    cfg, spec = ctx.cfg, ctx.spec
    lspec = ctx.local_spec(distill_loss=soft_label_loss(ctx.hp("distill.temperature")))
    per_peer = comm.soft_labels(spec.messages, spec.classes, cfg.comm.soft_bits) if exchanging(ctx) else 0
    bits = comm.RoundBits(per_peer, per_peer, spec.active)

    def cost(info) -> comm.RoundBits:
        return comm.with_senders(bits, info["senders"]) if "senders" in info else bits

    return Protocol(init=lambda key, data: warmup_init(ctx, key, data),
                    round=distill_round(ctx, lspec, hard=False), cost=cost)
