"""Plurality tally: unanimity, both tie rules, abstention, soft aggregation and diagnostics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim.sim import vote

pytestmark = pytest.mark.core    # part of the `make mutation` subset


def test_unanimous_vote_returns_the_label():
    votes = jnp.array([[3, 0, 9]] * 5)
    t = vote.tally(votes, 10)
    assert t.winner_M.tolist() == [3, 0, 9]
    assert t.share_M.tolist() == [1.0, 1.0, 1.0]


def test_plurality_not_majority():
    votes = jnp.array([[1], [1], [2], [3], [4]])          # 2 of 5 vote 1: plurality, not majority
    assert vote.tally(votes, 5).winner_M.tolist() == [1]


def test_ties_lowest_is_lowest_class():
    votes = jnp.array([[7, 2], [4, 5], [7, 5], [4, 2]])   # probe 0: 7 vs 4; probe 1: 2 vs 5
    t = vote.tally(votes, 10, ties="lowest")
    assert t.winner_M.tolist() == [4, 2]
    assert t.share_M.tolist() == [0.5, 0.5]


def test_ties_random_picks_only_tied_classes_uniformly_and_deterministically():
    votes = jnp.tile(jnp.array([[7], [4], [7], [4], [1]]), (1, 4000))   # 7 and 4 tied, 1 behind
    key = jax.random.PRNGKey(0)
    w = np.asarray(vote.tally(votes, 10, ties="random", key=key).winner_M)
    assert set(np.unique(w)) == {4, 7}
    assert 0.45 < np.mean(w == 7) < 0.55
    again = np.asarray(vote.tally(votes, 10, ties="random", key=key).winner_M)
    assert np.array_equal(w, again)
    other = np.asarray(vote.tally(votes, 10, ties="random", key=jax.random.PRNGKey(1)).winner_M)
    assert not np.array_equal(w, other)
    # Without a tie the random rule must agree with the plain plurality.
    clear = jnp.array([[3, 1], [3, 1], [2, 0]])
    assert vote.tally(clear, 5, ties="random", key=key).winner_M.tolist() == [3, 1]


def test_abstention_drops_low_agreement_probes():
    votes = jnp.array([[0, 1, 2], [0, 1, 3], [0, 2, 4], [0, 1, 5]])    # shares 1.0, 0.75, 0.25
    assert vote.tally(votes, 6, min_agreement=0.0).keep_M.tolist() == [1, 1, 1]
    assert vote.tally(votes, 6, min_agreement=0.75).keep_M.tolist() == [1, 1, 0]
    assert vote.tally(votes, 6, min_agreement=1.0).keep_M.tolist() == [1, 0, 0]


@pytest.mark.parametrize("bits,tol", [(32, 0.0), (16, 1e-3), (8, 1 / 510 + 1e-7)])
def test_quantize_probs(bits, tol):
    p = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(0), (50, 10)))
    q = vote.quantize_probs(p, bits)
    assert float(jnp.max(jnp.abs(q - p))) <= tol
    if bits == 8:
        assert np.allclose(np.asarray(q) * 255, np.round(np.asarray(q) * 255), atol=1e-4)


def test_soft_targets_mean_and_era():
    # the server's soft targets from the sum of what the peers sent (softlabel's probe exchange)
    p = jnp.array([[[0.6, 0.4]], [[0.2, 0.8]]])
    assert np.allclose(vote.soft_targets(jnp.sum(p, axis=0), 2, "mean"), [[0.4, 0.6]])
    era = vote.soft_targets(jnp.sum(p, axis=0), 2, "era", 0.1)
    assert np.allclose(era, jax.nn.softmax(jnp.array([[4.0, 6.0]])))   # mean / 0.1 sharpened


def test_diagnostics_confident_wrong_peers_fool_the_average_not_the_vote():
    # Three peers right but unsure, one peer confidently wrong: the vote wins, the average is fooled.
    y = jnp.array([0])
    probs = jnp.array([[[0.4, 0.3, 0.3]]] * 3 + [[[0.0, 1.0, 0.0]]])
    logits = jnp.log(probs + 1e-9)
    t = vote.tally(jnp.argmax(logits, -1), 3)
    d = vote.diagnostics(logits, y, t.winner_M, t.share_M)
    assert float(d["vote_acc"]) == 1.0 and float(d["softavg_acc"]) == 0.0
    assert float(d["agreement"]) == 0.75
    assert float(d["wrong_confidence"]) == pytest.approx(1.0, abs=1e-6)


def test_soft_targets_default_to_the_plain_mean():
    p = jnp.array([[[0.2, 0.8]], [[0.6, 0.4]]])
    np.testing.assert_allclose(vote.soft_targets(jnp.sum(p, axis=0), 2), [[0.4, 0.6]], rtol=1e-6)   # not ERA


@pytest.mark.parametrize("mask", [None, [True, True, True, False]])
def test_trimmed_mean_keeping_one_row_is_that_row(mask):
    # 3 rows, trim 0.34: floor(1.02) = 1 cut from each end, so the middle value alone is averaged.
    x = jnp.array([[1.0, 10.0], [5.0, 20.0], [9.0, 0.0]])
    if mask is not None:
        x = jnp.concatenate([x, jnp.array([[100.0, -100.0]])])           # a masked-out fourth row
        mask = jnp.array(mask)
    np.testing.assert_allclose(vote.coordinate_stat(x, mask, "trimmed", 0.34), [5.0, 10.0])


def test_chunk_sums_honest_sums_count_only_valid_honest_rows():
    logits = jnp.array([[[3.0, 0.0, 0.0], [0.0, 2.0, 0.0]],     # peer 0: votes 0, 1 (honest, valid)
                        [[0.0, 0.0, 5.0], [0.0, 0.0, 5.0]],     # peer 1: votes 2, 2 (faulty, valid)
                        [[0.0, 4.0, 0.0], [4.0, 0.0, 0.0]]])    # peer 2: honest, message lost
    s = vote.chunk_sums(logits, jnp.array([True, True, False]), jnp.array([0, 1]),
                        honest_c=jnp.array([True, False, True]))
    assert np.asarray(s.counts_MxC).tolist() == [[1, 0, 1], [0, 1, 1]]
    assert np.asarray(s.honest_counts_MxC).tolist() == [[1, 0, 0], [0, 1, 0]]
    assert int(s.honest) == 1
    e = np.exp([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    np.testing.assert_allclose(s.honest_probs_MxC, e / e.sum(-1, keepdims=True), rtol=1e-6)
