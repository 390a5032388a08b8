"""`selective_fd`: Selective-FD (Shao, Wu and Zhang, "Selective knowledge sharing for
privacy-preserving federated distillation without a good teacher", Nature Communications 15, 2024), on
distill.py's probe schedule.

Each active peer shares its probability vector only on the probes its client-side selector accepts,
and the server drops the ensemble labels that are ambiguous. The paper's client selector is a density
ratio estimate (is the probe in the peer's own distribution?); here it is the confidence selector
named in issue 22: peer i shares on probe x when max_c p_i(x) >= `selective_fd.client_threshold`. The
server averages the shared vectors per probe, t(x) = mean over the peers that shared on x (as sent:
`comm.soft_bits` per value), and keeps x when at least one peer shared and max_c t(x) >=
`selective_fd.server_threshold`; the peers train on the kept targets as sent down (rounded to
`comm.soft_bits` per value, as softlabel's downlink) (CE(private) + `distill.weight` *
T^2 KL, as softlabel; dropped probes weigh 0). Both thresholds 0 is softlabel's mean aggregation.

Bits (only the shared predictions plus a 1-bit-per-probe mask), b = `comm.soft_bits`, C classes:
up per active peer M + n_i*C*b (n_i the probes it shared on), down M + K*C*b (K the probes kept), the
same message to every active peer. Under faults.kind=dropout only the messages sent count up, and the
reply goes out when one arrived.

**`selective_fd.*`**: `client_threshold` [0.5] in [0, 1]; `server_threshold` [0.5] in [0, 1]. Both may
vary across the lanes of one grouped sweep.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

from tallysim.fields import floats
from tallysim.protocols import Traits
from tallysim.protocols.base import Context, Protocol, exchanging
from tallysim.protocols.distill import warmup_init
from tallysim.protocols.probe_round import Streamed, make_round
from tallysim.sim import comm, vote
from tallysim.sim.local import soft_label_loss

# reads: as cfd (probe_round.py's schedule, the loss's temperature), and comm.soft_bits for its messages
TRAITS = Traits(distill=True, soft=True, defaults={"warmup_epochs": "local_epochs"},
                reads=("distill.weight", "distill.temperature", "distill.ramp_rounds", "distill.gate",
                       "distill.batch_size", "comm.soft_bits"),
                sections={"selective_fd": "SelectiveFDConfig"})


@dataclass(frozen=True)
class SelectiveFDConfig:
    client_threshold: float = floats(0.5, "[0, 1]", lane=True)
    server_threshold: float = floats(0.5, "[0, 1]", lane=True)


def make(ctx: Context) -> Protocol:
    cfg, spec = ctx.cfg, ctx.spec
    # M: messages per round, a probe's positions each on a next-token task (sim/tasks.py)
    A, M, C, b = spec.active, spec.messages, spec.classes, cfg.comm.soft_bits
    tau_client = ctx.hp("selective_fd.client_threshold")
    tau_server = ctx.hp("selective_fd.server_threshold")
    lspec = ctx.local_spec(distill_loss=soft_label_loss(ctx.hp("distill.temperature")))

    def chunk(p, sent_c, rows_c, idx, extra):
        """One chunk of peers: the shared (quantised) vectors summed per probe, how many shared on
        each probe, and how many probes each peer shared on."""
        share_cxM = (jnp.max(p, axis=-1) >= tau_client) & sent_c[:, None]
        w = share_cxM.astype(jnp.float32)
        return ({"target": jnp.einsum("am,amc->mc", w, vote.quantize_probs(p, b)), "n": jnp.sum(w, axis=0)},
                {"shared": jnp.sum(share_cxM, axis=1, dtype=jnp.int32)})

    def finish(sums, per_row, sent_A, voters, info, idx, extra):
        n_M = sums["n"]
        target = sums["target"] / jnp.maximum(n_M, 1.0)[:, None]
        keep_M = ((n_M > 0) & (jnp.max(target, axis=-1) >= tau_server)).astype(jnp.float32)
        info["kept"] = jnp.mean(keep_M)
        info["sfd_shared_A"] = per_row["shared"]
        info["sfd_kept"] = jnp.sum(keep_M).astype(jnp.int32)
        info["sfd_sent_A"] = sent_A.astype(jnp.int32)
        # the downlink is charged C * b bits per kept probe: the peers train on the mean rounded to them
        # (the server keeps or drops a probe on its own unrounded mean, which it holds)
        return vote.quantize_probs(target, b), keep_M, info, extra

    def cost(info) -> comm.RoundBits:
        if not exchanging(ctx):
            return comm.RoundBits(0, 0, A)
        per_peer = [M + int(n) * C * b for n in info["sfd_shared_A"]]
        sent_A = tuple(x if s else 0 for x, s in zip(per_peer, info["sfd_sent_A"]))
        down = M + int(info["sfd_kept"]) * C * b
        return comm.RoundBits(max(per_peer), down, A, up_total=sum(sent_A),
                              down_total=A * down if any(info["sfd_sent_A"]) else 0, up_A=comm.uneven(sent_A))

    return Protocol(init=lambda key, data: warmup_init(ctx, key, data),
                    round=make_round(ctx, lspec, Streamed(chunk, finish)), cost=cost)
