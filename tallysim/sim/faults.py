"""Faulty peers (`faults.*`, docs/running-protocols.md "Faulty peers", docs/protocols.md): which peers, and what they do.

`floor(faults.fraction * P)` of the P peers are faulty (the fraction read as the decimal it was
written as). `faults.redraw=false`: one set for the whole run, drawn on the host from the seed
(`fixed_set`; it travels as `FedData.faulty_P` and partition.json lists it). `redraw=true`: a new set
every round, drawn from the round's key (`for_round`); the warm-up before round 1 uses the seed's set.
Under `cohort_draw=sequential` a redrawn set is drawn for the round's cohort only (`cohort_status`, the
same distribution in O(A)); a round's info carries the faulty count, never a [P] mask (the metrics read
the set at evaluation rounds: `eval_sets`; docs/population.md "Faulty peers at population scale").
Only the round's active peers act on it. The kinds:

- `under_trained`: shards cut to `faults.examples` examples (host-side, before anything compiles:
  `cut_shards`) and/or at most `faults.steps` private steps per local-training call;
- `label_flip`: the peers train on (c + 1) % C for their private labels c (on text among the words alone,
  sim/local.private_targets);
- `confident_wrong`: on the probes they send a wrong class with full confidence (hard vote; one-hot
  soft label): class `faults.target`, or with target -1 a class drawn uniformly from the C - 1 classes
  other than the probe's true label (on text from the words or characters alone, the tokens test accuracy
  scores: never PAD, BOS, EOS or OOV). Parameter protocols: they send w_ref - scale * (w_i - w_ref)
  (`faults.scale`), w_ref the model they started from (FedAvg family: the server model; bridge: the
  sparse update s_i is sent as -scale * s_i);
- `dropout`: each round each faulty active peer's message is lost with probability `faults.drop_prob`;
  the server aggregates the rest, and only messages that were sent are counted in bits;
- `straggler` (FedAvg family and local only): it sends its previous message, the model it trained the
  last time it was active (the shared init before that).
- `sign_flip`, `gaussian`, `alie`, `ipm` (FedAvg family): omniscient attacks on the update
  u_i = w_i - w_server, formulas in sim/attacks.py; the faulty peer sends w_server + u_byz. They see
  the round's honest updates (the active non-faulty peers'). `sign_flip`: -scale * u_i; `gaussian`:
  N(0, sigma^2 I); `alie`: mu - z * sd with z = `faults.z`, or null: Baruch et al.'s z_max for n the
  active peers and f this lane's faulty count (`alie_z`, traced so that fractions share a program);
  `ipm`: -eps * mu.
- `least_likely` (tally, softlabel, bridge): on the probes each faulty peer sends the class its own
  model finds least likely (one-hot as a soft label), Roux et al. (ICLR 2025).

Everything is static when no peer is faulty (`kind=none` or `floor(fraction * P) == 0`): the program
is then exactly the one without faults.
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import jax.scipy.special
import numpy as np

from tallysim.config import PARAM_ATTACKS
from tallysim.sizing import faulty_peers
from tallysim.sim import attacks, row_draws, tasks

FAULT_STREAM = 0x0FA17      # fold_in tag of the round's fault key (round_keys' own streams untouched)
HOST_STREAM = 0x0FA17       # numpy seed word of the host draws (fixed set, shard cuts)
SPECIAL_STREAM = 0x5CA1     # fold_in tag of a text position's wrong word where its label is PAD/BOS/EOS/OOV
CONFIDENT = 1e4             # a confident_wrong message's logit margin: softmax is exactly one-hot
TRAINING_KINDS = ("under_trained", "label_flip")                # faults of how peers train
# The faults of what is sent are config_reads.MESSAGE_FAULTS; the omniscient attacks schema.PARAM_ATTACKS
# (the FedAvg family's updates) and least_likely (the probe messages, distillation): sim/attacks.py


def count(cfg, peers: int) -> int:
    """Number of faulty peers, floor(fraction * P) with the fraction as written (0.7 * 90 is 63):
    config_shapes.faulty_peers, the reading validation's warning and the robust rules' checks share."""
    return faulty_peers(cfg, peers)


def enabled(cfg, peers: int) -> bool:
    return cfg.faults.kind != "none" and count(cfg, peers) > 0


def fixed_set(cfg, seed: int, peers: int) -> np.ndarray:
    """The seed's faulty peers, bool [P] (host numpy; all False without faults)."""
    mask = np.zeros(peers, bool)
    if enabled(cfg, peers):
        mask[np.random.default_rng([HOST_STREAM, seed]).permutation(peers)[:count(cfg, peers)]] = True
    return mask


