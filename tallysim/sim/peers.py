"""Stacked peer state: every leaf carries a leading peer axis P.

Peers are initialised by vmapping the model's `init` over keys (an ensemble, as in equinox's
filter_vmap docs), or by broadcasting one init when all peers must start from the same model.
"""
from __future__ import annotations

import re
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import custom_batching
import optax

from tallysim.sim import lanes

PyTree = Any


class State(NamedTuple):
    params: PyTree                 # [P, ...] each peer's model
    opt: PyTree                    # [P, ...] each peer's optimizer state
    server: Optional[PyTree]       # FedAvg family: the server model; bridge: theta_ref; else None
    error: Optional[PyTree]        # bridge: error-feedback buffers [P, ...]; else None
    votes: Optional[PyTree] = None  # bridge.vote_at=merge: the last vote, trained on next round (distill.py)
    # A protocol's own state: {name: tree}. On several devices an entry is placed as `server` is
    # (no peer axis) unless the protocol lists it in Protocol.peer_state (mesh.state_shardings).
    extra: Optional[dict] = None


PEER_FIELDS = ("params", "opt", "error")   # State fields with a peer axis; the others have none


def make_optimizer(optim, lr=None, momentum=None, weight_decay=None) -> optax.GradientTransformation:
    """The peers' optimizer from `optim` (OptimConfig); lr, momentum and weight_decay, when given, are
    this lane's values (possibly traced, lanes.py) in place of the config's; `nonzero` keeps a zero
    momentum or decay out of the program, as in a run of its own."""
    lr = optim.lr if lr is None else lr
    momentum = optim.momentum if momentum is None else momentum
    weight_decay = optim.weight_decay if weight_decay is None else weight_decay
    if optim.name == "sgd":
        base = optax.sgd(lr, momentum=momentum if lanes.nonzero(momentum) else None)
    else:
        base = optax.adam(lr)
    if lanes.nonzero(weight_decay):
        return optax.chain(optax.add_decayed_weights(weight_decay), base)
    return base


def init_params(model, key, peers: int, input_shape: tuple, shared: bool) -> PyTree:
    dummy = jnp.zeros((1,) + tuple(input_shape), jnp.float32)
    if shared:
        one = model.init(key, dummy)
        return broadcast(one, peers)
    return init_range(model, key, peers, 0, peers, input_shape)


def init_range(model, key, peers: int, lo: int, hi: int, input_shape: tuple) -> PyTree:
    """Peers lo..hi-1 of `peers` drawn apart (key split over all `peers`, so peer i's init is the one-model
    run's peer i's): a model group's peers (context.init_state), or every peer (init_params)."""
    dummy = jnp.zeros((1,) + tuple(input_shape), jnp.float32)
    one = lambda k: model.init(k, dummy)  # noqa: E731
    keys = jax.random.split(key, peers)[lo:hi]
    if runs_qr(one, keys[0]):
        # jaxlib 0.10.2's CPU QR (LAPACK geqrf, flax's orthogonal init of the LSTM's recurrent kernels),
        # batched, splits the batch over XLA's intra-op pool and blocks a pool thread until its pieces
        # finish; two such QRs (the LSTM's gates) on a 2-thread pool each held a thread and waited for
        # pieces queued behind the other: the run never finished (docs/text.md, "A run that hangs on a
        # CPU"). Drawn one peer at a time, at every vmap level (the lanes' too), each QR is a single
        # matrix and runs inline: the same LAPACK call on the same matrix, the same parameters to the bit.
        # The outer loop is for the lanes: programs.py vmaps the protocol's init over them.
        # A model group's LSTM peers were vmapped plainly until 2026-12-07 and hung so (userjourney15).
        return one_at_a_time(lambda k: jax.vmap(one_at_a_time(one))(jax.random.split(k, peers)[lo:hi]))(key)
    return jax.vmap(one)(keys)


def one_at_a_time(fn):
    """fn, but vmapped (at any depth) it loops over the batch (lax.map) instead of batching its ops."""
    @custom_batching.custom_vmap
    def f(x):
        return fn(x)

    @f.def_vmap
    def _rule(axis_size, in_batched, x):
        out = jax.lax.map(f, x) if in_batched[0] else f(x)
        return out, jax.tree.map(lambda _: in_batched[0], out)
    return f


def runs_qr(fn, *args) -> bool:
    """Does fn (traced, not run) compute a QR decomposition anywhere, nested calls included?"""
    return re.search(r"\b(qr|geqrf|householder_product)\[", str(jax.make_jaxpr(fn)(*args))) is not None


def broadcast(tree: PyTree, peers: int) -> PyTree:
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (peers,) + a.shape), tree)


def take(tree: PyTree, idx_A: Optional[jax.Array]) -> PyTree:
    """The active peers' slice of a stacked tree (idx None = all peers, no copy)."""
    if idx_A is None or tree is None:
        return tree
    return jax.tree.map(lambda a: a[idx_A], tree)


