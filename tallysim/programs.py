"""The compiled programs of a chunk of lanes: the round (and a scan over rounds) vmapped over lanes, the
initial state, and the chunk's device inputs, placed on the mesh when there is one (mesh.py). This is
the jit boundary; run.py drives these programs round by round. `chunk_programs` (moved from run.py) makes a
chunk's set of them once per run and chunk width.
"""
from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from tallysim.build import Built
from tallysim.sim import fed, mesh, tasks
from tallysim.sim.evaluate import evaluate


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


def chunk_programs(b: Built, placement: mesh.Placement, lanes: int, k_init, data_c, values) -> dict:
    """A chunk's jitted programs (init, one round, a scan over rounds, evaluation) and the state's
    shardings (None on one device), made once per run and chunk width: a run's seed chunks of equal
    width (seed_chunk < seeds) reuse them, where each chunk traced all four afresh before (4 seeds with
    seed_chunk=1: 6.3 -> 2.8 s of CPU on a tiny run). Safe: they close over this run's Built only, whose
    protocol and Context every chunk shares; a chunk's data, keys and lane values are their arguments.
    On a mesh the state's shardings come from its shape, and they are made afresh (no reuse)."""
    key = programs_key(b, placement, lanes)
    if placement.mesh is None and key in b.programs:
        return b.programs[key]
    ctx = b.ctx
    init_fn = jax.vmap(lambda k, d, v: b.lane_protocol(v).init(k, d), in_axes=(0, fed.SEED_AXES, 0))
    state_sh = None
    if placement.mesh:
        shape = jax.eval_shape(init_fn, k_init, data_c, values)
        state_sh = mesh.state_shardings(shape, placement, b.protocol.peer_state)
    single, scan = round_programs(b, state_sh, placement)
    apply = tuple(g.model.apply for g in ctx.model_groups) if ctx.model_groups else ctx.model.apply
    # the lanes a device evaluates together share the batch budget, as their exchange chunks do
    ev_one = functools.partial(evaluate, apply, classes=ctx.spec.classes, task=tasks.of(ctx.spec),
                               lanes=lanes_per_device(lanes + placement.pad_lanes, placement))
    evaluate_lanes = jax.vmap(lambda p, s, x, y, k, own: ev_one(p, s, x, y, clients_V=k, own_K=own),
                              in_axes=(0, 0, None, None, None, 0))
    progs = dict(init=jax.jit(init_fn, out_shardings=state_sh) if state_sh else jax.jit(init_fn),
                 state_sh=state_sh, single=single, scan=scan,
                 eval=(jax.jit(evaluate_lanes, out_shardings=mesh.replicated(placement)) if placement.mesh
                       else jax.jit(evaluate_lanes)))
    if placement.mesh is None:
        b.programs[key] = progs
    return progs


def programs_key(b: Built, placement: mesh.Placement, lanes: int) -> tuple:
    return lanes, placement.pad_lanes, id(b.protocol)      # b.programs' key: a chunk's width, padding, protocol