def cut_shards(cfg, parts: list, faulty: np.ndarray, seed: int) -> list:
    """under_trained with faults.examples: each faulty peer keeps `examples` of its examples, drawn
    uniformly without replacement from its shard (seeded; kept sorted). Other peers are untouched."""
    n = cfg.faults.examples
    if cfg.faults.kind != "under_trained" or n is None or not faulty.any():
        return parts
    rng = np.random.default_rng([HOST_STREAM, seed, 1])
    out = []
    for i, p in enumerate(parts):
        if faulty[i] and len(p) > n:
            p = np.sort(p[rng.permutation(len(p))[:n]])
        out.append(p)
    return out


class RoundFaults(NamedTuple):
    """One round's faults, for the active peers (positions in the active set)."""
    faulty_P: Optional[jax.Array]  # bool [P]: this round's faulty set (None: redraw under cohort_draw=sequential)
    faulty_A: jax.Array            # bool [A]: active and faulty
    lost_A: Optional[jax.Array]    # dropout: bool [A], the messages lost this round; else None
    idx: Optional[jax.Array]       # the active set (None: every peer)
    key: jax.Array                 # confident_wrong's class draws

    @property
    def sent_A(self) -> Optional[jax.Array]:
        """bool [A]: whose message reaches the server (None: everyone's)."""
        return None if self.lost_A is None else ~self.lost_A

    @property
    def misbehaving_A(self) -> jax.Array:
        """The peers counted as faulty this round: dropout, those whose message was lost."""
        return self.faulty_A if self.lost_A is None else self.lost_A

    def info(self) -> dict:
        # the count only: a [P] mask per round would make the scan's stacked info [rounds, lanes, P]
        # (100 MB a lane for 100 rounds of 10^6 clients); the metrics rows get the evaluated peers'
        # status at evaluation rounds from `eval_sets`
        return {"faulty": jnp.sum(self.misbehaving_A, dtype=jnp.int32)}


def round_key(root, r):
    return jax.random.fold_in(jax.random.fold_in(root, r), FAULT_STREAM)


def redrawn_set(peers: int, faulty: int, root, r) -> jax.Array:
    """bool [P]: the `faulty` peers that round r draws under faults.redraw=true and cohort_draw=sort (a
    permutation of all P peers, as earlier versions did); `eval_sets` recomputes it for the metrics."""
    k_set = jax.random.split(round_key(root, r), 3)[0]
    return jnp.zeros((peers,), bool).at[jax.random.permutation(k_set, peers)[:faulty]].set(True)


@functools.partial(jax.jit, static_argnums=(0, 1))
def redrawn_sets(peers: int, faulty: int, roots_L, r) -> jax.Array:
    """bool [L, P]: `redrawn_set` of each lane's round key."""
    return jax.vmap(lambda k: redrawn_set(peers, faulty, k, r))(roots_L)


def cohort_status(key, peers: int, faulty: int, active: int) -> jax.Array:
    """bool [A]: whether each of A given distinct peers is in a uniform `faulty`-subset of the `peers`,
    without drawing the subset. Restricted to any fixed A peers, that subset is a sequence of
    hypergeometric draws: given f faulty among the first j, peer j is faulty with probability
    (faulty - f) / (peers - j) (j of the P peers and f of the faulty ones are used up). A random
    integers (jax.random.randint: uniform to a relative (P - j) / 2**64), O(A) work, no [P] value."""
    def one(j, carry):
        f, out = carry
        bad = jax.random.randint(jax.random.fold_in(key, j), (), 0, peers - j, jnp.int32) < faulty - f
        return f + bad.astype(jnp.int32), out.at[j].set(bad)
    return jax.lax.fori_loop(0, active, one, (jnp.int32(0), jnp.zeros((active,), bool)))[1]


def sequential(cfg, idx) -> bool:
    """Whether this round's faults are drawn for the cohort alone (cohort_draw=sequential: O(A))."""
    return cfg.cohort_draw == "sequential" and idx is not None


def for_round(ctx, data, root, r, idx) -> Optional[RoundFaults]:
    """This round's faults (None when no peer is faulty: statically the fault-free program). Under
    cohort_draw=sequential nothing is [P]-shaped: a redrawn set is drawn for the cohort only
    (`cohort_status`, the same distribution as the permutation's set restricted to the cohort) and
    dropout's coins for the cohort only; `sort` keeps the draws of earlier versions, bit for bit."""
    cfg, spec = ctx.cfg, ctx.spec
    if not enabled(cfg, spec.peers):
        return None
    k_set, k_drop, k_wrong = jax.random.split(round_key(root, r), 3)
    P = spec.peers
    cohort_only = sequential(cfg, idx)
    if cfg.faults.redraw and cohort_only:
        faulty_P, faulty_A = None, cohort_status(k_set, P, count(cfg, P), idx.shape[0])
    else:
        faulty_P = redrawn_set(P, count(cfg, P), root, r) if cfg.faults.redraw else data.faulty_P
        faulty_A = faulty_P if idx is None else faulty_P[idx]
    lost_A = None
    if cfg.faults.kind == "dropout":
        q = cfg.faults.drop_prob
        if q >= 1.0:
            lost_A = faulty_A
        elif cohort_only:
            lost_A = faulty_A & (jax.random.uniform(k_drop, faulty_A.shape) < q)
        else:
            u_P = jax.random.uniform(k_drop, (P,))
            lost_A = faulty_A & ((u_P if idx is None else u_P[idx]) < q)
    return RoundFaults(faulty_P, faulty_A, lost_A, idx, k_wrong)


