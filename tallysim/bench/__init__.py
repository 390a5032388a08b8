"""Speed measurements: tools built on the simulator, not part of it (`tallysim bench`).

  throughput  the samples/s table: tallysim's local training vs a per-peer loop vs plain JAX (`bench`);
              throughput_table writes it as text
  ref         the plain-JAX yardstick (from benchmarks/vmap_ref.py); `python -m tallysim.bench.ref`
              and the dense bound (one model, batch P x batch)
  flops       analytic FLOPs per training example of every model (the bench's TFLOP/s column)
  sweep       one fixed sweep grouped vs one configuration at a time (`bench --sweep`)
  rounds      a whole round per protocol vs local training alone (`bench --round`)
  devices     the CNN round sharded over 1, 2, 4, 8 devices (`bench --devices`)
  population  FedAvg over 10^4..10^6 clients: peak memory and s/round by client storage (`bench --population`)
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional


def device_name() -> str:
    """The device every bench row names (`cpu`, `gpu:NVIDIA H100 80GB HBM3`): JAX's first device."""
    import jax
    d = jax.devices()[0]
    kind = getattr(d, "device_kind", "") or ""
    return f"{d.platform}:{kind}" if kind and kind.lower() != d.platform else str(d.platform)


def check_json_dest(dest: Optional[str]) -> None:
    """`--json FILE` checked before anything is measured (a directory, a missing or unwritable parent
    would otherwise fail after minutes of timing): one line."""
    from tallysim.config import ConfigError
    if dest is not None and not str(dest).strip():     # `--json "$OUT"` with OUT unset wrote nothing, silently
        raise ConfigError("bench --json '' is empty; allowed: a file name, '-' (stdout), or --json alone (stdout)")
    if not dest or dest == "-":
        return
    p = Path(dest)
    if p.is_symlink():          # atomic.py never follows or replaces one: say so now, not after timing
        raise ConfigError(f"--json {dest} is a symbolic link; give the file itself (or '-' for stdout)")
    if p.is_dir():
        raise ConfigError(f"--json {dest} is a directory; give a file name, e.g. {p / 'bench.json'}")
    parent = p.parent
    if not parent.is_dir():
        raise ConfigError(f"--json {dest}: the directory {parent} does not exist; create it or give another file")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ConfigError(f"--json {dest} cannot be written; check its permissions or give another file")
    from tallysim import atomic
    atomic.refuse_results_file(p, "--json")       # a run's metrics.jsonl, a sweep's index: not a bench's


def write_json(obj, dest: Optional[str]) -> None:
    """Every bench mode's `--json`: "-" prints it on stdout, a path writes it there, None does nothing."""
    if not dest:
        return
    text = json.dumps(obj, indent=1)
    if dest == "-":
        print(text, flush=True)
    else:       # atomically: benchmarks/gpu.sh kills a part at its limit, maybe mid-write of a rewrite
        from tallysim import atomic
        atomic.write_text(Path(dest), text + "\n")
