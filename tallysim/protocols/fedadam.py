"""`fedadam`: FedAvg with Adam on the server (FedAdam, Reddi et al. 2021, "Adaptive Federated Optimization").

The FedOpt round of server_opt.fedopt (shared with FedYogi) with Adam's second moment: m = b1 m +
(1 - b1) g, v = b2 v + (1 - b2) g^2, x' = x - server_lr * m / (sqrt(v) + tau) on g = x - avg, m from 0
and v from tau^2, no bias correction (the paper's Algorithm 2). `rule=optax` is optax.adam(server_lr,
b1, b2, eps=tau): bias-corrected m / (1 - b1^t), v / (1 - b2^t) with v starting at 0 (tallysim's rule
before issue 30; at the defaults its first steps are up to 10x larger). Bits as FedAvg.

**`fedadam.*`**: `server_lr` [0.01] in (0, 3.4e38]; `b1` [0.9] in [0, 1); `b2` [0.99] in [0, 1); `tau` [0.001]
in (0, 1e6]; `rule` [reddi] reddi | optax. `server_lr` and `tau` may vary across the lanes of one grouped sweep.
"""
from __future__ import annotations

from tallysim.protocols import Traits, server_opt
from tallysim.protocols.base import Context, Protocol
from tallysim.protocols.server_opt import FedOptConfig as FedAdamConfig  # noqa: F401 - its section (TRAITS)

TRAITS = Traits(fedavg_family=True, client_state="", shared_init="it starts every peer from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                reads=("fedavg", "comm.param_bits", "privacy"), privacy="params", sections={"fedadam": "FedAdamConfig"})


def make(ctx: Context) -> Protocol:
    return server_opt.fedopt(ctx, "fedadam", "adam")
