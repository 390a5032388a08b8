"""Test accuracy of every peer, of the server model and of the peers' plurality vote.

Shape letters: P peers, V test examples, B eval batch, C classes (glossary: tallysim/sim/__init__.py).
The test set is walked in fixed batches with `lax.map`. The batch shrinks so one batch's [P, B, C]
float32 logits stay within `sizing.CHUNK_BYTES` (1,000 peers x 1,000 classes: 67 examples), and the
ensemble vote is a scatter-add into [B, C] counts, never a [P, B, C] one-hot.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from tallysim.sim import tasks as tasks_
from tallysim.sim.fed import to_input
from tallysim.sizing import eval_batch
from tallysim.sim.vote import count_votes


def evaluate(apply_fn, params_P, server, x_V, y_V, classes: int, batch: int = 500,
             task=tasks_.CLASSIFICATION) -> dict:
    """Accuracy over the targets the task scores (sim/tasks.py): every test example, or (next_token)
    every position whose target is not PAD, OOV, BOS or EOS. params_P None: the server model only
    (acc_P empty, acc_ensemble None)."""
    V = x_V.shape[0]
    stacked = params_P is not None
    if not stacked:       # client_storage=auto: no client's model outlives its round; the server's stands
        params_P = jax.tree.map(lambda a: a[None], server)     # in, and its per-peer numbers are dropped
    P = jax.tree.leaves(params_P)[0].shape[0]
    batch = min(eval_batch(P, classes * task.positions, batch), V)
    nb = math.ceil(V / batch)
    pad = nb * batch - V
    x = jnp.pad(x_V, ((0, pad),) + ((0, 0),) * (x_V.ndim - 1)).reshape((nb, batch) + x_V.shape[1:])
    y = jnp.pad(y_V, ((0, pad),) + ((0, 0),) * (y_V.ndim - 1), constant_values=-1
                ).reshape((nb, batch) + y_V.shape[1:])   # -1 never matches a class

    def one_batch(xy):
        xb, yb = xy
        xb = to_input(xb)
        pred_PxB = jnp.argmax(jax.vmap(apply_fn, in_axes=(0, None))(params_P, xb), axis=-1)
        if task.positions > 1:          # next_token: every position is one prediction
            pred_PxB, yb = pred_PxB.reshape(P, -1), yb.reshape(-1)
        ok_B = task.scored(yb)
        correct_P = jnp.sum((pred_PxB == yb[None, :]) & ok_B[None, :], axis=1)
        ensemble_B = jnp.argmax(count_votes(pred_PxB, classes), axis=-1)
        out = {"peer": correct_P, "ensemble": jnp.sum((ensemble_B == yb) & ok_B)}
        if task.positions > 1:
            out["scored"] = jnp.sum(ok_B)
        if server is not None:
            g = jnp.argmax(apply_fn(server, xb), axis=-1).reshape(yb.shape)
            out["global"] = jnp.sum((g == yb) & ok_B)
        return out

    sums = jax.tree.map(lambda a: jnp.sum(a, axis=0), jax.lax.map(one_batch, (x, y)))
    n = jnp.maximum(sums["scored"], 1) if task.positions > 1 else V
    return {
        "acc_P": sums["peer"] / n if stacked else jnp.zeros((0,), jnp.float32),
        "acc_ensemble": sums["ensemble"] / n if stacked else None,
        "acc_global": sums["global"] / n if server is not None else None,
    }
