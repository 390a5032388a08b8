"""The plain-JAX yardstick of `tallysim bench`: P models trained as one `jit(vmap(scan))`.

Rewritten into the package from the project's reference benchmark `benchmarks/vmap_ref.py`, so that
`bench`'s `vmap_ref` rows work from an installed wheel: P copies of a network trained with momentum SGD
(lr 0.05, momentum 0.9), `lax.scan` over the local steps, `jax.vmap` over the peers, one `jax.jit`, on
inputs drawn up front as one [P, steps, batch, ...] array of normal noise. It shares no training code
with tallysim (no shards, gathers, masks, schedules or groups), so tallysim's round measured against it
shows what tallysim's own machinery costs or saves.

Networks: `MLP` and `CNN` are vmap_ref's own (784-200-200-10, which is tallysim's MLP at width 200; and
its conv 32-64-64 + dense 128 CNN on CIFAR-shaped input, as in benchmarks/README.md's H200 table).
`bench` runs the yardstick on the row's own network (for LeNet, CNN and ResNet-8 tallysim's flax
module with the native convolution, `conv="xla"`, what a plain-JAX user would write), so a row
compares like with like. `python -m tallysim.bench.ref` reproduces vmap_ref.py's command line.

`setup_dense` is the bound `bench`'s `dense` rows measure (issue 35): the same work as ONE model
trained with batch P x batch, i.e. the same FLOPs as P peers of batch `batch`, without per-peer
weights, so every layer is one large matmul or convolution instead of P small (grouped) ones.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

LR, MOMENTUM = 0.05, 0.9


class MLP(nn.Module):
    """vmap_ref.py's MLP: flatten, two dense-200 ReLU layers, dense K; float32 logits."""
    classes: int = 10
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x):
        d = jnp.dtype(self.dtype)
        x = x.reshape(x.shape[0], -1).astype(d)
        for h in (200, 200):
            x = nn.relu(nn.Dense(h, dtype=d)(x))
        return nn.Dense(self.classes, dtype=d)(x).astype(jnp.float32)


class CNN(nn.Module):
    """vmap_ref.py's CNN: three 3x3 convs (32, 64, 64) each with ReLU and a 2x2 max-pool, dense 128."""
    classes: int = 10
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x):
        d = jnp.dtype(self.dtype)
        x = x.astype(d)
        for f in (32, 64, 64):
            x = nn.Conv(f, (3, 3), dtype=d)(x)
            x = nn.relu(x)
            x = nn.max_pool(x, (2, 2), (2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(128, dtype=d)(x))
        return nn.Dense(self.classes, dtype=d)(x).astype(jnp.float32)


def make_train(apply_fn, tx=None):
    """train(params, opt, xs_TxBx..., ys_TxB) -> (params, opt, loss_T) for one model; vmap it over peers."""
    tx = tx or optax.sgd(LR, momentum=MOMENTUM)

    def loss_fn(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(apply_fn(p, x), y).mean()

    def step(carry, xy):
        p, o = carry
        loss, g = jax.value_and_grad(loss_fn)(p, *xy)
        u, o = tx.update(g, o, p)
        return (optax.apply_updates(p, u), o), loss

    def train(p, o, xs, ys):
        (p, o), losses = jax.lax.scan(step, (p, o), (xs, ys))
        return p, o, losses

    return train, tx


def init_peers(module, keys, shape):
    """P models' params, one per key (jitted: an eager vmapped init dispatches op by op, slowly)."""
    return jax.jit(jax.vmap(lambda k: module.init(k, jnp.zeros((1,) + tuple(shape)))))(keys)


def setup(module, peers: int, steps: int, batch: int, shape: tuple, classes: int = 10, seed: int = 0):
    """AOT-compiled `jit(vmap(train))` and its arguments, as vmap_ref.py builds them.

    Returns (compiled, args, compile_seconds); `compiled(*args)` trains all P models for `steps` steps."""
    train, tx = make_train(module.apply)
    key = jax.random.PRNGKey(seed)
    keys = jax.random.split(key, peers)
    params = init_peers(module, keys, shape)
    opt = jax.vmap(tx.init)(params)
    kx, ky = jax.random.split(jax.random.fold_in(key, 1))
    xs = jax.random.normal(kx, (peers, steps, batch) + tuple(shape))
    ys = jax.random.randint(ky, (peers, steps, batch), 0, classes)
    args = (params, opt, xs, ys)
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(train)).lower(*args).compile()
    return compiled, args, time.perf_counter() - t0


def setup_dense(module, peers: int, steps: int, batch: int, shape: tuple, classes: int = 10, seed: int = 0):
    """AOT-compiled `jit(train)` of ONE model on batches of `peers * batch` examples, and its arguments:
    the dense bound for P peers of batch `batch` (same examples, same FLOPs per step, one set of weights).

    Returns (compiled, args, compile_seconds) as `setup`; `compiled(*args)` takes `steps` steps. The loss is
    the mean over all P x batch examples (one scaling of the gradient, not per peer: no FLOPs to speak of)."""
    train, tx = make_train(module.apply)
    key = jax.random.PRNGKey(seed)
    params = jax.jit(lambda k: module.init(k, jnp.zeros((1,) + tuple(shape))))(key)
    opt = tx.init(params)
    kx, ky = jax.random.split(jax.random.fold_in(key, 1))
    xs = jax.random.normal(kx, (steps, peers * batch) + tuple(shape))
    ys = jax.random.randint(ky, (steps, peers * batch), 0, classes)
    args = (params, opt, xs, ys)
    t0 = time.perf_counter()
    compiled = jax.jit(train).lower(*args).compile()
    return compiled, args, time.perf_counter() - t0


def main(argv=None):
    """vmap_ref.py's command line: vmapped samples/s per P (its per-peer loop is `tallysim bench`'s `loop`)."""
    ap = argparse.ArgumentParser(prog="python -m tallysim.bench.ref", allow_abbrev=False)   # no `--step` for --steps
    ap.add_argument("--peers", default="1,10,100")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--model", default="cnn", choices=("cnn", "mlp"))
    a = ap.parse_args(argv)
    print("devices", jax.devices(), "jax", jax.__version__, flush=True)
    module = (CNN if a.model == "cnn" else MLP)(dtype=a.dtype)
    shape = (32, 32, 3) if a.model == "cnn" else (28, 28, 1)
    rows = []
    for P in [int(s) for s in a.peers.split(",")]:
        comp, args, tc = setup(module, P, a.steps, a.batch, shape)
        jax.block_until_ready(comp(*args))
        ts = []
        for _ in range(3):
            t0 = time.perf_counter()
            jax.block_until_ready(comp(*args))
            ts.append(time.perf_counter() - t0)
        sec = statistics.median(ts)
        rows.append(dict(model=a.model, dtype=a.dtype, P=P, mode="vmap", sec=sec,
                         samples_per_s=P * a.steps * a.batch / sec, compile_s=tc))
        print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    main()
