"""docs/niid-bench.md. tallysim's own FedAvg/FedProx run (the CLI), with NIID-Bench's choices patched in one at a time:
ARCH=valid (SimpleCNNMNIST: conv1 VALID, 256 features) | same (tallysim's LeNet, 400 features)
INIT=torch (PyTorch defaults: U(+-1/sqrt(fan_in)) weights and biases) | flax (lecun_normal, zero bias)
INPUTS=01 (ToTensor, [0, 1]) | pm1 (tallysim's [-1, 1])
Usage (repository root, PYTHONPATH=.): ARCH=.. INIT=.. INPUTS=.. python
benchmarks/niid_bench/tallysim_patched.py <tallysim run arguments>; model.name=lenet selects the patched net."""
import os
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp

from tallysim.sim import evaluate, fed, local, models

ARCH, INIT, INPUTS = os.environ.get("ARCH", "same"), os.environ.get("INIT", "flax"), os.environ.get("INPUTS", "pm1")


def torch_kernel():
    return nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_bias(fan_in):
    b = 1.0 / fan_in ** 0.5
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -b, b)


class LeNetVariant(nn.Module):
    num_classes: int
    dtype: object = jnp.float32

    @nn.compact
    def __call__(self, x):
        kw = dict(dtype=self.dtype, param_dtype=jnp.float32)

        def init(fan_in):
            return dict(kernel_init=torch_kernel(), bias_init=torch_bias(fan_in)) if INIT == "torch" else {}
        x = x.astype(self.dtype)
        x = models.max_pool_2x2(nn.relu(nn.Conv(6, (5, 5), padding="SAME" if ARCH == "same" else "VALID",
                                                **kw, **init(25))(x)))
        x = models.max_pool_2x2(nn.relu(nn.Conv(16, (5, 5), padding="VALID", **kw, **init(150))(x)))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(120, **kw, **init(x.shape[-1]))(x))
        x = nn.relu(nn.Dense(84, **kw, **init(120))(x))
        return nn.Dense(self.num_classes, **kw, **init(84))(x).astype(jnp.float32)


models._BUILDERS["lenet"] = lambda cfg, k, dt: LeNetVariant(num_classes=k, dtype=dt)

if INPUTS == "01":
    def to_input(x):
        return x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x.astype(jnp.float32)
    for mod in (fed, local, evaluate):
        mod.to_input = to_input

from tallysim import cli  # noqa: E402

sys.exit(cli.main(["run", *sys.argv[1:]]))
