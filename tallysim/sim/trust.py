"""The history-weighted vote (`vote.weighting=history`, tally): each peer's vote counts with its trust,
an exponential moving average of how often its votes agreed with past consensus.

Rule (docs/protocols.md, "Robust prediction aggregation"): trust r_i starts at 1. In a round with
senders S (the active peers whose votes arrived) and votes v_i in {0..C-1}^M, the weights are
w_i = r_i * |S| / sum_{j in S} r_j (so they sum to the number of voters, and shares and
`vote.min_agreement` / `vote.min_margin` read as for the plain vote), the counts
n_c(x) = sum_{i in S} w_i [v_i(x) = c], and the winner, share and abstention come from them as in
`vote.tally_counts`. Then each sender's agreement a_i = mean over the kept probes of [v_i(x) = winner(x)]
(1 where no probe was kept) updates r_i <- beta * r_i + (1 - beta) * a_i, beta = `vote.history`;
peers that sent nothing keep theirs. A coordinated minority that votes against the consensus loses
weight round by round; an honest peer that disagrees sometimes (non-IID) keeps most of its own.
The votes are recomputed chunk by chunk as [A, M] class indices (no [A, M, C] array).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from tallysim.sim import vote
from tallysim.sizing import peer_chunk

TRUST = "trust_P"      # the State.extra entry: float32 [P]


def initial(peers: int) -> dict:
    return {TRUST: jnp.ones((peers,), jnp.float32)}


def votes(logits_fn, peers: int, probes: int, classes: int, lanes: int = 1, chunk: int | None = None) -> jax.Array:
    """int32 [A, M]: every active peer's sent class (logits_fn, lanes and chunk as exchange.stream_sums
    takes them: chunk None sizes it by the logits alone)."""
    c = min(chunk or peer_chunk(peers, probes, classes, lanes=lanes), peers)
    n = math.ceil(peers / c)
    rows = jnp.minimum(jnp.arange(n * c), peers - 1).reshape(n, c)
    v = jax.lax.map(lambda r: jnp.argmax(logits_fn(r), axis=-1).astype(jnp.int32), rows)
    return v.reshape(n * c, -1)[:peers]


def weights(trust_A, sent_A):
    """(w [A], voters): each vote's weight, summing to the number of voters (traced float);
    sent_A None: every peer's vote arrived."""
    sent = jnp.ones(trust_A.shape, jnp.float32) if sent_A is None else sent_A.astype(jnp.float32)
    r = trust_A * sent
    voters = jnp.sum(sent)
    return r * voters / jnp.maximum(jnp.sum(r), 1e-12), voters


def weighted_counts(w_A, votes_AxM, classes: int) -> jax.Array:
    """float32 [M, C]: the weights of the votes per probe and class, added in peer order (a probe
    block's counts are those probes' rows of the all-probes counts: protocols/blocked_vote.py)."""
    M = votes_AxM.shape[1]
    return jnp.zeros((M, classes), jnp.float32).at[jnp.arange(M)[None, :], votes_AxM].add(w_A[:, None])


def weighted_tally(trust_A, votes_AxM, sent_A, classes: int, ties: str, min_agreement, key, min_margin: float):
    """(Tally, weights [A]) of the trust-weighted vote; sent_A None: every peer's vote arrived."""
    w, voters = weights(trust_A, sent_A)
    counts = weighted_counts(w, votes_AxM, classes)
    return vote.tally_counts(counts, voters, ties, min_agreement, key, min_margin), w


def updated(trust_P, idx, votes_AxM, t: vote.Tally, sent_A, beta):
    """trust_P after this round: the senders' EMA of their agreement with the (kept) consensus."""
    keep = t.keep_M
    agree = (votes_AxM == t.winner_M[None, :]).astype(jnp.float32)
    a_A = jnp.where(jnp.sum(keep) > 0, agree @ keep / jnp.maximum(jnp.sum(keep), 1.0), 1.0)
    old_A = trust_P if idx is None else trust_P[idx]
    new_A = beta * old_A + (1.0 - beta) * a_A
    if sent_A is not None:
        new_A = jnp.where(sent_A, new_A, old_A)
    return new_A if idx is None else trust_P.at[idx].set(new_A)
