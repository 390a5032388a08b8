"""FedAvg with a compressed uplink: the shared round of topk_ef.py, randk.py, fedpaq.py and signsgd.py,
each of which only chooses the compressor and its bits (sim/compress.py, sim/sparse.py).

Each round runs FedAvg's broadcast, local training and faults (fedavg.fedavg_step); each active peer
then sends C(u_i) of its update u_i = w_i - x (x the round-start server model; under faults, of the model
faults.py says it sends), and the server steps x' = x + sum_i w_i C(u_i) with FedAvg's weights w_i
(shard sizes over the messages that arrived). The compressor sees the whole model as one flat vector.
The downlink is FedAvg's dense broadcast of x' (`comm.param_bits` * |W|): only the uplink is compressed,
as in the papers of these baselines.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from tallysim.protocols import fedavg
from tallysim.protocols.base import Context, Protocol, active_set, round_keys
from tallysim.sim import comm, faults, peers, sparse

COMPRESS_STREAM = 0xC0DE       # fold_in tag of the compressor's randomness (the round's keys untouched)


class Compressor(NamedTuple):
    # (u_AxW, error_AxW or None, key) -> (what the server receives [A, W], new error or None)
    apply: Callable
    up_bits: int                # exact bits one peer sends per round
    error_feedback: bool = False


def layout(ctx: Context) -> sparse.Layout:
    dummy = jnp.zeros((1,) + tuple(ctx.spec.input_shape), jnp.float32)
    return sparse.layout(jax.eval_shape(ctx.model.init, jax.random.PRNGKey(0), dummy))


def server_update(recv_AxW, weight_A):
    """sum_i w_i C(u_i): the weights already zero the messages that were lost."""
    return jnp.tensordot(weight_A.astype(recv_AxW.dtype), recv_AxW, axes=1)


def make(ctx: Context, comp: Compressor, update=server_update, down_bits=None) -> Protocol:
    lspec = ctx.local_spec()
    lay = layout(ctx)

    def round_fn(state, data, root, r):
        keys = round_keys(root, r)
        idx = active_set(ctx, keys.active, data)
        fr = faults.for_round(ctx, data, root, r, idx)
        start = state.server
        state, sent_A, weight_A, info = fedavg.fedavg_step(ctx, lspec, state, data, keys, False, fr)
        x_W = sparse.flatten(start)
        u_AxW = sparse.flatten_stacked(sent_A) - x_W[None, :]
        err = sparse.flatten_stacked(peers.take(state.error, idx)) if comp.error_feedback else None
        recv_AxW, err_new = comp.apply(u_AxW, err, jax.random.fold_in(keys.server, COMPRESS_STREAM))
        # dropout: a peer whose message was lost keeps its new error buffer all the same (it cannot tell)
        server = lay.unravel(x_W + update(recv_AxW, weight_A))
        if fr is not None and fr.lost_A is not None:                     # nothing arrived: x stays
            server = jax.tree.map(lambda n, o: jnp.where(jnp.any(fr.sent_A), n, o), server, start)
        if comp.error_feedback:
            state = state._replace(error=peers.put(state.error, idx, sparse.unflatten_stacked(lay, err_new)))
        return state._replace(server=server), info

    W, b = ctx.num_params, ctx.cfg.comm.param_bits
    cost = fedavg.senders_cost(comm.RoundBits(comp.up_bits, comm.dense_params(W, b) if down_bits is None
                                              else down_bits, ctx.spec.active))
    return Protocol(init=lambda key, data: ctx.init_state(key, data, True, server=True,
                                                          error=comp.error_feedback),
                    round=round_fn, cost=cost, has_server=True)
