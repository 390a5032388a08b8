"""What every protocol shares: the interface, the round's keys, the active set, and the probe exchange.

A protocol is a NamedTuple of pure functions (the optax factory shape):
  init(key, data) -> State                       all peers, stacked
  round(state, data, root_key, r) -> (State, info)   one communication round, jit-compiled once
  cost(info) -> RoundBits                        exact Python-int bits, from static shapes (+ host info)
`run.py` owns the jit boundary. Data is always an argument, never a closure, so it is not baked
into the compiled program as a constant.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from tallysim import protocols
from tallysim.sim import cohort, dp, exchange, faults, lanes, local, peers, tasks, trust, vote
from tallysim.sim.comm import RoundBits
from tallysim.config import Config, ConfigError
from tallysim.sim.fed import FedData, Spec, cohort_shards, pool_examples, to_input
from tallysim.sim.peers import State

FIXED_PROBE_STREAM = 2**31 - 1    # fold_in tag of the one probe draw reused when probe.resample=false
PRIVACY_STREAM = 0xD9             # fold_in tag of the privacy noise (the round's other keys untouched)
GATE_AGREEMENT = "gate_agreement"  # info key: what distill.gate reads when it is not info["agreement"]


class ModelGroup(NamedTuple):
    """One model group of a grouped run (model.groups, tallysim/model_groups.py): static facts."""
    name: str
    lo: int                  # its global peer range [lo, hi)
    hi: int
    a_lo: int                # its slots on the active axis [a_lo, a_hi) (active_set concatenates groups)
    a_hi: int
    model: Any
    num_params: int
    values: tuple            # ((dotted key, value), ...): its own model.* / optim.* fields


class Protocol(NamedTuple):
    init: Callable[[jax.Array, FedData], State]
    round: Callable[[State, FedData, jax.Array, jax.Array], tuple[State, dict]]
    cost: Callable[[dict], RoundBits]
    has_server: bool = False
    peer_state: tuple = ()      # State.extra entries with a peer axis (sharded like params on a mesh)
    row_keys: dict = {}         # scalars of the round's info that go into the metrics rows: name -> int | float


@dataclass(frozen=True)
class Context:
    # Built from a full Config; keeps it as lanes.static_view's copy, with every lane field (`lane=True`,
    # tallysim/fields.py) a lanes.LaneField that raises when read: a protocol reads those with `hp`, so
    # no lane can see the first configuration's value (issue 30). Their values are in `consts`.
    cfg: Config
    spec: Spec
    model: Any
    num_params: int
    # ((key, (value, ...)), ...): the distinct values of each traced field that varies across the
    # lanes of a grouped sweep (lanes.choices). A protocol that needs a static bound for a traced
    # value (the bridge's largest k) reads it here.
    choices: tuple = ()
    # key -> per-lane (traced) value of each `lane=True` field that varies in a grouped sweep
    # (tallysim/fields.py); read them with `hp`.
    hparams: dict = dataclass_field(default_factory=dict)
    # key -> the lane fields' values in the config the Context was built from (set in __post_init__)
    consts: Optional[dict] = dataclass_field(default=None, repr=False)
    # model.groups: one ModelGroup per group (State.params and State.opt are then tuples, one stacked
    # tree per group); () for a run of one model, which takes exactly the code paths it took before
    model_groups: tuple = ()

    def __post_init__(self):
        if not lanes.is_view(self.cfg):      # a full Config (a new Context, or replace(ctx, cfg=...))
            view, consts = lanes.static_view(self.cfg)
            object.__setattr__(self, "cfg", view)
            object.__setattr__(self, "consts", consts)
        elif self.consts is None:
            raise ValueError("Context: a static config view needs its consts")

    def hp(self, key: str):
        """A lane field's value: this lane's array in a grouped sweep where it varies, else the
        config's constant. Like optax.inject_hyperparams: the value is an argument, never in the Config."""
        if key in self.hparams:
            return self.hparams[key]
        if key in self.consts:
            return self.consts[key]
        obj = self.cfg                       # not a lane field: the static config's value
        for part in key.split("."):
            obj = getattr(obj, part)
        return obj

    def group_contexts(self) -> list:
        """[(ModelGroup, Context of its peers as a run of their own)]: its model, its optimizer (a field
        the group sets replaces the lane's value), spec.peers = P_g and spec.active = A_g."""
        out = []
        for g in self.model_groups:
            own = dict(g.values)
            view = copy.copy(self.cfg)            # a static view: replace() would compare its LaneFields
            model = {k.removeprefix("model."): v for k, v in own.items() if k.startswith("model.")}
            object.__setattr__(view, "model", dataclasses.replace(view.model, groups=None, **model))
            if "optim.name" in own:
                object.__setattr__(view, "optim", dataclasses.replace(view.optim, name=own["optim.name"]))
            object.__setattr__(view, "peers", g.hi - g.lo)
            lane_own = {k: v for k, v in own.items() if k in self.consts}       # optim.lr, momentum, decay
            out.append((g, dataclasses.replace(
                self, cfg=view, model=g.model, num_params=g.num_params, model_groups=(),
                spec=self.spec._replace(peers=g.hi - g.lo, active=g.a_hi - g.a_lo),
                consts={**self.consts, **lane_own},
                hparams={k: v for k, v in self.hparams.items() if k not in lane_own})))
        return out

    def choices_of(self, key: str) -> Optional[tuple]:
        return dict(self.choices).get(key)

    @property
    def tx(self):
        return peers.make_optimizer(self.cfg.optim, self.hp("optim.lr"), self.hp("optim.momentum"),
                                    self.hp("optim.weight_decay"))

    def local_spec(self, epochs: Optional[int] = None, distill_loss=None, prox_mu=None) -> local.LocalSpec:
        cfg = self.cfg
        return local.LocalSpec(
            apply_fn=self.model.apply, tx=self.tx, batch_size=cfg.batch_size,
            shard_max=self.spec.shard_max,
            epochs=cfg.local_epochs if epochs is None else epochs,
            local_steps=cfg.local_steps if epochs is None else None,
            distill_loss=distill_loss, distill_weight=self.hp("distill.weight"),
            probe_batch=cfg.distill.batch_size or cfg.batch_size, prox_mu=prox_mu, groups=self.spec.groups,
            task=tasks.of(self.spec))

    @property
    def cohort(self) -> bool:
        """client_storage=auto and a protocol whose clients keep nothing between rounds: the State holds
        the server model and no [P, ...] params or optimizer state; local_round materialises the
        round's A clients from the server model (docs/population.md)."""
        return self.cfg.client_storage == "auto" and not protocols.client_state(self.cfg)

    def init_state(self, key, data: FedData, shared: bool, server: bool = False, error: bool = False,
                   extra=None) -> State:
        if self.cohort:
            if not (shared and server) or error:
                raise ValueError("client_storage=auto: a stateless protocol's state is its server model "
                                 "(shared init, no error buffers); declare its TRAITS.client_state")
            # the same model as the stacked path's peer 0 (a broadcast of this one init), bit for bit
            first = self.model.init(key, jnp.zeros((1,) + tuple(self.spec.input_shape), jnp.float32))
            return State(params=None, opt=None, server=first, error=None,
                         extra=None if extra is None else extra(first))
        if self.model_groups:       # peer i's init key is the one-model run's: split(key, P)[i]
            keys_P = jax.random.split(key, self.spec.peers)
            params = tuple(jax.vmap(lambda k, m=g.model: m.init(k, _dummy(self.spec)))(keys_P[g.lo:g.hi])
                           if not shared else peers.init_params(g.model, key, g.hi - g.lo, self.spec.input_shape, True)
                           for g in self.model_groups)
            opt = tuple(jax.vmap(gctx.tx.init)(p) for (_, gctx), p in zip(self.group_contexts(), params))
            return State(params=params, opt=opt, server=None, error=None,
                         extra=None if extra is None else extra(None))
        params = peers.init_params(self.model, key, self.spec.peers, self.spec.input_shape, shared)
        first = jax.tree.map(lambda a: a[0], params)
        return State(
            params=params,
            opt=jax.vmap(self.tx.init)(params),
            server=first if server else None,
            error=jax.tree.map(jnp.zeros_like, params) if error else None,
            extra=None if extra is None else extra(first))


