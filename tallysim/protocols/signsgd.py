"""`signsgd`: signSGD with majority vote (Bernstein, Zhao, Azizzadenesheli and Anandkumar, "signSGD with
majority vote is communication efficient and fault tolerant", ICLR 2019), on local updates: a vote on
parameters, TallyTrain's counterpart on the model side.

Each active peer trains locally and sends sign(u_i) of its update u_i = w_i - x (1 bit per coordinate, 0
sent as +1); the server takes the majority sign per coordinate over the messages that arrived (ties to +1)
and steps x' = x + `signsgd.server_lr` * majority (compressed.py, with the vote as its server update).
Bits per active peer: up |W|; down |W| (the majority vote: every peer applies it to its copy of x)
when every peer takes part each round, else FedAvg's dense model (a peer that missed rounds could not
rebuild x from the votes alone). The vote is the server's reply to the signs: under faults.kind=dropout a
round in which no sign arrived forms no vote and sends none (x stays), so it costs nothing down, as a
distillation round with no message does; the dense model of the partial case is a broadcast sent before
anyone trains, so it always reaches every active peer (FedAvg's rule).

**`signsgd.*`**: `server_lr` [0.001] in (0, 3.4e38], the step per vote; a grouped sweep may vary it.
"""
from __future__ import annotations

from dataclasses import dataclass

from tallysim.fields import floats
from tallysim.protocols import Traits, compressed
from tallysim.protocols.base import Context, Protocol
from tallysim.sim import comm, compress

TRAITS = Traits(fedavg_family=True, client_state="", shared_init="it starts every peer from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                sections={"signsgd": "SignSGDConfig"},
                reads=("comm.param_bits",))


@dataclass(frozen=True)
class SignSGDConfig:
    server_lr: float = floats(1e-3, "(0, 3.4e38]", lane=True)


def make(ctx: Context) -> Protocol:
    lr = ctx.hp("signsgd.server_lr")
    W = ctx.num_params

    def apply(u_AxW, _err, key):
        return compress.signs(u_AxW), None

    def update(signs_AxW, weight_A):
        return lr * compress.majority(signs_AxW, weight_A > 0)

    full = ctx.spec.active == ctx.spec.peers
    down = compress.sign_bits(W) if full else comm.dense_params(W, ctx.cfg.comm.param_bits)
    proto = compressed.make(ctx, compressed.Compressor(apply, compress.sign_bits(W)), update=update,
                            down_bits=down)
    if not full:
        return proto
    sent_cost = proto.cost

    def cost(info) -> comm.RoundBits:
        bits = sent_cost(info)
        # no sign arrived (dropout): no vote is formed, nothing goes down (was charged A * |W|)
        return bits._replace(down_total=0) if "senders" in info and not int(info["senders"]) else bits
    return proto._replace(cost=cost)
