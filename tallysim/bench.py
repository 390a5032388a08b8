"""`python -m tallysim bench`: local-training throughput of tallysim's own vmapped code vs a per-peer loop.

Both modes run the same `local.train_peer` (the function the protocols use, with `local_steps` fixed),
so the ratio isolates what vmapping all peers into one program buys over the naive simulator that
calls one jitted single-peer step per peer from Python. Throughput is samples/s = P * steps * batch / s.
Method as in shared/design/PERFORMANCE.md: compile first (timed separately), one untimed warm-up, then
the median of 3 timed runs, each ending in `jax.block_until_ready`.
"""
from __future__ import annotations

import json
import statistics
import time
from typing import Callable, Optional

import jax
import numpy as np

from tallysim import local, peers as peers_mod
from tallysim.config import ConfigError, ModelConfig, OptimConfig
from tallysim.fed import FedData
from tallysim.models import make_model

CLASSES = 10
DEFAULT_SHAPE = (28, 28, 1)   # every built-in model accepts MNIST-shaped input
MAX_EXAMPLES = 60_000         # cap the training set (MNIST-sized) so P=10k peers fit in memory
REPEATS = 3


def synthetic_data(P: int, S: int, shape: tuple, seed: int = 0) -> FedData:
    """Random uint8 images (stored like the real datasets, so `to_input` does the same work) and P
    shards of S indices. Shards are disjoint while P*S <= MAX_EXAMPLES, then wrap around: a real
    dataset has a fixed size however many peers share it, and the gather cost does not depend on overlap."""
    rng = np.random.default_rng(seed)
    N = min(P * S, MAX_EXAMPLES)
    x = rng.integers(0, 256, (N,) + tuple(shape), dtype=np.uint8)
    y = rng.integers(0, CLASSES, (N,), dtype=np.int32)
    shard = (np.arange(P * S, dtype=np.int64) % N).astype(np.int32).reshape(P, S)
    x, y = jax.numpy.asarray(x), jax.numpy.asarray(y)
    # Probe pool and test split are unused by local training; one example keeps the pytree valid.
    return FedData(x_train=x, y_train=y, shard_PxS=jax.numpy.asarray(shard),
                   count_P=jax.numpy.full((P,), S, jax.numpy.int32),
                   pool_Q=jax.numpy.zeros((1,), jax.numpy.int32), x_test=x[:1], y_test=y[:1])


def _timed(fn: Callable) -> float:
    """Median wall seconds of REPEATS calls after one untimed warm-up (first-call allocations)."""
    jax.block_until_ready(fn())
    ts = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def _compile(fn, *args):
    """AOT-compile so compile time is measured on its own; returns (compiled, seconds)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def measure(model: str, peers: list[int], steps: int, batch: int, dtype: str, loop_max: int,
            shape: Optional[tuple] = None, emit: Optional[Callable[[dict], None]] = None) -> list[dict]:
    """One row per (P, mode); `emit` sees each row as soon as it is measured (progress on slow runs)."""
    if steps < 1 or batch < 1 or not peers or min(peers) < 1:
        raise ConfigError("bench: --peers, --steps and --batch must be positive")
    shape = tuple(shape or DEFAULT_SHAPE)
    net = make_model(ModelConfig(name=model, dtype=dtype), CLASSES)
    tx = peers_mod.make_optimizer(OptimConfig(name="sgd", lr=0.05, momentum=0.9))
    S = steps * batch
    spec = local.LocalSpec(apply_fn=net.apply, tx=tx, batch_size=batch, shard_max=S, local_steps=steps)
    device = str(jax.devices()[0])
    rows: list[dict] = []

    def add(P, mode, sec, compile_s, **extra):
        row = dict(model=model, dtype=dtype, P=P, mode=mode, sec=sec,
                   samples_per_s=P * steps * batch / sec, compile_s=compile_s,
                   steps=steps, batch=batch, device=device, **extra)
        rows.append(row)
        if emit:
            emit(row)
        return row

    # Data is an argument, never a closure, as in run.py: otherwise XLA bakes it in as a constant.
    def vmapped(p, o, k, s, c, data):
        return local.train_peers(spec, p, o, k, s, c, data)[:3]

    def single(p, o, k, s, c, data):
        return local.train_peer(spec, p, o, k, s, c, data, None, None)

    for P in peers:
        data = synthetic_data(P, S, shape)
        key = jax.random.PRNGKey(P)
        params = peers_mod.init_params(net, key, P, shape, shared=False)
        opt = jax.vmap(tx.init)(params)
        keys = jax.random.split(jax.random.fold_in(key, 1), P)
        args = (params, opt, keys, data.shard_PxS, data.count_P, data)
        comp, tc = _compile(vmapped, *args)
        v = add(P, "vmap", _timed(lambda: comp(*args)), tc)
        if P > loop_max:
            continue
        # The naive simulator holds one model per peer: slice them up before the clock starts so the
        # loop is timed on its calls alone, not on P*leaves slicing dispatches.
        per_peer = [jax.tree.map(lambda a, i=i: a[i], (params, opt, keys, data.shard_PxS, data.count_P))
                    for i in range(P)]
        jax.block_until_ready(per_peer)
        comp1, tc1 = _compile(single, *per_peer[0], data)
        sec = _timed(lambda: [comp1(*pp, data) for pp in per_peer])
        add(P, "loop", sec, tc1, ratio=sec / v["sec"])   # vmap samples/s over loop's; > 1: vmap wins
    return rows


def table(rows: list[dict]) -> str:
    """Aligned P | vmap samples/s | loop samples/s | ratio, one line per P."""
    by_p: dict[int, dict] = {}
    for r in rows:
        by_p.setdefault(r["P"], {})[r["mode"]] = r
    head = ("P", "vmap samples/s", "loop samples/s", "ratio vmap/loop")
    lines = [head]
    for P, m in by_p.items():
        v, lp = m.get("vmap"), m.get("loop")
        lines.append((str(P), f"{v['samples_per_s']:,.0f}" if v else "-",
                      f"{lp['samples_per_s']:,.0f}" if lp else "-",
                      f"{lp['ratio']:.2f}x" if lp and v else "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(" | ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)


def _parse_ints(text: str, what: str) -> list[int]:
    try:
        return [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"bench: {what} must be comma-separated integers, got {text!r}") from None


def main(args) -> list[dict]:
    shape = getattr(args, "shape", None)   # optional: the CLI may not offer --shape
    shape = tuple(_parse_ints(shape, "--shape")) if shape else None
    rows = measure(args.model, _parse_ints(args.peers, "--peers"), args.steps, args.batch, args.dtype,
                   args.loop_max, shape=shape, emit=lambda r: print(json.dumps(r), flush=True))
    first = rows[0]
    print(f"\n{first['model']} {first['dtype']}, {first['steps']} steps x batch {first['batch']} per peer, "
          f"devices {jax.devices()}")
    print(table(rows), flush=True)
    if getattr(args, "json", None):
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows
