"""Compile time (lower and compile apart) and seconds per round of one grouped program, on this
machine, with the persistent compile cache off; counts the step-body copies in its HLO.
python experiments/time_compile.py {niid|demo} [ROUNDS] [key=value ...]"""
import os
import re
import sys
import time

os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"      # compile time, not a cache read
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from experiments.niid_shape import NIID, single_round  # noqa: E402
from tallysim import config  # noqa: E402

which = sys.argv[1] if len(sys.argv) > 1 else "niid"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
base = config.load_file("experiments/demo.json") if which == "demo" else config.Config()
cfg = config.apply_overrides(base, ([] if which == "demo" else NIID) + sys.argv[3:])
b, single, (state, data_c, k_rounds, rs, values) = single_round(cfg)
t0 = time.perf_counter()
lowered = single.lower(state, data_c, k_rounds, rs, values)
t_lower = time.perf_counter() - t0
t0 = time.perf_counter()
compiled = lowered.compile()
t_compile = time.perf_counter() - t0
hlo = lowered.as_text()
opt = compiled.as_text()
count = lambda pat, text: len(re.findall(pat, text))
n_while, n_conv = count(r'\bwhile[(]', opt), count(r'convolution[(]', opt)
print(f"{which}: {len(b.seeds)} lanes x {cfg.peers} peers, groups {b.ctx.spec.groups}, "
      f"jax {jax.__version__} {jax.default_backend()}")
print(f"lower {t_lower:.2f} s, compile {t_compile:.2f} s; lowered HLO: {count(r'stablehlo.while', hlo)} while, "
      f"{count(r'stablehlo.convolution', hlo)} convolution, "
      f"{count(r'stablehlo.dot_general', hlo)} dot_general, {len(hlo):,} chars; compiled HLO: "
      f"{n_while} while, {n_conv} convolution")
state, info = compiled(state, data_c, k_rounds, rs, values)
jax.block_until_ready(state)
ts = []
for r in range(2, n + 2):
    rs = jnp.arange(r, r + 1, dtype=jnp.int32)
    t0 = time.perf_counter()
    state, info = compiled(state, data_c, k_rounds, rs, values)
    jax.block_until_ready(state)
    ts.append(time.perf_counter() - t0)
real = int(info["steps_real"][0, 0])
computed = int(info["steps_computed"][0, 0])
per_peer = computed // cfg.peers
print(f"round: min {min(ts):.3f} s of {n}; steps real {real}, computed {computed} per lane "
      f"({per_peer} per peer): {1e3 * min(ts) / per_peer:.2f} ms per local step of "
      f"{len(b.seeds)} lanes x {cfg.peers} peers x {cfg.batch_size} examples")
