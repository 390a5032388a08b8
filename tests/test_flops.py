"""Analytic FLOP counts (tallysim/bench/flops.py): each model's count equals a derivation by hand from the
layer shapes in sim/models.py at the default config, and XLA's own count on the CPU agrees layer by layer
where the two count the same thing (issue 35: the GPU's cost analysis is wrong for convolutions)."""
import jax
import jax.numpy as jnp
import pytest

from tallysim.bench import flops
from tallysim.config import ConfigError, ModelConfig


def _macs(c):
    return {layer.path: layer.macs for layer in c.layers}


def test_mlp_784_200_200_10():
    c = flops.count(ModelConfig(name="mlp"))
    assert _macs(c) == {"Dense_0": 784 * 200, "Dense_1": 200 * 200, "Dense_2": 200 * 10}
    fwd = 2 * (784 * 200 + 200 * 200 + 200 * 10)
    assert c.forward == fwd == 397_600
    assert c.train == 3 * fwd - 2 * 784 * 200 == 879_200   # the data's input gradient is not computed
    assert c.train_3x == 3 * fwd and c.per == "example"
    assert flops.count(ModelConfig(name="mlp", width=50)).forward == 2 * (784 * 50 + 50 * 50 + 50 * 10)


def test_lenet_on_28x28():
    c = flops.count(ModelConfig(name="lenet"))
    conv1 = 5 * 5 * 1 * 6 * 28 * 28          # SAME: 28x28 out
    conv2 = 5 * 5 * 6 * 16 * 10 * 10         # on the 14x14 pool, VALID: 10x10 out
    dense = 400 * 120 + 120 * 84 + 84 * 10   # 5x5x16 = 400 features after the second pool
    assert _macs(c) == {"Conv_0": conv1, "Conv_1": conv2, "Dense_0": 400 * 120, "Dense_1": 120 * 84,
                        "Dense_2": 84 * 10}
    assert c.forward == 2 * (conv1 + conv2 + dense) == 833_040
    assert c.train == 3 * c.forward - 2 * conv1 == 2_263_920


def test_cnn_is_the_issues_74_mflop():
    c = flops.count(ModelConfig(name="cnn"))
    conv1 = 5 * 5 * 1 * 32 * 28 * 28        # SAME 5x5, 1 -> 32 at 28x28
    conv2 = 5 * 5 * 32 * 64 * 14 * 14       # SAME 5x5, 32 -> 64 at 14x14 (after a 2x2 pool)
    dense = 7 * 7 * 64 * 512 + 512 * 10     # 3136 features after the second pool
    assert [layer.kind for layer in c.layers] == ["conv", "conv", "dense", "dense"]
    assert c.forward == 2 * (conv1 + conv2 + dense) == 24_546_304
    assert c.train_3x == 73_638_912              # issue 35's "about 74 MFLOP per training example"
    assert c.train == c.train_3x - 2 * conv1 == 72_384_512
    assert [layer.reads_data for layer in c.layers] == [True, False, False, False]


def test_resnet8_on_28x28():
    c = flops.count(ModelConfig(name="resnet8"))
    k3 = 3 * 3
    stem = k3 * 1 * 16 * 28 * 28
    stage1 = 2 * k3 * 16 * 16 * 28 * 28                                        # no projection: 16 -> 16
    stage2 = k3 * 16 * 32 * 14 * 14 + k3 * 32 * 32 * 14 * 14 + 16 * 32 * 14 * 14   # stride 2 + 1x1 shortcut
    stage3 = k3 * 32 * 64 * 7 * 7 + k3 * 64 * 64 * 7 * 7 + 32 * 64 * 7 * 7
    head = 64 * 10
    assert len(c.layers) == 10
    assert c.forward == 2 * (stem + stage1 + stage2 + stage3 + head) == 18_691_840
    assert c.train == 3 * c.forward - 2 * stem


def test_text_models_count_per_token():
    e, h, C, T = 8, 256, 80, 80
    lstm = flops.count(ModelConfig(name="lstm"), classes=C, seq_len=T)
    per_token = 4 * (e * h + h * h) + 4 * (h * h + h * h) + h * C   # 4 gates, input + recurrent kernels
    assert lstm.per == "token" and lstm.forward == 2 * per_token
    assert lstm.train == 3 * lstm.forward          # the first matmul reads the (trained) embedding
    d = 256
    tr = flops.count(ModelConfig(name="transformer"), classes=C, seq_len=T)
    block = 4 * d * d + 2 * T * d + 2 * d * 4 * d   # q, k, v, out; scores and values over T keys; MLP 4x
    assert tr.forward == 2 * (2 * block + d * C)
    assert flops.count(ModelConfig(name="transformer"), classes=C, seq_len=2 * T).forward \
        == tr.forward + 2 * 2 * (2 * T * d)          # only attention grows with the window


def test_the_count_ignores_dtype_and_convolution_formulation():
    base = flops.count(ModelConfig(name="cnn")).train
    assert flops.count(ModelConfig(name="cnn", dtype="bfloat16", conv="im2col")).train == base


def test_a_layer_it_cannot_count_is_refused(monkeypatch):
    real = flops._kernel_paths
    monkeypatch.setattr(flops, "_kernel_paths", lambda p: real(p) | {"Mystery_0"})
    with pytest.raises(ConfigError, match="cannot count model 'mlp'.*Mystery_0"):
        flops.count(ModelConfig(name="mlp"))
    with pytest.raises(ConfigError, match="seq_len must be a positive"):
        flops.count(ModelConfig(name="lstm"), classes=80, seq_len=0)


def _xla_flops(fn, *args) -> float:
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


CONV = lambda pad: (lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), pad,
                                                              dimension_numbers=("NHWC", "HWIO", "NHWC")))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA's count is checked on the CPU only (jax#22249)")
def test_xla_on_the_cpu_agrees_on_dense_and_valid_conv_layers():
    """An independent count: XLA's cost analysis of the forward pass of the CNN's first dense layer and
    LeNet's VALID convolution, at the layers' shapes, equals the analytic count of those layers."""
    B = 4
    cnn, lenet = _macs(flops.count(ModelConfig(name="cnn"))), _macs(flops.count(ModelConfig(name="lenet")))
    dense = _xla_flops(jnp.matmul, jnp.zeros((B, 3136)), jnp.zeros((3136, 512)))
    assert dense == 2 * B * cnn["Dense_0"]
    valid = _xla_flops(CONV("VALID"), jnp.zeros((B, 14, 14, 6)), jnp.zeros((5, 5, 6, 16)))
    assert valid == 2 * B * lenet["Conv_1"]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA's count is checked on the CPU only (jax#22249)")
def test_xla_on_the_cpu_leaves_out_the_padding_taps_of_a_same_conv():
    """For a SAME convolution XLA's CPU count skips the taps that fall on zero padding; the analytic count
    keeps them (the kernels compute them). The two differ by exactly those taps: on 28x28 with a 5x5
    kernel, an output row sees 3, 4, 5 (24 times), 4, 3 in-bounds taps per axis = 134 of 140."""
    B = 4
    conv1 = _macs(flops.count(ModelConfig(name="cnn")))["Conv_0"]
    assert conv1 == 5 * 5 * 1 * 32 * 28 * 28
    same = _xla_flops(CONV("SAME"), jnp.zeros((B, 28, 28, 1)), jnp.zeros((5, 5, 1, 32)))
    in_bounds = 3 + 4 + 5 * 24 + 4 + 3
    assert same == 2 * B * in_bounds ** 2 * 1 * 32
    assert same / (2 * B * conv1) == pytest.approx((134 / 140) ** 2)

