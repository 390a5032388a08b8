"""The convolution formulations (im2col, the CPU path; nchw, another layout for the GPU) compute what XLA's
convolution computes, with the same params; `model.conv=auto` picks from AUTO_CONV per device kind and model."""
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


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("k,stride,padding", [(5, 1, "SAME"), (5, 1, "VALID"), (3, 2, "SAME"), (1, 2, "VALID"),
                                              (3, 1, ((1, 2), (0, 1)))])
def test_nchw_equals_lax_conv(k, stride, padding, dtype):
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == "float32" else dict(rtol=2e-2, atol=2e-1)
    x = jax.random.normal(KEY, (3, 9, 8, 4)).astype(dtype)
    w = jax.random.normal(jax.random.fold_in(KEY, 1), (k, k, 4, 6)).astype(dtype)
    dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
    ref = lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=dn)
    got = conv.nchw_conv(x, w, (stride, stride), padding, dimension_numbers=dn)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(ref, np.float32), **tol)
    # vmapped over peers (XLA's grouped convolution, in the other layout) and its gradient
    ws = jnp.stack([w, 2 * w])
    f = lambda fn: jax.vmap(lambda w_: jnp.sum(fn(x, w_, (stride, stride), padding,
                                                   dimension_numbers=dn).astype(jnp.float32) ** 2))
    g_got = jax.grad(lambda a: f(conv.nchw_conv)(a).sum())(ws)
    g_ref = jax.grad(lambda a: f(lax.conv_general_dilated)(a).sum())(ws)
    scale = float(jnp.max(jnp.abs(g_ref.astype(jnp.float32))))
    np.testing.assert_allclose(np.asarray(g_got, np.float32) / scale, np.asarray(g_ref, np.float32) / scale,
                               atol=1e-5 if dtype == "float32" else 2e-2)


def test_unsupported_layouts_fall_back():
    x = jax.random.normal(KEY, (2, 4, 7, 7))           # NCHW
    w = jax.random.normal(KEY, (6, 4, 3, 3))           # OIHW
    ref = lax.conv_general_dilated(x, w, (1, 1), "SAME")
    np.testing.assert_array_equal(np.asarray(conv.im2col_conv(x, w, (1, 1), "SAME")), np.asarray(ref))
    np.testing.assert_array_equal(np.asarray(conv.nchw_conv(x, w, (1, 1), "SAME")), np.asarray(ref))


@pytest.mark.parametrize("other", ["im2col", "nchw"])
@pytest.mark.parametrize("name,shape", [("lenet", (28, 28, 1)), ("cnn", (28, 28, 1)),
                                        pytest.param("resnet8", (16, 16, 3), marks=pytest.mark.slow)])
def test_models_have_the_same_params_and_outputs_either_way(name, shape, other):
    x = jax.random.normal(KEY, (4,) + shape)
    a = make_model(ModelConfig(name=name, conv="xla"), 10)
    b = make_model(ModelConfig(name=name, conv=other), 10)
    pa, pb = a.init(KEY, x), b.init(KEY, x)
    assert jax.tree.structure(pa) == jax.tree.structure(pb)
    for u, v in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    np.testing.assert_allclose(np.asarray(a.apply(pa, x)), np.asarray(b.apply(pa, x)), rtol=1e-4, atol=1e-4)


def test_auto_is_im2col_on_the_cpu_only():
    expected = conv.im2col_conv if jax.default_backend() == "cpu" else lax.conv_general_dilated
    assert conv.conv_fn("auto") is expected
    for name in ("lenet", "cnn", "resnet8"):
        assert conv.conv_fn("auto", name) is expected
    assert conv.conv_fn("xla") is lax.conv_general_dilated and conv.conv_fn("im2col") is conv.im2col_conv
    assert conv.conv_fn("nchw") is conv.nchw_conv
    assert set(conv.FORMULATIONS) | {"auto"} == set(conv.CONVS)     # every model.conv choice has one


def test_auto_table_by_device_kind_and_model(monkeypatch):
    assert conv.auto_choice("cnn", "cpu") == "im2col" and conv.auto_choice("lenet", "CPU") == "im2col"
    assert conv.auto_choice("cnn", "NVIDIA H200") == "xla"          # not measured yet: the default
    assert conv.auto_choice("cnn", "some new accelerator") == conv.AUTO_DEFAULT == "xla"
    # rows match a substring of the kind (case-insensitive) and the model name or "*", first row wins
    monkeypatch.setattr(conv, "AUTO_CONV", (("h200", "cnn", "nchw"), ("nvidia", "*", "im2col"),
                                            ("cpu", "*", "im2col")))
    assert conv.auto_choice("cnn", "NVIDIA H200") == "nchw"
    assert conv.auto_choice("lenet", "NVIDIA H200") == "im2col"
    assert conv.auto_choice("cnn", "TPU v5 lite") == "xla"
    every = {c for _, _, c in conv.AUTO_CONV} | {conv.AUTO_DEFAULT}
    assert every <= set(conv.FORMULATIONS)


def test_the_shipped_table_names_real_formulations():
    assert {c for _, _, c in conv.AUTO_CONV} | {conv.AUTO_DEFAULT} <= set(conv.FORMULATIONS)
    with pytest.raises(ValueError, match="allowed: auto, xla, im2col, nchw"):
        conv.conv_fn("winograd")


@pytest.mark.slow     # a whole LeNet run twice; the layer-level equality above is in make test
def test_a_lenet_run_gives_the_same_metrics_with_either_convolution(tmp_path):
    base = ["model.name=lenet", "protocol.name=fedavg", "rounds=2", "data.train_size=800", "probe.pool_size=100"]
    xla = run_rows(tiny(*base, "model.conv=xla"), tmp_path / "xla")
    col = run_rows(tiny(*base, "model.conv=im2col"), tmp_path / "col")
    for a, b in zip(xla, col):
        assert a["bits_up"] == b["bits_up"]
        for k in ("acc_global", "acc_mean", "train_loss"):
            assert a[k] == pytest.approx(b[k], abs=2e-3), k
