"""tallysim.sim.sparse: flatten, top-k with deterministic ties, error feedback, merges, resets (CPU, < 1 s)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from tallysim.sim import sparse

pytestmark = pytest.mark.core    # part of the `make mutation` subset


def _tree(seed=0):
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    return {"a": {"kernel": jax.random.normal(k[0], (5, 7)), "bias": jax.random.normal(k[1], (7,))},
            "b": jax.random.normal(k[2], (3, 2, 2))}


def test_layout_matches_ravel_pytree_and_round_trips():
    tree = _tree()
    lay = sparse.layout(jax.eval_shape(lambda: tree))        # from shapes alone
    flat = sparse.flatten(tree)
    np.testing.assert_array_equal(flat, ravel_pytree(tree)[0])
    assert lay.size == flat.size == 35 + 7 + 12
    assert [n for _, n in lay.segments] == [leaf.size for leaf in jax.tree.leaves(tree)]
    back = lay.unravel(flat)
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    jax.tree.map(np.testing.assert_array_equal, back, tree)
    stacked = jax.tree.map(lambda a: jnp.stack([a, 2 * a]), tree)
    flat2 = sparse.flatten_stacked(stacked)
    np.testing.assert_array_equal(flat2, jnp.stack([flat, 2 * flat]))
    jax.tree.map(np.testing.assert_array_equal, sparse.unflatten_stacked(lay, flat2), stacked)


def test_topk_exact_k_largest_ties_to_lower_index():
    u = jnp.array([1.0, -3.0, 3.0, 0.5, -3.0, 2.0])
    picked = lambda k: np.flatnonzero(np.asarray(sparse.topk_mask(u, k))).tolist()
    assert picked(0) == []
    assert picked(1) == [1]              # |-3| at 1, 2, 4: the lowest index wins
    assert picked(2) == [1, 2]
    assert picked(3) == [1, 2, 4]
    assert picked(4) == [1, 2, 4, 5]
    assert picked(6) == picked(9) == [0, 1, 2, 3, 4, 5]
    zeros = jnp.array([0.0, 0.0, -0.0, 1.0, 0.0])
    assert np.flatnonzero(np.asarray(sparse.topk_mask(zeros, 3))).tolist() == [0, 1, 3]
    # random vector with many exact ties: k entries, every picked |u| >= every unpicked |u|,
    # and within the boundary value the picked ones are the lowest indices
    v = jnp.round(jax.random.normal(jax.random.PRNGKey(1), (1000,)) * 3) / 3
    for k in (1, 17, 500, 999):
        m = np.asarray(sparse.topk_mask(v, k))
        a = np.abs(np.asarray(v))
        assert m.sum() == k
        assert a[m].min() >= a[~m].max()
        edge = a[m].min()
        tied = np.flatnonzero(a == edge)
        assert (m[tied] == (np.arange(tied.size) < m[tied].sum())).all()
    np.testing.assert_array_equal(jax.jit(sparse.topk_mask, static_argnums=1)(v, 17),
                                  sparse.topk_mask(v, 17))


@pytest.mark.parametrize("scope", ["global", "per_tensor"])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.1, 0.5, 1.0])
def test_error_feedback_conserves_mass(scope, density):
    theta, ref, err = _tree(0), _tree(1), jax.tree.map(lambda a: 0.1 * a, _tree(2))
    lay = sparse.layout(theta)
    t_W, r_W, e_W = sparse.flatten(theta), sparse.flatten(ref), sparse.flatten(err)
    sp = sparse.sparsify(t_W, r_W, e_W, density, lay, scope)
    u = (t_W - r_W) + e_W
    np.testing.assert_array_equal(sp.sent_W + sp.error_W, u)          # exactly, not approximately
    np.testing.assert_array_equal(jnp.where(sp.mask_W, sp.error_W, 0.0), 0.0)
    np.testing.assert_array_equal(jnp.where(sp.mask_W, 0.0, sp.sent_W), 0.0)
    k = sparse.num_selected(density, lay, scope)
    assert int(sp.mask_W.sum()) == k
    if scope == "global":
        assert k == math.ceil(density * lay.size)
    else:
        for s, n in lay.segments:   # each leaf sends ceil(density * its size) of its own largest
            m = np.asarray(sp.mask_W[s:s + n])
            assert m.sum() == math.ceil(density * n)
            a = np.abs(np.asarray(u[s:s + n]))
            if 0 < m.sum() < n:
                assert a[m].min() >= a[~m].max()


def test_merge_weighted_vs_per_coordinate():
    sent = jnp.array([[2.0, 0.0, 4.0, 0.0],
                      [0.0, 0.0, 8.0, 6.0]])
    mask = jnp.array([[True, False, True, False],
                      [False, True, True, True]])     # peer 1 "sent" coordinate 1 with value 0
    w = jnp.array([0.25, 0.75])
    np.testing.assert_allclose(sparse.merge(sent, mask, w, "weighted"), [0.5, 0.0, 7.0, 4.5])
    np.testing.assert_allclose(sparse.merge(sent, mask, w, "per_coordinate"), [2.0, 0.0, 6.0, 6.0])
    none = jnp.zeros((2, 4), bool)
    np.testing.assert_array_equal(sparse.merge(jnp.zeros((2, 4)), none, w, "per_coordinate"), 0.0)


def test_reset_hard_vs_soft():
    theta = jnp.array([[1.0, 2.0, 3.0],
                       [4.0, 5.0, 6.0]])
    ref_new = jnp.array([0.5, 0.5, 0.5])
    merged = jnp.array([0.1, 0.0, 0.2])
    sent = jnp.array([[0.2, 0.0, 0.0],
                      [0.0, 0.0, 0.4]])
    np.testing.assert_array_equal(sparse.reset(theta, ref_new, merged, sent, "hard"),
                                  [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(sparse.reset(theta, ref_new, merged, sent, "soft"),
                               [[0.9, 2.0, 3.2], [4.1, 5.0, 5.8]], rtol=1e-6)


def test_k_is_the_decimal_ceiling():
    assert 0.07 * 100 > 7 and sparse.ceil_fraction(0.07, 100) == 7     # not 8
    assert sparse.ceil_fraction(0.01, 26506) == 266
    assert sparse.ceil_fraction(0.0, 10) == 0 and sparse.ceil_fraction(1.0, 10) == 10
    assert sparse.ceil_fraction(1e-9, 10) == 1


def test_lane_k_maps_a_lane_density_to_its_exact_k():
    # A grouped sweep over bridge.density (lanes.py) traces the density; lane_k maps it back to the
    # host-side k of the group's choices. Leaves of 6 and 4 entries (tree order a, b), |W| = 10.
    lay = sparse.layout(jax.eval_shape(lambda: {"a": jnp.zeros((2, 3)), "b": jnp.zeros((4,))}))
    choices = (0.5, 0.25)
    # per_tensor: 0.5 -> (ceil 3.0, ceil 2.0) = (3, 2); 0.25 -> (ceil 1.5, ceil 1.0) = (2, 1)
    lk = sparse.lane_k(jnp.float32(0.25), choices, lay, "per_tensor")
    assert np.asarray(lk.k_seg).tolist() == [2, 1] and lk.kmax_seg == (3, 2)
    # global: 0.5 -> ceil 5.0 = 5; 0.25 -> ceil 2.5 = 3; one entry, not one per leaf
    lk = sparse.lane_k(jnp.float32(0.25), choices, lay, "global")
    assert np.asarray(lk.k_seg).tolist() == [3] and lk.kmax_seg == (5,)
    traced = jax.jit(lambda d: sparse.lane_k(d, choices, lay, "per_tensor").k_seg)
    assert np.asarray(traced(jnp.float32(0.5))).tolist() == [3, 2]


def test_lane_topk_mask_is_the_topk_mask_for_every_traced_k_up_to_kmax():
    u = jnp.array([0.1, -3.0, 2.0, 2.0, 0.5, 0.0])      # |u| order: 1, then 2 and 3 (tie, lower first), 4
    mask = jax.jit(lambda k: sparse.lane_topk_mask(u, k, 4))
    picked = lambda m: np.flatnonzero(np.asarray(m)).tolist()
    for k, idx in {0: [], 1: [1], 2: [1, 2], 3: [1, 2, 3], 4: [1, 2, 3, 4]}.items():
        assert picked(mask(jnp.int32(k))) == idx, k
    assert picked(sparse.lane_topk_mask(u, 2, 99)) == [1, 2]            # kmax above |W| is |W|


def test_lane_k_refuses_densities_that_coincide_in_float32():
    lay = sparse.layout({"w": jnp.zeros((10,))})
    with pytest.raises(ValueError, match="coincide in float32"):
        sparse.lane_k(jnp.float32(0.1), (0.1, 0.1 + 1e-12), lay, "global")
