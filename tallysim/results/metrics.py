"""The metrics schema: what a run directory holds, how it is read, and the numbers read from it.

A `tallysim run --out DIR` directory (run.py) holds
    config.json      the fully resolved config (plus `placement`, and `resumed` after a resume)
    partition.json   per-peer class counts of the first seed (`per_seed`: every seed's); above 10,000
                     peers a summary, the per-peer arrays in partition_clients.npz beside it
    metrics.jsonl    one row per evaluation (keys in docs/protocols.md); with several seeds the mean
                     under the usual keys, `<key>_std` and `per_seed` lists (`aggregate`)
    error.txt        the run failed
and, in a sweep (sweep.py), `done.json` once the run returned; the sweep directory's `sweep.json`
indexes its runs ({..., "runs": [{name, overrides, dir, status, [summary|error]}]}; a failed run whose
loss went non-finite also has "diverged": true).

The headline accuracy of a metrics row is the server model's (acc_global) where there is one, else
the mean of the peers' own models (acc_mean); a run's is the final row's or the best over its rows.

Every reader checks what the plots rely on, so a corrupt or hand-edited file fails in one line naming
the file (and the line) instead of as a traceback from inside matplotlib. This module imports nothing
above it (run, sweep, cli import it) and no JAX; matplotlib only inside `pyplot`/`save_figure`.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from tallysim.config import ConfigError
from tallysim.results import partition_file

CONFIG = "config.json"
PARTITION = "partition.json"
PARTITION_CLIENTS = partition_file.CLIENTS      # beside partition.json above 10,000 peers
METRICS = "metrics.jsonl"
ERROR = "error.txt"
DONE = "done.json"
SWEEP = "sweep.json"

HEADLINE = ("acc_global", "acc_mean")                     # the server model, else the peers' mean
HONEST = ("acc_global", "acc_mean_honest", "acc_mean")    # ... else the honest peers' mean (faults)
WHICH = ("final", "best")
DPI = 130


# ----------------------------------------------------------------------------- reading

def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text (corrupt?); it should hold JSON written by tallysim") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None


def _json(path: Path):
    try:
        return json.loads(_text(path))
    except ValueError as e:
        raise ConfigError(f"{path} is not valid JSON ({str(e)[:80]}); it is corrupt or truncated") from None


def read_config(run_dir) -> dict:
    """A run directory's config.json as a dict ({} when it has none)."""
    path = Path(run_dir) / CONFIG
    if not path.exists():
        return {}
    cfg = _json(path)
    proto = cfg.get("protocol", {}) if isinstance(cfg, dict) else None
    if not isinstance(proto, dict) or not isinstance(proto.get("name", ""), str):
        raise ConfigError(f"{path} is not a tallysim config (expected an object with protocol.name)")
    if "rounds" in cfg and not (isinstance(cfg["rounds"], int) and not isinstance(cfg["rounds"], bool)):
        raise ConfigError(f"{path}: rounds={cfg['rounds']!r} must be an integer")
    return cfg


def _metrics_file(run_dir) -> Path:
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise ConfigError(f"{Path(run_dir)} has no {METRICS}; pass directories written by `tallysim run --out`")
    return path


