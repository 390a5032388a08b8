"""Plurality tally of hard labels, soft-label aggregation, and the mechanism diagnostics.

Shape letters: A active (voting) peers, M probes, C classes, c peers per chunk
(glossary: tallysim/sim/__init__.py).

Nothing here holds an [A, M, C] array: the probe exchange (protocols/exchange.py) feeds peers in
chunks to `chunk_sums` and adds the per-chunk `Sums`; `tally_counts`, `soft_targets` and
`finish_diagnostics` then need only the [M, C] totals. At 1,000 peers x 10,000 probes x 1,000
classes an [A, M, C] float32 tensor is 40 GB; the totals are 40 MB.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from tallysim.sim import dp, lanes, row_draws, tasks
from tallysim.config import choices
from tallysim.sizing import decimal_floor


class Tally(NamedTuple):
    winner_M: jax.Array      # int32 consensus class
    share_M: jax.Array       # winning votes / A
    keep_M: jax.Array        # float 0/1: probe survives abstention


def count_votes(votes_AxM: jax.Array, classes: int) -> jax.Array:
    """n_c(x): votes per probe and class, [M, C] int32.

    A scatter-add rather than a sum of one-hots, so memory is M * C whatever A is. Votes outside
    [0, C) are dropped (a one-hot of them is all zeros too); chunks use C to mark padding peers.
    """
    M = votes_AxM.shape[1]
    probe_AxM = jnp.broadcast_to(jnp.arange(M)[None, :], votes_AxM.shape)
    # Negative votes would wrap to the last class under numpy indexing; send them out of range too.
    votes_AxM = jnp.where(votes_AxM < 0, classes, votes_AxM)
    return jnp.zeros((M, classes), jnp.int32).at[probe_AxM, votes_AxM].add(1, mode="drop")


def tally_counts(counts_MxC: jax.Array, voters: int, ties: str = "lowest", min_agreement: float = 0.0,
                 key=None, min_margin: float = 0.0, rows: Optional[tuple] = None) -> Tally:
    """Plurality winner, winning share and abstention from the vote counts of `voters` peers: a probe
    is kept when its winning share is >= min_agreement and (min_margin > 0) its margin, the top count
    minus the runner-up's over the voters, is >= min_margin (a narrow win is what a coordinated
    minority can flip: with margin m, it must control more than m / 2 of the voters to flip it).
    rows (row0, M): counts_MxC are messages row0.. of M (a probe block, exchange.blocked_tally); the
    random tie scores are then those rows of the [M, C] draw over all of them (row_draws.py)."""
    top_M = jnp.max(counts_MxC, axis=-1)
    if ties == "lowest":
        winner = jnp.argmax(counts_MxC, axis=-1)          # argmax returns the first maximum
    elif ties == "lowest_word":
        # next-token tasks: the specials (PAD, BOS, EOS, OOV, ids below FIRST_WORD) lose every tie to a word,
        # so a tie does not train the peers on a special for being the lowest id; a special still wins alone
        # at the top, and a tie of specials only goes to the lowest (docs/text.md, "Ties and the specials")
        word_tied = (counts_MxC == top_M[:, None]) & (jnp.arange(counts_MxC.shape[-1]) >= tasks.FIRST_WORD)
        winner = jnp.where(jnp.any(word_tied, axis=-1), jnp.argmax(word_tied, axis=-1),
                           jnp.argmax(counts_MxC, axis=-1))
    elif ties == "random":
        # A uniform score on the tied classes only; the largest score picks one tied class at random.
        shape = counts_MxC.shape
        u = jax.random.uniform(key, shape) if rows is None else row_draws.uniform_rows(
            key, (rows[1],) + shape[1:], rows[0], shape[0])
        score = jnp.where(counts_MxC == top_M[:, None], u, -1.0)
        winner = jnp.argmax(score, axis=-1)
    else:
        raise ValueError(f"vote.ties={ties!r}; allowed: {', '.join(choices('vote.ties'))}")
    # voters may be traced (faults.kind=dropout: the messages that arrived); none arrived -> share 0
    share = top_M / (jnp.maximum(voters, 1) if isinstance(voters, jax.Array) else voters)
    keep = (share >= min_agreement).astype(jnp.float32) if lanes.nonzero(min_agreement) else jnp.ones_like(share)
    if min_margin > 0:                              # static: a Python float (not a lane field)
        top2 = jax.lax.top_k(counts_MxC, 2)[0] if counts_MxC.shape[-1] > 1 else jnp.concatenate(
            [counts_MxC, jnp.zeros_like(counts_MxC)], -1)
        margin = (top2[:, 0] - top2[:, 1]) / (jnp.maximum(voters, 1) if isinstance(voters, jax.Array) else voters)
        keep = keep * (margin >= min_margin - 1e-6).astype(jnp.float32)
    return Tally(winner.astype(jnp.int32), share, keep)


def tally(votes_AxM: jax.Array, classes: int, ties: str = "lowest", min_agreement: float = 0.0,
          key=None) -> Tally:
    return tally_counts(count_votes(votes_AxM, classes), votes_AxM.shape[0], ties, min_agreement, key)


def quantize_probs(probs: jax.Array, bits: int) -> jax.Array:
    """What the server receives of a probability vector sent with `bits` bits per value."""
    if bits == 32:
        return probs
    if bits == 16:
        return probs.astype(jnp.float16).astype(jnp.float32)
    if bits == 8:
        return jnp.round(probs * 255.0) / 255.0
    raise ValueError(f"comm.soft_bits={bits}; allowed: {', '.join(map(str, choices('comm.soft_bits')))}")


def soft_targets(sum_MxC: jax.Array, voters: int, aggregate: str = "mean", era_temperature: float = 0.1):
    """The server's targets from the sum over `voters` peers of what they sent (`voters` may be
    traced under dropout; none arrived -> zeros, which the caller weighs out)."""
    mean = sum_MxC / (jnp.maximum(voters, 1) if isinstance(voters, jax.Array) else voters)
    if aggregate == "mean":
        return mean
    # DS-FL's entropy reduction: sharpen the average so the targets are more confident.
    return jax.nn.softmax(mean / era_temperature, axis=-1)


# ---------------------------------------------------------------------------- robust aggregation

ROBUST = ("median", "trimmed")


def trim_count(trim: float, n: int) -> int:
    """floor(trim * n) with trim read as the decimal it was written as (0.1 * 30 is 3, not 2): the
    configuration's one reading of a fraction as a count (config_shapes.decimal_floor, which validation's
    trim warning reads too)."""
    return decimal_floor(trim, n)


def coordinate_stat(x_AxK: jax.Array, mask_A: Optional[jax.Array], aggregate: str, trim: float = 0.1):
    """Coordinate-wise median (the mean of the two middle values for an even count) or trimmed mean
    (floor(trim * n) values cut from each end, the rest averaged) over the leading axis, of the n rows
    with mask_A True (None: all rows; n may then be traced). Sorts a copy: memory [A, ...] more.
    Zeros where no row is kept."""
    A = x_AxK.shape[0]
    if mask_A is None:
        n, xs = A, jnp.sort(x_AxK, axis=0)
    else:
        n = jnp.sum(mask_A, dtype=jnp.int32)
        big = jnp.asarray(jnp.inf, x_AxK.dtype)
        xs = jnp.sort(jnp.where(mask_A.reshape((-1,) + (1,) * (x_AxK.ndim - 1)), x_AxK, big), axis=0)
    if aggregate == "median":
        lo, hi = jnp.maximum((n - 1) // 2, 0), jnp.maximum(n // 2, 0)
        out = (jnp.take(xs, lo, axis=0) + jnp.take(xs, hi, axis=0)) / 2
    elif aggregate == "trimmed":
        if mask_A is None:
            k = trim_count(trim, A)
        else:
            k = jnp.asarray([trim_count(trim, m) for m in range(A + 1)], jnp.int32)[n]
        j = jnp.arange(A).reshape((-1,) + (1,) * (x_AxK.ndim - 1))
        keep = (j >= k) & (j < n - k)
        out = jnp.sum(jnp.where(keep, xs, 0), axis=0) / jnp.maximum(n - 2 * k, 1).astype(x_AxK.dtype)
    else:
        raise ValueError(f"aggregate={aggregate!r}; allowed: {', '.join(ROBUST)}")
    if mask_A is None:
        return out
    return jnp.where(n > 0, out, jnp.zeros_like(out))


def renormalize(v_MxC: jax.Array) -> jax.Array:
    """Negative values to 0, then each probe's row to sum to one (uniform where all are 0)."""
    v = jnp.maximum(v_MxC, 0.0)
    total = jnp.sum(v, axis=-1, keepdims=True)
    return jnp.where(total > 0, v / jnp.where(total > 0, total, 1.0), 1.0 / v.shape[-1])


