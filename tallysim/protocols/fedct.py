"""`fedct`: Federated Co-Training (Abourayya et al., "Little is
Enough: Boosting Privacy by Sharing Only Hard Labels in Federated Semi-Supervised Learning", AAAI 2025,
arXiv:2310.05696; code: github.com/kampmichael/distributedcotraining, `experiment.py` method AIMHI and
AIMHI-DP, `consensus.py`, `xor.py`).

Every `fedct.period` rounds (the paper's communication period b) each active peer sends its argmax
label on each probe (L = ceil(log2 C) bits); the server takes the majority vote (the authors'
`np.bincount(...).argmax()`, the lowest class on a tie: `vote.ties=lowest`, tally's tally) and sends the
pseudo-labels down. How it differs from tally:
- **when the pseudo-labels are trained on**: the authors' loop trains, then predicts, and the consensus
  of one communication round is trained on at the next one (`yconsensus` is computed from last period's
  `predictions`). So here an exchange round first trains on the previous exchange's pseudo-labels, then
  votes with the trained models and keeps that vote (State.votes) for the next exchange round (the same
  lag as `bridge.vote_at=merge`); the first exchange has no vote to train on. Tally trains on this
  round's vote of the models before training.
- **the period**: rounds between exchanges are private training only and send nothing (0 bits); the
  pseudo-labels are trained on in exchange rounds only, as the authors concatenate them only at
  `(t + 1) % comm_period == 0`. Those rounds compute no vote either (vote_if): their vote diagnostics
  are NaN (null in the row).
- **how they are combined with local data**: the authors concatenate the whole pseudo-labelled set U
  with the private minibatch for one step (one mean loss over the union). Here every local step of an
  exchange round adds a probe minibatch of the pseudo-labels: CE(private) + `distill.weight` * CE(probe,
  pseudo-label) (tally's loss; `distill.order=sequential` passes over the probes first instead). The
  union mean is this loss with weight |U| / B, scaled by B / (B + |U|).
- **which probes**: the paper pseudo-labels the whole public set U, the same every time: set
  `probe.resample=false` and `probe.per_round` to the pool size (experiments/matched_bits.json does);
  with resampling each exchange's vote is on that round's M probes, trained on at the next exchange.
- **privacy** (`fedct.xor_epsilon` = theta > 0, AIMHI-DP): before sending, each peer XORs its one-hot
  vote [M, C] with independent Bernoulli bits and sends the argmax of the result (the first 1; class 0
  when none is left: the authors' `torch.max(...)[1]` on the client, so the message stays L bits per
  probe). The XOR mechanism (Ji, Li, Yilmaz, Ayday, Ye and Sun, "Differentially Private Binary- and Matrix-Valued Data
  Query: An XOR Mechanism", VLDB 2021) with the diagonal Theta = theta I of the authors' `xor_noise`
  makes the bits independent: each is kept with probability e^theta / (1 + e^theta), flipped with
  q = 1 / (1 + e^theta) (randomised response). The authors' `xor_noise` draws the XOR bit B = 1 with
  probability e^theta / (1 + e^theta) (flips more often than not: the same epsilon, the bits inverted);
  here the conventional orientation. Their theta is `dp_s / (3000 sqrt(C))` (sens = 3000, Theta~ = I):
  set `fedct.xor_epsilon` to that to reproduce it.
  Epsilon (pure, delta = 0): one bit's likelihood ratio is at most (1 - q) / q = e^theta; two labels'
  one-hot rows differ in 2 bits, so one message (probe) is 2 theta-DP; replacing a peer's data may
  change all M rows, so one exchange is 2 M theta-DP for that peer (M: messages, per token on text). The
  privacy ledger (tallysim/privacy.py) composes the exchanges as 2M randomised responses each with
  dp-accounting's RDP accountant (epsilon at `privacy.delta`, at most 2 M theta per exchange).

Bits: exchange rounds as tally's (up M L per active peer, down M L, + M abstention bits with
`vote.min_agreement`/`vote.min_margin`); other rounds 0. Faults act on the votes as in tally. The
downlink under participation < 1 goes to the peers that train on the vote, the next exchange's cohort,
in that exchange (tally.lagged_vote_cost): the first exchange receives nothing, the last vote is never
sent down.

**`fedct.*`**: `period` [1] b, exchange every b rounds (rounds b, 2b, ...); `xor_epsilon` [0] theta, the
XOR mechanism's per-bit log-odds (0: off; a lane field).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from tallysim.fields import floats, ints
from tallysim.protocols import Traits
from tallysim.protocols.base import (Context, Protocol, active_set, draw_probes, exchanging, gate_agreement,
                                     local_round, loss_info, probe_exchange, round_keys)
from tallysim.protocols.distill import LAGGED, PendingVote, distill_factor, scaled, warmup_init
from tallysim.protocols.tally import lagged_vote_cost
from tallysim.sim import comm, faults, lanes, local, tasks
from tallysim.sim.fed import pool_examples
from tallysim.sim.local import hard_label_loss

# not vote.weighting (the trust-weighted vote is tally's) nor comm.topology (star only); privacy.noise is
# refused (its privacy is the XOR mechanism, validation.py), privacy.delta and accountant are read
TRAITS = Traits(distill=True, privacy="xor", defaults={"warmup_epochs": "local_epochs"},
                reads=("distill.weight", "distill.label_smoothing", "distill.order", "distill.epochs",
                       "distill.batch_size", "distill.ramp_rounds", "distill.gate", "vote.ties",
                       "vote.min_agreement", "vote.min_margin", "privacy.delta", "privacy.accountant"),
                sections={"fedct": "FedCTConfig"})

XOR_STREAM = 0xC7      # fold_in tag of the XOR bits (the round's other keys untouched)


@dataclass(frozen=True)
class FedCTConfig:
    period: int = ints(1, 1, 1_000_000)       # b: exchange in rounds b, 2b, 3b, ...
    xor_epsilon: float = floats(0.0, "[0, 100]", lane=True, nonzero=True)  # theta per bit; 0 = off


def flip_probability(theta):
    """q = 1 / (1 + e^theta): each bit of the one-hot vote is XORed with Bernoulli(q)."""
    return jax.nn.sigmoid(-jnp.asarray(theta, jnp.float32))


def xor_votes(votes_cxM, classes: int, theta, keys_c):
    """The XOR mechanism on c peers' votes, decoded as the authors decode: one-hot [c, M, C] XOR
    Bernoulli(q) bits (key per peer), then the first 1 of each row (class 0 if the row is all 0)."""
    q = flip_probability(theta)
    onehot = jax.nn.one_hot(votes_cxM, classes, dtype=jnp.bool_)
    flips = jax.vmap(lambda k: jax.random.bernoulli(k, q, votes_cxM.shape[1:] + (classes,)))(keys_c)
    return jnp.argmax(onehot ^ flips, axis=-1).astype(jnp.int32)


def no_vote(ctx: Context) -> PendingVote:
    spec, task = ctx.spec, tasks.of(ctx.spec)
    zeros = jnp.zeros((spec.messages,), jnp.int32)
    return PendingVote(jnp.zeros((spec.probes,), jnp.int32), task.unflatten(zeros, spec.probes),
                       task.unflatten(zeros.astype(jnp.float32), spec.probes), jnp.float32(0.0))


def missing(fn, *args) -> dict:
    """The info `fn(*args)` would return, every value missing: NaN floats (null in the row, left out of
    tables and trackers), 0 for integers (senders: no vote was sent)."""
    shapes = jax.eval_shape(fn, *args)[1]
    return {k: jnp.full(v.shape, jnp.nan if jnp.issubdtype(v.dtype, jnp.floating) else 0, v.dtype)
            for k, v in shapes.items()}


def vote_if(exchange, vote_round, state):
    """vote_round(state) in an exchange round; between exchanges the kept vote and missing(): the probes'
    forward passes and the vote (A x M predictions) are skipped. r is the same for every lane (programs.py
    vmaps it with in_axes None), so `exchange` is unbatched and this stays a branch at run time, not a
    select that computes both."""
    return jax.lax.cond(exchange, vote_round, lambda s: (s.votes, missing(vote_round, s)), state)


def make(ctx: Context) -> Protocol:
    cfg, spec = ctx.cfg, ctx.spec
    period = cfg.fedct.period
    theta = ctx.hp("fedct.xor_epsilon")
    private = lanes.nonzero(theta)           # 0 compiles the program without the mechanism
    lspec = ctx.local_spec(distill_loss=hard_label_loss(spec.classes, ctx.hp("distill.label_smoothing")))
    sequential = cfg.distill.epochs if cfg.distill.order == "sequential" else 0

    def round_fn(state, data, root, r):
        keys = round_keys(root, r, cfg.probe.resample)
        idx = active_set(ctx, keys.active, data)     # data: participation_rule=size reads the shard sizes
        fr = faults.for_round(ctx, data, root, r, idx)
        exchange = (r % period) == 0
        probes, lspec_r, seq, f = None, lspec, 0, None
        if exchanging(ctx):
            pv = state.votes
            x_M, _ = pool_examples(data, pv.pidx_M)
            # the last exchange's pseudo-labels, in exchange rounds only (weight 0 otherwise: the same
            # program every round)
            probes = local.Probes(x_M, pv.target_M, pv.weight_M * exchange.astype(jnp.float32))
            f = distill_factor(cfg, r, pv.agreement, ctx.hp)
            lspec_r, seq = scaled(lspec, f), sequential
        params, opt, _, loss_A, steps = local_round(ctx, lspec_r, state, data, keys, idx, probes=probes,
                                                    sequential_epochs=seq, fr=fr)
        state = state._replace(params=params, opt=opt)
        vote_fn = None
        if private:
            k_xor = jax.random.fold_in(keys.tie, XOR_STREAM)

            def vote_fn(ids_c, z):
                keys_c = jax.vmap(lambda i: jax.random.fold_in(k_xor, i))(ids_c)
                sent = xor_votes(jnp.argmax(z, axis=-1), spec.classes, theta, keys_c)
                return jnp.where(jax.nn.one_hot(sent, spec.classes, dtype=jnp.bool_), 0.0, -1e9)

        def vote_round(state):
            """The exchange: the trained models' vote on the round's probes, (the vote to keep, info)."""
            new, info = probe_exchange(ctx, state, data, keys, idx, hard=True, fr=fr, vote_fn=vote_fn)
            if not exchanging(ctx):
                info.pop("senders", None)
                return state.votes, info
            return PendingVote(draw_probes(ctx, data, keys.probe).astype(jnp.int32), new.target_M.astype(jnp.int32),
                               new.weight_M.astype(jnp.float32), gate_agreement(info).astype(jnp.float32)), info
        votes, info = vote_round(state) if period == 1 else vote_if(exchange, vote_round, state)
        state = state._replace(votes=votes)
        if exchanging(ctx):
            # the vote trained on this round, for lagged_vote_cost: one formed (agreement > 0: at least
            # one of its messages arrived; no_vote's is 0), delivered in an exchange round
            info[LAGGED] = (exchange & (pv.agreement > 0)).astype(jnp.int32)
            if f is not None:
                info["distill_factor"] = f
        info["exchanged"] = exchange.astype(jnp.int32)
        info.update(loss_info(ctx, loss_A, steps))
        info.update(steps)
        info.update(faults.info(fr))
        return state, info

    def init(key, data):
        return warmup_init(ctx, key, data)._replace(votes=no_vote(ctx))

    def cost(info) -> comm.RoundBits:
        if not int(info.get("exchanged", 1)):      # no round yet (Driver.bits()): an exchange round's
            return comm.RoundBits(0, 0, spec.active)
        return lagged_vote_cost(ctx, info)

    return Protocol(init=init, round=round_fn, cost=cost, row_keys={"exchanged": int})
