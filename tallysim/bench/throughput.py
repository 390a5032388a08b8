"""`python -m tallysim bench`: local-training samples/s of tallysim's round against its yardsticks.

One table, one row per (model, dtype, P), one column per implementation, all measured in this process
on the same device:

  tallysim  `local.train_peers`, the vmapped local training the protocols run (`local_steps` fixed),
            with `model.conv=auto` (im2col on the CPU, the native convolution elsewhere);
  loop      the naive simulator: a Python loop over peers calling one jitted `local.train_peer` each
            (same step, same schedule), with the native convolution (`conv="xla"`);
  vmap_ref  the plain-JAX yardstick (`bench_ref`, from benchmarks/vmap_ref.py): the same network
            trained with momentum SGD as one `jit(vmap(scan))` on pre-drawn inputs, native convolution;
  dense     the bound (issue 35): the same network as ONE model trained with batch P * batch, `steps`
            steps (`bench_ref.setup_dense`): the same examples and FLOPs, no per-peer weights, so each
            layer is one large matmul or convolution instead of P small ones; the tallysim column's
            convolution (`auto`: native on an accelerator, im2col on the CPU);
  torch_ref a PyTorch per-peer loop: not in the package yet, so no rows; the table says so (run
            benchmarks/torch_ref.py on the same machine to compare).

Throughput is samples/s = P * steps * batch / s. Every row also has `flops_per_example`, the analytic
FLOPs to train on one example (`tallysim.bench.flops`: forward + backward, counted from the model's
layer shapes), `tflops` = samples/s * flops_per_example / 1e12 (XLA's own cost analysis is wrong on a
GPU for convolutions, jax#22249, so it is not used), and, where the dense row was measured, `of_dense` =
the row's samples/s / the dense row's (the fraction of the bound; the dense row's own is 1).

Method as in benchmarks/README.md: compile first (timed separately), one untimed warm-up, then the
median of `repeats` timed runs, each ending in `jax.block_until_ready`. The table's text (header, lines,
notes) is bench/throughput_table.py's.
"""
from __future__ import annotations

import statistics
import sys
import time
import traceback
from typing import Callable, Iterable, Optional, Union

import jax
import numpy as np

from tallysim.bench import device_name, failed, flops as bench_flops, ref as bench_ref, write_json
# the models model.conv applies to (--conv), and the columns it changes; --repeats' default
from tallysim.bench.flags import CONV_IMPLS, CONV_MODELS, REPEATS
# the table as text, and its notes: throughput.table, throughput.header, as before
from tallysim.bench.throughput_table import header, table, table_notes, torch_available  # noqa: F401
from tallysim.sim import local, peers as peers_mod, step_groups
from tallysim.config import MODELS, ConfigError, ModelConfig, OptimConfig
from tallysim.sim.fed import FedData, cohort_shards
from tallysim.sim.models import DTYPES, make_model

CLASSES = 10
DEFAULT_SHAPE = (28, 28, 1)   # every built-in model accepts MNIST-shaped input
MAX_EXAMPLES = 60_000         # cap the training set (MNIST-sized) so P=10k peers fit in memory
BUDGET_S = 10.0               # a cell stops repeating once its timed runs add up to this (at least one run)
IMPLS = ("tallysim", "loop", "vmap_ref", "dense", "torch_ref")

# The full grid (`make bench` on an accelerator, or `--full`).
FULL = dict(model="mlp,lenet,cnn,resnet8", peers="10,100,1000", dtype="float32,bfloat16", steps=20)
# The CPU default, a few minutes on a 2-core CPU: XLA's CPU runs bfloat16 emulated, ResNet-8 and
# P=1000 conv rounds take minutes each there. Any of --model/--peers/--dtype/--steps overrides it.
CPU = dict(model="mlp,lenet,cnn", peers="10,100", dtype="float32", steps=2)
# ... and, unless --peers is given, the largest P per model there: the CNN's native-convolution
# baselines (loop, vmap_ref) run at tens of samples/s on a 2-core CPU.
CPU_MAX_PEERS = {"cnn": 10, "resnet8": 10}


