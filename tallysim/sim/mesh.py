"""Past one device: a 1-D `jax.sharding.Mesh` over the devices, sharding a chunk's lane axis (seeds,
sweep configurations) or, when there are fewer lanes than devices, its peer axis.

Nothing else changes: the round is the same jitted function; its inputs are placed with
`NamedSharding`s and XLA's SPMD partitioner inserts the cross-device reductions (the vote count, the
soft-label mean, FedAvg's weighted mean, the bridge's merge) from those shardings. Lanes never talk to
each other, so a lane-sharded round needs no communication at all; a peer-sharded one reduces over
devices wherever the protocol sums over peers. Bits are unchanged: they are counted on the host.

Across hosts, `jax.distributed.initialize()` makes `jax.devices()` every process's devices; arrays are
built with `jax.make_array_from_callback` (each process holds the same host data), results are read
back with `process_allgather`, and only process 0 writes files (run.py).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from tallysim.config import ConfigError
from tallysim.sim.wait_note import WaitNote

AXIS = "devices"


class Placement(NamedTuple):
    mesh: Optional[Mesh]
    axis: Optional[str]          # "lane" | "peer" | None (one device)
    devices: int
    pad_lanes: int               # inactive lanes added so the lane count divides (copies, ignored)
    note: str                    # what config.json records


def available() -> int:
    return jax.device_count()


def check_devices(devices: Optional[int]) -> int:
    """The device count a run asks for (None: every device), refused in one line when JAX sees fewer;
    run and sweep call it before creating any directory."""
    have = available()
    n = have if devices is None else devices
    if n > have:
        raise ConfigError(f"devices={n} but JAX sees {have} device{'s' * (have != 1)}; allowed: 1..{have} "
                          "(or none for all)")
    return n


def plan(devices: Optional[int], lanes: int, peers: int) -> Placement:
    """How `lanes` lanes of `peers` peers go on `devices` devices (None: every device JAX sees)."""
    n = check_devices(devices)
    if n == 1:
        return Placement(None, None, 1, 0, "one device")
    mesh = Mesh(np.array(jax.devices()[:n]), (AXIS,))
    if lanes < n and peers % n == 0:
        return Placement(mesh, "peer", n, 0, f"peers sharded over {n} devices ({peers // n} each)")
    pad = -lanes % n
    note = f"lanes sharded over {n} devices"
    if pad:
        note += f"; {pad} inactive lane{'s' * (pad != 1)} added so {n} divides the lane count"
    return Placement(mesh, "lane", n, pad, note)


def _spec(ndim: int, axis: Optional[int]) -> PartitionSpec:
    parts = [None] * ndim
    if axis is not None:
        parts[axis] = AXIS
    return PartitionSpec(*parts)


def put(tree: Any, placement: Placement, axis: Optional[int]) -> Any:
    """Place every leaf of `tree`, sharding its dimension `axis` (None: replicated) over the mesh."""
    if placement.mesh is None or tree is None:
        return tree

    def one(a):
        if a is None:
            return None
        host = np.asarray(a)
        sharding = NamedSharding(placement.mesh, _spec(host.ndim, axis))
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])
    return jax.tree.map(one, tree)


WAIT_NOTE_S = 600.0     # a compiled program silent this long says so on stderr (not an error: big runs may)


def host(tree: Any, what: str = "") -> Any:
    """Leaves back on the host, from every process when they span several. Waiting for them is where a
    program XLA never finishes shows (docs/text.md, "A run that hangs on a CPU"): a wait of WAIT_NOTE_S
    seconds with the process idle says so on stderr (wait_note: a long stretch of rounds, `what`, working
    on a CPU says nothing), so such a hang is not silent."""
    with WaitNote(WAIT_NOTE_S, what, tree):
        return _fetch(tree)


def agree(flag: bool) -> bool:
    """Process 0's `flag`, in every process (one process: its own): a decision one process makes (a
    checkpoint due by process 0's clock, run.py) that every process acts on, together (gathering the
    state to save is a collective: process 0 alone waited for the others' parts for ever)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils
    return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))


def _fetch(tree: Any) -> Any:
    def one(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            from jax.experimental import multihost_utils
            return np.asarray(multihost_utils.process_allgather(a, tiled=True))
        return np.asarray(a)
    return jax.tree.map(one, jax.device_get(tree) if _addressable(tree) else tree)


def _addressable(tree) -> bool:
    return all(not isinstance(a, jax.Array) or a.is_fully_addressable for a in jax.tree.leaves(tree))


def per_device_bytes(tree: Any) -> int:
    """Bytes of `tree` held on one device (the first), to check a sharding's memory."""
    total = 0
    for a in jax.tree.leaves(tree):
        shards = a.addressable_shards
        total += shards[0].data.nbytes if shards else 0
    return total


def is_writer() -> bool:
    """Only process 0 writes run directories."""
    return jax.process_index() == 0


def _has_peer_axis(field: str) -> bool:
    """FedData fields are named by their shape letters (shard_H, count_P, offset_P, pool_Q): a lane field
    whose first letter is P has the peer axis right after the lane axis. The flat shard_H has none (a
    peer's indices lie anywhere in it): under peer sharding it is replicated, like the dataset."""
    return field.rsplit("_", 1)[-1].split("x")[0] == "P"


def fed_axes(data, seed_axes, placement: Placement) -> dict:
    """The sharded dimension of each FedData field (None: replicated)."""
    out = {}
    for name, lane in zip(data._fields, seed_axes):
        if lane is None or placement.axis is None:
            out[name] = None
        elif placement.axis == "lane":
            out[name] = 0
        else:
            out[name] = 1 if _has_peer_axis(name) else None
    return out


def put_fed(data, seed_axes, placement: Placement):
    """A chunk's FedData on the mesh: per-lane fields sharded by lane (or their peer axis), the
    dataset and test set replicated (every device reads any example)."""
    if placement.mesh is None:
        return data
    axes = fed_axes(data, seed_axes, placement)
    return data._replace(**{name: put(getattr(data, name), placement, axes[name]) for name in data._fields})


def state_shardings(state, placement: Placement, peer_state: tuple = ()):
    """NamedShardings of a State with a leading lane axis: the fields with a peer axis (peers.PEER_FIELDS,
    and the `extra` entries a protocol lists in `peer_state`) on their lane (or peer) axis; the others
    (the server model, the last vote, any other protocol state) on their lane axis, or replicated under
    peer sharding. Nothing here names a protocol: an undeclared entry is simply not peer-sharded."""
    from tallysim.sim.peers import PEER_FIELDS

    def tree(t, axis):
        return None if t is None else jax.tree.map(
            lambda a: NamedSharding(placement.mesh, _spec(a.ndim, axis)), t)
    peer_axis = 0 if placement.axis == "lane" else 1
    other_axis = 0 if placement.axis == "lane" else None
    out = {}
    for name in state._fields:
        value = getattr(state, name)
        if name == "extra" and value is not None:
            out[name] = {k: tree(v, peer_axis if k in peer_state else other_axis) for k, v in value.items()}
        else:
            out[name] = tree(value, peer_axis if name in PEER_FIELDS else other_axis)
    return state._replace(**out)


def replicated(placement: Placement):
    return NamedSharding(placement.mesh, PartitionSpec())


def lane_axis(placement: Placement) -> Optional[int]:
    """Where per-lane arrays without a peer axis (keys, traced values) are sharded."""
    return 0 if placement.axis == "lane" else None