def eval_sets(cfg, peers: int, fixed_SP, lanes: list, roots_L, r: int):
    """The faulty sets the metrics rows read at evaluation round r (`acc_mean_honest`), one per lane:
    bool [L, P] host arrays, or None where there is no faulty peer. Fixed set: the lanes' own
    (rows `lanes` of `fixed_SP`, FedData.faulty_P); redraw under sort: round r's set, recomputed from the lanes' round
    keys `roots_L` (the same draw as the round's, once per evaluation rather than carried in every
    round's info); redraw under sequential: False, the round drew only its cohort's status (the peers
    outside it do nothing that round) so there is no set to read."""
    if not enabled(cfg, peers):
        return None
    if not cfg.faults.redraw:
        return np.asarray(fixed_SP[np.asarray(lanes)], bool)
    if cfg.cohort_draw == "sequential":         # (refused where every peer is active: there is a cohort)
        return False
    return np.asarray(redrawn_sets(peers, count(cfg, peers), roots_L, jnp.int32(r)))


def no_faults_info() -> dict:
    return {"faulty": jnp.int32(0)}


def info(fr: Optional[RoundFaults]) -> dict:
    return no_faults_info() if fr is None else fr.info()


# ---------------------------------------------------------------------------- training faults

def train_args(cfg, faulty) -> dict:
    """Keyword arguments of local.train_peers for these peers' faulty mask (bool [n] or None)."""
    if faulty is None:
        return {}
    if cfg.faults.kind == "label_flip":
        return {"flip_A": faulty}
    if cfg.faults.kind == "under_trained" and cfg.faults.steps is not None:
        big = jnp.iinfo(jnp.int32).max
        return {"cap_A": jnp.where(faulty, jnp.int32(cfg.faults.steps), big).astype(jnp.int32)}
    return {}


def warmup_set(ctx, data):
    """The faulty mask [P] used by the warm-up (the seed's fixed set), or None."""
    if not enabled(ctx.cfg, ctx.spec.peers) or ctx.cfg.faults.kind not in TRAINING_KINDS:
        return None
    return data.faulty_P


def round_train_args(ctx, fr: Optional[RoundFaults]) -> dict:
    if fr is None or ctx.cfg.faults.kind not in TRAINING_KINDS:
        return {}
    return train_args(ctx.cfg, fr.faulty_A)


# ---------------------------------------------------------------------------- message faults

def wrong_classes(ctx, fr: RoundFaults, peer_c, y_M, rows: Optional[tuple] = None) -> jax.Array:
    """int32 [c, M]: the class each of these peers (global indices) sends on each probe. rows (row0,
    M): y_M are messages row0.. of M (a probe block), drawn as those rows of the draw over all M
    (sim/row_draws.py), so a block's wrong classes are the all-probes ones."""
    C, t = ctx.spec.classes, ctx.cfg.faults.target
    if t >= 0:
        return jnp.full((peer_c.shape[0], y_M.shape[0]), t, jnp.int32)
    # on text only the words (characters) are answers test accuracy scores (tasks.NextToken.scored): a
    # random wrong token drawn among all C was PAD (never a target), BOS, EOS or OOV 4 times in C
    lo = tasks.FIRST_WORD if getattr(ctx.spec, "task", "classification") == "next_token" else 0
    S = C - lo

    def draw(k, low, high):
        return jax.random.randint(k, y_M.shape, low, high) if rows is None else \
            row_draws.randint_rows(k, (rows[1],), rows[0], y_M.shape[0], low, high)

    def one(p):
        k = jax.random.fold_in(fr.key, p)
        off = draw(k, 1, S)
        if lo == 0:
            return ((y_M + off) % C).astype(jnp.int32)
        other = lo + (y_M - lo + off) % S               # a word label: one of the S - 1 other words
        anyw = lo + draw(jax.random.fold_in(k, SPECIAL_STREAM), 0, S)     # a special's: any of the S words
        return jnp.where(y_M >= lo, other, anyw).astype(jnp.int32)
    return jax.vmap(one)(peer_c)


