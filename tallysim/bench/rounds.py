"""`tallysim bench --round`: a whole round of each protocol against local training alone.

The same peers, model, data and local steps for every protocol; only the exchange differs. `local`
(no exchange) is local training alone, so each protocol's ratio to it is what its probe exchange,
vote or average and merge cost on top. Rounds run as in `run.py`: one jitted `lax.scan` over rounds,
state donated, data on the device. Round 1 (distillation's warm-up) is compiled and run once before the
clock starts; the timed rounds are 2..R+1.

`compile_s` is compiling plus those untimed first rounds. `samples_per_s` counts private examples
(computed steps x batch), as the samples/s table does: a distillation step also trains a probe batch of
`distill.batch_size` examples (null: `batch_size`), so at equal cost per example its rate reads lower (docs/gpu.md).

Default on an accelerator: CNN in bfloat16 on synthetic CIFAR-shaped data (32x32x3, 10 classes),
P = 100 IID peers, 20 local steps of batch 32, 500 probes per round, bridge density 0.01 merging every
round. On a CPU: an MLP in float32, P = 10, 4 local steps (flags override either); all five protocols
took 268 s on a 2-core CPU, `--protocols local,fedavg,tally` 73 s.
"""
from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp

from tallysim import config
from tallysim.bench.throughput import device_name
from tallysim.sim import mesh
from tallysim import run as run_mod

PROTOCOLS = ("local", "tally", "softlabel", "bridge", "fedavg")


def overrides(model: str, peers: int, steps: int, batch: int, dtype: str, probes: int) -> list[str]:
    n = peers * steps * batch
    return [f"model.name={model}", f"model.dtype={dtype}", f"peers={peers}", f"local_steps={steps}",
            f"batch_size={batch}", f"probe.per_round={probes}", "partition.kind=iid", "devices=1",
            "data.name=synthetic", "data.input_shape=[32,32,3]", "data.num_classes=10",
            # the pool is carved out of the training set: keep every peer's shard `steps` batches long
            f"data.train_size={n + max(probes, 1000)}", f"probe.pool_size={max(probes, 1000)}",
            "data.test_size=1000", "bridge.density=0.01", "bridge.period=1", "warmup_epochs=0"]


def time_protocol(name: str, items: list[str], rounds: int, repeats: int = 3) -> dict:
    cfg = config.apply_overrides(config.Config(), items + [f"protocol.name={name}", f"rounds={rounds + 1}"])
    b = run_mod.build(cfg)
    placement = mesh.plan(1, len(b.seeds), cfg.peers)
    state = run_mod.initial_state(b, placement)
    data_c, values, _, k_rounds, _, _ = run_mod._chunk_inputs(b, 0, len(b.seeds), placement)
    single, scan = run_mod._round_programs(b)
    t0 = time.perf_counter()
    state, _ = single(state, data_c, k_rounds, jnp.arange(1, 2, dtype=jnp.int32), values)
    rs = jnp.arange(2, rounds + 2, dtype=jnp.int32)
    state, info = scan(state, data_c, k_rounds, rs, values)
    jax.block_until_ready((state, info))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        state, info = scan(state, data_c, k_rounds, rs, values)
        jax.block_until_ready((state, info))
        times.append(time.perf_counter() - t)
    sec = sorted(times)[len(times) // 2] / rounds
    steps = float(jnp.mean(info["steps_computed"]))     # per round, summed over peers
    return dict(protocol=name, round_s=sec, compile_s=round(compile_s, 2),
                samples_per_s=steps * cfg.batch_size / sec, steps_per_round=steps)


def run(model="cnn", peers=100, steps=20, batch=32, dtype="bfloat16", probes=500, rounds=5,
        protocols=PROTOCOLS, log=print, repeats: int = 3) -> list[dict]:
    items = overrides(model, peers, steps, batch, dtype, probes)
    device = device_name()          # `cpu`, not `cpu: cpu` (a CPU's device_kind is its platform)
    rows = []
    for name in protocols:
        r = time_protocol(name, items, rounds, repeats)
        r.update(model=model, peers=peers, steps=steps, batch=batch, dtype=dtype, probes=probes, device=device)
        rows.append(r)
        log(f"  {name}: {r['round_s'] * 1e3:.1f} ms/round, {r['samples_per_s']:,.0f} samples/s "
            f"(compile {r['compile_s']:.1f} s)")
    base = next((r["round_s"] for r in rows if r["protocol"] == "local"), None)
    for r in rows:
        r["vs_local"] = round(r["round_s"] / base, 3) if base else None
    log(table(rows))
    return rows


def table(rows: list[dict]) -> str:
    r0 = rows[0]
    lines = [f"round benchmark on {r0['device']}: {r0['model']} {r0['dtype']}, P={r0['peers']}, "
             f"{r0['steps']} steps of batch {r0['batch']}, {r0['probes']} probes",
             f"{'protocol':<12}{'ms/round':>10}{'samples/s':>14}{'vs local':>10}"]
    for r in rows:
        vs = f"{r['vs_local']:.2f}x" if r["vs_local"] else "-"
        lines.append(f"{r['protocol']:<12}{r['round_s'] * 1e3:>10.1f}{r['samples_per_s']:>14,.0f}{vs:>10}")
    return "\n".join(lines)


# An accelerator's default is the reference CNN; on a CPU that round takes minutes per protocol (and
# bfloat16 is emulated), so the CPU default is a small MLP round (measured on a 2-core CPU: 268 s for all
# five protocols, 73 s for local, fedavg and tally).
DEFAULTS = {"accelerator": dict(model="cnn", peers=100, steps=20, dtype="bfloat16"),
            "cpu": dict(model="mlp", peers=10, steps=4, dtype="float32")}


def resolve(args, backend: str) -> dict:
    """The flags given, the backend's default for the rest."""
    base = DEFAULTS["cpu" if backend == "cpu" else "accelerator"]
    peers = getattr(args, "peers", None)
    return dict(model=getattr(args, "model", None) or base["model"],
                peers=int(str(peers).split(",")[0]) if peers else base["peers"],
                steps=getattr(args, "steps", None) or base["steps"],
                dtype=(getattr(args, "dtype", None) or base["dtype"]).split(",")[0],
                protocols=tuple((getattr(args, "protocols", None) or ",".join(PROTOCOLS)).split(",")))


def main(args) -> int:
    opts = resolve(args, jax.default_backend())
    rows = run(batch=getattr(args, "batch", 32), log=lambda s: print(s, file=sys.stderr, flush=True), **opts)
    from tallysim.bench import write_json
    write_json(rows, getattr(args, "json", None))
    return 0