def robust_soft(sent_AxMxC: jax.Array, mask_A: Optional[jax.Array], aggregate: str, trim: float = 0.1):
    """softlabel.aggregate=median | trimmed: the coordinate-wise statistic of the sent probability
    vectors, renormalised to sum to one per probe (uniform where every coordinate is 0)."""
    return renormalize(coordinate_stat(sent_AxMxC, mask_A, aggregate, trim))


class Sums(NamedTuple):
    """What the server and the diagnostics need of a group of peers' logits; adds over groups."""
    counts_MxC: jax.Array            # int32 votes (argmax) per probe and class
    probs_MxC: jax.Array             # sum of probabilities: the soft average diagnostic
    sent_MxC: Optional[jax.Array]    # sum of the quantised probabilities sent (softlabel), else None
    wrong_conf: jax.Array            # sum of max probability over wrong predictions
    wrong: jax.Array                 # int32 number of wrong predictions (exact at any A * M)
    # Faulty peers (faults.py): votes and probabilities of the honest peers alone, else None
    honest_counts_MxC: Optional[jax.Array] = None
    honest_probs_MxC: Optional[jax.Array] = None
    honest: Optional[jax.Array] = None          # int32 number of honest peers


def chunk_sums(logits_cxMxC: jax.Array, valid_c: jax.Array, y_M: jax.Array,
               soft_bits: Optional[int] = None, honest_c: Optional[jax.Array] = None,
               clip: Optional[float] = None, sent_fn=None, valid_M: Optional[jax.Array] = None) -> Sums:
    """`Sums` of one chunk of peers; rows with valid_c False (padding, or a lost message) contribute
    nothing. valid_M (bool [M], or None: every message): messages outside it (a probe block's padding,
    exchange.blocked_tally) add no wrong predictions; their [M, C] rows are the caller's to drop.
    honest_c (bool [c], or None): also sum the votes and probabilities of those rows alone.

    soft_bits None: no soft labels are sent (tally); 32 shares the probability sum. clip (privacy.clip):
    each peer's sent [M, C] message is scaled to L2 norm at most `clip` before it is summed (sim/dp.py).
    sent_fn (probs [c, M, C] -> what the server decodes of each message, [c, M, C]): a protocol's own
    message (topk_soft's sparse top-k); it replaces the soft_bits quantisation when given.
    """
    C = logits_cxMxC.shape[-1]
    probs = jax.nn.softmax(logits_cxMxC, axis=-1)
    pred_cxM = jnp.argmax(logits_cxMxC, axis=-1)
    w_c = valid_c.astype(probs.dtype)

    def masked_sum(v_cxMxC):
        # A weighted sum as a dot, not sum(v * w[:, None, None]): XLA's CPU backend turned that
        # fusion into a 250x slower loop (c=6, M=2000, C=1000: 104 s against 0.4 s). HIGHEST keeps
        # float32 on GPUs, whose default dot precision may round inputs to TF32.
        return jnp.einsum("c,cmk->mk", w_c, v_cxMxC, precision=jax.lax.Precision.HIGHEST)

    probs_MxC = masked_sum(probs)
    if sent_fn is not None:
        sent_MxC = masked_sum(sent_fn(probs))
    elif soft_bits is None:
        sent_MxC = None
    elif soft_bits == 32 and clip is None:
        sent_MxC = probs_MxC
    else:
        sent = probs if soft_bits == 32 else quantize_probs(probs, soft_bits)
        sent_MxC = masked_sum(sent if clip is None else dp.clip_rows(sent, clip))
    wrong_cxM = (pred_cxM != y_M[None, :]) & valid_c[:, None]
    if valid_M is not None:
        wrong_cxM = wrong_cxM & valid_M[None, :]
    conf_cxM = jnp.max(probs, axis=-1)
    honest = {}
    if honest_c is not None:
        h_c = honest_c & valid_c
        honest = dict(honest_counts_MxC=count_votes(jnp.where(h_c[:, None], pred_cxM, C), C),
                      honest_probs_MxC=jnp.einsum("c,cmk->mk", h_c.astype(probs.dtype), probs,
                                                  precision=jax.lax.Precision.HIGHEST),
                      honest=jnp.sum(h_c, dtype=jnp.int32))
    return Sums(counts_MxC=count_votes(jnp.where(valid_c[:, None], pred_cxM, C), C),
                probs_MxC=probs_MxC, sent_MxC=sent_MxC,
                wrong_conf=jnp.sum(jnp.where(wrong_cxM, conf_cxM, 0.0)),
                wrong=jnp.sum(wrong_cxM, dtype=jnp.int32), **honest)


