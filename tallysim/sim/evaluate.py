"""Test accuracy of every peer, of the server model and of the peers' plurality vote; on next-token
tasks also the perplexity, and on datasets with clients the per-client counts (client_metrics below).

Shape letters: P peers, V test examples, B eval batch, C classes (glossary: tallysim/sim/__init__.py).
The test set is walked in fixed batches with `lax.map`. The batch shrinks so one batch's [P, B, C]
float32 logits and the forward passes that make them, over the lanes evaluated together on a device,
stay within `sizing.CHUNK_BYTES` (1,000 peers x 1,000 classes, one lane, logits alone: 67 examples;
fig12's 30 peers, 10 of them CNNs on 28x28 images: their feature maps bind, 11), and the
ensemble vote is a scatter-add into [B, C] counts, never a [P, B, C] one-hot.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from tallysim.sim import activations, tasks as tasks_
from tallysim.sim.fed import to_input
from tallysim.sizing import eval_batch, eval_hidden_bytes
from tallysim.sim.vote import count_votes


def evaluate(apply_fn, params_P, server, x_V, y_V, classes: int, batch: int = 500,
             task=tasks_.CLASSIFICATION, clients_V=None, own_K=None, lanes: int = 1) -> dict:
    """Accuracy over the targets the task scores (sim/tasks.py): every test example, or (next_token)
    every position whose target is not PAD, OOV, BOS or EOS.

    next_token also sums the cross-entropy over the non-PAD target positions (the positions the
    training loss averages over, OOV and EOS included: a language model is charged for every token it
    must predict) for `ppl_P` / `ppl_global` = exp(that sum / their count), one number over the whole
    test set (not a mean of per-sequence perplexities).

    clients_V (int32 [V], the test examples' client ids 0..K-1) with own_K (int32 [K], the peer holding
    client k, partition.kind=natural; -1 for none) adds per-client counts (client_metrics).

    model.groups: `apply_fn` and `params_P` are tuples, one per group; peers are in group order and
    the ensemble votes over all of them.

    lanes: the lanes one program vmaps this over on a device (run.py); they hold their [P, B, C]
    batches at the same time, so the batch budget covers them all (sizing.eval_batch).

    params_P None (client_storage=auto: no client's model outlives its round): the server model only;
    acc_P and ppl_P are then empty, acc_ensemble None, and no client has an own model."""
    V = x_V.shape[0]
    stacked = params_P is not None
    if not stacked:       # the server's model stands in, and its per-peer numbers are dropped below
        params_P = jax.tree.map(lambda a: a[None], server)
        own_K = None if own_K is None else jnp.full_like(own_K, -1)
    grouped = isinstance(apply_fn, tuple)
    applies, stacks = (apply_fn, params_P) if grouped else ((apply_fn,), (params_P,))
    P = sum(jax.tree.leaves(p)[0].shape[0] for p in stacks)
    batch = _batch_size(applies, stacks, x_V, P, classes, task, batch, lanes)
    text = task.positions > 1           # next_token: every position is one prediction
    per_client = clients_V is not None and own_K is not None
    x, y, k = _batches(x_V, y_V, clients_V if per_client else None, batch)

    def one_batch(xyk):
        xb, yb, kb = xyk
        xb = to_input(xb)
        zs = [jax.vmap(f, in_axes=(0, None))(p, xb) for f, p in zip(applies, stacks)]
        z_PxB = zs[0] if len(zs) == 1 else jnp.concatenate(zs)
        pred_PxB = jnp.argmax(z_PxB, axis=-1)
        y_seq = yb                      # [B] or [B, pos]: per test example, for the per-client sums
        if text:
            pred_PxB, yb = pred_PxB.reshape(P, -1), yb.reshape(-1)
        ok_B = task.scored(yb)
        hit_PxB = (pred_PxB == yb[None, :]) & ok_B[None, :]
        out = {"peer": jnp.sum(hit_PxB, axis=1),
               "ensemble": jnp.sum((jnp.argmax(count_votes(pred_PxB, classes), axis=-1) == yb) & ok_B)}
        if text:
            out["scored"] = jnp.sum(ok_B)
            out["ce_peer"], out["tokens"] = _cross_entropy(z_PxB.reshape(P, -1, classes), yb)
        g_hit = None
        if server is not None:
            z = apply_fn(server, xb)
            g_hit = (jnp.argmax(z, axis=-1).reshape(yb.shape) == yb) & ok_B
            out["global"] = jnp.sum(g_hit)
            if text:
                out["ce_global"] = _cross_entropy(z.reshape(1, -1, classes), yb)[0][0]
        if per_client:
            out.update(client_metrics(kb, y_seq.shape, ok_B, g_hit, hit_PxB, own_K))
        return out

    sums = jax.tree.map(lambda a: jnp.sum(a, axis=0), jax.lax.map(one_batch, (x, y, k)))
    n = jnp.maximum(sums["scored"], 1) if text else V
    out = {
        "acc_P": sums["peer"] / n if stacked else jnp.zeros((0,), jnp.float32),
        "acc_ensemble": sums["ensemble"] / n if stacked else None,
        "acc_global": sums["global"] / n if server is not None else None,
    }
    if text:
        tokens = jnp.maximum(sums["tokens"], 1)
        out["ppl_P"] = jnp.exp(sums["ce_peer"] / tokens) if stacked else jnp.zeros((0,), jnp.float32)
        out["ppl_global"] = jnp.exp(sums["ce_global"] / tokens) if server is not None else None
    if per_client:
        out.update({key: sums[key] for key in CLIENT_KEYS if key in sums})
        out["client_held_K"] = (own_K >= 0) & (own_K < P)       # eval_peers: the peers evaluated
    return out


def _batch_size(applies, stacks, x_V, P: int, classes: int, task, batch: int, lanes: int) -> int:
    """Test examples per step: the batch's logits and its forward passes within the budget (a conv
    model's feature maps, not its logits, are most of what evaluation holds: sizing.eval_hidden_bytes;
    traced, nothing compiled), at most every example."""
    logits = 4 * classes * task.positions
    forwards = [(jax.tree.leaves(p)[0].shape[0], activations.stacked_peak(f, p, x_V.shape[1:])) for f, p in zip(applies, stacks)]
    hidden = eval_hidden_bytes([(n, peak) for n, (peak, _) in forwards], forwards[0][1][1], logits)
    return min(eval_batch(P, classes * task.positions, batch, lanes=lanes, hidden=hidden), x_V.shape[0])


def _batches(x_V, y_V, clients_V, batch: int):
    """x, y and the client ids (zeros [nb, 1] without them) as [nb, batch, ...], the last batch padded:
    a padded example's target is -1, which never matches a class, so it is never scored."""
    V = x_V.shape[0]
    nb = math.ceil(V / batch)
    pad = nb * batch - V
    x = jnp.pad(x_V, ((0, pad),) + ((0, 0),) * (x_V.ndim - 1)).reshape((nb, batch) + x_V.shape[1:])
    y = jnp.pad(y_V, ((0, pad),) + ((0, 0),) * (y_V.ndim - 1), constant_values=-1
                ).reshape((nb, batch) + y_V.shape[1:])
    k = (jnp.pad(clients_V, (0, pad), constant_values=0).reshape(nb, batch) if clients_V is not None
         else jnp.zeros((nb, 1), jnp.int32))
    return x, y, k


