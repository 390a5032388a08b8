"""`softsharp`: soft-label distillation whose peers sharpen the averaged soft labels before training on
them, a distillation-type protocol that lives outside tallysim and is loaded as a plugin (beside
fedmix.py, a FedAvg-type one; docs/write-a-protocol.md).

Each round is softlabel's (`tallysim/protocols/softlabel.py`): every active peer sends its probability
vector on each probe, the server averages them (softlabel.aggregate, default mean) and sends the
average down. Each peer then trains on softmax(log(avg) / tau) instead of avg: the average sharpened
at temperature `tau` on the peer's side (DS-FL's ERA sharpens on the server; here the server stays a
plain average and the knob is the plugin's own). tau=1 is softlabel: the same program's numbers.
Bits: softlabel's (C values of comm.soft_bits bits per probe, up and down), since only what a peer
does with the targets changes.

    tallysim run --plugin softsharp protocol.name=softsharp softsharp.tau=0.5 --out runs/sharp   # from examples/

**`softsharp.*`**: `tau` [0.5] in (0, 1]: the sharpening temperature applied to the received soft
labels (smaller: closer to the average's argmax); a grouped sweep may vary it across the lanes of
one program.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from tallysim.fields import floats
from tallysim.protocols import Traits
from tallysim.protocols import softlabel
from tallysim.protocols.base import Context, Protocol
from tallysim.protocols.distill import distill_round, warmup_init
from tallysim.sim.local import soft_label_loss

PROTOCOLS = {"softsharp": "make"}         # protocol.name -> the factory below

# What softlabel reads (its distillation knobs, the soft-label section, the message's bits), less
# privacy: the privacy ledger's soft-label mechanism is declared for softlabel and is not claimed here,
# so privacy.noise > 0 is refused for softsharp in one line rather than accounted for wrongly.
TRAITS = Traits(distill=True, soft=True, defaults={"warmup_epochs": "local_epochs"},
                reads=tuple(r for r in softlabel.TRAITS.reads if r != "privacy"),
                sections={"softsharp": "SoftSharpConfig"},
                # its round is softlabel's distill_round, which streams each model group's peers with
                # their own model: it runs model.groups (peers of several architectures, docs/groups.md)
                model_groups=True)


@dataclass(frozen=True)
class SoftSharpConfig:                    # the `softsharp.*` config section
    tau: float = floats(0.5, "(0, 1]", lane=True)


def sharpen(target_RxC, tau):
    """softmax(log(target) / tau): the target raised to 1/tau and renormalised (zeros stay zeros, as
    8-bit quantised soft labels can hold them)."""
    return jax.nn.softmax(jnp.log(jnp.maximum(target_RxC, 1e-30)) / tau, axis=-1)


def make(ctx: Context) -> Protocol:
    tau = ctx.hp("softsharp.tau")         # a constant, or this lane's value in a grouped sweep
    base = soft_label_loss(ctx.hp("distill.temperature"))

    def loss(logits, target_RxC):
        return base(logits, sharpen(target_RxC, tau))

    lspec = ctx.local_spec(distill_loss=loss)
    bits = softlabel.make(ctx).cost       # softlabel's exact cost: the messages are the same
    return Protocol(init=lambda key, data: warmup_init(ctx, key, data),
                    round=distill_round(ctx, lspec, hard=False), cost=bits)
