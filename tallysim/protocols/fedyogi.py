"""`fedyogi`: FedAvg with Yogi on the server (FedYogi, Reddi et al. 2021, "Adaptive Federated Optimization").

The server treats g = x - avg (round-start model minus FedAvg's aggregate; the paper's Delta is -g) as a
gradient. `fedyogi.rule=reddi` (the default) is the paper's Algorithm 2 (server_opt.adaptive):
m = b1 m + (1 - b1) g, v = v - (1 - b2) g^2 sign(v - g^2), x' = x - server_lr * m / (sqrt(v) + tau),
with m starting at 0 and v at tau^2 and no bias correction. `rule=optax` is optax.yogi(server_lr, b1,
b2, eps=tau): the same second moment with optax's bias correction and m, v starting at 1e-6
(tallysim's rule before issue 30). The moments stay on the server: bits as FedAvg.

**`fedyogi.*`**: `server_lr` [0.01] in (0, 3.4e38]; `b1` [0.9] in [0, 1); `b2` [0.99] in [0, 1); `tau` [0.001]
in (0, 1e6]; `rule` [reddi] reddi | optax. `server_lr` and `tau` may vary across the lanes of one grouped sweep.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import optax

from tallysim.fields import floats
from tallysim.protocols import Traits, server_opt
from tallysim.protocols.base import Context, Protocol

TRAITS = Traits(fedavg_family=True, client_state="", shared_init="it starts every peer from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                reads=("fedavg", "comm.param_bits", "privacy"), privacy="params", sections={"fedyogi": "FedYogiConfig"})


@dataclass(frozen=True)
class FedYogiConfig:
    server_lr: float = floats(0.01, "(0, 3.4e38]", lane=True)
    b1: float = floats(0.9, "[0, 1)")
    b2: float = floats(0.99, "[0, 1)")
    tau: float = floats(1e-3, "(0, 1e6]", lane=True)
    # reddi: Algorithm 2 of Reddi et al. 2021 (no bias correction, v from tau^2); optax: optax.yogi (bias-corrected)
    rule: Literal["reddi", "optax"] = "reddi"


def make(ctx: Context) -> Protocol:
    c = ctx.cfg.fedyogi
    lr, tau = ctx.hp("fedyogi.server_lr"), ctx.hp("fedyogi.tau")
    if c.rule == "optax":
        return server_opt.make(ctx, optax.yogi(lr, b1=c.b1, b2=c.b2, eps=tau))
    return server_opt.make(ctx, server_opt.adaptive(lr, c.b1, c.b2, tau, "yogi"))
