"""Seconds per round of experiments/shakespeare_fedavg.json on this machine (training and averaging
only; evaluation is timed apart, the server model on the test sequences), and the projection for its
1,200 rounds. python experiments/time_shakespeare_round.py [ROUNDS] [key=value ...]"""
import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from tallysim import config
from tallysim.build import build
from tallysim.sim import tasks
from tallysim.sim.evaluate import evaluate

# --help, or a ROUNDS that is not a number (int() raised a ValueError traceback), is a usage line
_ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_ap.add_argument("rounds", nargs="?", type=int, default=5, help="rounds timed (default 5)")
_ap.add_argument("overrides", nargs="*", default=[], help="key=value config overrides")
ARGS = _ap.parse_args()
if ARGS.rounds < 1:     # 0 divided by zero after the build and the first round's compile (minutes)
    _ap.error(f"rounds {ARGS.rounds}: allowed: 1 or more")
n = ARGS.rounds
# beside this file: read from the working directory it was a ConfigError traceback anywhere but the checkout's root
cfg = config.apply_overrides(config.load_file(str(Path(__file__).with_name("shakespeare_fedavg.json"))), ARGS.overrides)
t0 = time.time()
b = build(cfg)
data = b.one
state = jax.jit(b.protocol.init)(jax.random.PRNGKey(0), data)
jax.block_until_ready(state)
print(f"build + init: {time.time() - t0:.1f} s ({b.ctx.num_params:,} parameters, {b.ctx.spec.peers} peers, "
      f"{b.ctx.spec.active} per round)", flush=True)
step = jax.jit(b.protocol.round)
t0 = time.time()
state, info = step(state, data, jax.random.PRNGKey(1), jnp.int32(1))
jax.block_until_ready(state)
print(f"round 1 (compile + run): {time.time() - t0:.1f} s", flush=True)
t0 = time.time()
tokens = 0
for r in range(2, n + 2):
    state, info = step(state, data, jax.random.PRNGKey(1), jnp.int32(r))
    jax.block_until_ready(state)
    tokens += int(info["steps_real"]) * cfg.batch_size * b.ctx.spec.input_shape[0]
per = (time.time() - t0) / n
print(f"{per:.2f} s per round over {n} rounds ({tokens / (per * n):,.0f} training tokens/s); "
      f"1,200 rounds: {per * 1200 / 3600:.2f} h", flush=True)
task = tasks.of(b.ctx.spec)
server = jax.tree.map(lambda a: a[None], state.server)
ev = jax.jit(lambda s, x, y: evaluate(b.ctx.model.apply, s, None, x, y, b.ctx.spec.classes, task=task))
t0 = time.time()
out = ev(server, data.x_test, data.y_test)
jax.block_until_ready(out)
print(f"server accuracy after {n + 1} rounds: {float(out['acc_P'][0]):.4f} on {data.y_test.shape[0]} test "
      f"sequences ({time.time() - t0:.1f} s with compile)", flush=True)
