"""vote.chunk_sums with fewer probes than classes (M < C): every vote counts, padding rows do not."""
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim.sim import vote

pytestmark = pytest.mark.core


def test_chunk_sums_counts_votes_when_probes_are_fewer_than_classes():
    C, M = 5, 3
    pred = np.array([[4, 0, 3], [4, 2, 3], [1, 1, 1]])          # peers x probes; the last row is padding
    logits = np.full((3, M, C), -5.0, np.float32)
    for i in range(3):
        logits[i, np.arange(M), pred[i]] = 5.0
    s = vote.chunk_sums(jnp.asarray(logits), jnp.array([True, True, False]), jnp.array([4, 2, 0]))
    want = np.zeros((M, C), int)
    for i in range(2):
        for m in range(M):
            want[m, pred[i, m]] += 1
    np.testing.assert_array_equal(np.asarray(s.counts_MxC), want)       # classes 3 and 4 >= M included
