"""The probe exchange in O(M x C) memory: peers predict a chunk at a time inside the compiled round.

Shape letters: A active (voting) peers, M probes, C classes, c peers per chunk, n chunks
(glossary: tallysim/sim/__init__.py).

Predicting all A peers at once holds [A, M, C] logits (40 GB at 1,000 peers x 10,000 probes x 1,000
classes) and as many probabilities. Instead a `lax.scan` walks the peers in chunks of `c`, chosen
statically so one chunk's [c, M, C] float32 logits and its peers' forward passes over the probes stay
within `CHUNK_BYTES` (model_chunks; where one peer's forward pass over all M probes alone exceeds it, a
peer's pass also walks the probes a slice at a time, split_probes), and adds each chunk's
`vote.Sums` (vote counts, probability sums, wrong-prediction sums: all [M, C] or scalars). Votes,
winners and bits are therefore exactly those of the all-at-once computation; the float sums differ
only in summation order.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from tallysim.sim import activations, vote
# The static sizing lives in sizing.py (jax-free, for validation); auto_chunk and tests read it here too.
from tallysim.sizing import (CHUNK_BYTES, blocks_votes, exchange_hidden_bytes, footprint_bytes,  # noqa: F401
                             peer_chunk, probe_block, probe_chunk)


def model_chunks(apply_fn, params_P, x_M, peers: int, messages: int, classes: int,
                 lanes: int = 1) -> tuple[int, int]:
    """(peers per chunk, probes per forward pass) of an exchange whose peers run `apply_fn` (stacked
    `params_P`) over the probes x_M: the probes split only where one peer's forward pass over all of
    them exceeds the chunk budget (sizing.probe_chunk), then as many peers as fit the budget with their
    [messages, C] logits and each one's forward pass over that many probes (sizing.exchange_hidden_bytes,
    traced as evaluation's batch is: nothing compiled). Sized by the logits alone, fig12's 10 CNNs ran
    1,000 probes each at once, about 12.5 GB; by peers alone, one CNN still held about 1.2 GB. Votes,
    bits and winners depend on neither (module docstring; split_probes)."""
    peak, example = activations.stacked_peak(apply_fn, params_P, x_M.shape[1:])
    probes = x_M.shape[0]
    logits = 4 * classes * (messages // probes)          # one probe's logits: a text window's every position
    m = probe_chunk(probes, messages, classes, peak, example, logits, lanes)
    return peer_chunk(peers, messages, classes, lanes=lanes,
                      hidden=exchange_hidden_bytes(peak, example, logits, m)), m


def split_probes(predict: Callable[[jax.Array], jax.Array], x_M: jax.Array, m: Optional[int]) -> jax.Array:
    """predict(x_m) -> [c, m, ...] for all M probes, `m` at a time (a lax.map: one slice's forward pass
    alive at once), concatenated back to [c, M, ...]; m None or >= M: one call, the program as before.
    The last slice is padded by repeating the last probe and its rows dropped. Each probe's logits are
    its own forward pass's, so the votes and soft labels equal the unsplit exchange's
    (tests/test_leftovers5.py)."""
    M = x_M.shape[0]
    if not m or m >= M:
        return predict(x_M)
    n = math.ceil(M / m)
    rows = jnp.minimum(jnp.arange(n * m), M - 1).reshape(n, m)
    out = jax.lax.map(lambda r: predict(x_M[r]), rows)                  # [n, c, m, ...]
    out = jnp.moveaxis(out, 0, 1)                                       # [c, n, m, ...]
    return out.reshape((out.shape[0], n * m) + out.shape[3:])[:, :M]


def stream_sums(logits_fn: Callable[[jax.Array], jax.Array], peers: int, y_M: jax.Array, classes: int,
                soft_bits: Optional[int] = None, chunk: Optional[int] = None,
                masks_fn: Optional[Callable] = None, clip: Optional[float] = None,
                sent_fn: Optional[Callable] = None, lanes: int = 1,
                valid_M: Optional[jax.Array] = None) -> vote.Sums:
    """`vote.Sums` over peers 0..peers-1 where logits_fn(rows_c) -> [c, M, C] logits of those peers.

    The last chunk is padded by repeating the last peer; its padding rows are masked out of every sum.
    masks_fn(rows_c) -> (sent_c, honest_c), either None (faults.py): rows whose message was lost
    contribute nothing; the honest rows' votes and probabilities are also summed on their own (two
    more [M, C] accumulators, still no [A, M, C] array). clip: privacy.clip of each sent message.
    sent_fn: a protocol's own message (vote.chunk_sums), built a chunk at a time like the rest.
    lanes: the lanes vmapped together, which share the chunk budget (sizing.peer_chunk).
    valid_M: the messages whose wrong predictions count (None: all; blocked_tally's padded block).
    """
    M = y_M.shape[0]
    c = min(chunk or peer_chunk(peers, M, classes, lanes=lanes), peers)
    n = math.ceil(peers / c)
    pos_nxc = jnp.arange(n * c).reshape(n, c)
    valid_nxc = pos_nxc < peers
    rows_nxc = jnp.minimum(pos_nxc, peers - 1)

    def one(rows_c, valid_c):
        sent_c, honest_c = masks_fn(rows_c) if masks_fn is not None else (None, None)
        if sent_c is not None:
            valid_c = valid_c & sent_c
        return vote.chunk_sums(logits_fn(rows_c), valid_c, y_M, soft_bits, honest_c, clip, sent_fn, valid_M)

    if n == 1:      # everything fits at once: no scan, and no padding either
        return one(rows_nxc[0], valid_nxc[0])
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                         jax.eval_shape(one, rows_nxc[0], valid_nxc[0]))

    def body(acc, xs):
        return vote.add_sums(acc, one(*xs)), None

    sums, _ = jax.lax.scan(body, zeros, (rows_nxc, valid_nxc))
    return sums


def stream(fn: Callable, peers: int, chunk: int):
    """The general form of `stream_sums`, for a protocol that needs more of each chunk than
    `vote.Sums` (cfd, selective_fd): fn(rows_c, valid_c) -> (sums, per_row), pytrees; `sums` is added
    over the chunks ([M, C] accumulators: no [A, M, C] array), `per_row` (leading axis c: a few
    numbers per peer, or cfd's delta-coding levels, which its State holds anyway) comes back
    concatenated over the peers, [peers, ...], the last chunk's padding rows dropped.
    Padding rows repeat the last peer with valid_c False; fn must leave them out of `sums`."""
    c = min(chunk, peers)
    n = math.ceil(peers / c)
    pos_nxc = jnp.arange(n * c).reshape(n, c)
    valid_nxc = pos_nxc < peers
    rows_nxc = jnp.minimum(pos_nxc, peers - 1)
    if n == 1:      # everything fits at once: no scan, no padding
        return fn(rows_nxc[0], valid_nxc[0])
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                         jax.eval_shape(fn, rows_nxc[0], valid_nxc[0])[0])

    def body(acc, xs):
        sums, per_row = fn(*xs)
        return jax.tree.map(jnp.add, acc, sums), per_row

    sums, per_row = jax.lax.scan(body, zeros, (rows_nxc, valid_nxc))
    return sums, jax.tree.map(lambda a: a.reshape((n * c,) + a.shape[2:])[:peers], per_row)


def blocked_tally(block_fn: Callable, probes: int, block: int, y_M: jax.Array):
    """The plurality vote of every probe message, `block` probes at a time (a lax.scan over the blocks,
    each streaming its peers as stream_sums does), for a vote whose [M, C] totals would not fit
    (sizing.probe_block: 45.8 GB for words' 5,716 windows of 20 positions x 10,004 classes).

    block_fn(rows_b, y_b, valid_b) -> (per_message, totals): rows_b the block's probe indices (the
    last block padded by repeating the last probe; rows_b[0] is always real), y_b its messages'
    labels, valid_b which of them are real (their wrong predictions alone count); per_message a pytree
    of [M_b, ...] arrays (the block's Tally, soft-average hits, ...), totals a pytree of scalars added
    over the blocks (wrong_conf, wrong). A message's winner, share and keep depend on its own counts
    (and its own rows of any draw: row_draws.py) only, so they are the all-probes vote's bit for bit;
    only float totals add in another order.
    Returns (per_message over the M messages, totals)."""
    M = y_M.shape[0]
    positions = M // probes
    n = math.ceil(probes / block)
    pos = jnp.arange(n * block)
    rows_nxb = jnp.minimum(pos, probes - 1).reshape(n, block)
    valid_nxm = jnp.repeat(pos < probes, positions).reshape(n, block * positions)
    y_nxm = y_M.reshape(probes, positions)[rows_nxb].reshape(n, block * positions)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                         jax.eval_shape(block_fn, rows_nxb[0], y_nxm[0], valid_nxm[0])[1])

    def body(acc, xs):
        per_message, totals = block_fn(*xs)
        return jax.tree.map(jnp.add, acc, totals), per_message

    totals, per_message = jax.lax.scan(body, zeros, (rows_nxb, y_nxm, valid_nxm))
    return jax.tree.map(lambda a: a.reshape((n * a.shape[1],) + a.shape[2:])[:M], per_message), totals
