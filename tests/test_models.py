"""Tiny-model tests for tallysim.sim.models (CPU, seconds)."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim.config import MODELS, ConfigError, ModelConfig

# ResNet-8 compiles for a minute per test on 2 CPU cores: its cases run in make test-all (slow).
# image classifiers; the text models (lstm, transformer) are tested in test_text.py
MODEL_CASES = [pytest.param(m, marks=pytest.mark.slow) if m == "resnet8" else m for m in MODELS
               if m not in ("lstm", "transformer")]
from tallysim.sim.models import make_model, max_pool_2x2, param_count

SHAPES = [(28, 28, 1), (32, 32, 3)]


def key(seed):
    # "rbg" keys: XLA:CPU takes seconds to compile threefry for every parameter's initializer, rbg
    # compiles ~4x faster. The models take any key; test_vmapped_init_default_keys covers threefry.
    return jax.random.key(seed, impl="rbg")


@functools.lru_cache(maxsize=None)  # params are immutable arrays: share them between tests
def _init(name, shape, k=10, dtype="float32", seed=0, width=32):
    model = make_model(ModelConfig(name=name, dtype=dtype, width=width), k)
    x = jax.random.normal(jax.random.PRNGKey(seed + 1), (4,) + shape, jnp.float32)
    params = jax.jit(model.init)(key(seed), x)  # jit: eager flax init is slow on CPU
    return model, params, x


@pytest.mark.parametrize("name", MODEL_CASES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k", [10, 100])
def test_output_shape_and_dtype(name, shape, k):
    # eval_shape traces init/apply without running them: shapes/dtypes are all this test needs
    # (values are exercised by the tests below), and it keeps 32 model variants fast.
    for dtype in ("float32", "bfloat16"):
        model = make_model(ModelConfig(name=name, dtype=dtype, width=32), k)
        x = jax.ShapeDtypeStruct((4,) + shape, jnp.float32)
        params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
        logits = jax.eval_shape(model.apply, params, x)
        assert logits.shape == (4, k) and logits.dtype == jnp.float32
        dtypes = {leaf.dtype for leaf in jax.tree_util.tree_leaves(params)}
        assert dtypes == {jnp.dtype(jnp.float32)}, f"{name}/{dtype}: params must stay float32, got {dtypes}"


@pytest.mark.parametrize("name", MODEL_CASES)
def test_bf16_close_to_fp32(name):
    m32, params, x = _init(name, (28, 28, 1))
    m16 = make_model(ModelConfig(name=name, dtype="bfloat16", width=32), 10)
    l32, l16 = jax.jit(m32.apply)(params, x), jax.jit(m16.apply)(params, x)
    scale = float(jnp.max(jnp.abs(l32))) + 1e-3
    err = float(jnp.max(jnp.abs(l32 - l16)))
    assert err <= 0.1 * scale + 0.05, f"{name}: bf16 max error {err} vs logit scale {scale}"


@pytest.mark.parametrize("name", MODEL_CASES)
def test_vmapped_init_and_apply(name):
    model = make_model(ModelConfig(name=name, width=32), 10)
    P = 3
    keys_P = jax.random.split(key(0), P)
    x_PxBxhxwxch = jax.random.normal(jax.random.PRNGKey(1), (P, 4, 28, 28, 1))
    params_P = jax.jit(jax.vmap(model.init))(keys_P, x_PxBxhxwxch)
    leaves = jax.tree_util.tree_leaves(params_P)
    assert all(leaf.shape[0] == P for leaf in leaves)
    kernel = [l for l in leaves if l.ndim >= 3][0]  # any weight matrix/kernel (with peer axis)
    for i in range(P):
        for j in range(i + 1, P):
            assert not np.allclose(kernel[i], kernel[j]), f"{name}: peers {i},{j} share init"
    # Broadcast inputs (one batch for all peers) also work.
    params_b = jax.eval_shape(jax.vmap(model.init, in_axes=(0, None)), keys_P, x_PxBxhxwxch[0])
    assert jax.tree_util.tree_structure(params_b) == jax.tree_util.tree_structure(params_P)

    logits_PxBxC = jax.jit(jax.vmap(model.apply))(params_P, x_PxBxhxwxch)
    assert logits_PxBxC.shape == (P, 4, 10)
    apply = jax.jit(model.apply)
    for p in range(P):
        params_p = jax.tree_util.tree_map(lambda a: a[p], params_P)
        np.testing.assert_allclose(logits_PxBxC[p], apply(params_p, x_PxBxhxwxch[p]),
                                   rtol=1e-4, atol=1e-4)


def test_vmapped_init_default_keys():
    model = make_model(ModelConfig(name="mlp", width=16), 10)
    params_P = jax.jit(jax.vmap(model.init, in_axes=(0, None)))(
        jax.random.split(jax.random.PRNGKey(0), 3), jnp.zeros((2, 28, 28, 1)))
    kernel_P = params_P["params"]["Dense_0"]["kernel"]
    assert kernel_P.shape == (3, 784, 16) and not np.allclose(kernel_P[0], kernel_P[1])


@pytest.mark.parametrize("hw", [(8, 8), (7, 7), (28, 28), (5, 9)])
def test_reshape_max_pool_matches_flax(hw):
    x = jax.random.normal(jax.random.PRNGKey(0), (2,) + hw + (3,))
    ours = max_pool_2x2(x)
    ref = nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
    assert ours.shape == ref.shape == (2, hw[0] // 2, hw[1] // 2, 3)
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("name", MODEL_CASES)
def test_gradients_finite(name):
    _, params, x = _init(name, (32, 32, 3))  # params are float32 whatever the compute dtype
    for dtype in ("float32", "bfloat16"):
        model = make_model(ModelConfig(name=name, dtype=dtype, width=32), 10)
        y = jnp.arange(4) % 10

        def loss(p):
            logits = model.apply(p, x)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

        grads = jax.jit(jax.grad(loss))(params)
        for g in jax.tree_util.tree_leaves(grads):
            assert g.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g)))
        assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree_util.tree_leaves(grads))


def test_unknown_name_raises():
    with pytest.raises(ConfigError) as err:
        make_model(ModelConfig(name="vgg"), 10)
    msg = str(err.value)
    assert "\n" not in msg and "vgg" in msg
    for name in ("mlp", "lenet", "cnn", "resnet8"):
        assert name in msg


def test_unknown_dtype_raises():
    with pytest.raises(ConfigError, match="float16"):
        make_model(ModelConfig(name="mlp", dtype="float16"), 10)


def test_param_count_mlp():
    _, params, _ = _init("mlp", (28, 28, 1), width=200)
    assert param_count(params) == 784 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10


def test_param_counts_known():
    counts = {name: param_count(_init(name, (28, 28, 1))[1]) for name in ("lenet", "cnn")}
    # LeNet-5: 156 + 2416 + 400*120+120 + 120*84+84 + 84*10+10; FedAvg CNN: 1,663,370 (paper's count).
    assert counts == {"lenet": 61706, "cnn": 1663370}


@pytest.mark.parametrize("shape", [(20, 10), (5, 5, 1, 6), (3, 3, 4, 12), (7, 16)])
def test_kernel_init_is_flax_default_to_the_bit(shape):
    """models.kernel_init draws flat and reshapes (a faster XLA:CPU compile); it must give flax's default
    kernel init (lecun_normal) exactly, with the threefry keys runs use, eagerly and vmapped under jit."""
    from tallysim.sim.initializers import kernel_init
    flax_default = nn.initializers.lecun_normal()
    k = jax.random.PRNGKey(7)
    bits = lambda a: np.asarray(a).view(np.uint32)
    np.testing.assert_array_equal(bits(kernel_init(k, shape)), bits(flax_default(k, shape)))
    keys = jax.random.split(k, 3)
    ours = jax.jit(jax.vmap(lambda k: kernel_init(k, shape)))(keys)
    theirs = jax.jit(jax.vmap(lambda k: flax_default(k, shape)))(keys)
    np.testing.assert_array_equal(bits(ours), bits(theirs))
    assert ours.dtype == jnp.float32 and ours.shape == (3,) + shape


def test_models_use_the_flat_kernel_init(monkeypatch):
    """Every Dense and Conv kernel of the image models goes through models.kernel_init: replacing it
    changes every kernel (and nothing else), so no layer was left on flax's own default."""
    from tallysim.sim import models
    x = jnp.zeros((1, 28, 28, 1))
    for name in ("mlp", "lenet", "cnn"):
        net = make_model(ModelConfig(name=name, width=8), 10)
        monkeypatch.setattr(models, "kernel_init", lambda k, s, d=jnp.float32: jnp.full(s, 0.5, d))
        params = jax.jit(net.init)(jax.random.PRNGKey(0), x)
        monkeypatch.undo()
        leaves = jax.tree_util.tree_leaves_with_path(params)
        kernels = [a for p, a in leaves if "kernel" in jax.tree_util.keystr(p)]
        assert kernels and all(bool((a == 0.5).all()) for a in kernels), name
