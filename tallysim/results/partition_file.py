"""partition.json, and beside it for a large population `partition_clients.npz`.

Up to `FULL_LISTS_MAX` peers partition.json lists every peer's shard size and class counts (and the
faulty peers), as it always has. Above that a JSON list of 10^6 clients' counts is tens of MB written
through 10^7 Python ints, so partition.json holds a summary (the shard sizes' quantiles, how many
classes the clients hold, the faulty peers' number) and names `partition_clients.npz`, where each
seed's per-client arrays are stored compressed. `read` gives either back with the same keys
(`class_counts`, `shard_sizes`, `faulty_peers`, as numpy arrays for the large ones), so a reader of
partition.json needs no second path. This module imports no JAX (results/metrics.py's rule), and
not run_dir.py, whose read_partition (public as metrics.read_partition) reads partition.json through it.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from tallysim import atomic
from tallysim.config import ConfigError

PARTITION = "partition.json"      # results/run_dir.py's PARTITION (metrics.PARTITION)
CLIENTS = "partition_clients.npz"
FULL_LISTS_MAX = 10_000          # peers up to which partition.json lists every peer (docs/population.md)
QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)


def summary(counts: np.ndarray) -> dict:
    """A seed's [P, C] class counts in a few numbers: shard sizes' mean and quantiles, and a histogram of
    how many classes each client holds (`classes_per_client[k]`: clients holding k classes)."""
    sizes = counts.sum(1)
    held = np.bincount((counts > 0).sum(1), minlength=counts.shape[1] + 1)
    return {"shard_sizes_mean": float(sizes.mean()) if len(sizes) else 0.0,
            "shard_sizes_total": int(sizes.sum()),
            "shard_sizes_quantiles": {f"{q:g}": float(np.quantile(sizes, q)) if len(sizes) else 0.0
                                      for q in QUANTILES},
            "classes_per_client": {str(k): int(v) for k, v in enumerate(held) if v}}


def write(out_dir: Path, head: dict, seeds: list, counts: list, faulty: list) -> None:
    """partition.json (`head`: dataset, peers, partition, convention) for one configuration's lanes:
    `seeds`, `counts` ([P, C] each) and `faulty` (None, or each lane's [P] bool faulty set)."""
    peers = head["peers"]
    full = peers <= FULL_LISTS_MAX
    each, arrays = [], {}
    for i, (seed, c) in enumerate(zip(seeds, counts)):
        e = {"seed": seed}
        bad = None if faulty is None else np.flatnonzero(faulty[i])
        if full:
            e.update(shard_sizes=c.sum(1).tolist(), class_counts=c.tolist())
            if bad is not None:
                e["faulty_peers"] = bad.tolist()
        else:
            e.update(summary(c))
            arrays[f"class_counts_{i}"] = c
            if bad is not None:
                e["faulty_peers_count"] = int(len(bad))
                arrays[f"faulty_peers_{i}"] = bad.astype(np.int32)
        each.append(e)
    part = dict(head, **each[0])
    if len(each) > 1:
        part["per_seed"] = each
    if not full:
        part["clients_file"] = CLIENTS
        part["clients_note"] = (f"more than {FULL_LISTS_MAX:,} peers: per-client arrays in {CLIENTS} "
                                "(class_counts_<i> [P, C], faulty_peers_<i>; i = the seed's index in per_seed)")
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic.write_atomic(out_dir / CLIENTS, buf.getvalue())
    atomic.write_text(out_dir / PARTITION, json.dumps(part) + "\n")


def read(run_dir, doc: dict) -> dict:
    """partition.json's `doc` with the per-client arrays of partition_clients.npz put back under the
    keys of the full form: `class_counts` and `shard_sizes` (and `faulty_peers` where the run had
    faults), for the first seed and in each `per_seed` entry. A doc without `clients_file` is returned
    as it is."""
    name = doc.get("clients_file") if isinstance(doc, dict) else None
    if not name:
        return doc
    path = Path(run_dir) / Path(str(name)).name          # beside partition.json, never elsewhere
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ConfigError(f"{Path(run_dir) / PARTITION} names {name} for its per-client arrays but "
                          f"{path} is missing; copy it with partition.json, or rerun") from None
    except Exception as e:   # noqa: BLE001 - any unreadable file is the same problem
        raise ConfigError(f"{path} is unreadable ({type(e).__name__}); it is corrupt or truncated") from None
    entries = doc.get("per_seed") or [doc]
    for i, e in enumerate(entries):
        c = arrays.get(f"class_counts_{i}")
        if c is None:
            raise ConfigError(f"{path} has no class_counts_{i} for seed index {i}; it belongs to another run")
        e["class_counts"], e["shard_sizes"] = c, c.sum(1)
        if f"faulty_peers_{i}" in arrays:
            e["faulty_peers"] = arrays[f"faulty_peers_{i}"]
    if doc.get("per_seed"):
        for k in ("class_counts", "shard_sizes", "faulty_peers"):
            if k in entries[0]:
                doc[k] = entries[0][k]
    return doc


def data_digest(run_dir) -> str | None:
    """The `data_digest` partition.json in run_dir records (data.digest: what the run trained on); None
    where none is recorded (a run before 2026-12-06) or the file cannot be read."""
    try:
        d = json.loads((Path(run_dir) / PARTITION).read_text()).get("data_digest")
    except (OSError, ValueError, AttributeError):
        return None
    return d if isinstance(d, str) and d else None


def majority(run_dir) -> dict:
    """partition.json's `majority_acc` and `majority_class` (run_files.majority: the test accuracy of always
    predicting the most frequent test target, and that target); {} where the run recorded none (before
    2026-12-06) or the file cannot be read."""
    try:
        part = json.loads((Path(run_dir) / PARTITION).read_text())
    except (OSError, ValueError):
        return {}
    acc = part.get("majority_acc") if isinstance(part, dict) else None
    if isinstance(acc, bool) or not isinstance(acc, (int, float)) or not 0 <= acc <= 1:
        # an accuracy or nothing: a hand-edited 5 (or 60, a percentage) put every run "at the floor" (the
        # summary's note, `table`, Results) and hid its dead peers (every peer under it: the floor note's case)
        return {}
    return {k: part[k] for k in ("majority_acc", "majority_class") if k in part}


def draw_floor(ax, dirs: list, metric: str) -> None:
    """A dashed line at what always predicting the most frequent test target scores (partition.json's
    majority_acc), where every run recorded the same one (one test set): on Shakespeare words tally sat on
    the comma's 0.0898 at 10^4 bits and FedAvg on it at 10^8, which read as tally winning for free. `tallysim plot` and `tallysim pareto` (the figures' panels too)
    draw it."""
    if not (metric == "auto" or metric.startswith("acc_")) or metric.endswith("_std") or not dirs:
        return
    floors = {majority(d).get("majority_acc") for d in dirs}
    if len(floors) == 1 and None not in floors:
        floor = floors.pop()
        ax.axhline(floor, color="0.5", linestyle="--", linewidth=1,
                   label=f"most frequent test target alone ({floor:.4f})")
