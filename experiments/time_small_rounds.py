"""Issue 35 s3's step comparison in ONE process, timed alternately so both see the same load: the
NIID-shaped grouped round (experiments/time_compile.py's `niid`) against `bench`'s local training of
LeNet at the same examples per step (P = 40 peers x batch 64). python experiments/time_small_rounds.py [REPEATS]"""
import argparse
import os
import time

# --help, or a REPEATS that is not a number (int() raised a ValueError traceback), is a usage line first
_ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_ap.add_argument("repeats", nargs="?", type=int, default=3, help="alternations timed (default 3)")
ARGS = _ap.parse_args()
if ARGS.repeats < 1:    # 0 or -1 compiled both programs and printed no timing
    _ap.error(f"repeats {ARGS.repeats}: allowed: 1 or more")

os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from experiments.niid_shape import NIID, single_round  # noqa: E402
from tallysim import config  # noqa: E402
from tallysim.bench import ref as bench_ref  # noqa: E402
from tallysim.bench.throughput import synthetic_data  # noqa: E402
from tallysim.config import ModelConfig, OptimConfig  # noqa: E402
from tallysim.sim import local, peers as peers_mod, step_groups  # noqa: E402
from tallysim.sim.fed import cohort_shards  # noqa: E402
from tallysim.sim.models import make_model  # noqa: E402

repeats = ARGS.repeats

cfg = config.apply_overrides(config.Config(), NIID)
b, single, (state, data_c, k_rounds, rs, values) = single_round(cfg)
niid = single.lower(state, data_c, k_rounds, rs, values).compile()

P, steps, batch = 40, 5, 64          # bench's tallysim cell: same model, 40 x 64 examples a step
tx = peers_mod.make_optimizer(OptimConfig(name="sgd", lr=bench_ref.LR, momentum=bench_ref.MOMENTUM))
net = make_model(ModelConfig(name="lenet", dtype="float32", conv="auto"), 10)
spec = local.LocalSpec(apply_fn=net.apply, tx=tx, batch_size=batch, shard_max=steps * batch, local_steps=steps,
                       groups=step_groups.auto_groups(np.full((1, P), steps), P, backend=jax.default_backend()))
data = synthetic_data(P, steps * batch, (28, 28, 1))
params = peers_mod.init_params(net, jax.random.PRNGKey(P), P, (28, 28, 1), shared=False)
bargs = (params, jax.vmap(tx.init)(params), jax.random.split(jax.random.PRNGKey(1), P),
         cohort_shards(data, None, steps * batch), data.count_P, data)
bench = jax.jit(lambda p, o, k, s, c, d: local.train_peers(spec, p, o, k, s, c, d)[:3]).lower(*bargs).compile()

state, info = niid(state, data_c, k_rounds, rs, values)
jax.block_until_ready((state, bench(*bargs)))
per_peer = int(info["steps_computed"][0, 0]) // cfg.peers
t_niid, t_bench = [], []
for r in range(repeats):
    t0 = time.perf_counter()
    state, info = niid(state, data_c, k_rounds, jnp.arange(r + 2, r + 3, dtype=jnp.int32), values)
    jax.block_until_ready(state)
    t_niid.append((time.perf_counter() - t0) / per_peer)
    t0 = time.perf_counter()
    jax.block_until_ready(bench(*bargs))
    t_bench.append((time.perf_counter() - t0) / steps)
    print(f"pair {r + 1}: niid {1e3 * t_niid[-1]:.0f} ms, bench {1e3 * t_bench[-1]:.0f} ms per step of "
          f"2,560 examples: {t_niid[-1] / t_bench[-1]:.2f}x", flush=True)
print(f"min: niid {1e3 * min(t_niid):.0f} ms, bench {1e3 * min(t_bench):.0f} ms: "
      f"{min(t_niid) / min(t_bench):.2f}x")
