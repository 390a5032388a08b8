"""The compiled programs of a chunk of lanes: the round (and a scan over rounds) vmapped over lanes, the
initial state, and the chunk's device inputs, placed on the mesh when there is one (mesh.py). This is
the jit boundary; run.py drives these programs round by round.
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from tallysim.build import Built
from tallysim.sim import fed, mesh


def round_programs(b: Built, state_sh=None, placement: Optional[mesh.Placement] = None):
    """(one round, a scan over rounds): the group's round vmapped over lanes, each compiled once per
    chunk (the scan once per distinct segment length). The scan keeps the rounds between two
    evaluations on the device; it returns every round's info, stacked. On several devices the state
    keeps its shardings (`state_sh`) and the info comes back replicated. The lanes a device holds
    (the chunk's, over the devices when lanes are sharded) share the exchange's chunk budget
    (Context.lanes), read from the keys' lane axis when the program is traced."""
    def one(state, data_c, keys, r, values):
        lanes = lanes_per_device(keys.shape[0], placement)
        return jax.vmap(lambda s, d, k, r, v: b.lane_protocol(v, lanes).round(s, d, k, r),
                        in_axes=(0, fed.SEED_AXES, 0, None, 0))(state, data_c, keys, r, values)

    def single(state, data_c, keys, rs, values):
        state, info = one(state, data_c, keys, rs[0], values)
        return state, jax.tree.map(lambda a: a[None], info)

    def scan(state, data_c, keys, rs, values):
        return jax.lax.scan(lambda s, r: one(s, data_c, keys, r, values), state, rs)

    if state_sh is None:
        return jax.jit(single, donate_argnums=0), jax.jit(scan, donate_argnums=0)
    out = (state_sh, mesh.replicated(placement))
    return (jax.jit(single, donate_argnums=0, out_shardings=out),
            jax.jit(scan, donate_argnums=0, out_shardings=out))


def lanes_per_device(lanes: int, placement: Optional[mesh.Placement]) -> int:
    """Of a program's `lanes` lanes, those one device holds (sharded over the devices on a lane mesh):
    they share the exchange's chunk budget and evaluation's batch budget (sizing.CHUNK_BYTES)."""
    if placement is not None and placement.axis == "lane":
        return max(1, lanes // placement.devices)
    return lanes


def initial_state(b: Built, placement: mesh.Placement):
    """The initial State of all lanes, placed as `placement` says (e.g. to check its memory)."""
    data_c, values, k_init, _, _, _ = chunk_inputs(b, 0, len(b.seeds), placement)
    init_fn = jax.vmap(lambda k, d, v: b.lane_protocol(v).init(k, d), in_axes=(0, fed.SEED_AXES, 0))
    if placement.mesh is None:
        return jax.jit(init_fn)(k_init, data_c, values)
    sh = mesh.state_shardings(jax.eval_shape(init_fn, k_init, data_c, values), placement,
                              b.protocol.peer_state)
    return jax.jit(init_fn, out_shardings=sh)(k_init, data_c, values)


def chunk_inputs(b: Built, lo: int, hi: int, placement: mesh.Placement):
    """The device inputs of lanes [lo, hi) (plus the placement's inactive copies of the last lane):
    (data, traced values, init keys, round keys, x_test, y_test), placed on the mesh if there is one."""
    idx = np.asarray(list(range(lo, hi)) + [hi - 1] * placement.pad_lanes)
    # every lane in order: the group's own data, not a gathered copy of its 10^7 shard indices
    every = len(idx) == len(b.seeds) and np.array_equal(idx, np.arange(len(b.seeds)))
    data_c = b.fed if every else fed.lane_take(b.fed, idx)
    roots = jnp.stack([jax.random.PRNGKey(b.seeds[j]) for j in idx])
    k_init, k_rounds = jnp.moveaxis(jax.vmap(jax.random.split)(roots), 1, 0)
    values = {k: v[idx] for k, v in b.values.items()}
    if placement.mesh is None:
        return (data_c, {k: jnp.asarray(v) for k, v in values.items()}, k_init, k_rounds,
                b.fed.x_test, b.fed.y_test)
    lane = mesh.lane_axis(placement)
    return (mesh.put_fed(data_c, fed.SEED_AXES, placement), mesh.put(values, placement, lane),
            mesh.put(k_init, placement, lane), mesh.put(k_rounds, placement, lane),
            mesh.put(b.fed.x_test, placement, None), mesh.put(b.fed.y_test, placement, None))


def eval_clients(b: Built, lo: int, hi: int, placement: mesh.Placement):
    """(the test examples' client ids [V], the peer holding each client [lanes, K]) of lanes [lo, hi)
    for evaluate()'s per-client metrics, placed like x_test; (None, None) on a dataset without clients."""
    if b.clients_test is None or b.own_clients is None:
        return None, None
    idx = list(range(lo, hi)) + [hi - 1] * placement.pad_lanes
    clients_V = jnp.asarray(b.clients_test, jnp.int32)
    own = jnp.asarray(np.stack([b.own_clients[j] for j in idx]))
    if placement.mesh is None:
        return clients_V, own
    return mesh.put(clients_V, placement, None), mesh.put(own, placement, mesh.lane_axis(placement))
