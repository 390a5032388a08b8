"""When tally's vote walks its probes in blocks (exchange.blocked_tally, protocols/blocked_vote.py),
and how many probes a block holds: pure Python, no jax, beside sizing.py (which re-exports these names
and counts the blocked path in its estimate).

The all-probes exchange holds [M * positions, C] totals (vote counts, probability sums, their per-chunk
copies: about ten alive); at words' 5,716 windows x 20 positions x 10,004 classes that is 45.8 GB, and
the run was refused up front, although tally sends and trains on one class per position. A block keeps
of each message only its winner, share, keep, soft-average hit and what the settings add: whether
Confident-GNMax answered it, the honest peers' hits (faults), every peer's vote (vote.weighting=history,
[A, M] int32, which the all-probes path holds too); kept_bytes counts them for the estimate. Exactly the all-probes vote: blocks_votes.
(Shape letters: sim/__init__.py.)
"""
from __future__ import annotations

BLOCK_SHARE = 4     # a block's [M_b, C] float32 totals take at most the chunk budget / BLOCK_SHARE
# Protocols whose exchange is base.probe_exchange's vote (hard labels, no vote_fn).
BLOCKED_PROTOCOLS = ("tally", "bridge")


def probe_block(probes: int, positions: int, classes: int, budget: int, lanes: int = 1) -> int:
    """Probes (windows) per block: all of them while the exchange's [M * positions, C] float32 totals
    fit `budget` (sizing.CHUNK_BYTES, shared by the `lanes`), so the program stays the one built before
    blocks; past it, as many as keep one block's totals within budget / BLOCK_SHARE, at least one
    (words, 5,716 windows: 83 a block, 66 MB of totals each)."""
    row = 4 * positions * classes * lanes
    if probes * row <= budget:
        return probes
    return max(1, min(probes, budget // (BLOCK_SHARE * row)))


# What a block keeps of each message (exchange.blocked_tally's per-message outputs over all M): its Tally
# (int32 winner, float32 share and keep), its soft-average hit and whether it was tied (bool each), 14
# bytes, counted as 16
KEPT_BYTES = 16
HONEST_KEPT_BYTES = 6      # faults: the honest peers' vote and soft-average hits (bool each), their count (int32)
ANSWERED_KEPT_BYTES = 4    # Confident-GNMax: whether the check answered the message (float32)


def kept_bytes(cfg) -> int:
    """Bytes the blocked vote keeps of each message under `cfg` (sizing.exchange_bytes' `kept`): KEPT_BYTES,
    plus the honest peers' hits where faults are on (counted for any faults.kind but none: a fraction that
    makes no peer faulty keeps them too, at worst), plus Confident-GNMax's answer (privacy.noise and
    privacy.threshold, as blocked_vote reads them). Every peer's vote under vote.weighting=history is
    exchange_bytes' own `votes` term."""
    kept = KEPT_BYTES + (HONEST_KEPT_BYTES if cfg.faults.kind != "none" else 0)
    return kept + (ANSWERED_KEPT_BYTES if cfg.privacy.noise > 0 and cfg.privacy.threshold > 0 else 0)


def blocks_votes(cfg) -> bool:
    """Whether a run's vote may walk its probes in blocks (once probe_block says the totals exceed the
    budget): the plurality vote of BLOCKED_PROTOCOLS, whose per-message winner, share and keep depend on
    that message's counts alone, whatever its tie rule, privacy noise, model.groups, vote.weighting or
    faults: a block draws its own rows of every draw the all-probes vote makes over all messages (tie
    scores, GNMax noise, confident_wrong's classes: sim/row_draws.py), adds the groups' sums in their
    order, weighs each probe's votes by the round's trust and keeps every peer's votes for the trust's
    update after the blocks, and tallies the honest peers beside, so the vote, the targets and every
    diagnostic are the all-probes ones bit for bit (tests/test_blockedvote_dec16.py)."""
    return cfg.protocol.name in BLOCKED_PROTOCOLS and not counts_target(cfg)


def counts_target(cfg) -> bool:
    """tally.target=counts: tally's votes go the soft path as one-hot messages (protocols/tally.py), summed
    over all probes at once like a soft protocol's and never in blocks; the estimate counted a blocked vote's
    block there, far below the [messages, C] float sums it holds (a word-level text run's probe outputs)."""
    return cfg.protocol.name == "tally" and getattr(getattr(cfg, "tally", None), "target", "vote") == "counts"
