"""Local training of all active peers at once: loops over steps, peers grouped by shard size.

Shape letters: A active peers, S largest shard, B private batch, R probe batch, M probes, T steps,
E epochs, G groups of peers, g peers per group, Z lanes (glossary: tallysim/sim/__init__.py).

Shards are ragged. Each epoch a peer draws a permutation that puts its own examples first and the
padding last, so the batches past its count are empty and the step is skipped (params and optimizer
state kept as they were). A small peer therefore takes fewer real steps and never trains on padding.
`train_peers` does not even compute those empty steps: it groups peers by their real step count and
walks each group's real steps only (see its docstring; `ragged_groups` in docs/config.md).
Distillation steps concatenate the private and the probe minibatch into one forward pass.
The schedules (which examples and probes a step reads) are local_schedule.py's, the losses a step is
scored against local_losses.py's; this module runs the steps.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from tallysim.sim import tasks
from tallysim.sim.fed import FedData, to_input
# what a step is scored against and which examples it reads, split from here (local.X, as before)
from tallysim.sim.local_losses import hard_label_loss, private_targets, soft_label_loss  # noqa: F401
from tallysim.sim.local_schedule import private_schedule, probe_schedule, real_steps

PyTree = Any


class Probes(NamedTuple):
    """This round's distillation targets, identical for every peer (star topology)."""
    x_M: jax.Array           # [M, ...] raw probe inputs
    target_M: jax.Array      # [M] int labels (tally) or [M, C] probabilities (softlabel)
    weight_M: jax.Array      # [M] float 0/1 (abstention drops probes)


class LocalSpec(NamedTuple):
    """Static knobs of one local-training call."""
    apply_fn: Callable
    tx: optax.GradientTransformation
    batch_size: int
    shard_max: int
    epochs: int = 1
    local_steps: Optional[int] = None
    distill_loss: Optional[Callable] = None   # (logits_RxC, target_R) -> loss_R
    distill_weight: float = 0.0
    probe_batch: int = 32
    prox_mu: Optional[float] = None           # FedProx: adds (mu/2)||w - anchor||^2 when not None
    groups: int = 1                           # peer groups by shard size, each with its own trip count
    # The lean step (`_fixed_steps`) where local_steps is set and nothing caps a peer: None = on any
    # backend but the CPU. Same arithmetic, but XLA fuses a different graph, so results differ by float
    # rounding (on the CPU, where every earlier run's bits are pinned, the masked step stays).
    lean: Optional[bool] = None
    task: Any = tasks.CLASSIFICATION          # sim/tasks.py: what the private loss averages over


def _masked_mean(values, weights):
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def _step_fn(spec: LocalSpec, data: FedData, probes, anchor, flip=None, linear=None, masked: bool = True):
    """One step of one peer: xs = (idx [B] | None, mask [B] | None, pidx [R] | None).
    idx/mask None = a probe-only step; pidx None = private-only. A step whose mask is all False is
    skipped exactly (params and optimizer state kept). `flip` (a traced bool, or None): the peer's
    private labels c are read as (c + 1) % C (faults.kind=label_flip). `linear` (a params-shaped tree,
    or None): adds <linear, w> to the loss, so the gradient is g + linear exactly (SCAFFOLD's drift
    correction c - c_i); the reported loss leaves that term out (it is a correction, not a loss).
    `masked=False`: every example of every step is real (the caller skips a peer without any as a
    whole, `_fixed_steps`): no mask, no skip, and the step returns (carry, loss)."""
    def step(carry, xs):
        p, o = carry
        idx, mask, pidx = xs
        if not masked and idx is not None:
            mask = jnp.ones(idx.shape[:1], bool)       # weights 1.0: the masked mean's own arithmetic
        parts = []
        if idx is not None:
            # Padding slots are zeroed, not just down-weighted: 0 * NaN is NaN, so a padded slot's
            # data must never reach the forward pass.
            x = to_input(data.x_train[idx])
            parts.append(jnp.where(mask.reshape((-1,) + (1,) * (x.ndim - 1)), x, 0.0) if masked else x)
        if pidx is not None:
            parts.append(to_input(probes.x_M[pidx]))

        def loss_fn(w):
            logits = spec.apply_fn(w, jnp.concatenate(parts) if len(parts) > 1 else parts[0])
            total, private = 0.0, 0.0
            if idx is not None:
                y, weights = private_targets(spec.task, data.y_train[idx], mask, flip, logits.shape[-1])
                ce = optax.softmax_cross_entropy_with_integer_labels(logits[:idx.shape[0]], y)
                private = _masked_mean(ce, weights)
                total = private
            if pidx is not None:
                dl = spec.distill_loss(logits[-pidx.shape[0]:], probes.target_M[pidx])
                total = total + spec.distill_weight * _masked_mean(dl, probes.weight_M[pidx])
            if spec.prox_mu is not None:
                sq = sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree.leaves(w), jax.tree.leaves(anchor)))
                total = total + 0.5 * spec.prox_mu * sq
            if linear is None:
                return total, total
            dot = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(linear), jax.tree.leaves(w)))
            return total + dot, total

        (_, loss), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
        updates, o_new = spec.tx.update(grads, o, p)
        p_new = optax.apply_updates(p, updates)
        if not masked:
            return (p_new, o_new), loss
        valid = jnp.any(mask) if idx is not None else jnp.array(True)
        keep = lambda new, old: jnp.where(valid, new, old)
        return (jax.tree.map(keep, p_new, p), jax.tree.map(keep, o_new, o)), (loss * valid, valid)
    return step