def add_sums(a: Sums, b: Sums) -> Sums:
    return jax.tree.map(jnp.add, a, b)


GATE_AGREEMENT = "gate_agreement"  # info key: what distill.gate reads when it is not info["agreement"]
# the rows' values that mean nothing with no vote arrived (none_arrived); `tied` too: a tie among nobody
# is undefined, and its 0.0 there pulled every average over rounds down as agreement's did
NONE_ARRIVED_KEYS = ("vote_acc", "softavg_acc", "agreement", "tied", "wrong_confidence")


def mean_agreement(share_M: jax.Array, mask_M: Optional[jax.Array] = None) -> jax.Array:
    """The mean winning share distill.gate reads: over the messages `mask_M` marks real (next_token:
    tasks.message_mask, the probe positions whose input is not PAD, which the peers train on), None
    over every message (images: the rows' `agreement`, the same number)."""
    if mask_M is None:
        return jnp.mean(share_M)
    return jnp.sum(share_M * mask_M) / jnp.maximum(jnp.sum(mask_M), 1.0)


def tied(counts_MxC: jax.Array) -> jax.Array:
    """bool [M]: the message's plurality is shared by two or more classes among the votes counted (none
    arrived: no plurality, not a tie). Where vote.ties decides the winner in a plain vote."""
    top_M = jnp.max(counts_MxC, axis=-1)
    return (jnp.sum(counts_MxC == top_M[:, None], axis=-1) > 1) & (top_M > 0)