def read_rows(run_dir) -> list[dict]:
    """A run directory's metrics rows, each checked (bits_per_peer and acc_mean finite numbers, acc_mean
    null only beside a number in acc_global, round an integer, acc_global a number or null)."""
    metrics = _metrics_file(run_dir)
    rows = []
    for i, line in enumerate(_text(metrics).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise ConfigError(f"{metrics} line {i} is not valid JSON (corrupt or torn by a crash); "
                              "remove that line or rerun") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{metrics} line {i} is not a JSON object of metrics")
        for key in ("bits_per_peer", "acc_mean"):
            if key == "acc_mean" and row.get(key) is None and _number(row.get("acc_global")):
                continue        # client_storage=auto: no client model is kept, the server's is evaluated
            if not _number(row.get(key)) or not math.isfinite(row[key]):
                raise ConfigError(f"{metrics} line {i}: {key}={row.get(key)!r} must be a finite number")
        if not isinstance(row.get("round", 0), int) or isinstance(row.get("round"), bool):
            raise ConfigError(f"{metrics} line {i}: round={row['round']!r} must be an integer")
        if row.get("acc_global") is not None and not _number(row["acc_global"]):
            raise ConfigError(f"{metrics} line {i}: acc_global={row['acc_global']!r} must be a number or null")
        rows.append(row)
    return rows


def read_run(run_dir) -> tuple[dict, list[dict]]:
    """(config dict, metric rows) of one run directory; ConfigError naming the file when corrupt."""
    _metrics_file(run_dir)                   # a directory that is no run fails on that first
    cfg = read_config(run_dir)
    return cfg, read_rows(run_dir)


def read_partition(run_dir) -> dict:
    """A run directory's partition.json (dataset, peers, class_counts [P][C], ...); above 10,000 peers
    with its per-client arrays read back from partition_clients.npz (results/partition_file.py)."""
    return partition_file.read(run_dir, _json(Path(run_dir) / PARTITION))


def read_sweep(sweep_dir) -> dict:
    """A sweep directory's sweep.json: the sweep's meta fields and `runs`, one record per run."""
    doc = _json(Path(sweep_dir) / SWEEP)
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise ConfigError(f"{Path(sweep_dir) / SWEEP} is not a tallysim sweep index (expected an object "
                          "with a list `runs`)")
    return doc


def find_runs(dirs: Iterable) -> list[tuple[Path, str]]:
    """(run directory, label) for every directory with metrics.jsonl at or below each of dirs.
    The label is the path relative to the given directory (its own name if it is a run)."""
    found, seen = [], set()
    for root in dirs:
        root = Path(root)
        if not root.is_dir():
            raise ConfigError(f"{root} is not a directory; pass run directories or directories above them")
        if (root / METRICS).exists():
            hits = [(root, root.resolve().name)]
        else:
            hits = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                if METRICS in filenames:
                    d = Path(dirpath)
                    hits.append((d, d.relative_to(root).as_posix()))
        for d, label in hits:
            key = d.resolve()
            if key not in seen:
                seen.add(key)
                found.append((d, label))
    labels = [label for _, label in found]
    if len(set(labels)) < len(labels):   # the same sweep names under several roots: keep them apart
        found = [(d, f"{d.parent.name}/{label}" if labels.count(label) > 1 else label) for d, label in found]
    return found


def panel_of(run_dir) -> str:
    """The figure panel a run directory belongs to: its name up to the first "__"."""
    return Path(run_dir).name.split("__")[0]


def columns(rows: list[dict]) -> list[str]:
    """Numeric columns of metric rows (what --metric may name)."""
    return sorted({k for r in rows for k, v in r.items() if _number(v) and k != "round"})


# ----------------------------------------------------------------------------- headline accuracy

def headline_key(row: dict, keys: tuple = HEADLINE) -> str:
    """The first of `keys` the row has a value for (the last one when it has none)."""
    for k in keys[:-1]:
        if row.get(k) is not None:
            return k
    return keys[-1]


def accuracy(row: dict, keys: tuple = HEADLINE) -> float:
    """The row's headline accuracy: acc_global where there is a server model, else acc_mean."""
    return row[headline_key(row, keys)]


def accuracy_std(row: dict, keys: tuple = HEADLINE) -> tuple[float, float]:
    """(headline accuracy, its std over seeds; 0.0 for one seed)."""
    k = headline_key(row, keys)
    return row[k], row.get(k + "_std", 0.0)


def metric(row: dict, name: str = "auto"):
    """The row's value of column `name` (`auto`: the headline accuracy; `ppl`: the headline model's
    perplexity, next-token runs); None when not a number."""
    if name == "ppl" and "ppl" not in row:
        v = text_headline(row)["ppl"]
    else:
        v = row.get(headline_key(row)) if name == "auto" else row.get(name)
    return v if _number(v) else None


def final_best(rows: list[dict], name: str = "auto") -> tuple[Optional[float], Optional[float]]:
    """A run's (final, best) value of a metric: the last row's, and the largest over its rows (NaN
    and missing values left out); None where there is none."""
    values = [float(v) for v in (metric(r, name) for r in rows) if v is not None and not math.isnan(v)]
    last = metric(rows[-1], name) if rows else None
    final = None if last is None or math.isnan(last) else float(last)
    return final, (max(values) if values else None)


def run_accuracy(rows: list[dict], which: str = "final", name: str = "auto") -> Optional[float]:
    """A run's headline number: the final (`which="final"`) or the best (`"best"`) value of a metric."""
    return final_best(rows, name)[WHICH.index(check_which(which))]


def check_which(which: str) -> str:
    if which not in WHICH:
        raise ConfigError(f"--which={which!r} is not known; allowed: {', '.join(WHICH)}")
    return which


def bits_to_target(rows: list[dict], target: float):
    """Cumulative bits per peer at the first evaluation reaching `target` accuracy (None if never)."""
    for r in rows:
        if accuracy(r) >= target:
            return r["bits_per_peer"]
    return None


# ----------------------------------------------------------------------------- seeds and summary

def aggregate(rows: list[dict], seeds: list) -> dict:
    """One metrics row from per-seed rows: the mean under the usual keys, `<key>_std`, `per_seed`
    (wall_s: the largest; a key that is null for some seed: null; a list, acc_peers: the element-wise
    mean, no std)."""
    if len(rows) == 1:
        return rows[0]
    out, per_seed = {"round": rows[0]["round"], "seeds": seeds}, {}
    for k in rows[0]:
        if k == "round":
            continue
        vals = [r[k] for r in rows]
        if k == "wall_s":
            out[k] = max(vals)
        elif any(isinstance(v, list) for v in vals):    # acc_peers: peer i's mean over seeds; each seed's list kept
            out[k] = [round(float(x), PEER_PLACES) for x in np.mean(np.asarray(vals, float), axis=0)]
            per_seed[k] = vals
        elif any(v is None for v in vals):
            out[k] = None
        else:
            out[k] = float(np.mean(vals))
            out[k + "_std"] = float(np.std(vals))
            per_seed[k] = vals
    out["per_seed"] = per_seed
    return out


def summary_line(cfg, last: dict) -> str:
    """One line for a finished run: `cfg` a Config (protocol.name, rounds, peers, seeds, data.name), `last`
    its last metrics row (plus `out`, the run directory, if it was written)."""
    k = headline_key(last)
    acc, std = last.get(k), last.get(k + "_std")
    seeds = f" x {cfg.seeds} seeds" if cfg.seeds > 1 else ""
    ppl = text_headline(last)["ppl"]        # next-token runs: the headline model's perplexity
    return (f"{cfg.protocol.name}: {cfg.rounds} rounds, {cfg.peers} peers{seeds} on {cfg.data.name} -> "
            f"accuracy {acc:.4f}" + (f" +- {std:.4f}" if std is not None else "")
            + (f" (peer mean {last['acc_mean']:.4f}, ensemble {last['acc_ensemble']:.4f})"
               if last.get("acc_mean") is not None else " (server model; no client model is kept)") + ", "
            + ("" if ppl is None else f"perplexity {ppl:.4g}, ") +
            f"{last['bits_per_peer'] / 8e6:.4g} MB per peer, {last['wall_s']:.1f} s"
            + (f"; results in {last['out']}" if last.get("out") else ""))


# ----------------------------------------------------------------------------- figures

def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def check_figure_out(out) -> Path:
    """A figure file: a supported image extension, not a directory, not under a file."""
    from matplotlib.backend_bases import FigureCanvasBase
    p = Path(out)
    allowed = sorted(FigureCanvasBase.get_supported_filetypes())
    if p.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a figure file such as {p / 'figure.png'}")
    if p.suffix.lower().lstrip(".") not in allowed:
        raise ConfigError(f"--out {out}: {p.suffix or 'no extension'} is not an image format; allowed: "
                          f"{', '.join('.' + a for a in allowed)}")
    for parent in p.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"--out {out}: {parent} is a file, not a directory")
    return p