def message_logits(ctx, fr: Optional[RoundFaults], logits_cxMxC, rows_c, y_M, rows: Optional[tuple] = None):
    """The logits whose softmax / argmax the peers at active positions rows_c send: confident_wrong
    and least_likely peers' are replaced by a one-hot margin (exactly one-hot after softmax) on the
    wrong class, resp. on their own model's least likely class. rows: wrong_classes'."""
    kind = None if fr is None else ctx.cfg.faults.kind
    if kind not in ("confident_wrong", "least_likely"):
        return logits_cxMxC
    if kind == "least_likely":
        wrong = jnp.argmin(logits_cxMxC, axis=-1)
    else:
        wrong = wrong_classes(ctx, fr, rows_c if fr.idx is None else fr.idx[rows_c], y_M, rows)
    fake = CONFIDENT * jax.nn.one_hot(wrong, ctx.spec.classes, dtype=logits_cxMxC.dtype)
    return jnp.where(fr.faulty_A[rows_c][:, None, None], fake, logits_cxMxC)


def chunk_masks(fr: Optional[RoundFaults], rows_c):
    """(sent_c, honest_c) of the peers at active positions rows_c; None where nothing differs."""
    if fr is None:
        return None, None
    sent = None if fr.lost_A is None else fr.sent_A[rows_c]
    honest = None if fr.lost_A is not None else ~fr.faulty_A[rows_c]   # dropout: honest = sent
    return sent, honest


def faulty_count(ctx, data):
    """This lane's number of faulty peers: a traced int32 under a fixed set (faults.fraction is per
    lane, see lanes.py), the static count under redraw."""
    if not enabled(ctx.cfg, ctx.spec.peers):
        return 0
    if ctx.cfg.faults.redraw:
        return count(ctx.cfg, ctx.spec.peers)
    return jnp.sum(data.faulty_P, dtype=jnp.int32)


def alie_z(n: int, f):
    """Baruch et al.'s z_max = Phi^-1((n - s) / n), s = floor(n / 2 + 1) - f, for a possibly traced f
    (0 where the quantile is outside (0, 1)); attacks.alie_z is the host version."""
    q = (n - (n // 2 + 1 - jnp.asarray(f, jnp.float32))) / n
    return jnp.where((q > 0) & (q < 1), jax.scipy.special.ndtri(jnp.clip(q, 1e-7, 1 - 1e-7)), 0.0)


def attacked_params(ctx, fr: RoundFaults, trained_A, ref, f_count):
    """The omniscient parameter attacks (PARAM_ATTACKS): ref + u_byz for the faulty peers, u on the
    updates u_i = w_i - ref; honest rows unchanged."""
    c = ctx.cfg.faults
    z = c.z if c.z is not None else alie_z(ctx.spec.active, jnp.minimum(f_count, ctx.spec.active))
    u_A = jax.tree.map(lambda w, r: w - r[None], trained_A, ref)
    bad = attacks.attack_updates(c.kind, u_A, fr.faulty_A, fr.key, scale=c.scale, sigma=c.sigma, z=z, eps=c.eps)
    return jax.tree.map(lambda u, r: r[None] + u, bad, ref)


def sent_params(ctx, fr: Optional[RoundFaults], trained_A, ref, previous_A, f_count=0):
    """What the active peers send of their models: confident_wrong, ref - scale * (w - ref) (ref: the
    model they started from); straggler, `previous_A` (their model before this round); the
    PARAM_ATTACKS as `attacked_params` (f_count: this lane's faulty count, for ALIE's default z)."""
    if fr is not None and ctx.cfg.faults.kind in PARAM_ATTACKS:
        return attacked_params(ctx, fr, trained_A, ref, f_count)
    if fr is None or ctx.cfg.faults.kind not in ("confident_wrong", "straggler"):
        return trained_A
    f_A = fr.faulty_A

    def pick(w, bad):
        return jnp.where(f_A.reshape((-1,) + (1,) * (w.ndim - 1)), bad, w)
    if ctx.cfg.faults.kind == "straggler":
        return jax.tree.map(pick, trained_A, previous_A)
    scale = ctx.cfg.faults.scale
    return jax.tree.map(lambda w, r: pick(w, r[None] - scale * (w - r[None])), trained_A, ref)


def receive_weights(count_A, sent_A) -> jax.Array:
    """Shard-size weights over the peers whose message arrived, summing to one (uniform over them if
    their shards are all empty; all zero when nothing arrived)."""
    c = count_A.astype(jnp.float32) * sent_A
    total = jnp.sum(c)
    n = jnp.sum(sent_A).astype(jnp.float32)
    return jnp.where(total > 0, c / jnp.maximum(total, 1.0), sent_A / jnp.maximum(n, 1.0))


def senders(ctx, fr: Optional[RoundFaults]):
    """Number of messages that reached the server: a Python int without dropout, else traced."""
    if fr is None or fr.lost_A is None:
        return ctx.spec.active
    return jnp.sum(fr.sent_A, dtype=jnp.int32)
