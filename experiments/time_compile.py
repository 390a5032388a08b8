"""Compile time (lower and compile apart) of the two programs a run compiles first, the initial state
(`programs.initial_state`: parameter init, and for the distillation protocols the warm-up's local
training) and one round (`round_programs`' single-round program), then seconds per round, on this
machine, with the persistent compile cache off; counts the loops and matmuls in the round's HLO.
Each time is given as wall seconds and as the process's CPU seconds (all threads): on a shared machine
the wall time moves with the load, the CPU time much less.
python experiments/time_compile.py {niid|demo} [ROUNDS] [key=value ...]"""
import argparse
import os
import re
import time

# the command line first: --help (or a ROUNDS that is not a number) is a usage line before anything runs
_ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_ap.add_argument("which", nargs="?", choices=["niid", "demo"], default="niid", help="the configuration (default niid)")
_ap.add_argument("rounds", nargs="?", type=int, default=3, help="rounds timed (default 3)")
_ap.add_argument("overrides", nargs="*", default=[], help="key=value config overrides")
ARGS = _ap.parse_args()
if ARGS.rounds < 1:     # 0 or -1 compiled both programs (a minute) and then timed no round
    _ap.error(f"rounds {ARGS.rounds}: allowed: 1 or more")

os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"      # compile time, not a cache read
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from experiments.niid_shape import NIID  # noqa: E402
from tallysim import config  # noqa: E402
from tallysim.build import build  # noqa: E402
from tallysim.programs import chunk_inputs, round_programs  # noqa: E402
from tallysim.sim import fed, mesh  # noqa: E402


def timed(fn):
    """(fn(), wall seconds, CPU seconds of this process)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


which, n = ARGS.which, ARGS.rounds
# demo.json beside this file (from the working directory: a ConfigError traceback outside the checkout's root)
base = config.load_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo.json")) if which == "demo" \
    else config.Config()
cfg = config.apply_overrides(base, ([] if which == "demo" else NIID) + ARGS.overrides)
b = build(cfg)
placement = mesh.plan(cfg.devices, len(b.seeds), cfg.peers)
data_c, values, k_init, k_rounds, _, _ = chunk_inputs(b, 0, len(b.seeds), placement)
print(f"{which}: {cfg.protocol.name}, {len(b.seeds)} lanes x {cfg.peers} peers, groups {b.ctx.spec.groups}, "
      f"warmup_epochs {cfg.warmup_epochs}, jax {jax.__version__} {jax.default_backend()}, load "
      f"{os.getloadavg()[0]:.1f}")

# The initial state, as programs.initial_state compiles it (no mesh here).
init_fn = jax.vmap(lambda k, d, v: b.lane_protocol(v).init(k, d), in_axes=(0, fed.SEED_AXES, 0))
init_low, iw, ic = timed(lambda: jax.jit(init_fn).lower(k_init, data_c, values))
init_comp, cw, cc = timed(init_low.compile)
print(f"init:  lower {iw:.2f} s ({ic:.2f} CPU s), compile {cw:.2f} s ({cc:.2f} CPU s); "
      f"{len(init_low.as_text()):,} chars")
state = init_comp(k_init, data_c, values)

single, _ = round_programs(b)
rs = jnp.arange(1, 2, dtype=jnp.int32)
lowered, t_lower, c_lower = timed(lambda: single.lower(state, data_c, k_rounds, rs, values))
compiled, t_compile, c_compile = timed(lowered.compile)
hlo = lowered.as_text()
opt = compiled.as_text()
count = lambda pat, text: len(re.findall(pat, text))
n_while, n_conv = count(r'\bwhile[(]', opt), count(r'convolution[(]', opt)
print(f"round: lower {t_lower:.2f} s ({c_lower:.2f} CPU s), compile {t_compile:.2f} s ({c_compile:.2f} CPU s); "
      f"lowered HLO: {count(r'stablehlo.while', hlo)} while, "
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
