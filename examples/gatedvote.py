"""`gatedvote`: TallyTrain's plurality vote, in which a peer votes only when its own model passes a
local check: its accuracy on a sample of its own shard (the `sample` first examples) is at least
`threshold`. A peer under it sends nothing that round; if no peer passes, every peer votes (plain
tally). The vote-type example plugin (beside fedmix.py, FedAvg-type, and softsharp.py, soft labels):
a round written from tallysim's building blocks rather than from `distill_round`, because it changes
who votes (docs/write-a-protocol.md, "A vote-type plugin").

It tests the paper's argument ("under-trained, confidently wrong peers: a vote filters them") with a
filter the peers can apply themselves. What it found at a small size (docs/write-a-protocol.md): the
own-shard check passes nearly every peer under label skew (a one-class peer is right on its own data),
so it votes as tally; a high threshold leaves one or two voters and loses accuracy.

    PYTHONPATH=examples tallysim run --config experiments/quick.json --plugin gatedvote protocol.name=gatedvote gatedvote.threshold=0.8 --out runs/gated

Bits: tally's, ceil(log2 C) per probe, counted for the peers that voted only (comm.with_senders); every
peer receives the vote. `threshold=0` is tally, number for number (tests/test_userjourney_dec16.py).
Images only (classification, one model, no faults): the others are refused when the run is built.
The peers' probe predictions are one [A, M, C] array (tally's exchange streams them in chunks): fine
at plugin sizes, not at 10^4 classes.

**`gatedvote.*`**: `threshold` [0.5] in [0, 1]: the own-shard accuracy a peer needs to vote (a grouped
sweep may vary it across the lanes of one program); `sample` [64] in 1..4096: how many of its shard's
examples a peer scores itself on.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from tallysim.fields import floats, ints
from tallysim.protocols import Traits, tally
from tallysim.protocols.base import Context, Protocol, active_set, draw_probes, exchanging, round_keys
from tallysim.protocols.distill import warmup_init
from tallysim.protocols.round_helpers import local_round
from tallysim.sim import comm, local
from tallysim.sim.fed import cohort_shards, pool_examples, to_input

PROTOCOLS = {"gatedvote": "make"}         # protocol.name -> the factory below

# distill=True: warm-up, probes and their validation as tally's; reads: only the distillation knobs this
# round applies (a vote.*, ramp or gate setting it would ignore is refused in one line)
TRAITS = Traits(distill=True, defaults={"warmup_epochs": "local_epochs"},
                reads=("distill.weight", "distill.label_smoothing", "distill.batch_size"),
                sections={"gatedvote": "GatedVoteConfig"})


@dataclass(frozen=True)
class GatedVoteConfig:                    # the `gatedvote.*` config section
    threshold: float = floats(0.5, "[0, 1]", lane=True)
    sample: int = ints(64, 1, 4096)


def own_accuracy(apply_own, params_A, data, idx, sample: int, shard_max: int):
    """[A] each active peer's accuracy on the first `sample` examples of its own shard (fewer if it has
    fewer; a peer with none scores 0)."""
    shard = cohort_shards(data, idx, shard_max)[:, :sample]                    # [A, K] indices
    count = data.count_P if idx is None else data.count_P[idx]
    real = (jnp.arange(shard.shape[1])[None, :] < count[:, None]).astype(jnp.float32)
    hit = (jnp.argmax(apply_own(params_A, to_input(data.x_train[shard])), -1) == data.y_train[shard])
    return (hit * real).sum(1) / jnp.maximum(real.sum(1), 1.0)


def make(ctx: Context) -> Protocol:
    if ctx.model_groups or ctx.spec.task != "classification" or ctx.cfg.faults.kind != "none":
        raise ValueError("gatedvote runs one model on an image task without faults (model.groups, text "
                         "tasks and faults.* are tally's, not this example's)")
    C = ctx.spec.classes
    threshold = ctx.hp("gatedvote.threshold")       # a constant, or this lane's value in a grouped sweep
    K = min(ctx.cfg.gatedvote.sample, ctx.spec.shard_max)
    lspec = ctx.local_spec(distill_loss=local.hard_label_loss(C, ctx.hp("distill.label_smoothing")))
    on_probes = jax.vmap(ctx.model.apply, in_axes=(0, None))     # every peer on the same probes
    on_own = jax.vmap(ctx.model.apply)                           # each peer on its own examples

    def round_fn(state, data, root, r):
        keys = round_keys(root, r, ctx.cfg.probe.resample)
        idx = active_set(ctx, keys.active, data)                 # None: every peer takes part
        params_A = state.params if idx is None else jax.tree.map(lambda p: p[idx], state.params)
        passes = own_accuracy(on_own, params_A, data, idx, K, ctx.spec.shard_max) >= threshold
        voter_A = jnp.where(passes.any(), passes, True).astype(jnp.float32)   # nobody passes: all vote
        x_M, y_M = pool_examples(data, draw_probes(ctx, data, keys.probe))
        logits = on_probes(params_A, to_input(x_M))                            # [A, M, C]
        counts_MxC = jnp.einsum("a,amc->mc", voter_A, jax.nn.one_hot(jnp.argmax(logits, -1), C))
        winner_M = jnp.argmax(counts_MxC, -1)            # plurality; a tie goes to the lowest class, as tally's
        softavg_M = jnp.argmax(jnp.einsum("a,amc->mc", voter_A, jax.nn.softmax(logits, -1)), -1)
        probes = local.Probes(x_M, winner_M, jnp.ones(winner_M.shape, jnp.float32)) if exchanging(ctx) else None
        params, opt, _, loss_A, steps = local_round(ctx, lspec, state, data, keys, idx, probes=probes)
        info = {"train_loss": jnp.mean(loss_A), **steps,
                "consensus_acc": jnp.mean(winner_M == y_M), "vote_acc": jnp.mean(winner_M == y_M),
                "softavg_acc": jnp.mean(softavg_M == y_M),
                "agreement": jnp.mean(counts_MxC.max(-1)) / voter_A.sum(),
                "voters": voter_A.sum()}
        return state._replace(params=params, opt=opt), info

    def cost(info) -> comm.RoundBits:    # tally's bits, uploads from the voters only
        return comm.with_senders(tally.vote_bits(ctx), int(round(float(info["voters"]))))

    return Protocol(init=lambda key, data: warmup_init(ctx, key, data), round=round_fn, cost=cost,
                    row_keys={"voters": float})