def synthetic_data(P: int, S: int, shape: tuple, seed: int = 0) -> FedData:
    """Random uint8 images (stored like the real datasets, so `to_input` does the same work) and P
    shards of S indices. Shards are disjoint while P*S <= MAX_EXAMPLES, then wrap around: a real
    dataset has a fixed size however many peers share it, and the gather cost does not depend on overlap."""
    rng = np.random.default_rng(seed)
    N = min(P * S, MAX_EXAMPLES)
    x = rng.integers(0, 256, (N,) + tuple(shape), dtype=np.uint8)
    y = rng.integers(0, CLASSES, (N,), dtype=np.int32)
    shard = (np.arange(P * S, dtype=np.int64) % N).astype(np.int32)       # P shards of S, end to end
    x, y = jax.numpy.asarray(x), jax.numpy.asarray(y)
    # Probe pool and test split are unused by local training; one example keeps the pytree valid.
    return FedData(x_train=x, y_train=y, shard_H=jax.numpy.asarray(shard),
                   count_P=jax.numpy.full((P,), S, jax.numpy.int32),
                   pool_Q=jax.numpy.zeros((1,), jax.numpy.int32), x_test=x[:1], y_test=y[:1],
                   offset_P=jax.numpy.arange(P, dtype=jax.numpy.int32) * S)


def _timed(fn: Callable, repeats: int = REPEATS, budget_s: float = BUDGET_S) -> float:
    """Median wall seconds of up to `repeats` calls after one untimed warm-up (first-call allocations);
    slow cells stop early, after at least one timed call, once the timed calls add up to `budget_s`."""
    jax.block_until_ready(fn())
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t0)
        if sum(ts) >= budget_s:
            break
    return statistics.median(ts)


