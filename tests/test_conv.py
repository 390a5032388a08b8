"""im2col convolutions (the CPU path) compute what XLA's convolution computes, with the same params."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from tallysim.sim import conv
from tallysim.config import ModelConfig
from tallysim.sim.models import make_model
from conftest import tiny, run_rows

KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("k,stride,padding", [(5, 1, "SAME"), (5, 1, "VALID"), (3, 2, "SAME"), (1, 2, "SAME"),
                                              (3, 1, ((1, 2), (0, 1)))])
def test_im2col_equals_lax_conv(k, stride, padding):
    x = jax.random.normal(KEY, (3, 9, 8, 4))
    w = jax.random.normal(jax.random.fold_in(KEY, 1), (k, k, 4, 6))
    dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
    ref = lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=dn)
    got = conv.im2col_conv(x, w, (stride, stride), padding, dimension_numbers=dn)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-5, atol=1e-4)
    # under vmap over peers (the case it exists for), and its gradient
    ws = jnp.stack([w, 2 * w])
    f = lambda fn: jax.vmap(lambda w_: jnp.sum(fn(x, w_, (stride, stride), padding, dimension_numbers=dn) ** 2))
    np.testing.assert_allclose(np.asarray(jax.grad(lambda a: f(conv.im2col_conv)(a).sum())(ws)),
                               np.asarray(jax.grad(lambda a: f(lax.conv_general_dilated)(a).sum())(ws)),
                               rtol=1e-4, atol=1e-2)


def test_unsupported_layouts_fall_back():
    x = jax.random.normal(KEY, (2, 4, 7, 7))           # NCHW
    w = jax.random.normal(KEY, (6, 4, 3, 3))           # OIHW
    ref = lax.conv_general_dilated(x, w, (1, 1), "SAME")
    np.testing.assert_array_equal(np.asarray(conv.im2col_conv(x, w, (1, 1), "SAME")), np.asarray(ref))


@pytest.mark.parametrize("name,shape", [("lenet", (28, 28, 1)), ("cnn", (28, 28, 1)),
                                        pytest.param("resnet8", (16, 16, 3), marks=pytest.mark.slow)])
def test_models_have_the_same_params_and_outputs_either_way(name, shape):
    x = jax.random.normal(KEY, (4,) + shape)
    a = make_model(ModelConfig(name=name, conv="xla"), 10)
    b = make_model(ModelConfig(name=name, conv="im2col"), 10)
    pa, pb = a.init(KEY, x), b.init(KEY, x)
    assert jax.tree.structure(pa) == jax.tree.structure(pb)
    for u, v in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    np.testing.assert_allclose(np.asarray(a.apply(pa, x)), np.asarray(b.apply(pa, x)), rtol=1e-4, atol=1e-4)


def test_auto_is_im2col_on_the_cpu_only():
    expected = conv.im2col_conv if jax.default_backend() == "cpu" else lax.conv_general_dilated
    assert conv.conv_fn("auto") is expected
    assert conv.conv_fn("xla") is lax.conv_general_dilated and conv.conv_fn("im2col") is conv.im2col_conv


@pytest.mark.slow     # a whole LeNet run twice; the layer-level equality above is in make test
def test_a_lenet_run_gives_the_same_metrics_with_either_convolution(tmp_path):
    base = ["model.name=lenet", "protocol.name=fedavg", "rounds=2", "data.train_size=800", "probe.pool_size=100"]
    xla = run_rows(tiny(*base, "model.conv=xla"), tmp_path / "xla")
    col = run_rows(tiny(*base, "model.conv=im2col"), tmp_path / "col")
    for a, b in zip(xla, col):
        assert a["bits_up"] == b["bits_up"]
        for k in ("acc_global", "acc_mean", "train_loss"):
            assert a[k] == pytest.approx(b[k], abs=2e-3), k
