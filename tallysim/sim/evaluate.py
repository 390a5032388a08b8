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
    every position whose target is not PAD, OOV, BOS or EOS. model.groups: `apply_fn` and `params_P`
    are tuples, one per group; peers are in group order and the ensemble votes over all of them."""
    V = x_V.shape[0]
    grouped = isinstance(apply_fn, tuple)
    applies, stacks = (apply_fn, params_P) if grouped else ((apply_fn,), (params_P,))
    P = sum(jax.tree.leaves(p)[0].shape[0] for p in stacks)
    batch = min(eval_batch(P, classes * task.positions, batch), V)
    nb = math.ceil(V / batch)
    pad = nb * batch - V
    x = jnp.pad(x_V, ((0, pad),) + ((0, 0),) * (x_V.ndim - 1)).reshape((nb, batch) + x_V.shape[1:])
    y = jnp.pad(y_V, ((0, pad),) + ((0, 0),) * (y_V.ndim - 1), constant_values=-1
                ).reshape((nb, batch) + y_V.shape[1:])   # -1 never matches a class

    def one_batch(xy):
        xb, yb = xy
        xb = to_input(xb)
        preds = [jnp.argmax(jax.vmap(f, in_axes=(0, None))(p, xb), axis=-1) for f, p in zip(applies, stacks)]
        pred_PxB = preds[0] if len(preds) == 1 else jnp.concatenate(preds)
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
        "acc_P": sums["peer"] / n,
        "acc_ensemble": sums["ensemble"] / n,
        "acc_global": sums["global"] / n if server is not None else None,
    }