def _scan_steps(spec: LocalSpec, params, opt, data: FedData, probes, anchor, idx_TxB, mask_TxB, pidx_TxR):
    """Run T steps of one peer. idx/mask None = probe-only steps; pidx None = private-only."""
    step = _step_fn(spec, data, probes, anchor)
    (params, opt), (losses, valid) = jax.lax.scan(step, (params, opt), (idx_TxB, mask_TxB, pidx_TxR))
    return params, opt, jnp.sum(losses), jnp.sum(valid)


def _digest(spec: LocalSpec, params, opt, data: FedData, probes: Probes, anchor, key, epochs: int):
    """FedMD's digest (distill.order=sequential): `epochs` passes over the probes alone, before the
    private epochs. Returns (params, opt, loss_sum, steps)."""
    M = probes.x_M.shape[0]
    pidx = probe_schedule(key, M, epochs * math.ceil(M / spec.probe_batch), spec.probe_batch)
    new_p, new_o, loss_sum, steps = _scan_steps(spec, params, opt, data, probes, anchor, None, None, pidx)
    # No probe carries a target (fedct between exchanges and at its first, bridge.vote_at=merge's first
    # round, every vote lost or abstained): the digest does not run. Its zero-loss steps would still
    # move the weights by the optimizer's momentum and weight decay, and count in the mean loss.
    has = jnp.any(probes.weight_M > 0)
    keep = lambda n, o: jnp.where(has, n, o)
    return (jax.tree.map(keep, new_p, params), jax.tree.map(keep, new_o, opt), jnp.where(has, loss_sum, 0.0),
            jnp.where(has, steps, 0))


def train_peer(spec: LocalSpec, params, opt, key, shard_S, count, data: FedData,
               probes: Optional[Probes], anchor, sequential_epochs: int = 0):
    """One peer's local round over its whole padded schedule, empty steps masked: the reference that
    `train_peers` reproduces without computing the empty steps (and `bench`'s per-peer loop).
    Returns (params, opt, mean loss over the steps it took)."""
    k_private, k_probe = jax.random.split(key)
    idx, mask = private_schedule(spec, k_private, shard_S, count)
    loss_sum, n_steps = 0.0, 0
    pidx = None
    if probes is not None:
        M = probes.x_M.shape[0]
        if sequential_epochs:
            params, opt, loss_sum, n_steps = _digest(spec, params, opt, data, probes, anchor, k_probe,
                                                     sequential_epochs)
        else:
            # Index probe batches by the peer's *real* step count, so the padding of other (larger)
            # shards, or of other seeds batched alongside, never changes which probes a step sees.
            real_t = jnp.maximum(jnp.cumsum(jnp.any(mask, axis=1)) - 1, 0)
            pidx = probe_schedule(k_probe, M, idx.shape[0], spec.probe_batch, real_t)
    params, opt, ls, ns = _scan_steps(spec, params, opt, data, probes, anchor, idx, mask, pidx)
    loss_sum, n_steps = loss_sum + ls, n_steps + ns
    return params, opt, loss_sum / jnp.maximum(n_steps, 1)