def _cross_entropy(z_PxNxC, y_N):
    """(per-peer sum of -log softmax(z)[y] over the non-PAD targets [P], their count): in float32,
    as logsumexp - the target's logit (no [P, N, C] log-probabilities held)."""
    z = z_PxNxC.astype(jnp.float32)
    keep_N = (y_N != tasks_.PAD) & (y_N >= 0)
    picked = jnp.take_along_axis(z, jnp.clip(y_N, 0)[None, :, None], axis=-1)[..., 0]
    ce_PxN = jax.nn.logsumexp(z, axis=-1) - picked
    return jnp.sum(jnp.where(keep_N[None, :], ce_PxN, 0.0), axis=1), jnp.sum(keep_N)


# evaluate()'s per-client outputs, each [K]: scored targets, the server's hits, the own peer's hits
# (and client_held_K: an evaluated peer holds the client).
CLIENT_KEYS = ("client_scored_K", "client_global_K", "client_own_K")


def client_metrics(k_B, example_shape, ok_N, g_hit_N, hit_PxN, own_K) -> dict:
    """Per-client sums of one test batch, by one segment sum over the batch's examples (no loop over
    clients): k_B the examples' client ids; ok_N / g_hit_N / hit_PxN the scored targets, the server's
    and every evaluated peer's hits, flattened over positions (N = B * pos).

    client_own_K counts, on client k's test data, the hits of the peer that holds client k (own_K[k],
    partition.kind=natural: peer i IS a client; its own model on its own test data); a client no
    evaluated peer holds (own_K -1, or a peer past eval_peers) gets 0 and is left out by the reader."""
    B = example_shape[0]
    per_ex = lambda a: a.reshape(B, -1).sum(axis=1)          # noqa: E731  positions -> example
    seg = lambda a: jax.ops.segment_sum(per_ex(a).astype(jnp.int32), k_B,     # noqa: E731
                                        num_segments=own_K.shape[0])
    out = {"client_scored_K": seg(ok_N)}
    if g_hit_N is not None:
        out["client_global_K"] = seg(g_hit_N)
    P = hit_PxN.shape[0]
    own_B = own_K[k_B]
    mine_B = (own_B >= 0) & (own_B < P)
    hit_BxN = hit_PxN.reshape(P, B, -1)[jnp.clip(own_B, 0, P - 1), jnp.arange(B)]   # the own peer's row
    out["client_own_K"] = seg(hit_BxN & mine_B[:, None])
    return out
