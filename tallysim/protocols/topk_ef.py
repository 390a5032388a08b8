"""`topk_ef`: FedAvg whose peers send the top-k of their update with error feedback (Stich, Cordonnier
and Jaggi, "Sparsified SGD with memory", NeurIPS 2018; Aji and Heafield 2017), without votes: the
bridge's merge (sim/sparse.py) on its own, every round.

u_i = (w_i - x) + e_i; the peer sends s_i = top-k(u_i) by magnitude, k = ceil(`topk_ef.density` * |W|)
over the whole model, and keeps e_i = u_i - s_i; the server steps x' = x + sum_i w_i s_i (compressed.py).
Bits per active peer: up the cheapest coding of k (value, index) entries (`comm.sparse_params`), down
FedAvg's dense model. density=1 is FedAvg (error 0, every entry sent), up to float rounding.

**`topk_ef.*`**: `density` [0.01] in (0, 1], the fraction of |W| sent.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from tallysim.fields import floats
from tallysim.protocols import Traits, compressed
from tallysim.protocols.base import Context, Protocol
from tallysim.sim import comm, sparse

TRAITS = Traits(fedavg_family=True, shared_init="it starts every peer from the server model",
                client_state="each client's error-feedback buffer",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                sections={"topk_ef": "TopkEFConfig"},
                reads=("comm.param_bits",))


@dataclass(frozen=True)
class TopkEFConfig:
    density: float = floats(0.01, "(0, 1]")


def make(ctx: Context) -> Protocol:
    lay = compressed.layout(ctx)
    k = sparse.num_selected(ctx.cfg.topk_ef.density, lay, "global")

    def apply(u_AxW, err_AxW, key):
        v = u_AxW + err_AxW
        mask = jax.vmap(lambda x: sparse.topk_mask(x, k))(v)
        sent = jnp.where(mask, v, 0.0)
        return sent, v - sent

    comp = compressed.Compressor(apply, comm.sparse_params(k, ctx.num_params, ctx.cfg.comm.param_bits),
                                 error_feedback=True)
    return compressed.make(ctx, comp)