def _dummy(spec: Spec):
    return jnp.zeros((1,) + tuple(spec.input_shape), jnp.float32)


class RoundKeys(NamedTuple):
    active: jax.Array
    probe: jax.Array
    tie: jax.Array
    train: jax.Array
    server: jax.Array


def round_keys(root, r, resample: bool = True) -> RoundKeys:
    key = jax.random.fold_in(root, r)
    k = jax.random.split(key, 5)
    probe = k[1] if resample else jax.random.fold_in(root, FIXED_PROBE_STREAM)
    return RoundKeys(k[0], probe, k[2], k[3], k[4])


def active_set(ctx: Context, key, data: Optional[FedData] = None) -> Optional[jax.Array]:
    """Sorted indices of this round's participating peers; None when all take part (no gather).
    `participation_rule` (sim/cohort.py): uniform, or size (reads the shard sizes: pass `data`);
    `cohort_draw`: sort (the draws of earlier versions) or sequential (O(A) random integers)."""
    P, A = ctx.spec.peers, ctx.spec.active
    if A == P:
        return None
    sequential = ctx.cfg.cohort_draw == "sequential"
    if ctx.model_groups:      # A_g of each group's P_g (model_groups.active_counts), in group order
        def group(k, peers_g, active_g):
            if sequential:
                return cohort.uniform_sequential(k, peers_g, active_g)
            return jnp.sort(jax.random.permutation(k, peers_g)[:active_g])
        return jnp.concatenate([g.lo + group(jax.random.fold_in(key, i), g.hi - g.lo, g.a_hi - g.a_lo)
                                for i, g in enumerate(ctx.model_groups)])
    if ctx.cfg.participation_rule == "size":
        if data is None:
            raise ConfigError(f"participation_rule=size reads the shard sizes, but protocol.name="
                              f"{ctx.cfg.protocol.name} calls active_set(ctx, key) without the data; "
                              "allowed: participation_rule=uniform, or pass `data` to active_set")
        if sequential:
            return cohort.by_size_sequential(key, data.offset_P, data.count_P, A)
        return cohort.by_size(key, data.count_P, A)
    return cohort.uniform_sequential(key, P, A) if sequential else cohort.uniform(key, P, A)