def _ragged_peer(spec: LocalSpec, params, opt, key, shard_S, count, data: FedData, probes, anchor,
                 sequential_epochs: int, trip, n_real=None, flip=None, linear=None):
    """One peer's local round as `train_peer`, but walking only its real steps: step j reads row
    (j // n) * per_epoch + j % n of the schedule (n = its batches per epoch), so the padded rows are
    never computed. `trip` >= the peer's real steps (its group's longest); steps past its own are
    skipped exactly. `n_real` (None: `real_steps`) may cap them (faults.steps). Returns (params, opt,
    loss_sum, steps taken)."""
    k_private, k_probe = jax.random.split(key)
    idx_TxB, mask_TxB = private_schedule(spec, k_private, shard_S, count)
    loss_sum, n_steps = 0.0, 0
    order_M = None
    if probes is not None:
        M = probes.x_M.shape[0]
        if sequential_epochs:      # the digest phase is the same length for every peer: a plain scan
            params, opt, loss_sum, n_steps = _digest(spec, params, opt, data, probes, anchor, k_probe,
                                                     sequential_epochs)
        else:
            order_M = jax.random.permutation(k_probe, M)     # as probe_schedule, indexed by real step
    if spec.local_steps is not None and n_real is None and use_lean(spec):
        ls, ns, params, opt = _fixed_steps(spec, params, opt, data, probes, anchor, trip, idx_TxB, count,
                                           order_M, flip, linear)
        return params, opt, loss_sum + ls, n_steps + ns
    n_real = real_steps(spec, count) if n_real is None else n_real
    if spec.local_steps is not None:          # every row is a real step: row j is step j
        per_epoch = n_epoch = idx_TxB.shape[0]
    else:
        per_epoch = idx_TxB.shape[0] // spec.epochs
        n_epoch = jnp.maximum((count + spec.batch_size - 1) // spec.batch_size, 1)
    R = spec.probe_batch
    step = _step_fn(spec, data, probes, anchor, flip, linear)

    def body(c):
        j, p, o, ls, ns = c
        row = (j // n_epoch) * per_epoch + j % n_epoch
        pidx = None if order_M is None else order_M[(j * R + jnp.arange(R)) % order_M.shape[0]]
        (p, o), (loss, valid) = step((p, o), (idx_TxB[row], mask_TxB[row] & (j < n_real), pidx))
        return j + 1, p, o, ls + loss, ns + valid

    init = (jnp.int32(0), params, opt, jnp.float32(0.0), jnp.int32(0))
    _, params, opt, ls, ns = jax.lax.while_loop(lambda c: c[0] < trip, body, init)
    return params, opt, loss_sum + ls, n_steps + ns


def use_lean(spec: LocalSpec) -> bool:
    return spec.lean if spec.lean is not None else jax.default_backend() != "cpu"


def _fixed_steps(spec: LocalSpec, params, opt, data: FedData, probes, anchor, trip, idx_TxB, count, order_M,
                 flip, linear):
    """`_ragged_peer`'s walk when `local_steps` is set and nothing caps a peer's steps: then a peer with
    examples takes every row of its schedule and every slot is real, and a peer without takes none, so
    the mask is one bool per peer (count > 0), the same for every step. The step is then as lean as a
    plain `jit(vmap(scan))`'s (issue 35: no mask, no skip, no row arithmetic per step): a scan over the
    rows, a peer without examples kept as it was by ONE select after it, a group without any (trip 0)
    not run. For a peer with examples every step is the masked step's arithmetic on the same examples;
    the results still differ from it by float rounding, because XLA fuses the other graph differently
    (measured on the CPU: ~1e-7 relative), so it runs only where `LocalSpec.lean` says (not on the CPU
    by default, where earlier runs' bits are pinned). Returns (loss_sum, steps, params, opt)."""
    T, R = idx_TxB.shape[0], spec.probe_batch
    valid = count > 0
    pidx_TxR = None
    if order_M is not None:                  # as _ragged_peer's order_M[(j * R + arange(R)) % M], per row
        pidx_TxR = order_M[(jnp.arange(T)[:, None] * R + jnp.arange(R)[None, :]) % order_M.shape[0]]
    step = _step_fn(spec, data, probes, anchor, flip, linear, masked=False)

    def body(c, xs):
        p, o, ls = c
        (p, o), loss = step((p, o), (xs[0], None, xs[1]))
        return (p, o, ls + loss), None

    def run(p, o):
        (p, o, ls), _ = jax.lax.scan(body, (p, o, jnp.float32(0.0)), (idx_TxB, pidx_TxR))
        return p, o, ls

    # trip (the group's longest) is T when any peer of the group has examples, else 0: skip the group.
    p, o, ls = jax.lax.cond(trip > 0, run, lambda p, o: (p, o, jnp.float32(0.0)), params, opt)
    keep = lambda new, old: jnp.where(valid, new, old)
    params, opt = jax.tree.map(keep, p, params), jax.tree.map(keep, o, opt)
    return jnp.where(valid, ls, 0.0), jnp.where(valid, jnp.int32(T), 0), params, opt


def train_peers(spec: LocalSpec, params_A, opt_A, keys_A, shard_AxS, count_A, data: FedData,
                probes: Optional[Probes] = None, anchor=None, sequential_epochs: int = 0,
                flip_A=None, cap_A=None, linear_A=None):
    """All active peers in one program. Returns (params_A, opt_A, loss_A, steps) with
    steps = {"steps_real", "steps_computed"}: private steps taken and computed, summed over peers, and
    "stepped": the peers that took any step;
    loss_A: each peer's mean loss (`stepped_mean_fill`: a peer without steps reports the others' mean).

    Shards are ragged, and a vmapped loop runs as long as its longest lane. So the peers are sorted by
    their real step count and split into `spec.groups` equal groups (padded with idle lanes); a scan
    over the groups runs each as one vmapped while_loop whose trip count is that group's longest.
    Every peer takes exactly the steps of `train_peer`, in the same order.

    Faulty peers (faults.py): `flip_A` (bool [A]) reads those peers' private labels as (c + 1) % C;
    `cap_A` (int32 [A]) caps their private steps (the first cap_A of their schedule).
    `linear_A` (a params-shaped tree with a leading A axis, or None): each peer's linear loss term
    (SCAFFOLD, see _step_fn).
    """
    A = count_A.shape[0]
    n_A = real_steps(spec, count_A)
    if cap_A is not None:
        n_A = jnp.minimum(n_A, cap_A).astype(jnp.int32)
    G = max(1, min(spec.groups, A))
    g = -(-A // G)                                   # peers (vmapped lanes) per group
    order = jnp.argsort(-n_A, stable=True)           # longest first; idle padding lanes go last
    order = jnp.concatenate([order, jnp.zeros((G * g - A,), order.dtype)])
    live = jnp.arange(G * g) < A
    grouped = lambda a: a[order].reshape((G, g) + a.shape[1:])
    count_Gxg = jnp.where(live, count_A[order], 0).reshape(G, g)
    if cap_A is None and flip_A is None:
        trip_G = jnp.max(real_steps(spec, count_Gxg), axis=1)
        xs = (jax.tree.map(grouped, (params_A, opt_A, keys_A, shard_AxS, linear_A)), count_Gxg, trip_G)

        def group(_, x):
            (p, o, k, s, lin), c, trip = x
            run = lambda p, o, k, s, c, lin: _ragged_peer(spec, p, o, k, s, c, data, probes, anchor,
                                                          sequential_epochs, trip, linear=lin)
            return None, jax.vmap(run)(p, o, k, s, c, lin)
    else:
        n_Gxg = jnp.where(live, n_A[order], 0).reshape(G, g)
        flip = jnp.zeros((A,), bool) if flip_A is None else flip_A
        trip_G = jnp.max(n_Gxg, axis=1)
        xs = (jax.tree.map(grouped, (params_A, opt_A, keys_A, shard_AxS, flip, linear_A)), count_Gxg, n_Gxg,
              trip_G)

        def group(_, x):
            (p, o, k, s, f, lin), c, n, trip = x
            run = lambda p, o, k, s, c, n, f, lin: _ragged_peer(spec, p, o, k, s, c, data, probes, anchor,
                                                                sequential_epochs, trip, n,
                                                                None if flip_A is None else f, lin)
            return None, jax.vmap(run)(p, o, k, s, c, n, f, lin)

    _, (p, o, ls, ns) = jax.lax.scan(group, None, xs)
    # Back to the peers' own order; the idle lanes (duplicates of peer order[0]) are dropped.
    inv = jnp.argsort(order[:A])
    ungroup = lambda a: a.reshape((G * g,) + a.shape[2:])[:A][inv]
    params_A, opt_A = jax.tree.map(ungroup, (p, o))
    ns_A = ungroup(ns)
    loss_A = stepped_mean_fill(ungroup(ls), ns_A)
    # `stepped`: the peers that took a step (private or digest), so a round's loss where none did is
    # reported missing (results/rows.py), not stepped_mean_fill's 0, and not as a divergence (run.py)
    steps = {"steps_real": jnp.sum(n_A),
             "steps_computed": jnp.int32(g) * jnp.sum(trip_G),
             "stepped": jnp.sum(ns_A > 0).astype(jnp.int32)}
    return params_A, opt_A, loss_A, steps


def stepped_mean_fill(loss_sum_A, steps_A):
    """Each peer's mean loss over its steps. A peer that took none (an empty shard, faults.steps=0) reports
    the mean of those that did, so every mean over loss_A (train_loss, train_loss@NAME, a plugin's) is over
    the peers that trained (its 0 read 9 peers at 2.0 and an empty one as 1.8); 0 where none did (NaN would
    stop the run as diverged), which the row reports missing (train_peers' `stepped`). Where every peer stepped, loss_A is as before, bit for bit."""
    stepped = steps_A > 0
    loss_A = loss_sum_A / jnp.maximum(steps_A, 1)
    fill = jnp.sum(jnp.where(stepped, loss_A, 0.0)) / jnp.maximum(jnp.sum(stepped), 1)
    return jnp.where(stepped, loss_A, fill)