def save_figure(fig, *paths, dpi: int = DPI, tight: bool = True) -> list[str]:
    """Lay the figure out, write it to every path (parents created) and close it; returns the paths."""
    if tight:
        fig.tight_layout()
    for p in paths:
        Path(p).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=dpi)
    pyplot().close(fig)
    return [str(p) for p in paths]


# ----------------------------------------------------------------------------- writing a row
# (run.py writes metrics.jsonl with these rows; the readers above read them)

PROBE_KEYS = ("consensus_acc", "vote_acc", "softavg_acc", "agreement", "wrong_confidence", "vote_acc_honest",
              "softavg_acc_honest")
# Scalars a protocol's round reports of itself (null in the rows of protocols that do not compute them):
# the share of the round's probes kept after abstention (tally, bridge), whether bridge merged this round
# and the merged update's non-zeros, FedDF's last server distillation loss. The row holds the
# evaluation round's value, as train_loss does.
ROUND_KEYS = {"kept": float, "merged": int, "nnz": int, "feddf_loss": float}


PEER_PLACES = 4


def lane_row(ev: dict, info: dict, led, j: int, r: int, t0: float, own_keys: dict = None,
             groups: tuple = ()) -> dict:
    """The metrics row of lane j (an index into the chunk) at evaluation round r. `own_keys`: the
    protocol's own row scalars (Protocol.row_keys, name -> int or float), after ROUND_KEYS.
    `groups` (model.groups): (name, lo, hi, active, all active) per group, for its GROUP_KEYS."""
    acc = ev["acc_P"][j]
    some = acc.size > 0         # none under client_storage=auto (a stateless protocol keeps no client model)
    row = {"round": r, **led.row(),
           "acc_mean": float(acc.mean()) if some else None, "acc_min": float(acc.min()) if some else None,
           "acc_max": float(acc.max()) if some else None,
           # every peer's own test accuracy, peer order, rounded to 4 places (within 5e-5, far below a
           # seed's spread; 7 characters a peer keep a 1000-peer row near 8 kB)
           "acc_peers": [round(float(a), PEER_PLACES) for a in acc],
           "acc_global": None if ev["acc_global"] is None else float(ev["acc_global"][j]),
           "acc_ensemble": float(ev["acc_ensemble"][j]) if some else None,
           "eval_peers": int(acc.size),      # the client models evaluated (eval_peers, eval_sample)
           "train_loss": float(info["train_loss"][j])}
    # faults.py: faulty peers this round, and the mean test accuracy of the others (null if none)
    row["faulty"] = int(info["faulty"][j]) if "faulty" in info else 0
    honest = np.ones(acc.shape, bool)
    if "faulty_P" in info:          # of the peers evaluated: 0..N-1, or (eval_sample=random) the lane's sample
        pick = ev.get("eval_idx")
        honest = ~np.asarray(info["faulty_P"][j], bool)
        honest = honest[pick[j]] if pick is not None else honest[:acc.shape[0]]
    row["acc_mean_honest"] = float(acc[honest].mean()) if some and honest.any() else None
    for k in PROBE_KEYS:
        row[k] = float(info[k][j]) if k in info and math.isfinite(info[k][j]) else None
    for k, cast in {**ROUND_KEYS, **(own_keys or {})}.items():
        row[k] = cast(info[k][j]) if k in info and math.isfinite(info[k][j]) else None
    for name, lo, hi, active, total in groups:
        row.update(group_row(name, acc[lo:hi], led, hi - lo, active, total))
    row.update(text_row(ev, j))
    row["wall_s"] = round(time.perf_counter() - t0, 3)
    return row


