"""`fedyogi`: FedAvg with Yogi on the server (FedYogi, Reddi et al. 2021, "Adaptive Federated Optimization").

The FedOpt round of server_opt.fedopt (shared with FedAdam) with Yogi's second moment, which moves v
toward g^2 by (1 - b2) g^2 whichever side it is on: v = v - (1 - b2) g^2 sign(v - g^2) (the paper's
Algorithm 2; m, the step, m from 0, v from tau^2 and no bias correction as in FedAdam). `rule=optax` is
optax.yogi(server_lr, b1, b2, eps=tau): the same second moment with optax's bias correction and m, v
starting at 1e-6 (tallysim's rule before issue 30). Bits as FedAvg.

**`fedyogi.*`**: `server_lr` [0.01] in (0, 3.4e38]; `b1` [0.9] in [0, 1); `b2` [0.99] in [0, 1); `tau` [0.001]
in (0, 1e6]; `rule` [reddi] reddi | optax. `server_lr` and `tau` may vary across the lanes of one grouped sweep.
"""
from __future__ import annotations

from tallysim.protocols import Traits, server_opt
from tallysim.protocols.base import Context, Protocol
from tallysim.protocols.server_opt import FedOptConfig as FedYogiConfig  # noqa: F401 - its section (TRAITS)

TRAITS = Traits(fedavg_family=True, client_state="", shared_init="it starts every peer from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                reads=("fedavg", "comm.param_bits", "privacy"), privacy="params", sections={"fedyogi": "FedYogiConfig"})


def make(ctx: Context) -> Protocol:
    return server_opt.fedopt(ctx, "fedyogi", "yogi")
