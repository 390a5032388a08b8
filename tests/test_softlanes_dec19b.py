"""Soft labels in a program of several lanes (docs/scale.md, "Soft labels and the lanes' shared budget"):
the lanes one program holds share the exchange's chunk budget, so more lanes can mean fewer peers a
chunk, and the soft-label sum over the peers is then added in another order. The demo's softlabel
(pool 4,000) streams its 20 peers in one chunk alone and in a 2-seed program, in chunks of 18 in a
3-seed one: its seed 0 then moves by float32 rounding that training amplifies (measured in the docs).
The votes are integer counts and do not move. A lane-count dependence other than the chunk (a key
split, a probe draw) would make seed 0 differ with the chunk held fixed: measured identical there
(docs/scale.md), and tests/test_trust_resume.py::test_same_seed_same_rows_other_seed_other_rows_and_
lanes_change_nothing[softlabel] (slow, 56 s) checks every row of seeds=2 against seeds alone."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tallysim import sizing
from tallysim.config import ModelConfig
from tallysim.sim import activations, exchange, models


def test_the_demos_peer_chunk_shrinks_at_three_lanes():
    # the demo's MLP (width 200) on Fashion-MNIST's 28x28x1, 1,000 probes of C = 10 a round, 20 peers
    model = models.make_model(ModelConfig(name="mlp", width=200), 10)
    params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1))))
    stacked = jax.tree.map(lambda a: jax.ShapeDtypeStruct((20,) + a.shape, a.dtype), params)
    x_M = jnp.zeros((1000, 28, 28, 1))
    chunks = [exchange.model_chunks(model.apply, stacked, x_M, 20, 1000, 10, lanes) for lanes in (1, 2, 3)]
    assert chunks == [(20, 1000), (20, 1000), (18, 1000)], chunks      # docs/scale.md quotes 20, 20, 18
    peak, example = activations.stacked_peak(model.apply, stacked, (28, 28, 1))
    hidden = sizing.exchange_hidden_bytes(peak, example, 4 * 10, 1000)
    assert hidden == 4_740_000, hidden           # 20 x 3 x (40 KB of logits + 4.74 MB) > 256 MB at 3 lanes


def test_a_smaller_chunk_moves_the_soft_sum_by_rounding_and_no_vote():
    """The same peers' logits streamed 20 at once and 18 then 2 (the last chunk padded): the integer
    votes and wrong counts are identical, the probability sums agree to float32 rounding; the same
    chunk twice gives the same bits (nothing else in the exchange depends on the chunk)."""
    logits = jax.random.normal(jax.random.PRNGKey(3), (20, 200, 10)) * 3.0
    y_M = jax.random.randint(jax.random.PRNGKey(4), (200,), 0, 10)

    def sums(chunk):
        return jax.jit(lambda lg: exchange.stream_sums(lambda rows: lg[rows], 20, y_M, 10, soft_bits=32,
                                                       chunk=chunk))(logits)
    whole, split, again = sums(20), sums(18), sums(18)
    np.testing.assert_array_equal(np.asarray(whole.counts_MxC), np.asarray(split.counts_MxC))
    assert int(whole.wrong) == int(split.wrong)
    np.testing.assert_allclose(np.asarray(split.sent_MxC), np.asarray(whole.sent_MxC), rtol=0, atol=4e-6)
    np.testing.assert_array_equal(np.asarray(split.sent_MxC), np.asarray(again.sent_MxC))
    # the sums are the peers' probabilities, whichever order adds them (a dropped chunk would be off by ~1)
    np.testing.assert_allclose(np.asarray(whole.sent_MxC), np.asarray(jax.nn.softmax(logits).sum(0)), atol=4e-6)