def put(tree: PyTree, idx_A: Optional[jax.Array], sub: PyTree) -> PyTree:
    """Write the active peers' slice back; inactive peers keep their state."""
    if idx_A is None or tree is None:
        return sub
    return jax.tree.map(lambda a, b: a.at[idx_A].set(b), tree, sub)


def weighted_mean(tree_A: PyTree, weight_A: jax.Array) -> PyTree:
    """Average over the leading axis with weights summing to one."""
    return jax.tree.map(lambda a: jnp.tensordot(weight_A.astype(a.dtype), a, axes=1), tree_A)


EVAL_STREAM = 0xE7A1      # the seed's stream for eval_sample=random (its other draws untouched)


def eval_sample(n: Optional[int], how: str, peers: int, seeds: list) -> Optional[np.ndarray]:
    """Which clients a run evaluates, per lane [Z, n] (sorted), or None for all of them. eval_sample=
    first: 0..n-1; random: n drawn uniformly without replacement once per seed (numpy, seeded by the
    seed and EVAL_STREAM), the same every evaluation, so a curve follows the same clients."""
    if n is None or n >= peers:
        return None
    if how == "first":
        return np.broadcast_to(np.arange(n, dtype=np.int32), (len(seeds), n))
    return np.stack([np.sort(np.random.default_rng([s, EVAL_STREAM]).choice(peers, n, replace=False))
                     for s in seeds]).astype(np.int32)


def sample_positions(own_ZxK: np.ndarray, pick_Zxn: np.ndarray) -> np.ndarray:
    """Per lane, each client's holding peer (own_ZxK, -1 for none) as its position in the lane's sorted
    eval sample (pick_Zxn), or -1 where that peer was not sampled: evaluate()'s own_K under eval_sample=random."""
    out = np.full(own_ZxK.shape, -1, np.int32)
    for z, (own, pick) in enumerate(zip(own_ZxK, pick_Zxn)):
        pos = np.clip(np.searchsorted(pick, own), 0, len(pick) - 1)
        out[z] = np.where((own >= 0) & (pick[pos] == own), pos, -1)
    return out


def eval_params(params_ZxP, pick_Zxn: Optional[np.ndarray], how: str, own_ZxK=None):
    """(the lanes' client models to evaluate, each client's own peer among them) from the stacked
    params [Z, P, ...] and `eval_sample`'s pick (None: all; params None: client_storage=auto, none)."""
    if pick_Zxn is None or params_ZxP is None:
        return params_ZxP, own_ZxK
    if how == "first":
        return jax.tree.map(lambda a: a[:, :pick_Zxn.shape[1]], params_ZxP), own_ZxK
    own = None if own_ZxK is None else jnp.asarray(sample_positions(np.asarray(own_ZxK), pick_Zxn))
    return jax.vmap(take)(params_ZxP, pick_Zxn), own


def nonfinite_peers(params_ZxP, lane: int, peers: int, groups: tuple = ()) -> Optional[list]:
    """The peers of chunk lane `lane` whose parameters hold a NaN or an inf: read to the host once, where
    a run stops on a non-finite training loss (never in the round loop), so the stop names the peer that
    diverged (the demo's seed 1 under softlabel: peer 0, in round 1). `groups` (model.groups): each
    group's (lo, hi) peers, whose models `params_ZxP` holds one tree each, [Z, hi - lo, ...], in group
    order. None where no parameters are held per peer (client_storage=auto keeps none: nonfinite_model
    reads the server's) or they are not stacked so."""
    trees = list(params_ZxP) if groups and isinstance(params_ZxP, (tuple, list)) else [params_ZxP]
    spans = list(groups) if groups else [(0, peers)]
    if params_ZxP is None or len(trees) != len(spans):
        return None
    bad = []
    for tree, (lo, hi) in zip(trees, spans):
        leaves = jax.tree_util.tree_leaves(tree)
        n = hi - lo
        if not leaves or any(leaf.ndim < 2 or leaf.shape[1] != n or lane >= leaf.shape[0] for leaf in leaves):
            return None
        ok_P = np.ones(n, bool)
        for leaf in leaves:
            ok_P &= np.asarray(jnp.isfinite(leaf[lane].reshape(n, -1)).all(axis=1))
        bad += (lo + np.flatnonzero(~ok_P)).tolist()
    return bad


def nonfinite_model(tree_Z, lane: int) -> Optional[bool]:
    """Whether a model held once per lane ([Z, ...]: the server's) holds a NaN or an inf in lane `lane`;
    None where there is none. Read once, at a non-finite stop, as nonfinite_peers."""
    leaves = jax.tree_util.tree_leaves(tree_Z) if tree_Z is not None else []
    if not leaves or any(leaf.ndim < 1 or lane >= leaf.shape[0] for leaf in leaves):
        return None
    return not all(bool(jnp.isfinite(leaf[lane]).all()) for leaf in leaves)
