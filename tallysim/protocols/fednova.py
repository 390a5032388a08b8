"""`fednova`: FedAvg with normalised averaging (Wang, Liu, Liang, Joshi and Poor, "Tackling the Objective
Inconsistency Problem in Heterogeneous Federated Optimization", NeurIPS 2020).

Peers with more data take more local steps, and FedAvg's average then leans towards their objectives.
FedNova divides each update by the peer's local effort before averaging: with x the server model,
y_i peer i's trained model and tau_i its local steps this round, d_i = (x - y_i) / a_i, where
a_i = ||a_i||_1 of the paper is tau_i for plain SGD and, with momentum rho (optim.momentum),
(tau_i - rho (1 - rho^tau_i) / (1 - rho)) / (1 - rho); the server steps
x' = x - tau_eff * sum_i w_i d_i, tau_eff = sum_i w_i a_i, with FedAvg's shard-size weights w_i over
the messages that arrived. When every active peer takes the same number of steps it is FedAvg (up to
float rounding). With optim.name=adam a_i = tau_i (the paper covers SGD and its momentum). Faults act
as in FedAvg (fedavg.fedavg_step); a peer with no step sends d_i = 0. The momentum a_i assumes a zero
momentum buffer at the round's start (optim.reset_each_round, true by default for this family): a buffer
v carried from the last round adds lr rho (1 - rho^tau_i) / (1 - rho) v to x - y_i, an offset no a_i
scales away, so validation refuses momentum with optim.reset_each_round=false (TRAITS.fresh_momentum).

Bits per active peer per round: FedAvg's, plus 32 bits up for tau_i (the server needs it to weigh d_i).
No config section.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from tallysim.protocols import Traits, fedavg
from tallysim.protocols.base import Context, Protocol, active_set, round_keys
from tallysim.sim import faults, lanes, local, peers

TRAITS = Traits(fedavg_family=True, client_state="", shared_init="it starts every peer from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                fresh_momentum="its momentum normaliser a_i counts this round's gradients from a zero buffer; a "
                               "buffer carried from the last round adds rho(1 - rho^tau_i)/(1 - rho) times that "
                               "buffer to x - y_i, which no a_i normalises")

STEPS_BITS = 32


def effort(steps_A, momentum):
    """||a_i||_1 of the paper: tau for SGD, the momentum-accumulated sum with momentum rho."""
    tau = steps_A.astype(jnp.float32)
    if momentum is None:
        return tau
    rho = jnp.asarray(momentum, jnp.float32)
    return (tau - rho * (1.0 - rho ** tau) / (1.0 - rho)) / (1.0 - rho)


def make(ctx: Context) -> Protocol:
    lspec = ctx.local_spec()
    rho = ctx.hp("optim.momentum")           # this lane's momentum (a traced value in a grouped sweep)
    momentum = rho if ctx.cfg.optim.name == "sgd" and lanes.nonzero(rho) else None

    def round_fn(state, data, root, r):
        keys = round_keys(root, r)
        idx = active_set(ctx, keys.active, data)
        fr = faults.for_round(ctx, data, root, r, idx)
        x = state.server
        state, sent_A, weight_A, info = fedavg.fedavg_step(ctx, lspec, state, data, keys, False, fr)
        steps_A = local.real_steps(lspec, peers.take(data.count_P, idx))
        cap_A = faults.round_train_args(ctx, fr).get("cap_A")
        if cap_A is not None:
            steps_A = jnp.minimum(steps_A, cap_A)
        a_A = effort(steps_A, momentum)
        tau_eff = jnp.sum(weight_A * a_A)
        scale_A = weight_A / jnp.maximum(a_A, 1e-12) * (a_A > 0)          # w_i / a_i; no step: d_i = 0
        server = jax.tree.map(
            lambda xs, y: xs - tau_eff * jnp.tensordot(scale_A.astype(y.dtype), xs[None] - y, axes=1), x, sent_A)
        if fr is not None and fr.lost_A is not None:                      # nothing arrived: x stays
            server = jax.tree.map(lambda n, o: jnp.where(jnp.any(fr.sent_A), n, o), server, x)
        return state._replace(server=server), info

    bits = fedavg.param_bits(ctx)
    cost = fedavg.senders_cost(bits._replace(up=bits.up + STEPS_BITS))
    return Protocol(init=lambda key, data: ctx.init_state(key, data, True, server=True),
                    round=round_fn, cost=cost, has_server=True)
