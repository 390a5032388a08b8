"""Speed measurements: tools built on the simulator, not part of it (`tallysim bench`).

  throughput  the samples/s table: tallysim's local training vs a per-peer loop vs plain JAX (`bench`)
  ref         the plain-JAX yardstick (from benchmarks/vmap_ref.py); `python -m tallysim.bench.ref`
  sweep       one fixed sweep grouped vs one configuration at a time (`bench --sweep`)
  rounds      a whole round per protocol vs local training alone (`bench --round`)
  devices     the CNN round sharded over 1, 2, 4, 8 devices (`bench --devices`)
"""
from __future__ import annotations

import json
from typing import Optional


def write_json(obj, dest: Optional[str]) -> None:
    """Every bench mode's `--json`: "-" prints it on stdout, a path writes it there, None does nothing."""
    if not dest:
        return
    text = json.dumps(obj, indent=1)
    if dest == "-":
        print(text, flush=True)
    else:
        with open(dest, "w") as f:
            f.write(text + "\n")
