"""Build a run from a config, compile its round once, loop over rounds, log one JSON line per eval.

Output directory: config.json (fully resolved), partition.json (per-peer class counts),
metrics.jsonl (one row per evaluation, keys as in PROTOCOLS.md), and on failure error.txt.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from tallysim import comm, config, data, fed
from tallysim.config import Config, ConfigError
from tallysim.evaluate import evaluate
from tallysim.models import make_model, param_count
from tallysim.protocols import Context, Protocol, make as make_protocol

PROBE_KEYS = ("consensus_acc", "vote_acc", "softavg_acc", "agreement", "wrong_confidence")


class NonFiniteLoss(RuntimeError):
    pass


@dataclass
class Built:
    cfg: Config
    ctx: Context
    protocol: Protocol
    fed: fed.FedData
    class_counts: np.ndarray
    dataset: str


def build(cfg: Config) -> Built:
    """Validate, load data, partition and place everything on the device. Compiles nothing."""
    cfg = config.validate(cfg)
    ds = data.load(cfg.data, cfg.seed)
    n = len(ds.y_train)
    if cfg.probe.source:
        pool_ds = data.load(replace(cfg.data, name=cfg.probe.source, path=None), cfg.seed)
        if pool_ds.x_train.shape[1:] != ds.x_train.shape[1:]:
            raise ConfigError(f"probe.source={cfg.probe.source!r} has inputs of shape "
                              f"{pool_ds.x_train.shape[1:]} but {cfg.data.name} has {ds.x_train.shape[1:]}")
        size = min(cfg.probe.pool_size or config.default_pool_size(len(pool_ds.y_train)), len(pool_ds.y_train))
        x_pool, y_pool = pool_ds.x_train[:size], pool_ds.y_train[:size]
        rest = np.arange(n)
    else:
        size = cfg.probe.pool_size or config.default_pool_size(n)
        if size >= n:
            raise ConfigError(f"probe.pool_size={size} leaves no training data ({cfg.data.name} has {n} "
                              f"training examples); allowed: 1..{n - 1}")
        pool_idx, rest = data.split_probe_pool(n, size, cfg.seed)
        x_pool, y_pool = ds.x_train[pool_idx], ds.y_train[pool_idx]
    config.validate_with_data(cfg, ds.num_classes, len(rest), len(y_pool))
    x_train, y_train = ds.x_train[rest], ds.y_train[rest]
    parts = data.partition(y_train, cfg.peers, cfg.partition, ds.num_classes, cfg.seed)
    fdata, spec = fed.build(x_train, y_train, parts, x_pool, y_pool, ds.x_test, ds.y_test,
                            ds.num_classes, cfg)
    model = make_model(cfg.model, ds.num_classes)
    dummy = jnp.zeros((1,) + spec.input_shape, jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), dummy)
    ctx = Context(cfg=cfg, spec=spec, model=model, num_params=param_count(shapes))
    return Built(cfg, ctx, make_protocol(ctx), fdata,
                 data.class_counts(y_train, parts, ds.num_classes), ds.name)


def prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"output directory {out} is not empty; pass --overwrite to replace it "
                              "or choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _to_host(tree) -> dict:
    return {k: (None if v is None else np.asarray(v).tolist()) for k, v in jax.device_get(tree).items()}


def eval_row(b: Built, state, r: int, ledger: comm.Ledger, info: dict, t0: float) -> dict:
    ev = _to_host(evaluate(b.ctx.model.apply, state.params, state.server, b.fed.x_test, b.fed.y_test,
                           b.ctx.spec.classes))
    acc = np.asarray(ev["acc_P"])
    row = {"round": r, **ledger.row(),
           "acc_mean": float(acc.mean()), "acc_min": float(acc.min()), "acc_max": float(acc.max()),
           "acc_global": ev["acc_global"], "acc_ensemble": ev["acc_ensemble"],
           "train_loss": info["train_loss"]}
    for k in PROBE_KEYS:
        row[k] = info.get(k)
    row["wall_s"] = round(time.perf_counter() - t0, 3)
    return row


def run(cfg: Config, out: Optional[str] = None, overwrite: bool = False, progress: bool = True,
        built: Optional[Built] = None) -> dict:
    """Run one configuration end to end; returns the last metrics row (plus 'out')."""
    b = built or build(cfg)
    cfg = b.cfg
    out_dir = Path(out) if out else None
    if out_dir:
        prepare_out(out_dir, overwrite)
        (out_dir / "config.json").write_text(json.dumps(config.to_dict(cfg), indent=2) + "\n")
        (out_dir / "partition.json").write_text(json.dumps({
            "dataset": b.dataset, "peers": cfg.peers, "partition": config.to_dict(cfg)["partition"],
            "shard_sizes": b.class_counts.sum(1).tolist(),
            "class_counts": b.class_counts.tolist()}) + "\n")
    t0 = time.perf_counter()
    root = jax.random.PRNGKey(cfg.seed)
    k_init, k_rounds = jax.random.split(root)
    state = jax.jit(b.protocol.init)(k_init, b.fed)
    round_fn = jax.jit(b.protocol.round, donate_argnums=0)
    ledger = comm.Ledger(cfg.peers)
    rows = []
    bar = _progress(cfg.rounds, progress)
    metrics = open(out_dir / "metrics.jsonl", "w") if out_dir else None
    try:
        for r in range(1, cfg.rounds + 1):
            state, info = round_fn(state, b.fed, k_rounds, jnp.asarray(r, jnp.int32))
            info = _to_host(info)
            ledger.add(b.protocol.cost(info))
            if not math.isfinite(info["train_loss"]):
                raise NonFiniteLoss(f"round {r}: the training loss is {info['train_loss']}; the run "
                                    f"stopped (try a smaller optim.lr, now {cfg.optim.lr})")
            if r % cfg.eval_every == 0 or r == cfg.rounds:
                row = eval_row(b, state, r, ledger, info, t0)
                rows.append(row)
                if metrics:
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                if bar:
                    bar.set_postfix(acc=f"{row['acc_mean']:.3f}", MB_per_peer=f"{ledger.bits_per_peer / 8e6:.3g}")
            if bar:
                bar.update(1)
    except NonFiniteLoss as e:
        if out_dir:
            (out_dir / "error.txt").write_text(str(e) + "\n")
        raise
    finally:
        if metrics:
            metrics.close()
        if bar:
            bar.close()
    last = dict(rows[-1]) if rows else {}
    last["out"] = str(out_dir) if out_dir else None
    return last


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc="round", unit="rd", file=sys.stderr, dynamic_ncols=True)


def summary_line(cfg: Config, last: dict) -> str:
    acc = last.get("acc_global") if last.get("acc_global") is not None else last.get("acc_mean")
    return (f"{cfg.protocol.name}: {cfg.rounds} rounds, {cfg.peers} peers on {cfg.data.name} -> "
            f"accuracy {acc:.4f} (peer mean {last['acc_mean']:.4f}, ensemble {last['acc_ensemble']:.4f}), "
            f"{last['bits_per_peer'] / 8e6:.4g} MB per peer, {last['wall_s']:.1f} s"
            + (f"; results in {last['out']}" if last.get("out") else ""))
