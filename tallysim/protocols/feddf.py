"""FedDF: ensemble distillation for robust model fusion (Lin et al. 2020, NeurIPS).

Each round is a FedAvg round (broadcast, local training, shard-size weighted average); then the server
distils the average (the student) toward the ensemble of the active peers' trained models on batches
of the public probe pool, inside the same compiled round:
  teacher = softmax(mean_i f_i(x) / T)            `feddf.target=logits` (default)
          = mean_i softmax(f_i(x) / T)            `feddf.target=probs`
  loss    = KL(teacher || softmax(student(x) / T)), T = `feddf.temperature`
for `feddf.steps` Adam steps (`feddf.lr`, cosine decay to 0) on `feddf.batch_size` probes each, drawn
from the pool with the round's server key. steps=0 is FedAvg exactly. The server reads the pool
itself, so the peers pay FedAvg's bits and nothing more. On next-token prediction the probes are token
sequences: the teacher and the KL are per position, averaged over the positions whose input is not PAD.

Shape letters: A active peers, B probe batch, C classes, Q pool size (glossary: tallysim/sim/__init__.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
import optax

from tallysim.fields import floats, ints
from tallysim.sim import faults, tasks
from tallysim.sim.fed import to_input, pool_examples
from tallysim.protocols import Traits, fedavg
from tallysim.protocols.base import Context, Protocol, active_set, round_keys

TRAITS = Traits(fedavg_family=True, client_state="", shared_init="it starts every peer from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True},
                reads=("fedavg", "feddf", "comm.param_bits"),
                sections={"feddf": "FedDFConfig"})


@dataclass(frozen=True)
class FedDFConfig:
    target: Literal["logits", "probs"] = "logits"
    temperature: float = floats(1.0, "(0, 1000]", lane=True)
    lr: float = floats(1e-3, "(0, 3.4e38]", lane=True)
    steps: int = ints(500, 0, 10_000_000)     # the bound is sizing.LIMITS["feddf.steps"] (tests check it)
    batch_size: int = ints(128)


def teacher_probs(logits_AxBxC: jax.Array, target: str, temperature: float, weight_A=None) -> jax.Array:
    """The ensemble's target distribution [B, C] (no gradient flows into it). weight_A (summing to
    one, or None = uniform): faults.kind=dropout leaves the lost models out."""
    logits_AxBxC = jax.lax.stop_gradient(logits_AxBxC)
    mean = (lambda a: jnp.mean(a, axis=0)) if weight_A is None else (lambda a: jnp.tensordot(weight_A, a, axes=1))
    if target == "logits":
        return jax.nn.softmax(mean(logits_AxBxC) / temperature, axis=-1)
    return mean(jax.nn.softmax(logits_AxBxC / temperature, axis=-1))


def student_loss(logits_BxC: jax.Array, teacher_BxC: jax.Array, temperature: float, keep=None) -> jax.Array:
    """Mean over the batch of KL(teacher || softmax(student / T)). Next-token probes ([B, pos, C]):
    the mean over the positions in `keep` (bool [B, pos]), those whose input is not PAD."""
    logp = jax.nn.log_softmax(logits_BxC / temperature, axis=-1)
    kl = jnp.sum(jax.scipy.special.xlogy(teacher_BxC, teacher_BxC) - teacher_BxC * logp, axis=-1)
    if keep is None:
        return jnp.mean(kl)
    w = keep.astype(kl.dtype)
    return jnp.sum(kl * w) / jnp.maximum(jnp.sum(w), 1.0)


def distill_server(ctx: Context, student, params_A, data, key, weight_A=None):
    """`feddf.steps` Adam steps of the student toward the ensemble (of the models in params_A,
    weighted by weight_A if given). Returns (student, last loss)."""
    cfg = ctx.cfg.feddf
    apply = ctx.model.apply
    text = tasks.of(ctx.spec).positions > 1
    Q = data.pool_Q.shape[0]
    tx = optax.adam(optax.cosine_decay_schedule(ctx.hp("feddf.lr"), cfg.steps))

    def step(carry, t):
        p, o = carry
        pick = jax.random.choice(jax.random.fold_in(key, t), Q, (cfg.batch_size,),
                                 replace=cfg.batch_size > Q)
        raw = pool_examples(data, pick)[0]
        x = to_input(raw)
        # next-token probes: every position is distilled except the padding of a client's last window,
        # read from the probe's own tokens (its labels stay hidden)
        keep = (raw != tasks.PAD) if text else None
        teacher = teacher_probs(jax.vmap(apply, in_axes=(0, None))(params_A, x),
                                cfg.target, ctx.hp("feddf.temperature"), weight_A)
        loss, grads = jax.value_and_grad(
            lambda w: student_loss(apply(w, x), teacher, ctx.hp("feddf.temperature"), keep))(p)
        updates, o = tx.update(grads, o, p)
        return (optax.apply_updates(p, updates), o), loss

    (student, _), losses = jax.lax.scan(step, (student, tx.init(student)), jnp.arange(cfg.steps))
    return student, losses[-1]


def make(ctx: Context) -> Protocol:
    lspec = ctx.local_spec()
    steps = ctx.cfg.feddf.steps

    def round_fn(state, data, root, r):
        keys = round_keys(root, r)
        fr = faults.for_round(ctx, data, root, r, active_set(ctx, keys.active, data))
        state, sent_A, _, info = fedavg.fedavg_step(ctx, lspec, state, data, keys, prox=False, fr=fr)
        if steps:    # steps=0: FedAvg exactly, statically
            if fr is None or fr.lost_A is None:
                server, info["feddf_loss"] = distill_server(ctx, state.server, sent_A, data, keys.server)
            else:    # dropout: the teacher is the ensemble of the models that arrived
                sent = fr.sent_A.astype(jnp.float32)
                w = sent / jnp.maximum(jnp.sum(sent), 1.0)
                server, info["feddf_loss"] = distill_server(ctx, state.server, sent_A, data, keys.server, w)
                server = jax.tree.map(lambda n, o: jnp.where(jnp.any(fr.sent_A), n, o), server, state.server)
            state = state._replace(server=server)
        return state, info

    return Protocol(init=lambda key, data: ctx.init_state(key, data, True, server=True),
                    round=round_fn, cost=fedavg.param_cost(ctx), has_server=True)
