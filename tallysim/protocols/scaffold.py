"""`scaffold`: FedAvg with control variates against client drift (Karimireddy, Kale, Mohri, Reddi, Stich
and Suresh, "SCAFFOLD: Stochastic Controlled Averaging for Federated Learning", ICML 2020, Algorithm 1
with option II).

The server holds its model x and a control variate c; each peer i holds its own c_i (State.extra["c_P"],
peer axis), all zero at the start. Each round the server sends (x, c) to the active peers; each starts
from y_i = x and takes its K_i local steps on g_i(y_i) + c - c_i (the gradient of the local loss plus the
linear term <c - c_i, y>, sim/local.py), then sets c_i+ = c_i - c + (x - y_i) / (K_i * optim.lr) (option
II; a peer with no step keeps c_i) and sends dy_i = y_i - x and dc_i = c_i+ - c_i. The server steps
x' = x + server_lr * sum_i w_i dy_i with FedAvg's shard-size weights w_i (the paper's uniform mean where
shards are equal; computed as avg + (server_lr - 1)(avg - x), so server_lr=1 gives FedAvg's aggregate
exactly), and c' = c + (1/N) sum_i dc_i, i.e. (|S|/N) times the mean over the |S| messages that arrived.
With zero control variates round 1 is FedAvg's first round exactly. Option II reads its step size from
`optim.lr` (each lane's own in a grouped sweep): it assumes plain SGD, as the paper does, so validation
refuses optim.momentum > 0 and optim.name=adam (TRAITS.sgd_only).

Faults act as in FedAvg (fedavg.aggregate; a faulty peer's dy is what faults.py says it sends, its dc
is honest). A lost message (dropout) contributes neither dy nor dc; the peer keeps its c_i+ all the
same (it cannot tell).

Bits per active peer per round: up dy and dc, down x and c: `2 * comm.param_bits * |W|` each way
(dropout: up only for the messages sent).

**`scaffold.*`**: `server_lr` [1] the global step size eta_g, in (0, 3.4e38]; may vary across the lanes
of one grouped sweep.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from tallysim.fields import floats
from tallysim.protocols import Traits, fedavg
from tallysim.protocols.base import Context, Protocol, active_set, local_round, round_keys
from tallysim.sim import comm, faults, local, peers

TRAITS = Traits(fedavg_family=True, shared_init="it starts every peer from the server model",
                client_state="each client's control variate (and the server's)",
                sgd_only="option II's control variate (x - y_i) / (K_i optim.lr) is the mean local gradient only "
                         "for plain SGD steps (Karimireddy et al. 2020, Algorithm 1)",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                sections={"scaffold": "ScaffoldConfig"},
                reads=("comm.param_bits",))


@dataclass(frozen=True)
class ScaffoldConfig:
    server_lr: float = floats(1.0, "(0, 3.4e38]", lane=True)


def control_update(c_A, c, x, y_A, steps_A, lr):
    """Option II: c_i+ = c_i - c + (x - y_i) / (K_i lr) per active peer; K_i = 0 keeps c_i."""
    def one(ci, cg, xg, yi):
        k = steps_A.reshape((-1,) + (1,) * (yi.ndim - 1)).astype(yi.dtype)
        new = ci - cg[None] + (xg[None] - yi) / (jnp.maximum(k, 1.0) * lr)
        return jnp.where(k > 0, new, ci)
    return jax.tree.map(one, c_A, c, x, y_A)


def make(ctx: Context) -> Protocol:
    lspec = ctx.local_spec()
    A, P = ctx.spec.active, ctx.spec.peers
    server_lr = ctx.hp("scaffold.server_lr")
    lr = ctx.hp("optim.lr")                  # this lane's step size (option II divides by it)

    def init(key, data):
        def extra(server):
            zero = jax.tree.map(jnp.zeros_like, server)
            return {"c": zero, "c_P": peers.broadcast(zero, P)}
        return ctx.init_state(key, data, True, server=True, extra=extra)

    def round_fn(state, data, root, r):
        keys = round_keys(root, r)
        idx = active_set(ctx, keys.active, data)
        fr = faults.for_round(ctx, data, root, r, idx)
        x, c = state.server, state.extra["c"]
        c_A = peers.take(state.extra["c_P"], idx)
        correction_A = jax.tree.map(lambda ci, cg: cg[None] - ci, c_A, c)
        params, opt, y_A, loss_A, steps = local_round(ctx, lspec, state, data, keys, idx,
                                                      params_A=peers.broadcast(x, A), fr=fr,
                                                      linear_A=correction_A)
        count_A = peers.take(data.count_P, idx)
        # this lane's faulty count: ALIE's z and the robust rules' default f need it, as in fedavg_step
        f_count = faults.faulty_count(ctx, data)
        sent_A = faults.sent_params(ctx, fr, y_A, x, peers.take(state.params, idx) if fr is not None else None,
                                    f_count)
        avg, _ = fedavg.aggregate(ctx, sent_A, count_A, x, fr,
                                  jax.random.fold_in(keys.server, fedavg.AGGREGATE_STREAM), f_count)
        server = jax.tree.map(lambda a, s: a + (server_lr - 1.0) * (a - s), avg, x)

        steps_A = local.real_steps(lspec, count_A)
        cap_A = faults.round_train_args(ctx, fr).get("cap_A")
        if cap_A is not None:
            steps_A = jnp.minimum(steps_A, cap_A)
        c_new_A = control_update(c_A, c, x, y_A, steps_A, lr)
        arrived_A = jnp.ones((A,), jnp.float32) if fr is None or fr.lost_A is None \
            else fr.sent_A.astype(jnp.float32)
        c_server = jax.tree.map(
            lambda cg, n, o: cg + jnp.tensordot(arrived_A, n - o, axes=1) / P, c, c_new_A, c_A)

        info = {"train_loss": jnp.mean(loss_A), **steps, **faults.info(fr)}
        if fr is not None and fr.lost_A is not None:
            info["senders"] = faults.senders(ctx, fr)
        extra = {"c": c_server, "c_P": peers.put(state.extra["c_P"], idx, c_new_A)}
        return state._replace(params=params, opt=opt, server=server, extra=extra), info

    b = 2 * comm.dense_params(ctx.num_params, ctx.cfg.comm.param_bits)
    cost = fedavg.senders_cost(comm.RoundBits(b, b, A))
    return Protocol(init=init, round=round_fn, cost=cost, has_server=True, peer_state=("c_P",))