def aggregation_counts(ctx: Context, count_A) -> jax.Array:
    """The counts the server's mean weighs the cohort by (shard sizes; ones under participation_rule=size,
    sim/cohort.py): give them to `shard_weights` or faults.receive_weights."""
    return cohort.aggregation_counts(ctx.cfg.participation_rule, count_A)


def group_rows(g: ModelGroup, idx):
    """(rows of group g's stacked trees, global peer indices) of its active peers; (None, its range)
    when every peer is active (no gather of its trees)."""
    if idx is None:
        return None, jnp.arange(g.lo, g.hi)
    glob = idx[g.a_lo:g.a_hi]
    return glob - g.lo, glob


def shard_weights(count_A) -> jax.Array:
    """Shard-size weights summing to one; uniform when every active shard is empty (min_size=0)."""
    c = count_A.astype(jnp.float32)
    total = jnp.sum(c)
    return jnp.where(total > 0, c / jnp.maximum(total, 1.0), 1.0 / c.shape[0])


def local_round(ctx: Context, lspec: local.LocalSpec, state: State, data: FedData, keys: RoundKeys,
                idx, params_A=None, probes=None, anchor=None, sequential_epochs: int = 0,
                fr: Optional[faults.RoundFaults] = None, linear_A=None):
    """Train the active peers (from `params_A` if given, else their own params) and write them back.

    Returns (params, opt, params_A_trained, loss_A, steps), steps = {steps_real, steps_computed}
    for the round's info. The optimizer restarts from scratch when optim.reset_each_round is set.
    `fr`: this round's faulty peers (label_flip and under_trained's step cap act here).
    `linear_A`: per active peer, a linear term <linear_i, w> added to the local loss (SCAFFOLD).
    """
    if ctx.model_groups:
        return _grouped_local_round(ctx, lspec, state, data, keys, idx, probes, anchor, sequential_epochs)
    if params_A is None:
        params_A = peers.take(state.params, idx)
    opt_A = jax.vmap(ctx.tx.init)(params_A) if ctx.cfg.optim.reset_each_round else peers.take(state.opt, idx)
    shard, count = cohort_shards(data, idx, ctx.spec.shard_max), peers.take(data.count_P, idx)
    keys_A = jax.random.split(keys.train, ctx.spec.active)
    params_A, opt_A, loss_A, steps = local.train_peers(lspec, params_A, opt_A, keys_A, shard, count, data,
                                                       probes, anchor, sequential_epochs,
                                                       linear_A=linear_A, **faults.round_train_args(ctx, fr))
    if state.params is None:        # Context.cohort: nothing per client outlives the round
        return None, None, params_A, loss_A, steps
    return peers.put(state.params, idx, params_A), peers.put(state.opt, idx, opt_A), params_A, loss_A, steps


