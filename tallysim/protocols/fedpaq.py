"""`fedpaq`: FedAvg with QSGD-quantised updates (FedPAQ, Reisizadeh et al., AISTATS 2020; the quantiser
is QSGD's, Alistarh et al., NeurIPS 2017).

Peer i sends Q_s(u_i) of its update u_i = w_i - x: |u_i| sign(u_ij) l_j / s, l_j the stochastic rounding
of s |u_ij| / |u_i| to an integer level (unbiased; sim/compress.py), with an independent draw per peer;
the server steps x' = x + sum_i w_i Q_s(u_i) (compressed.py). With `local_steps=1` and plain SGD this
is QSGD itself (one quantised gradient per round). Bits per active peer: up 32 (the norm) + |W| (1 sign +
ceil(log2(s + 1)) level bits), fixed-length codes (QSGD's Elias coding would be shorter for small s;
not assumed); down FedAvg's dense model. A huge s (2^31) is FedAvg within float error.

**`fedpaq.*`**: `levels` [16] s, in 1..2^31 - 1; a grouped sweep may vary it across lanes (bits are
each configuration's own).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax

from tallysim.fields import ints
from tallysim.protocols import Traits, compressed
from tallysim.protocols.base import Context, Protocol
from tallysim.sim import compress

TRAITS = Traits(fedavg_family=True, client_state="", shared_init="it starts every peer from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                sections={"fedpaq": "FedPAQConfig"},
                reads=("comm.param_bits",))


@dataclass(frozen=True)
class FedPAQConfig:
    levels: int = ints(16, 1, lane=True)


def make(ctx: Context) -> Protocol:
    s = ctx.hp("fedpaq.levels")

    def apply(u_AxW, _err, key):
        keys = jax.random.split(key, u_AxW.shape[0])
        return jax.vmap(lambda u, k: compress.qsgd(u, s, k))(u_AxW, keys), None

    # A lane's traced levels (grouped sweep) has no Python bit count; its bits come from each
    # configuration's own protocol (build.Built.cost_protocol), never from this one's cost.
    bits = compress.qsgd_bits(ctx.num_params, s) if isinstance(s, int) else None
    return compressed.make(ctx, compressed.Compressor(apply, bits))
