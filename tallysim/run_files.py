"""A run directory's config.json and partition.json (run.py writes them before the first round, and
partition.json again on --resume: it is a pure function of the build)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tallysim import atomic, code_identity, config, data_read
from tallysim.config import ConfigError
from tallysim.build import Built
from tallysim.checkpoint import MOVED
from tallysim.data.base import digest_kind
from tallysim.data.partition import convention
from tallysim.results import partition_file
from tallysim.results.metrics import CONFIG
from tallysim.sim import mesh, tasks


def write_run_files(b: Built, i: int, out_dir: Path, chunk: int) -> None:
    """config.json (with the devices' `placement` and the `code` that ran it) and partition.json of the group's configuration i."""
    cfg, lanes_i = b.cfgs[i], b.lanes_of(i)
    doc = config.to_dict(cfg)
    doc["placement"] = mesh.plan(1 if b.ctx.model_groups else cfg.devices, min(chunk, len(b.seeds)), cfg.peers).note
    doc["code"] = code_identity.identity()      # which code ran it (the checkpoint's copy: --resume compares)
    if doc.get("plugins"):      # and which plugin source: a sweep run again after the plugin's file was edited
        #                         skipped its finished runs in silence, their rows the old code's
        from tallysim.protocols import plugin_import
        doc["code"] = {**doc["code"], "plugins": {m: plugin_import.source_digest(m) for m in doc["plugins"]}}
    write_json(out_dir / CONFIG, doc, indent=2)
    write_partition(b, i, out_dir)


def write_partition(b: Built, i: int, out_dir: Path) -> None:
    """partition.json (and above partition_file.FULL_LISTS_MAX peers partition_clients.npz) of the
    group's configuration i."""
    cfg, lanes_i = b.cfgs[i], b.lanes_of(i)
    # the seed's fixed faulty set (faults.redraw=true: the warm-up's)
    faulty = [np.asarray(b.fed.faulty_P[j]) for j in lanes_i] if cfg.faults.kind != "none" else None
    head = {"dataset": b.dataset, **dataset_facts(b), "peers": cfg.peers,
            "partition": config.to_dict(cfg)["partition"], "convention": convention(cfg.partition)}
    # above partition_file.FULL_LISTS_MAX peers: a summary, the per-client arrays in partition_clients.npz
    partition_file.write(out_dir, head, [b.seeds[j] for j in lanes_i], [b.class_counts[j] for j in lanes_i],
                         faulty)


def dataset_facts(b: Built) -> dict:
    """What the run found in its data and built from it: `classes` (C, which sets tally's ceil(log2 C)
    bits per probe), `example_shape` (as the models see it: [h, w] images get a channel axis) and
    `model_params` (per peer; with model.groups, per group: a FedAvg-type message is this many values of
    comm.param_bits). config.json cannot say it: its
    data.num_classes and data.input_shape are `synthetic`'s fields, left at their defaults (10, 28x28x1)
    for a dataset read from files, whatever C and shape the files hold."""
    ctx = b.ctx
    params = ({g.name: int(g.num_params) for g in ctx.model_groups} if ctx.model_groups
              else int(ctx.num_params))
    facts = {"classes": int(ctx.spec.classes), "example_shape": [int(d) for d in ctx.spec.input_shape],
             "model_params": params, "data_digest": b.data_digest}
    if getattr(b, "data_read", None):       # the files data.path named, resolved, as read (data_read.py)
        facts[data_read.KEY] = b.data_read
    facts.update(majority_of(b))
    return facts


def majority_of(b: Built) -> dict:
    """`majority` of the run's test set, computed once per Built (each run directory's partition.json
    and run_recorders' mid-run dead-peer watch read it; the labels come to the host once)."""
    if b.majority_facts is None:
        b.majority_facts = majority(np.asarray(b.fed.y_test), tasks.of(b.ctx.spec))
    return b.majority_facts


def majority(y_test: np.ndarray, task) -> dict:
    """`majority_acc`: the test accuracy of always predicting the most frequent scored target of the
    evaluated test set (`majority_class`, its id), scored as the run's accuracy scores (on text: not
    PAD, OOV, BOS or EOS). The floor a model must pass to have learnt more than the targets'
    frequencies: on Shakespeare words every protocol's first rounds sit at the comma's 0.0898, and
    tally, softlabel and FedAvg read as tied there in the table and the plot with nothing saying so
    (userjourney7). {} without a scored target."""
    ok = np.asarray(task.scored(y_test))
    if not ok.any():
        return {}
    counts = np.bincount(y_test[ok].ravel())
    c = int(counts.argmax())
    return {"majority_acc": float(counts[c] / ok.sum()), "majority_class": c}


def check_same_data(b: Built, out_dir: Path, meta: dict) -> None:
    """--resume: the data must be what the run trained on before it stopped (data.digest: the
    checkpoint's `data_digest`, else partition.json's). A data file replaced under the same name since (or
    a relative data.path resumed from another directory) resumed on the other contents in silence: rows
    from two datasets in one metrics.jsonl. A run of a tallysim before 2026-12-06 records none: not checked. A
    changed data.path (meta[checkpoint.MOVED]: the resume's config differs in it alone) is allowed only when
    the new file gives the recorded digest: the same data, on a node where it lives at another path."""
    was = meta.get("data_digest") if isinstance(meta, dict) else None
    moved = meta.get(MOVED) if isinstance(meta, dict) else None
    if not (isinstance(was, str) and was):
        was = partition_file.data_digest(out_dir)
    if moved and was != b.data_digest:      # data.path changed: allowed only for the very same contents
        raise ConfigError(moved[0] + f" (the data at data.path={moved[2]} gives {b.data_digest}, not the "
                          f"{was} the run recorded)")
    if not isinstance(was, str):
        return
    # a digest of another kind (data.digest_kind: one written before generated data got its own) compares
    # nothing: not checked
    if was and was != b.data_digest and digest_kind(was) == digest_kind(b.data_digest):
        where = f"data.path={b.cfg.data.path}" if b.cfg.data.path else f"data.name={b.cfg.data.name}"
        raise ConfigError(f"--resume: the data ({where}) is not what {out_dir} trained on before it stopped "
                          f"(it recorded {was}, the data now gives {b.data_digest}): the file "
                          "changed since, or a relative path names another file from here; restore that data "
                          "and resume, or start again with --overwrite")


def write_json(path: Path, obj, indent=None) -> None:
    atomic.write_text(path, json.dumps(obj, indent=indent) + "\n")