def _grouped_local_round(ctx, lspec, state, data, keys, idx, probes, anchor, sequential_epochs):
    """local_round of a grouped run: each group's active peers trained by its own vmapped program (its
    model, its optimizer); peer i keeps the one-model run's key, split(keys.train, A)[i]."""
    keys_A = jax.random.split(keys.train, ctx.spec.active)
    params, opt, trained, losses, steps = [], [], [], [], []
    for i, (g, gctx) in enumerate(ctx.group_contexts()):
        rows, glob = group_rows(g, idx)
        params_g = peers.take(state.params[i], rows)
        opt_g = jax.vmap(gctx.tx.init)(params_g) if ctx.cfg.optim.reset_each_round else peers.take(state.opt[i], rows)
        p, o, loss, st = local.train_peers(lspec._replace(apply_fn=g.model.apply, tx=gctx.tx), params_g, opt_g,
                                           keys_A[g.a_lo:g.a_hi], cohort_shards(data, glob, ctx.spec.shard_max),
                                           data.count_P[glob], data,
                                           probes, anchor, sequential_epochs)
        params.append(peers.put(state.params[i], rows, p))
        opt.append(peers.put(state.opt[i], rows, o))
        trained.append(p)
        losses.append(loss)
        steps.append(st)
    total = {k: sum(st[k] for st in steps) for k in steps[0]}
    return tuple(params), tuple(opt), tuple(trained), jnp.concatenate(losses), total


def draw_probes(ctx: Context, data: FedData, key) -> jax.Array:
    """Indices of this round's M probes; every party derives them from the shared key, so free."""
    return jax.random.permutation(key, ctx.spec.pool)[:ctx.spec.probes]


def predict_probes(ctx: Context, params_c, x_M) -> jax.Array:
    """logits [c, M, C] of a stack of c peers on the probes."""
    return jax.vmap(ctx.model.apply, in_axes=(0, None))(params_c, to_input(x_M))


def active_logits(ctx: Context, state: State, idx, x_M) -> jax.Array:
    """logits [A, M, C] of every active peer (all groups', concatenated in active order)."""
    if not ctx.model_groups:
        return predict_probes(ctx, peers.take(state.params, idx), x_M)
    return jnp.concatenate([predict_probes(gctx, peers.take(state.params[i], group_rows(g, idx)[0]), x_M)
                            for i, (g, gctx) in enumerate(ctx.group_contexts())])