def scored_mean(hit_M: jax.Array, scored_M: Optional[jax.Array] = None) -> jax.Array:
    """The share of hits among the scored messages (`scored_M` float 0/1 or a weight; None: every
    message, the plain mean, so an image program is the one it was). NaN where nothing is scored (every
    probe position PAD, OOV, BOS or EOS; no probe kept, for consensus_acc): there is nothing to be right
    or wrong about, and 0.0 read as every answer wrong. The row writes it null (results/rows.lane_row)."""
    if scored_M is None:
        return jnp.mean(hit_M)
    total = jnp.sum(scored_M)
    return jnp.where(total > 0, jnp.sum(hit_M * scored_M) / jnp.maximum(total, 1.0), jnp.float32(jnp.nan))


def finish_diagnostics(s: Sums, voters: int, y_M: jax.Array, winner_M: jax.Array, share_M: jax.Array,
                       honest_winner_M: Optional[jax.Array] = None,
                       scored_M: Optional[jax.Array] = None) -> dict:
    """Vote vs soft-average accuracy on the probes, agreement, ties (`tied`) and wrong-prediction
    confidence; the vote and soft average of the honest peers alone (`*_honest`: the same values without
    faulty peers; NaN when no active peer is honest). `scored_M` (next_token: tasks.scored_messages): the
    messages the accuracies score, as test accuracy does; `agreement` stays over every message."""
    softavg_M = jnp.argmax(s.probs_MxC / (jnp.maximum(voters, 1) if isinstance(voters, jax.Array) else voters),
                           axis=-1)
    out = {
        "vote_acc": scored_mean(winner_M == y_M, scored_M),
        "softavg_acc": scored_mean(softavg_M == y_M, scored_M),
        "agreement": jnp.mean(share_M),
        # over every message, as agreement; of the arrived votes' own counts (before GNMax noise or trust
        # weights), so the same whichever protocol runs, as vote_acc
        "tied": jnp.mean(tied(s.counts_MxC).astype(jnp.float32)),
        "wrong_confidence": s.wrong_conf / jnp.maximum(s.wrong, 1).astype(jnp.float32),
    }
    out = none_arrived(out, voters)
    if s.honest_counts_MxC is None:
        out["vote_acc_honest"], out["softavg_acc_honest"] = out["vote_acc"], out["softavg_acc"]
        return out
    winner = jnp.argmax(s.honest_counts_MxC, axis=-1) if honest_winner_M is None else honest_winner_M
    nan = jnp.float32(jnp.nan)
    out["vote_acc_honest"] = jnp.where(s.honest > 0, scored_mean(winner == y_M, scored_M), nan)
    out["softavg_acc_honest"] = jnp.where(s.honest > 0, scored_mean(jnp.argmax(s.honest_probs_MxC, -1) == y_M,
                                                                    scored_M), nan)
    return out


def none_arrived(info: dict, voters) -> dict:
    """`info` with vote_acc, softavg_acc, agreement, tied and wrong_confidence NaN (null in the row) where
    no vote arrived (dropout: `voters` traced, 0 when every peer dropped): the argmax of no votes is class
    0, and its hits were reported as the vote's accuracy (0.125 on 8 classes' probes with
    faults.fraction=1), agreement, tied and wrong_confidence as 0.0, in every average over rounds. distill.gate reads the agreement
    as it was before the NaN (0.0 with nobody arrived, so the gate decides as it always did), kept under
    GATE_AGREEMENT unless the round set its own there."""
    if isinstance(voters, jax.Array):
        info.setdefault(GATE_AGREEMENT, info["agreement"])
        nan = jnp.float32(jnp.nan)
        info.update({k: jnp.where(voters > 0, info[k], nan) for k in NONE_ARRIVED_KEYS})
    return info


def diagnostics(logits_AxMxC: jax.Array, y_M: jax.Array, winner_M: jax.Array,
                share_M: jax.Array) -> dict:
    """`finish_diagnostics` of all peers' logits at once (small shapes and tests)."""
    A = logits_AxMxC.shape[0]
    s = chunk_sums(logits_AxMxC, jnp.ones((A,), bool), y_M)
    return finish_diagnostics(s, A, y_M, winner_M, share_M)