def _compile(fn, *args):
    """AOT-compile so compile time is measured on its own; returns (compiled, seconds)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def _as_list(v: Union[str, int, Iterable], what: str, cast=str) -> list:
    items = v.split(",") if isinstance(v, str) else ([v] if isinstance(v, int) else list(v))
    try:
        return [cast(s.strip() if isinstance(s, str) else s) for s in items if str(s).strip()]
    except ValueError:
        raise ConfigError(f"bench: {what} must be comma-separated integers, got {v!r}") from None


def _parse_ints(text, what: str) -> list[int]:
    return _as_list(text, what, int)


def measure(model, peers, steps: int, batch: int, dtype="float32", loop_max: int = 100,
            shape: Optional[tuple] = None, emit: Optional[Callable[[dict], None]] = None,
            impls: Iterable[str] = IMPLS, max_peers: Optional[dict] = None,
            repeats: int = REPEATS, conv="auto") -> list[dict]:
    """Rows for every (model, dtype, P, impl); `model`, `peers`, `dtype` and `conv` are one value or a
    list (or a comma string). Several convs: for a conv model, the `tallysim` and `dense` rows once per
    conv (the row's `conv` says which), `loop` and `vmap_ref` once (they always run conv=xla). `loop` runs only for P <= loop_max; a model only for P <= max_peers[model] (where
    given); `torch_ref` only where torch imports. `emit` sees each row as soon as it is measured."""
    models, dtypes = _as_list(model, "--model"), _as_list(dtype, "--dtype")
    peers = _parse_ints(peers, "--peers")
    impls = list(impls)
    convs = _as_list(conv, "--conv")
    from tallysim.sim.conv import CONVS
    for c in convs:
        if c not in CONVS:
            raise ConfigError(f"bench: unknown conv {c!r}; allowed: {', '.join(CONVS)}")
    if not convs:
        raise ConfigError(f"bench: --conv needs at least one of {', '.join(CONVS)}")
    if steps < 1 or batch < 1 or repeats < 1 or not peers or min(peers) < 1:
        raise ConfigError("bench: --peers, --steps, --batch and --repeats must be positive")
    for m in models:
        if m not in MODELS:
            raise ConfigError(f"bench: unknown model {m!r}; allowed: {', '.join(MODELS)}")
    for d in dtypes:
        if d not in DTYPES:
            raise ConfigError(f"bench: unknown dtype {d!r}; allowed: {', '.join(DTYPES)}")
    for i in impls:
        if i not in IMPLS:
            raise ConfigError(f"bench: unknown impl {i!r}; allowed: {', '.join(IMPLS)}")
    if "torch_ref" in impls:      # no in-package PyTorch loop yet: see the table's note
        impls.remove("torch_ref")
    rows: list[dict] = []

    def keep(row):
        rows.append(row)
        if emit:
            emit(row)

    for m in models:
        for d in dtypes:
            for P in peers:
                if max_peers and P > max_peers.get(m, P):
                    continue
                for i, c in enumerate(convs if m in CONV_MODELS else convs[:1]):
                    todo = impls if i == 0 else [x for x in impls if x in CONV_IMPLS]
                    if not todo:
                        continue
                    before = len(rows)
                    try:
                        _measure_one(m, d, P, steps, batch, loop_max, tuple(shape or DEFAULT_SHAPE),
                                     todo, repeats, keep, c)
                    except Exception as e:  # noqa: BLE001 - a cell that cannot compile or run here:
                        if not isinstance(e, ConfigError):  # its `failed` rows (bench/failed.py), then on
                            traceback.print_exc(file=sys.stderr)     # (a refusal is its one line)
                        for impl in failed.missing(todo, rows[before:], skip=("loop",) if P > loop_max else ()):
                            keep(failed.row(m, d, P, impl, _row_conv(m, impl, c), steps, batch, device_name(), e))
    return rows


def _row_conv(model, impl, conv):
    """A row's `conv`: the conv models' tallysim and dense rows the given one (auto as auto:<choice>),
    their loop and vmap_ref rows xla, other models none."""
    if model not in CONV_MODELS:
        return None
    if impl not in CONV_IMPLS:
        return "xla"
    from tallysim.sim.conv import auto_choice
    return conv if conv != "auto" else f"auto:{auto_choice(model)}"


def _measure_one(model, dtype, P, steps, batch, loop_max, shape, impls, repeats, emit,
                 conv: str = "auto") -> list[dict]:
    device = device_name()
    tx = peers_mod.make_optimizer(OptimConfig(name="sgd", lr=bench_ref.LR, momentum=bench_ref.MOMENTUM))
    S = steps * batch
    conv_auto = _row_conv(model, "tallysim", conv)
    rows: list[dict] = []
    flops = bench_flops.count(ModelConfig(name=model), CLASSES, shape).train

    def add(impl, sec, compile_s, conv):
        rate = P * steps * batch / sec
        row = dict(model=model, peers=P, dtype=dtype, impl=impl, samples_per_s=rate,
                   device=device, sec=sec, compile_s=compile_s, steps=steps, batch=batch,
                   conv=conv if model in CONV_MODELS else None, P=P, mode=impl,
                   flops_per_example=flops, tflops=rate * flops / 1e12)
        rows.append(row)
        if emit:
            emit(row)

    def spec_for(conv):
        net = make_model(ModelConfig(name=model, dtype=dtype, conv=conv), CLASSES)
        # The peer grouping a run would choose for P equal peers (on the CPU: one after another).
        groups = step_groups.auto_groups(np.full((1, P), steps), P, backend=jax.default_backend())
        return net, local.LocalSpec(apply_fn=net.apply, tx=tx, batch_size=batch, shard_max=S,
                                    local_steps=steps, groups=groups)

    data = synthetic_data(P, S, shape)
    key = jax.random.PRNGKey(P)
    net, spec = spec_for(conv)
    params = peers_mod.init_params(net, key, P, shape, shared=False)
    opt = jax.vmap(tx.init)(params)
    keys = jax.random.split(jax.random.fold_in(key, 1), P)
    state = (params, opt, keys, cohort_shards(data, None, S), data.count_P)

    if "tallysim" in impls:
        # Data is an argument, never a closure, as in run.py: otherwise XLA bakes it in as a constant.
        def vmapped(p, o, k, s, c, data):
            return local.train_peers(spec, p, o, k, s, c, data)[:3]
        comp, tc = _compile(vmapped, *state, data)
        add("tallysim", _timed(lambda: comp(*state, data), repeats), tc, conv_auto)
        del comp

    if "loop" in impls and P <= loop_max:
        _, spec1 = spec_for("xla")   # a naive simulator runs the framework's own convolution

        def single(p, o, k, s, c, data):
            return local.train_peer(spec1, p, o, k, s, c, data, None, None)
        # The naive simulator holds one model per peer: slice them up before the clock starts so the
        # loop is timed on its calls alone, not on P*leaves slicing dispatches.
        per_peer = [jax.tree.map(lambda a, i=i: a[i], state) for i in range(P)]
        jax.block_until_ready(per_peer)
        comp1, tc1 = _compile(single, *per_peer[0], data)
        add("loop", _timed(lambda: [comp1(*pp, data) for pp in per_peer], repeats), tc1, "xla")
        del per_peer, comp1
    del data, state, params, opt

    # The yardsticks' network: for LeNet, CNN and ResNet-8 tallysim's own flax module with the native
    # convolution (what a plain-JAX user would write); the MLP is vmap_ref's, the same 784-200-200-10.
    module = (bench_ref.MLP(classes=CLASSES, dtype=dtype) if model == "mlp"
              else make_model(ModelConfig(name=model, dtype=dtype, conv="xla"), CLASSES))
    if "vmap_ref" in impls:
        comp, args, tc = bench_ref.setup(module, P, steps, batch, shape, CLASSES)
        add("vmap_ref", _timed(lambda: comp(*args), repeats), tc, "xla")
        del comp, args

    if "dense" in impls:
        # A bound, so the convolution the tallysim column uses (`auto`: the faster one on this backend). On
        # a 2-core CPU the native one ran the CNN's dense batch at 9 samples/s, 34x slower than tallysim's
        # peers on im2col (docs/performance.md): no bound at all.
        if model != "mlp":
            module = make_model(ModelConfig(name=model, dtype=dtype, conv=conv), CLASSES)
        comp, args, tc = bench_ref.setup_dense(module, P, steps, batch, shape, CLASSES)
        add("dense", _timed(lambda: comp(*args), repeats), tc, conv_auto)
        del comp, args
        bound = rows[-1]["samples_per_s"]
        for r in rows:
            r["of_dense"] = r["samples_per_s"] / bound

    return rows


def resolve_args(args) -> dict:
    """Flags with the backend's default grid filled in, plus notes on what the default leaves out."""
    given = {k: getattr(args, k, None) for k in ("model", "peers", "dtype", "steps")}
    cpu = jax.default_backend() == "cpu" and not getattr(args, "full", False)
    base = CPU if cpu else FULL
    out = {k: (v if v is not None else base[k]) for k, v in given.items()}
    notes = []
    out["max_peers"] = dict(CPU_MAX_PEERS) if cpu and given["peers"] is None else None
    if cpu and not all(v is not None for v in given.values()):
        caps = ", ".join(f"{m} P <= {n}" for m, n in CPU_MAX_PEERS.items()
                         if m in _as_list(out["model"], "--model")) if out["max_peers"] else ""
        notes.append("CPU default (" + ", ".join(f"--{k} {base[k]}" for k, v in given.items() if v is None)
                     + (f"; {caps}" if caps else "") + "): ResNet-8, bfloat16 (emulated on a CPU) and large P "
                     "are left out so that it finishes in minutes; `--full` or explicit flags run the full "
                     f"grid (--model {FULL['model']} --peers {FULL['peers']} --dtype {FULL['dtype']} "
                     f"--steps {FULL['steps']})")
    return dict(out, notes=notes)


