"""Is the demo's seed 1 divergence a bug? (docs/getting-started.md, "Seed 8: one peer diverges": seed 1 was the example before the 2026-12-07 pairing change).

Under experiments/demo.json with seed=1, peer 0 (1,689 sneakers and 170 coats of its 1,865 examples) blows
up in round 1 at optim.lr=0.05 with momentum 0.9. This trains peers' shards alone with plain JAX and optax,
none of tallysim's training code: the same MLP (784-200-200-C, ReLU, lecun-normal kernels, zero biases),
SGD with momentum, batch 32, two epochs (round 1's warm-up epoch and first exchange epoch), from four
initialisations each, inputs as tallysim maps them ([-1, 1]) and in [0, 1]. Only the shard's examples come
from tallysim (the partition `tallysim run` draws). Prints, per shard and setting, each initialisation's
largest batch loss (inf: diverged) and test accuracy. Measured 2026-12-06: peer 0 diverges from 2 of 4
initialisations at lr 0.05 / momentum 0.9 on [-1, 1] and from none at momentum 0, at lr 0.02 or on [0, 1].

    PYTHONPATH=. python experiments/deadpeer_reference.py [--peers 0 7] [key=value ...]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tallysim import build, config

SETTINGS = ((0.05, 0.9), (0.05, 0.0), (0.02, 0.9))      # (lr, momentum)


def demo_config(items: list) -> config.Config:
    """experiments/demo.json beside this file (read from the working directory, it was a ConfigError traceback
    from anywhere but the repository's root), seed 1, local training, with `items`."""
    return config.apply_overrides(config.load_file(str(Path(__file__).with_name("demo.json"))),
                                  ["seed=1", "protocol.name=local", *items])


def shards(items: list) -> tuple:
    """(peer -> its training example indices, x_train, y_train, x_test, y_test) of the demo's partition."""
    f = build.build(demo_config(items)).fed
    off, cnt = np.asarray(f.offset_P).reshape(-1), np.asarray(f.count_P).reshape(-1)
    flat = np.asarray(f.shard_H).reshape(-1)
    return ({p: flat[int(off[p]):int(off[p]) + int(cnt[p])] for p in range(len(cnt))},
            np.asarray(f.x_train), np.asarray(f.y_train), np.asarray(f.x_test), np.asarray(f.y_test))


def train(x, y, xt, yt, lr: float, momentum: float, seed: int, classes: int, epochs: int = 2) -> tuple:
    """(largest batch loss, inf once non-finite; test accuracy) of one initialisation."""
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    dims = [x.shape[1], 200, 200, classes]
    init = jax.nn.initializers.lecun_normal()
    params = [(init(k[i], (dims[i], dims[i + 1])), jnp.zeros(dims[i + 1])) for i in range(3)]

    def forward(p, a):
        for i, (w, b) in enumerate(p):
            a = a @ w + b
            a = jax.nn.relu(a) if i < 2 else a
        return a

    def loss(p, a, t):
        return optax.softmax_cross_entropy_with_integer_labels(forward(p, a), t).mean()
    tx = optax.sgd(lr, momentum=momentum or None)
    opt = tx.init(params)

    @jax.jit
    def step(p, o, a, t):
        value, g = jax.value_and_grad(loss)(p, a, t)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o, value
    rng, worst = np.random.default_rng(seed), 0.0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), 32):
            params, opt, value = step(params, opt, x[order[s:s + 32]], y[order[s:s + 32]])
            worst = max(worst, float(value)) if np.isfinite(value) else float("inf")
    return worst, float((np.argmax(np.asarray(forward(params, xt)), 1) == yt).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", type=int, nargs="+", default=[0, 7, 4, 2])
    ap.add_argument("--inits", type=int, default=4)
    ap.add_argument("items", nargs="*", default=[], help="key=value overrides of experiments/demo.json")
    args = ap.parse_args()
    try:
        peers = demo_config(args.items).peers
    except config.ConfigError as e:         # a bad override: one line, not a traceback
        ap.error(str(e))
    # --peers 99 was an IndexError after the data had loaded and the peers before it had trained; --peers -1
    # trained the last peer under the name "peer -1" (a list's negative index); --inits 0 printed empty lists
    if bad := [p for p in args.peers if not 0 <= p < peers]:
        ap.error(f"--peers {' '.join(map(str, bad))}: allowed: peers 0..{peers - 1} (the demo's {peers})")
    if args.inits < 1:
        ap.error(f"--inits {args.inits}: allowed: 1 or more initialisations a setting")
    parts, x_all, y_all, x_test, y_test = shards(args.items)
    classes = int(y_all.max()) + 1
    flat = lambda a: a.reshape(len(a), -1).astype(np.float32)
    scales = {"[-1, 1]": lambda a: flat(a) * (2 / 255) - 1, "[0, 1]": lambda a: flat(a) / 255}
    for p in args.peers:
        idx = parts[p]
        print(f"peer {p}: {len(idx)} examples, per class {np.bincount(y_all[idx], minlength=classes).tolist()}")
        for lr, momentum in SETTINGS:
            for name, scale in scales.items():
                got = [train(scale(x_all[idx]), y_all[idx], scale(x_test), y_test, lr, momentum, s, classes)
                       for s in range(args.inits)]
                print(f"  lr {lr} momentum {momentum} inputs {name}: (largest batch loss, test accuracy) "
                      f"{[(round(a, 1), round(c, 3)) for a, c in got]}", flush=True)


if __name__ == "__main__":
    main()
