"""`tallysim bench --devices 1,2,4,8`: samples/s of the CNN FedAvg round with its peers sharded over
1, 2, 4, 8 devices (mesh.py), measured between the first and the last round (compiling excluded).

On virtual CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=8) this shows correctness and
the partitioner's overhead, not speed-up: the virtual devices share the same cores.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import jax

from tallysim import config, run

BASE = ["data.name=synthetic", "data.input_shape=32x32x3", "data.train_size=4000", "data.test_size=500",
        "model.name=cnn", "protocol.name=fedavg", "partition.kind=iid", "local_steps=2", "batch_size=32",
        "eval_every=1", "probe.per_round=64", "probe.pool_size=100"]


def measure(devices: list, peers: int = 8, rounds: int = 3, extra=(), log=print) -> list[dict]:
    """One row per device count: samples/s of rounds 2..R (peer-examples: P x steps x batch)."""
    have = jax.device_count()
    rows = []
    for d in devices:
        if d > have:
            log(f"bench --devices: skipping {d} devices (JAX sees {have}; on a CPU set "
                f"XLA_FLAGS=--xla_force_host_platform_device_count={d})")
            continue
        cfg = config.apply_overrides(config.Config(), [*BASE, f"peers={peers}", f"rounds={rounds}",
                                                        f"devices={d}", *extra])
        with tempfile.TemporaryDirectory(prefix="tallysim-bench-devices-") as tmp:
            run.run(cfg, str(Path(tmp) / "r"), progress=False, checkpoint_every=0)
            lines = (Path(tmp) / "r" / "metrics.jsonl").read_text().splitlines()
            placement = json.loads((Path(tmp) / "r" / "config.json").read_text())["placement"]
        walls = [json.loads(line)["wall_s"] for line in lines]
        seconds = walls[-1] - walls[0]
        samples = peers * cfg.local_steps * cfg.batch_size * (rounds - 1)
        rows.append({"devices": d, "peers": peers, "model": "cnn", "samples_per_s": samples / max(seconds, 1e-9),
                     "round_s": seconds / (rounds - 1), "placement": placement,
                     "device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}"})
        log(f"  {d} device{'s' * (d != 1)}: {rows[-1]['samples_per_s']:,.0f} samples/s ({placement})")
    return rows


def table(rows: list[dict]) -> str:
    if not rows:
        return "bench --devices: nothing measured"
    lines = [f"CNN FedAvg round, {rows[0]['peers']} peers sharded over devices, on {rows[0]['device']}",
             f"{'devices':>8}{'samples/s':>12}{'round s':>10}{'vs 1':>8}"]
    base = rows[0]["samples_per_s"]
    for r in rows:
        lines.append(f"{r['devices']:>8}{r['samples_per_s']:>12,.0f}{r['round_s']:>10.3f}"
                     f"{r['samples_per_s'] / base:>7.2f}x")
    return "\n".join(lines)


def main(args) -> int:
    from tallysim.config import ConfigError
    try:
        devices = [int(v) for v in str(args.devices).split(",") if v.strip()]
    except ValueError:
        devices = []
    if not devices or min(devices) < 1:
        raise ConfigError(f"--devices {args.devices!r}: expected a comma list of positive counts, e.g. 1,2,4,8")
    have = jax.device_count()
    if min(devices) > have:             # every count would be skipped: nothing to measure
        raise ConfigError(f"--devices {args.devices}: JAX sees {have} device{'s' * (have != 1)}, so none of "
                          f"these counts can be measured; allowed: 1..{have} (on a CPU set "
                          f"XLA_FLAGS=--xla_force_host_platform_device_count={max(devices)})")
    rows = measure(devices, log=lambda s: print(s, file=sys.stderr, flush=True))
    print(table(rows), flush=True)
    from tallysim.bench import write_json
    write_json(rows, getattr(args, "json", None))
    return 0