def main(args) -> list[dict]:
    shape = getattr(args, "shape", None)   # optional: the CLI may not offer --shape
    shape = tuple(_parse_ints(shape, "--shape")) if shape else None
    opts = resolve_args(args)
    loop_max = getattr(args, "loop_max", 100)
    batch = getattr(args, "batch", 32)
    dest = getattr(args, "json", None)
    to_stdout = dest == "-"
    progress = sys.stderr
    so_far: list[dict] = []

    def emit(r):
        conv = f" conv={r['conv']}" if r.get("conv") and r["impl"] in CONV_IMPLS else ""
        got = (f"FAILED ({r['failed']})" if r.get("failed") else
               f"{r['samples_per_s']:,.0f} samples/s (compile {r['compile_s']:.1f} s)")
        print(f"  {r['model']} {r['dtype']} P={r['peers']}{conv} {r['impl']}: {got}", file=progress, flush=True)
        # --json FILE is rewritten after every row, so a run stopped by a time limit (benchmarks/gpu.sh
        # runs each part under one) keeps the rows it measured; the last write has the complete rows.
        if dest and not to_stdout:
            so_far.append(r)
            write_json(so_far, dest)

    repeats = getattr(args, "repeats", None) or REPEATS
    rows = measure(opts["model"], opts["peers"], opts["steps"], batch, opts["dtype"], loop_max,
                   shape=shape, emit=emit, max_peers=opts["max_peers"], repeats=repeats,
                   impls=_as_list(getattr(args, "impl", None) or ",".join(IMPLS), "--impl"),
                   conv=getattr(args, "conv", None) or "auto")
    text = header(rows, opts["steps"], batch, repeats) + "\n" + table(rows, table_notes(rows, opts["notes"], loop_max))
    if to_stdout:
        print(text, file=sys.stderr, flush=True)
    else:
        print(text, flush=True)
    write_json(rows, dest)
    return rows
