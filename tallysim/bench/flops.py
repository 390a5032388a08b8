"""Analytic FLOPs per training example of tallysim's models, counted from their actual layer shapes.

Why analytic: XLA's `cost_analysis()` FLOP counts are wrong on a GPU for convolutions and dots
(jax#22249, jax#16008), so a TFLOP/s column built on them is wrong there. On the CPU it counts a
convolution without its zero-padding taps (tests/test_flops.py), which is not what the kernels compute.

How: the model is traced once (`jax.eval_shape`, nothing runs) with a flax method interceptor that
records, for every layer with a kernel, the kernel's shape and the layer's output shape. The count thus
follows the model's code: change a width, a padding or a stride in sim/models.py and it follows. Every
kernel in the params must be seen exactly once, or `count` refuses (a layer it does not understand).

Convention:

- a multiply-add is 2 FLOPs; a layer's forward pass costs 2 x (kernel elements) x (output positions):
  a dense layer 2 x in x out per position, a convolution 2 x kh x kw x ch_in x ch_out per output pixel,
  zero-padding taps included (the kernels compute them);
- only matmuls and convolutions count (and attention's two score/value matmuls): biases, activations,
  pooling, normalisation, softmax, the loss and the optimiser update are left out (a few % at most);
- backward = 2 x forward per layer (the gradient with respect to the layer's input and to its kernel,
  each as many multiply-adds as the forward pass), EXCEPT the input gradient of a layer that reads the
  data itself (the first layer of an image model): nobody asks for the gradient of the data and JAX
  does not compute it. So training = 3 x forward - 2 x (the first layer's multiply-adds).
  `FlopCount.train_3x` is the plain 3 x forward, the convention other papers quote;
- image models count per example (one image); text models per token (a sequence of `seq_len` tokens
  costs `seq_len` times that): the embedding lookup is a gather (0 FLOPs), so the first matmul's input
  gradient is needed (the embedding trains) and counted; attention computes the full `seq_len` x
  `seq_len` score matrix under the causal mask, so the full matrix is counted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from tallysim.config import ConfigError, ModelConfig

IMAGE_SHAPE = (28, 28, 1)     # what `tallysim bench` feeds every image model
SEQ_LEN = 80                  # Shakespeare's window (data/text.py), for the text models
TEXT_MODELS = ("lstm", "transformer")


@dataclass(frozen=True)
class Layer:
    path: str          # the module's path in the params, e.g. "Conv_0" or "Block_0/Dense_1"
    kind: str          # "dense", "conv", "lstm_gate" or "attention"
    macs: int          # multiply-adds in the forward pass, per example (image) or per token (text)
    reads_data: bool   # its input is the model's input: no input gradient in the backward pass


@dataclass(frozen=True)
class FlopCount:
    model: str
    per: str                  # "example" or "token"
    layers: tuple[Layer, ...]

    @property
    def forward(self) -> int:
        return 2 * sum(layer.macs for layer in self.layers)

    @property
    def train(self) -> int:
        """Forward + backward as JAX computes it: 3 x forward less the data's input gradient."""
        skipped = sum(layer.macs for layer in self.layers if layer.reads_data)
        return 3 * self.forward - 2 * skipped

    @property
    def train_3x(self) -> int:
        return 3 * self.forward


def _kernel_paths(params) -> set[str]:
    paths = set()
    for keypath, _ in jax.tree_util.tree_leaves_with_path(params):
        names = [str(getattr(k, "key", k)) for k in keypath]
        if names and names[-1] == "kernel":
            paths.add("/".join(n for n in names[:-1] if n != "params"))
    return paths


def count(model_cfg: ModelConfig, classes: int = 10, shape: Optional[tuple] = None,
          seq_len: int = SEQ_LEN) -> FlopCount:
    """FLOPs of one training example (image models, input `shape`, default 28x28x1) or token (text models,
    sequences of `seq_len`) of `model_cfg` with `classes` outputs. The dtype does not change the count."""
    from tallysim.sim.models import make_model
    text = model_cfg.name in TEXT_MODELS
    model = make_model(model_cfg, classes)   # model.conv (im2col or native) does not change the count
    if text:
        if seq_len < 1:
            raise ConfigError(f"flops: seq_len must be a positive number of tokens, got {seq_len}")
        x = jnp.zeros((1, seq_len), jnp.float32)
    else:
        x = jnp.zeros((1,) + tuple(shape or IMAGE_SHAPE), jnp.float32)
    params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x))
    layers: list[Layer] = []
    seen: list[str] = []
    positions_per_unit = seq_len if text else 1   # per token: divide a sequence's positions by its length

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name != "__call__":
            return out
        path = "/".join(module.path)
        if isinstance(module, (nn.Dense, nn.DenseGeneral, nn.Conv)):
            kernel = module.get_variable("params", "kernel")
            features = module.features if isinstance(module.features, tuple) else (module.features,)
            positions = out.size // (out.shape[0] * math.prod(features))   # output pixels or tokens
            macs = math.prod(kernel.shape) * positions
            if macs % positions_per_unit:
                raise ConfigError(f"flops: layer {path} is not applied once per token")
            kind = "conv" if isinstance(module, nn.Conv) else "dense"
            layers.append(Layer(path, kind, macs // positions_per_unit, reads_data=not text and not layers))
            seen.append(path)
        elif type(module).__name__ == "DenseParams":
            # An LSTM cell's gate kernel: the cell multiplies it into its input or hidden state once per
            # step, i.e. once per token. The cell runs inside nn.RNN's scan, which traces its body more
            # than once (not once per step): count each kernel once.
            if path in seen:
                return out
            kernel = module.get_variable("params", "kernel")
            layers.append(Layer(path, "lstm_gate", math.prod(kernel.shape), reads_data=False))
            seen.append(path)
        elif isinstance(module, nn.MultiHeadDotProductAttention):
            # q.k for every (query, key) pair and the weighted sum of values: 2 x keys x width per query.
            q = args[0]
            keys = (args[1] if len(args) > 1 else q).shape[-2]
            width = module.qkv_features or q.shape[-1]
            layers.append(Layer(path, "attention", 2 * keys * width, reads_data=False))
        return out

    with nn.intercept_methods(record):
        jax.eval_shape(lambda p, x: model.apply(p, x), params, x)
    expected = _kernel_paths(params)
    if sorted(seen) != sorted(expected):
        raise ConfigError(f"flops: cannot count model {model_cfg.name!r}: layers with kernels "
                          f"{sorted(expected)}, counted {sorted(seen)}; teach tallysim/bench/flops.py its layers")
    return FlopCount(model_cfg.name, "token" if text else "example", tuple(layers))
