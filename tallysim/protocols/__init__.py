"""Protocol registry: name -> factory(Context) -> Protocol."""
from __future__ import annotations

from tallysim.protocols import bridge, feddf, fedavg, local_only, softlabel, tally
from tallysim.protocols.base import Context, Protocol

REGISTRY = {
    "local": local_only.make,
    "fedavg": fedavg.make,
    "fedprox": fedavg.make_fedprox,
    "feddf": feddf.make,
    "softlabel": softlabel.make,
    "tally": tally.make,
    "bridge": bridge.make,
}


def make(ctx: Context) -> Protocol:
    name = ctx.cfg.protocol.name
    if name not in REGISTRY:
        raise ValueError(f"protocol.name={name!r} is not known; allowed: {', '.join(REGISTRY)}")
    return REGISTRY[name](ctx)


__all__ = ["Context", "Protocol", "REGISTRY", "make"]
