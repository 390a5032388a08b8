"""Static memory sizing of the probe exchange and of evaluation: pure Python, no jax, so that
`validation` can refuse impossible sizes before jax is even imported.

Shape letters: A active (voting) peers, M probes, C classes, c peers per chunk, P peers, B eval batch
(glossary: tallysim/sim/__init__.py).
"""
from __future__ import annotations

CHUNK_BYTES = 256 * 2**20     # one chunk's [c, M, C] (or one eval batch's [P, B, C]) float32 logits
LIVE_PER_CHUNK = 4            # [c, M, C] buffers alive at once: logits, probabilities, quantised, product


def peer_chunk(peers: int, probes: int, classes: int, budget: int = CHUNK_BYTES) -> int:
    """Peers per exchange chunk: as many as fit `budget` bytes of [c, M, C] float32, at least one."""
    return max(1, min(peers, budget // (4 * probes * classes)))


def footprint_bytes(peers: int, probes: int, classes: int, soft: bool, chunk: int | None = None) -> int:
    """Rough peak bytes of one probe exchange: the live chunk temporaries plus the [M, C] accumulators
    (counts, probability sum, sent sum, their per-chunk copies, the targets) and the [M, C] random
    tie scores. No A * M * C term: that is the point of exchange.py."""
    c = chunk or peer_chunk(peers, probes, classes)
    accumulators = 2 * (3 if soft else 2) + 2
    return 4 * probes * classes * (LIVE_PER_CHUNK * c + accumulators)


def eval_batch(peers: int, classes: int, batch: int = 500, budget: int = CHUNK_BYTES) -> int:
    """Test examples per evaluation batch: at most `batch`, and P * B * C float32 logits within `budget`."""
    return max(1, min(batch, budget // (4 * peers * classes)))
