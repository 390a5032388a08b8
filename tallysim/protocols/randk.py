"""`randk`: FedAvg whose peers send k random coordinates of their update (rand-k, Stich, Cordonnier and
Jaggi, NeurIPS 2018; Konecny et al. 2016, "random mask" structured updates).

Each round the server draws k = ceil(`randk.density` * |W|) coordinates uniformly without replacement
from the round's key, the same for every peer (so no indices are sent: the peers draw the same mask);
peer i sends (|W| / k) u_i on them, an unbiased estimate of u_i = w_i - x, and the server steps
x' = x + sum_i w_i C(u_i) (compressed.py). Bits per active peer: up k * `comm.param_bits`; down FedAvg's
dense model. density=1 is FedAvg (the mask is everything, the scale 1).

**`randk.*`**: `density` [0.01] in (0, 1], the fraction of |W| sent.
"""
from __future__ import annotations

from dataclasses import dataclass

from tallysim.fields import floats
from tallysim.protocols import Traits, compressed
from tallysim.protocols.base import Context, Protocol
from tallysim.sim import compress, sparse

TRAITS = Traits(fedavg_family=True, client_state="", shared_init="it starts every peer from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                sections={"randk": "RandKConfig"},
                reads=("comm.param_bits",))


@dataclass(frozen=True)
class RandKConfig:
    density: float = floats(0.01, "(0, 1]")


def make(ctx: Context) -> Protocol:
    W = ctx.num_params
    k = sparse.ceil_fraction(ctx.cfg.randk.density, W)

    def apply(u_AxW, _err, key):
        mask_W = compress.random_k_mask(key, W, k)
        return compress.random_k(u_AxW, mask_W[None, :], k), None

    return compressed.make(ctx, compressed.Compressor(apply, compress.random_k_bits(k, ctx.cfg.comm.param_bits)))