# model.groups: a row's keys per group, `<key>@<group name>` (docs/groups.md)
GROUP_KEYS = ("acc_mean", "acc_min", "acc_max", "bits_up", "bits_down", "bits_per_peer")


def group_row(name: str, acc, led, peers: int, active: int, total: int) -> dict:
    """One group's keys. Every active peer of a prediction-exchanging protocol sends and receives the
    same bits in a round (groups refuse dropout), so the group's share of the ledger's totals is exactly
    active / all active (a Python int: each round's total is a multiple of all active)."""
    up, down = led.up * active // total, led.down * active // total
    return {f"acc_mean@{name}": float(acc.mean()), f"acc_min@{name}": float(acc.min()),
            f"acc_max@{name}": float(acc.max()), f"bits_up@{name}": up, f"bits_down@{name}": down,
            f"bits_per_peer@{name}": (up + down) / peers}


CLIENT_PERCENTILE = 10


def client_stats(hits_K, scored_K, keep_K=None) -> tuple:
    """(mean, 10th percentile) over clients of per-client accuracy hits_k / scored_k, each client
    weighing the same, over the clients with a scored test target (and keep_K); (None, None) if none.
    The percentile is numpy's default (linear interpolation between the closest ranks)."""
    hits, scored = np.asarray(hits_K, float), np.asarray(scored_K, float)
    ok = scored > 0 if keep_K is None else (scored > 0) & np.asarray(keep_K, bool)
    if not ok.any():
        return None, None
    acc = hits[ok] / scored[ok]
    return float(acc.mean()), float(np.percentile(acc, CLIENT_PERCENTILE))


# The text columns beside a row's headline accuracy: the same model's perplexity and per-client
# accuracy (the server model's on every client, else each peer's own on its own client).
TEXT_HEADLINE = {"acc_global": ("ppl_global", "acc_client_mean", "acc_client_p10"),
                 "acc_mean": ("ppl_mean", "acc_own_mean", "acc_own_p10")}


def text_headline(row: dict) -> dict:
    """{ppl, client_mean, client_p10} of the row's headline model (None where the run has none)."""
    keys = TEXT_HEADLINE.get(headline_key(row), (None, None, None))
    return {name: row.get(k) if k else None for name, k in zip(("ppl", "client_mean", "client_p10"), keys)}


def text_row(ev: dict, j: int) -> dict:
    """The row keys evaluate() adds on next-token tasks (perplexity) and on datasets with clients
    (per-client accuracy); {} for the others, whose rows are as before."""
    row = {}
    if ev.get("ppl_P") is not None:
        ppl = np.asarray(ev["ppl_P"][j], float)
        row["ppl_mean"] = float(ppl.mean()) if ppl.size else None     # none: client_storage=auto
        row["ppl_global"] = None if ev.get("ppl_global") is None else float(ev["ppl_global"][j])
    if ev.get("client_scored_K") is not None:
        scored = ev["client_scored_K"][j]
        glob = ev.get("client_global_K")
        row["acc_client_mean"], row["acc_client_p10"] = (
            (None, None) if glob is None else client_stats(glob[j], scored))
        row["acc_own_mean"], row["acc_own_p10"] = client_stats(ev["client_own_K"][j], scored,
                                                               ev["client_held_K"][j])
    return row
