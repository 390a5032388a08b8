"""Local training: ragged shards are masked, never padded; exact local_steps; per-epoch shuffles."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tallysim.sim import local
from tallysim.config import ModelConfig
from tallysim.sim.fed import FedData
from tallysim.sim.models import make_model

KEY = jax.random.PRNGKey(0)


def _spec(**kw):
    model = make_model(ModelConfig(name="mlp", width=16), 3)
    base = dict(apply_fn=model.apply, tx=optax.sgd(0.1), batch_size=4, shard_max=10, epochs=2)
    base.update(kw)
    return model, local.LocalSpec(**base)


def test_schedule_visits_each_own_example_once_per_epoch_and_never_padding():
    _, spec = _spec(epochs=3)
    shard = jnp.array([11, 12, 13, 14, 15, 16, 0, 0, 0, 0])          # 6 real, padding points at 0
    idx, mask = local.private_schedule(spec, KEY, shard, jnp.int32(6))
    assert idx.shape == (3 * 3, 4)                                    # ceil(10/4)=3 steps per epoch
    per_epoch = np.asarray(idx).reshape(3, 12)
    m = np.asarray(mask).reshape(3, 12)
    for e in range(3):
        assert sorted(per_epoch[e][m[e]].tolist()) == [11, 12, 13, 14, 15, 16]
    assert m.sum() == 18
    assert not np.array_equal(per_epoch[0][m[0]], per_epoch[1][m[1]])   # reshuffled each epoch


def test_local_steps_exact_and_only_own_examples():
    _, spec = _spec(local_steps=7)
    shard = jnp.array([5, 6, 7, 0, 0, 0, 0, 0, 0, 0])
    idx, mask = local.private_schedule(spec, KEY, shard, jnp.int32(3))
    assert idx.shape == (7, 4) and bool(mask.all())
    assert set(np.asarray(idx).ravel().tolist()) <= {5, 6, 7}


def _data(n=40):
    x = jax.random.normal(KEY, (n, 4, 4, 1))
    y = jnp.arange(n) % 3
    return FedData(x, y, None, None, jnp.arange(8), x[:8], y[:8])


def test_padding_example_never_touches_training():
    model, spec = _spec()
    data = _data()
    data = data._replace(x_train=data.x_train.at[0].set(jnp.nan))     # only padding points here
    p = model.init(KEY, data.x_train[:1])
    shard = jnp.array([[1, 2, 3, 4, 5, 0, 0, 0, 0, 0]])
    params, _, loss, _ = local.train_peers(spec, jax.tree.map(lambda a: a[None], p),
                                        jax.tree.map(lambda a: a[None], spec.tx.init(p)),
                                        KEY[None], shard, jnp.array([5]), data)
    assert bool(jnp.isfinite(loss).all())
    assert all(bool(jnp.isfinite(l).all()) for l in jax.tree.leaves(params))


def test_vmapped_ragged_peers_equal_single_peer_runs():
    model, spec = _spec(tx=optax.sgd(0.1, momentum=0.9))
    data = _data()
    p0 = model.init(KEY, data.x_train[:1])
    P = 2
    params = jax.tree.map(lambda a: jnp.stack([a] * P), p0)
    opt = jax.vmap(spec.tx.init)(params)
    shard = jnp.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [11, 12, 0, 0, 0, 0, 0, 0, 0, 0]])
    count = jnp.array([10, 2])
    keys = jax.random.split(KEY, P)
    out_p, out_o, loss, _ = local.train_peers(spec, params, opt, keys, shard, count, data)
    for i in range(P):
        single = local.train_peer(spec, p0, spec.tx.init(p0), keys[i], shard[i], count[i], data, None, None)
        for a, b in zip(jax.tree.leaves(out_p), jax.tree.leaves(single[0])):
            np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6)


def test_masked_step_leaves_params_and_optimizer_untouched():
    model, spec = _spec(tx=optax.adam(0.01))
    data = _data()
    p0 = model.init(KEY, data.x_train[:1])
    o0 = spec.tx.init(p0)
    shard = jnp.zeros((10,), jnp.int32)
    p, o, loss = local.train_peer(spec, p0, o0, KEY, shard, jnp.int32(0), data, None, None)
    assert all(bool((a == b).all()) for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(p0)))
    assert int(o[0].count) == 0 and float(loss) == 0.0


def test_distill_losses():
    logits = jnp.array([[2.0, 0.0, -1.0]])
    hard = local.hard_label_loss(3, 0.0)(logits, jnp.array([0]))
    assert np.allclose(hard, optax.softmax_cross_entropy_with_integer_labels(logits, jnp.array([0])))
    target = jax.nn.softmax(logits)
    assert np.allclose(local.soft_label_loss(1.0)(logits, target), 0.0, atol=1e-6)   # KL(p||p) = 0
    t2 = local.soft_label_loss(2.0)(logits, jnp.array([[0.2, 0.5, 0.3]]))
    kl = np.sum(np.array([0.2, 0.5, 0.3]) * (np.log([0.2, 0.5, 0.3]) - jax.nn.log_softmax(logits / 2.0)))
    assert np.allclose(t2, 4.0 * kl, rtol=1e-5)


@pytest.mark.core          # part of the `make mutation` subset: the faulty-peer lanes of train_peers
def test_faulty_lanes_cap_steps_and_flip_labels():
    # faults.py: cap_A keeps the first cap_A private steps of a peer, flip_A reads its labels as
    # (c + 1) % C. Peer 0 capped at 0 steps must come back untouched; peer 1 (cap above its 4 real
    # steps, labels flipped) must equal an honest single-peer run on relabelled data.
    model, spec = _spec()
    data = _data()
    p0 = model.init(KEY, data.x_train[:1])
    params = jax.tree.map(lambda a: jnp.stack([a] * 2), p0)
    opt = jax.vmap(spec.tx.init)(params)
    shard = jnp.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 0, 0, 0, 0, 0]])
    count = jnp.array([10, 5])
    keys = jax.random.split(KEY, 2)
    out_p, _, _, steps = local.train_peers(spec, params, opt, keys, shard, count, data,
                                           flip_A=jnp.array([False, True]),
                                           cap_A=jnp.array([0, 100], jnp.int32))
    for a, b in zip(jax.tree.leaves(out_p), jax.tree.leaves(p0)):
        np.testing.assert_array_equal(a[0], b)
    relabelled = data._replace(y_train=(data.y_train + 1) % 3)
    single = local.train_peer(spec, p0, spec.tx.init(p0), keys[1], shard[1], count[1], relabelled, None, None)
    for a, b in zip(jax.tree.leaves(out_p), jax.tree.leaves(single[0])):
        np.testing.assert_allclose(a[1], b, rtol=1e-5, atol=1e-6)
    assert int(steps["steps_real"]) == 0 + 2 * 2          # epochs 2 x ceil(5 / 4) batches; peer 0 none


@pytest.mark.core
def test_real_steps_with_local_steps_is_that_many_for_every_nonempty_shard():
    _, spec = _spec(local_steps=7)
    assert np.asarray(local.real_steps(spec, jnp.array([0, 3, 10]))).tolist() == [0, 7, 7]
    _, spec = _spec()                                  # epochs 2 x ceil(count / batch 4)
    assert np.asarray(local.real_steps(spec, jnp.array([0, 3, 10]))).tolist() == [0, 2, 6]


@pytest.mark.core
def test_sgd_optimizer_uses_the_configured_momentum():
    # Heavy ball, two steps with the same gradient g: w1 = w0 - lr g, w2 = w1 - lr (g + m g).
    from tallysim.sim import peers
    from tallysim.config import OptimConfig
    tx = peers.make_optimizer(OptimConfig(name="sgd", lr=0.1, momentum=0.9))
    w = jnp.array([1.0, -2.0])
    g = jnp.array([0.5, 1.0])
    opt = tx.init(w)
    for _ in range(2):
        u, opt = tx.update(g, opt, w)
        w = optax.apply_updates(w, u)
    np.testing.assert_allclose(w, [1.0 - 0.1 * 0.5 * 2.9, -2.0 - 0.1 * 1.0 * 2.9], rtol=1e-6)