def _grouped_sums(ctx: Context, state: State, idx, x_M, y_M, soft_bits, chunk, sent_fn, vote_fn) -> vote.Sums:
    """The exchange's vote.Sums over every group's active peers: each group streams its own messages
    (exchange.py) and the sums add, so the tally and the soft-label mean are over all A peers.
    `sent_fn`, `vote_fn`: as probe_exchange's (vote_fn sees global peer ids)."""
    task, sums = tasks.of(ctx.spec), None
    for i, (g, gctx) in enumerate(ctx.group_contexts()):
        rows, glob = group_rows(g, idx)

        def logits_fn(rows_c, i=i, gctx=gctx, rows=rows, glob=glob):
            z = task.messages(predict_probes(gctx, peers.take(state.params[i], rows_c if rows is None
                                                              else rows[rows_c]), x_M))
            return z if vote_fn is None else vote_fn(glob[rows_c], z)
        s = exchange.stream_sums(logits_fn, g.a_hi - g.a_lo, y_M, ctx.spec.classes, soft_bits, chunk,
                                 sent_fn=sent_fn)
        sums = s if sums is None else vote.add_sums(sums, s)
    return sums


def probe_exchange(ctx: Context, state: State, data: FedData, keys: RoundKeys, idx, hard: bool,
                   chunk: Optional[int] = None, fr: Optional[faults.RoundFaults] = None,
                   sent_fn: Optional[Callable] = None, vote_fn: Optional[Callable] = None):
    """Peers predict on the round's probes; the server aggregates. Returns (Probes, info).

    The active peers predict `chunk` at a time (default: what fits exchange.CHUNK_BYTES), so no
    [A, M, C] array exists; see exchange.py. The exception is `softlabel.aggregate=median|trimmed`,
    which needs every message at once ([A, M, C]). `fr`: this round's faulty peers (confident_wrong
    replaces their messages, dropout loses them; the honest peers' vote is summed alongside).
    `sent_fn` (soft, probs [c, M, C] -> the decoded messages): a protocol's own soft message (topk_soft);
    `vote_fn(peer_ids_c, logits [c, M, C]) -> logits` (hard): what a peer's vote becomes before it is
    sent (fedct's XOR mechanism); the returned logits' argmax is the vote counted.
    """
    cfg, spec = ctx.cfg, ctx.spec
    A = spec.active
    task = tasks.of(spec)            # next_token: one message per probe position (sim/tasks.py)
    pidx = draw_probes(ctx, data, keys.probe)
    x_M, y_probe = pool_examples(data, pidx)
    y_M = task.message_labels(y_probe)          # [M] labels, or [M * pos] targets: one per message
    soft_bits = None if hard else cfg.comm.soft_bits
    private = cfg.privacy.noise > 0            # noise 0 compiles the program without privacy (lanes' nonzero)

    def logits_fn(rows_c):
        ids_c = rows_c if idx is None else idx[rows_c]
        z = task.messages(predict_probes(ctx, peers.take(state.params, ids_c), x_M))
        z = faults.message_logits(ctx, fr, z, rows_c, y_M)
        return z if vote_fn is None else vote_fn(ids_c, z)

    masks_fn = None if fr is None else (lambda rows_c: faults.chunk_masks(fr, rows_c))
    robust = not hard and cfg.softlabel.aggregate in vote.ROBUST
    if ctx.model_groups:           # faults, privacy and the robust means are refused with groups
        sums = _grouped_sums(ctx, state, idx, x_M, y_M, soft_bits, chunk, sent_fn, vote_fn)
    elif robust:
        rows = jnp.arange(A)
        sent_A, honest_A = faults.chunk_masks(fr, rows)
        logits_AxMxC = logits_fn(rows)
        sums = vote.chunk_sums(logits_AxMxC, jnp.ones((A,), bool) if sent_A is None else sent_A, y_M,
                               soft_bits, honest_A)
    else:
        sums = exchange.stream_sums(logits_fn, A, y_M, spec.classes, soft_bits, chunk, masks_fn,
                                    clip=cfg.privacy.clip if private and not hard else None, sent_fn=sent_fn)
    voters = faults.senders(ctx, fr)          # A, or (dropout) the traced number of messages that arrived
    counts_MxC, answered_M = sums.counts_MxC, None
    if private:
        k_noise, k_threshold = jax.random.split(jax.random.fold_in(keys.tie, PRIVACY_STREAM))
        if hard:      # GNMax (Papernot et al. 2018): noisy counts, and Confident-GNMax's check
            if cfg.privacy.threshold > 0:
                answered_M = dp.confident(counts_MxC, cfg.privacy.threshold, cfg.privacy.threshold_noise,
                                          k_threshold)
            counts_MxC = dp.gnmax(counts_MxC, ctx.hp("privacy.noise"), k_noise)
        else:         # the clipped sum plus N(0, (z * clip)^2) per value
            noisy = dp.noisy_sum({"s": sums.sent_MxC[None]}, cfg.privacy.clip, ctx.hp("privacy.noise"), k_noise)
            sums = sums._replace(sent_MxC=noisy["s"])
    history = {}
    if hard and cfg.vote.weighting == "history":        # sim/trust.py: the trust-weighted vote
        sent_A = None if fr is None else fr.sent_A
        votes_AxM = trust.votes(logits_fn, A, spec.probes, spec.classes)
        t, _ = trust.weighted_tally(peers.take(state.extra[trust.TRUST], idx), votes_AxM, sent_A, spec.classes,
                                    cfg.vote.ties, ctx.hp("vote.min_agreement"), keys.tie, cfg.vote.min_margin)
        history = {trust.TRUST: trust.updated(state.extra[trust.TRUST], idx, votes_AxM, t, sent_A,
                                              cfg.vote.history)}
    else:
        t = vote.tally_counts(counts_MxC, voters, cfg.vote.ties, ctx.hp("vote.min_agreement"), keys.tie,
                              cfg.vote.min_margin)
    honest_winner = None
    if sums.honest_counts_MxC is not None:
        honest_winner = vote.tally_counts(sums.honest_counts_MxC, jnp.maximum(sums.honest, 1), cfg.vote.ties,
                                          0.0, keys.tie).winner_M
    info = vote.finish_diagnostics(sums, voters, y_M, t.winner_M, t.share_M, honest_winner)
    arrived = None if isinstance(voters, int) else (voters > 0).astype(jnp.float32)
    if hard:
        keep_M = t.keep_M if arrived is None else t.keep_M * arrived      # no votes: nothing to train on
        if answered_M is not None:
            keep_M = keep_M * answered_M          # Confident-GNMax abstains where the check failed (`kept`)
        probes = local.Probes(x_M, task.unflatten(t.winner_M, spec.probes), task.unflatten(keep_M, spec.probes))
        info["consensus_acc"] = jnp.sum((t.winner_M == y_M) * keep_M) / jnp.maximum(jnp.sum(keep_M), 1.0)
        info["kept"] = jnp.mean(keep_M)
    else:
        if robust:
            sent = vote.quantize_probs(jax.nn.softmax(logits_AxMxC, axis=-1), cfg.comm.soft_bits)
            target = vote.robust_soft(sent, sent_A, cfg.softlabel.aggregate, cfg.softlabel.trim)
        else:
            target = vote.soft_targets(sums.sent_MxC, voters, cfg.softlabel.aggregate,
                                       ctx.hp("softlabel.era_temperature"))
            if private and cfg.softlabel.aggregate == "mean":
                target = vote.renormalize(target)    # the noise can push a mean below 0 (post-processing)
            if private:
                # distill.gate's bit reaches every peer, so it may only read the noised sum: the mean
                # top value of its renormalised mean (the un-noised vote share would leak the data)
                info[GATE_AGREEMENT] = jnp.mean(jnp.max(vote.renormalize(
                    vote.soft_targets(sums.sent_MxC, voters)), axis=-1))
        weight = jnp.ones((spec.messages,), jnp.float32)
        probes = local.Probes(x_M, task.unflatten(target, spec.probes),
                              task.unflatten(weight if arrived is None else weight * arrived, spec.probes))
        info["consensus_acc"] = jnp.mean(jnp.argmax(target, axis=-1) == y_M)
    if fr is not None and fr.lost_A is not None:
        info["senders"] = voters
    info.update(history)          # vote.weighting=history: the new trust, for the round to keep
    return probes, info


def exchanging(ctx: Context) -> bool:
    """Distillation with zero weight sends nothing: the peers have no use for the targets."""
    return lanes.nonzero(ctx.hp("distill.weight"))     # may be traced (lanes.py): then it is nonzero
