"""`fedyogi`: FedAvg with Yogi on the server (FedYogi, Reddi et al. 2021, "Adaptive Federated Optimization").

The server treats g = x - avg (round-start model minus FedAvg's aggregate) as a gradient and applies
optax.yogi(server_lr, b1, b2, eps=tau) to it (server_opt.py): m = b1 m + (1 - b1) g,
v = v - (1 - b2) sign(v - g^2) g^2 (m and v start at 1e-6), x' = x - server_lr * m_hat / (sqrt(v_hat) + tau),
with optax's bias correction. The moments stay on the server: bits as FedAvg.

**`fedyogi.*`**: `server_lr` [0.01] in (0, 3.4e38]; `b1` [0.9] in [0, 1); `b2` [0.99] in [0, 1); `tau` [0.001]
in (0, 1e6]. `server_lr` and `tau` may vary across the lanes of one grouped sweep.
"""
from __future__ import annotations

from dataclasses import dataclass

import optax

from tallysim.fields import floats
from tallysim.protocols import Traits, server_opt
from tallysim.protocols.base import Context, Protocol

TRAITS = Traits(fedavg_family=True, shared_init="it starts every peer from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                reads=("fedavg", "comm.param_bits", "privacy"), privacy="params", sections={"fedyogi": "FedYogiConfig"})


@dataclass(frozen=True)
class FedYogiConfig:
    server_lr: float = floats(0.01, "(0, 3.4e38]", lane=True)
    b1: float = floats(0.9, "[0, 1)")
    b2: float = floats(0.99, "[0, 1)")
    tau: float = floats(1e-3, "(0, 1e6]", lane=True)


def make(ctx: Context) -> Protocol:
    c = ctx.cfg.fedyogi
    return server_opt.make(ctx, optax.yogi(ctx.hp("fedyogi.server_lr"), b1=c.b1, b2=c.b2, eps=ctx.hp("fedyogi.tau")))
