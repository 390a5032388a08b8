"""Yardstick: how fast does plain JAX train P small models at once on this machine?

Independent of tallysim's code on purpose (only jax, flax and optax), so that `tallysim bench` can be
judged against it. P copies of a small network are trained with momentum SGD (lr 0.05, momentum 0.9)
on random inputs drawn up front, two ways:

  vmap  one `jax.jit` of `jax.vmap` over the peers of a `lax.scan` over the local steps
  loop  a Python loop over the peers calling one jitted single-model scan (the naive simulator)

Networks: `cnn` (conv 32-64-64 with 2x2 max-pools, dense 128; CIFAR-shaped 32x32x3 input, about
48 MFLOP per example forward and backward) and `mlp` (784-200-200-10 on 28x28x1 input).
Each P prints one JSON line per mode (samples/s, `tflops_xla`: TFLOP/s from XLA's cost analysis, compile
seconds), and a last `SUMMARY` line with all rows. `tflops_xla` is XLA's count, not an analytic one: it
is wrong on a GPU for convolutions (jax#22249) and on the CPU leaves out a SAME convolution's padding
taps; `tallysim bench`'s `tflops` column counts FLOPs analytically (tallysim/bench/flops.py). Timing: compile first, then the median of 3 runs.

    python benchmarks/vmap_ref.py [--model cnn|mlp] [--peers 1,10,100] [--steps 20] [--batch 32]
                                  [--dtype float32|bfloat16] [--loop-max 100]

(`python -m tallysim.bench.ref` is the same yardstick inside the package, which `tallysim bench` runs.)
"""
import argparse
import json
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


class MLP(nn.Module):
    classes: int = 10
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x):
        d = jnp.dtype(self.dtype)
        x = x.reshape(x.shape[0], -1).astype(d)
        for width in (200, 200):
            x = nn.relu(nn.Dense(width, dtype=d)(x))
        return nn.Dense(self.classes, dtype=d)(x).astype(jnp.float32)


class CNN(nn.Module):
    classes: int = 10
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x):
        d = jnp.dtype(self.dtype)
        x = x.astype(d)
        for features in (32, 64, 64):
            x = nn.relu(nn.Conv(features, (3, 3), dtype=d)(x))
            x = nn.max_pool(x, (2, 2), (2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(128, dtype=d)(x))
        return nn.Dense(self.classes, dtype=d)(x).astype(jnp.float32)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="plain-JAX yardstick: P models trained at once vs one by one")
    ap.add_argument("--model", default="cnn", choices=("cnn", "mlp"))
    ap.add_argument("--peers", default="1,10,100", help="comma list of peer counts P")
    ap.add_argument("--steps", type=int, default=20, help="local steps per peer")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--loop-max", type=int, default=100, help="largest P also timed as a per-peer loop")
    return ap.parse_args(argv)


def _median_seconds(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main(argv=None):
    a = parse_args(argv)
    print("devices", jax.devices(), "jax", jax.__version__, flush=True)
    model = (CNN if a.model == "cnn" else MLP)(dtype=a.dtype)
    shape = (32, 32, 3) if a.model == "cnn" else (28, 28, 1)
    tx = optax.sgd(0.05, momentum=0.9)

    def loss_fn(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()

    def step(carry, xy):
        p, o = carry
        g = jax.grad(loss_fn)(p, *xy)
        u, o = tx.update(g, o, p)
        return (optax.apply_updates(p, u), o), None

    def train(p, o, xs, ys):                  # xs: [steps, batch, *shape]
        (p, o), _ = jax.lax.scan(step, (p, o), (xs, ys))
        return p, o

    train_one = jax.jit(train)
    train_all = jax.jit(jax.vmap(train))
    rows = []
    for P in (int(s) for s in a.peers.split(",")):
        key = jax.random.PRNGKey(0)
        params = jax.vmap(lambda k: model.init(k, jnp.zeros((1,) + shape)))(jax.random.split(key, P))
        opt = jax.vmap(tx.init)(params)
        xs = jax.random.normal(key, (P, a.steps, a.batch) + shape)
        ys = jax.random.randint(key, (P, a.steps, a.batch), 0, 10)
        samples = P * a.steps * a.batch

        t0 = time.perf_counter()
        compiled = train_all.lower(params, opt, xs, ys).compile()
        compile_s = time.perf_counter() - t0
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        flops = float(cost.get("flops", 0.0)) if cost else 0.0
        jax.block_until_ready(compiled(params, opt, xs, ys))              # warm-up
        sec = _median_seconds(lambda: compiled(params, opt, xs, ys))
        row = dict(model=a.model, dtype=a.dtype, P=P, mode="vmap", sec=sec, samples_per_s=samples / sec,
                   tflops_xla=flops / sec / 1e12, compile_s=compile_s)
        rows.append(row)
        print(json.dumps(row), flush=True)

        if P <= a.loop_max:
            peer = lambda t, i: jax.tree.map(lambda leaf: leaf[i], t)      # noqa: E731
            jax.block_until_ready(train_one(peer(params, 0), peer(opt, 0), xs[0], ys[0]))   # compile
            t0 = time.perf_counter()
            jax.block_until_ready([train_one(peer(params, i), peer(opt, i), xs[i], ys[i]) for i in range(P)])
            loop_s = time.perf_counter() - t0
            row = dict(model=a.model, dtype=a.dtype, P=P, mode="loop", sec=loop_s,
                       samples_per_s=samples / loop_s, speedup_vmap=loop_s / sec)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("SUMMARY", json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()
