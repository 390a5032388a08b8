"""`fedavgm`: FedAvg with server momentum (Hsu et al. 2019, "Measuring the effects of non-identical data
distribution for federated visual classification"; FedAvgM in Reddi et al. 2021).

The server treats g = x - avg (round-start model minus the aggregate of FedAvg) as a gradient and takes
an SGD step with momentum: m = beta * m + g; x' = x - server_lr * m (optax.sgd, server_opt.py). With
beta=0 and server_lr=1 it is FedAvg exactly. The momentum stays on the server: bits as FedAvg.

**`fedavgm.*`**: `beta` [0.9] server momentum, in [0, 1) (0 = none); `server_lr` [1] in (0, 3.4e38].
Both may vary across the lanes of one grouped sweep (beta = 0 compiles apart).
"""
from __future__ import annotations

from dataclasses import dataclass

import optax

from tallysim.fields import floats
from tallysim.protocols import Traits, server_opt
from tallysim.protocols.base import Context, Protocol

TRAITS = Traits(fedavg_family=True, client_state="", shared_init="it starts every peer from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                reads=("fedavg", "comm.param_bits", "privacy"), privacy="params", sections={"fedavgm": "FedAvgMConfig"})


@dataclass(frozen=True)
class FedAvgMConfig:
    beta: float = floats(0.9, "[0, 1)", lane=True, nonzero=True)
    server_lr: float = floats(1.0, "(0, 3.4e38]", lane=True)


def make(ctx: Context) -> Protocol:
    momentum = ctx.hp("fedavgm.beta") if ctx.cfg.fedavgm.beta > 0 else None
    return server_opt.make(ctx, optax.sgd(ctx.hp("fedavgm.server_lr"), momentum=momentum))
