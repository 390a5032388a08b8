"""`fedadam`: FedAvg with Adam on the server (FedAdam, Reddi et al. 2021, "Adaptive Federated Optimization").

The server treats g = x - avg (round-start model minus FedAvg's aggregate; the paper's Delta is -g) as a
gradient. `fedadam.rule=reddi` (the default) is the paper's Algorithm 2 (server_opt.adaptive):
m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, x' = x - server_lr * m / (sqrt(v) + tau), with m
starting at 0 and v at tau^2 and no bias correction. `rule=optax` is optax.adam(server_lr, b1, b2,
eps=tau): the same with optax's bias correction m / (1 - b1^t), v / (1 - b2^t) and v starting at 0
(tallysim's rule before issue 30; at the defaults its first steps are up to 10x larger).
The moments stay on the server: bits as FedAvg.

**`fedadam.*`**: `server_lr` [0.01] in (0, 3.4e38]; `b1` [0.9] in [0, 1); `b2` [0.99] in [0, 1); `tau` [0.001]
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
                reads=("fedavg", "comm.param_bits", "privacy"), privacy="params", sections={"fedadam": "FedAdamConfig"})


@dataclass(frozen=True)
class FedAdamConfig:
    server_lr: float = floats(0.01, "(0, 3.4e38]", lane=True)
    b1: float = floats(0.9, "[0, 1)")
    b2: float = floats(0.99, "[0, 1)")
    tau: float = floats(1e-3, "(0, 1e6]", lane=True)
    # reddi: Algorithm 2 of Reddi et al. 2021 (no bias correction, v from tau^2); optax: optax.adam (bias-corrected)
    rule: Literal["reddi", "optax"] = "reddi"


def make(ctx: Context) -> Protocol:
    c = ctx.cfg.fedadam
    lr, tau = ctx.hp("fedadam.server_lr"), ctx.hp("fedadam.tau")
    if c.rule == "optax":
        return server_opt.make(ctx, optax.adam(lr, b1=c.b1, b2=c.b2, eps=tau))
    return server_opt.make(ctx, server_opt.adaptive(lr, c.b1, c.b2, tau, "adam"))
