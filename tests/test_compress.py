"""Compression operators (sim/compress.py) against numpy derivations of their papers' rules."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim.sim import compress


def test_random_k_is_unbiased_and_costs_k_values():
    W, k = 50, 5
    u = jnp.asarray(np.random.default_rng(0).normal(size=W), jnp.float32)
    keys = jax.random.split(jax.random.key(0), 4000)
    masks = jax.vmap(lambda kk: compress.random_k_mask(kk, W, k))(keys)
    assert np.all(np.asarray(masks).sum(1) == k)
    est = jax.vmap(lambda m: compress.random_k(u, m, k))(masks)
    np.testing.assert_allclose(np.asarray(est).mean(0), np.asarray(u), atol=0.25)
    one = np.asarray(est[0])
    np.testing.assert_allclose(one[np.asarray(masks[0]) > 0], np.asarray(u)[np.asarray(masks[0]) > 0] * W / k,
                               rtol=1e-6)
    assert compress.random_k_bits(k, 32) == 160
    # k = W: the identity
    full = compress.random_k_mask(jax.random.key(1), W, W)
    np.testing.assert_allclose(np.asarray(compress.random_k(u, full, W)), np.asarray(u), rtol=1e-6)


def np_qsgd(u, s, uniform):
    norm = np.linalg.norm(u)
    r = s * np.abs(u) / norm
    lo = np.floor(r)
    level = lo + (uniform < r - lo)
    return norm * np.sign(u) * level / s


@pytest.mark.parametrize("s", [1, 4, 255])
def test_qsgd_matches_numpy_and_is_unbiased(s):
    u = np.random.default_rng(1).normal(size=40).astype(np.float32)
    key = jax.random.key(2)
    got = np.asarray(compress.qsgd(jnp.asarray(u), s, key))
    uni = np.asarray(jax.random.uniform(key, u.shape))
    np.testing.assert_allclose(got, np_qsgd(u.astype(np.float64), s, uni), rtol=1e-5, atol=1e-6)
    # every value is |u| * level / s with an integer level in 0..s
    lv = np.abs(got) * s / np.linalg.norm(u)
    np.testing.assert_allclose(lv, np.round(lv), atol=1e-3)
    assert lv.max() <= s + 1e-3
    many = jax.vmap(lambda k: compress.qsgd(jnp.asarray(u), s, k))(jax.random.split(key, 3000))
    np.testing.assert_allclose(np.asarray(many).mean(0), u, atol=0.15 * np.linalg.norm(u) / np.sqrt(s))


def test_qsgd_many_levels_is_the_identity_within_float_error():
    u = np.random.default_rng(3).normal(size=100).astype(np.float32)
    got = np.asarray(compress.qsgd(jnp.asarray(u), 2.0 ** 31, jax.random.key(0)))
    np.testing.assert_allclose(got, u, rtol=1e-5, atol=1e-6)


def test_qsgd_bits():
    # 32-bit norm + per coordinate 1 sign bit + ceil(log2(s + 1)) level bits
    assert compress.qsgd_bits(1000, 1) == 32 + 1000 * 2
    assert compress.qsgd_bits(1000, 15) == 32 + 1000 * 5
    assert compress.qsgd_bits(1000, 16) == 32 + 1000 * 6


def test_sign_majority_vote():
    s = compress.signs(jnp.asarray([[0.5, -1.0, 0.0, -2.0], [1.0, -1.0, -3.0, 2.0], [-1.0, 2.0, -1.0, 1.0]]))
    assert s.tolist() == [[1, -1, 1, -1], [1, -1, -1, 1], [-1, 1, -1, 1]]
    assert compress.majority(s).tolist() == [1, -1, -1, 1]
    # the third peer's message lost: a 1-1 tie on coordinate 2 goes to +1
    assert compress.majority(s, jnp.asarray([True, True, False])).tolist() == [1, -1, 1, 1]
    assert compress.sign_bits(1234) == 1234
