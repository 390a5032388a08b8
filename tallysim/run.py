"""Build a run from a config, compile its round once, loop over rounds, log one JSON line per eval.

Seeds are a leading axis vmapped around the peer axis: `seeds=N` runs seeds seed..seed+N-1 as one
compiled program, each with its own partition, probe pool, init and keys (the dataset itself is fixed
by `data.seed`). When the seed batch does not fit in memory it is split into chunks that run one
after another. The same axis carries a sweep's grouped configurations (`run_group`, lanes.py): one
lane per (configuration, seed). The rounds between two evaluations run as one `lax.scan`. With
several devices a chunk's lanes or peers are sharded over a mesh (mesh.py).

Output directory: config.json (fully resolved), partition.json (per-peer class counts per seed),
metrics.jsonl (one row per evaluation, keys as in docs/protocols.md; with several seeds the mean, a
`<key>_std` and `per_seed` lists), and on failure error.txt.
"""
from __future__ import annotations

import functools
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from tallysim import atomic, checkpoint, config, data, outdir, protocols
from tallysim.sim import comm, faults, fed, lanes, local, mesh
from tallysim.config import Config, ConfigError
from tallysim.data.partition import convention
from tallysim.sim import exchange
from tallysim.sim.evaluate import eval_batch, evaluate
from tallysim.sim.models import make_model, param_count
from tallysim.protocols import Context, Protocol, make as make_protocol
from tallysim.results.metrics import CONFIG, ERROR, METRICS, PARTITION, aggregate

PROBE_KEYS = ("consensus_acc", "vote_acc", "softavg_acc", "agreement", "wrong_confidence", "vote_acc_honest",
              "softavg_acc_honest")
# Scalars a protocol's round reports of itself (null in the rows of protocols that do not compute them):
# the share of the round's probes kept after abstention (tally, bridge), whether bridge merged this round
# and the merged update's non-zeros, FedDF's last server distillation loss. The row holds the
# evaluation round's value, as train_loss does.
ROUND_KEYS = {"kept": float, "merged": int, "nnz": int, "feddf_loss": float}


class NonFiniteLoss(RuntimeError):
    pass


@dataclass
class Built:
    """A group of configurations that share one compiled program (lanes.py), ready to run.

    Lanes are (configuration, seed) pairs, configuration by configuration; `cfg` is the first
    configuration, whose static fields every lane shares."""
    cfg: Config
    ctx: Context
    protocol: Protocol          # from `cfg`, constants only: bits, and for driving a protocol directly
    fed: fed.FedData            # per-lane fields carry a leading lane axis
    seeds: list                 # per lane
    class_counts: list          # per lane: [P, C]
    dataset: str
    cfgs: list = None           # the group's configurations (None: [cfg])
    lane_cfg: list = None       # per lane: its index into cfgs (None: all 0)
    values: dict = None         # traced key -> float32 [Z] per-lane values (lanes.lane_values)
    choices: tuple = ()         # the varying traced fields' distinct values (lanes.choices)
    costs: dict = field(default_factory=dict, repr=False)   # cost_protocol's cache: config index -> Protocol

    def __post_init__(self):
        self.cfgs = self.cfgs or [self.cfg]
        self.lane_cfg = self.lane_cfg if self.lane_cfg is not None else [0] * len(self.seeds)
        self.values = self.values or {}

    @property
    def one(self) -> fed.FedData:
        """The first lane's data without the lane axis (for driving a protocol directly)."""
        return fed.seed_slice(self.fed, 0)

    def lane_protocol(self, values: dict) -> Protocol:
        """The protocol with the group's varying fields set to one lane's (traced) values."""
        if not values:
            return self.protocol
        in_config, explicit = lanes.split(values)
        return make_protocol(replace(self.ctx, cfg=lanes.with_values(self.ctx.cfg, in_config), hparams=explicit,
                                     choices=self.choices))

    def cost_protocol(self, i: int) -> Protocol:
        """Configuration i's own protocol, built from its constants, for its exact bits (the bridge's k
        depends on the lane's density; whatever else a cost reads stays each configuration's own)."""
        if i == 0:
            return self.protocol
        if i not in self.costs:
            self.costs[i] = make_protocol(replace(self.ctx, cfg=self.cfgs[i]))
        return self.costs[i]

    def lanes_of(self, i: int) -> list:
        return [j for j, c in enumerate(self.lane_cfg) if c == i]


def _pool_and_rest(cfg: Config, n: int, n_source: int, seed: int):
    """Probe-pool indices and the remaining training indices of one seed."""
    if cfg.probe.source:
        size = min(cfg.probe.pool_size or config.default_pool_size(n_source), n_source)
        return n + np.arange(size), np.arange(n)       # source examples are appended after train
    size = cfg.probe.pool_size or config.default_pool_size(n)
    if size >= n:
        raise ConfigError(f"probe.pool_size={size} leaves no training data ({cfg.data.name} has {n} "
                          f"training examples); allowed: 1..{n - 1}")
    return data.split_probe_pool(n, size, seed)


def build(cfg: Config) -> Built:
    """Validate, load data, partition every seed and place it all on the device. Compiles nothing."""
    return build_group([cfg])


def build_group(cfgs: list[Config]) -> Built:
    """`build` for configurations that differ only in per-lane fields (lanes.signature): one lane per
    (configuration, seed), each with its own partition, probe pool, init and keys."""
    cfgs = [config.validate(c) for c in cfgs]
    cfg = cfgs[0]
    sig = lanes.signature(cfg)
    for c in cfgs[1:]:
        if lanes.signature(c) != sig:
            raise ValueError("build_group: these configurations differ in a static field; group them "
                             "with lanes.group first")
    ds = data.load(cfg.data, cfg.data.seed)
    x_all, y_all, n = ds.x_train, ds.y_train, len(ds.y_train)
    n_source = 0
    if cfg.probe.source:
        src = data.load(replace(cfg.data, name=cfg.probe.source, path=None), cfg.data.seed)
        if src.x_train.shape[1:] != ds.x_train.shape[1:] or src.x_train.dtype != ds.x_train.dtype:
            raise ConfigError(f"probe.source={cfg.probe.source!r} has inputs {src.x_train.shape[1:]} "
                              f"{src.x_train.dtype} but {cfg.data.name} has {ds.x_train.shape[1:]} "
                              f"{ds.x_train.dtype}; the pool must have the training inputs' shape")
        n_source = len(src.y_train)
        x_all, y_all = np.concatenate([x_all, src.x_train]), np.concatenate([y_all, src.y_train])
    lane_cfg = [i for i, c in enumerate(cfgs) for _ in range(c.seeds)]
    seeds = [c.seed + s for c in cfgs for s in range(c.seeds)]
    parts_per_seed, pools, counts, faulty = [], [], [], []
    for j, (i, s) in enumerate(zip(lane_cfg, seeds)):
        c = cfgs[i]
        pool, rest = _pool_and_rest(c, n, n_source, s)
        if j == 0 or lane_cfg[j - 1] != i:
            config.validate_with_data(c, ds.num_classes, len(rest), len(pool))
        parts = data.partition(ds.y_train[rest], c.peers, c.partition, ds.num_classes, s)
        faulty.append(faults.fixed_set(c, s, c.peers))
        parts = faults.cut_shards(c, parts, faulty[-1], s)         # under_trained: small faulty shards
        parts_per_seed.append([rest[p] for p in parts])
        pools.append(pool)
        counts.append(data.class_counts(ds.y_train[rest], parts, ds.num_classes))
    fdata, spec = fed.build(x_all, y_all, parts_per_seed, pools, ds.x_test, ds.y_test, ds.num_classes, cfg,
                            faulty)
    spec = spec._replace(groups=cfg.ragged_groups or local.auto_groups(_private_steps(cfg, counts), spec.active,
                                                                       backend=jax.default_backend()))
    model = make_model(cfg.model, ds.num_classes)
    dummy = jnp.zeros((1,) + spec.input_shape, jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), dummy)
    ctx = Context(cfg=cfg, spec=spec, model=model, num_params=param_count(shapes))
    return Built(cfg, ctx, make_protocol(ctx), fdata, seeds, counts, ds.name, cfgs=cfgs, lane_cfg=lane_cfg,
                 values=lanes.lane_values(cfgs, lane_cfg), choices=lanes.choices(cfgs))


def _private_steps(cfg: Config, counts: list) -> np.ndarray:
    """Real private steps per seed and peer in one round (host-side twin of local.real_steps)."""
    sizes = np.stack([c.sum(1) for c in counts])
    if cfg.local_steps is not None:
        return np.where(sizes > 0, cfg.local_steps, 0)
    return cfg.local_epochs * -(-sizes // cfg.batch_size)


def auto_chunk(b: Built) -> int:
    """Seeds per compiled batch: all of them unless a rough footprint says they would not fit."""
    cfg, spec = b.cfg, b.ctx.spec
    if cfg.seed_chunk:
        return min(cfg.seed_chunk, len(b.seeds))
    # params + optimizer (<= 2 moments) + grads + server/error + temporaries, float32, per peer
    state = 4 * b.ctx.num_params * spec.peers * 6
    width = max(int(np.prod(spec.input_shape)), 512)
    rows = cfg.batch_size + (cfg.distill.batch_size or cfg.batch_size)
    # hidden activations, and the [A, B+R, C] logits / probabilities / gradients of a training step
    acts = 4 * spec.peers * rows * (width * 16 + spec.classes * 4)
    # The probe exchange streams peers in chunks (exchange.py): one chunk's [c, M, C] temporaries plus
    # the [M, C] sums, no A * M * C term; evaluation holds one [P, B, C] batch of logits.
    probes = exchange.footprint_bytes(spec.active, spec.probes, spec.classes,
                                      soft=protocols.traits(cfg.protocol.name).soft)
    evals = 4 * spec.peers * eval_batch(spec.peers, spec.classes) * spec.classes * 2
    per_seed = state + acts + probes + evals
    stats = jax.local_devices()[0].memory_stats() or {}
    limit = stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    return max(1, min(len(b.seeds), int(0.5 * limit // per_seed)))


def _host(tree) -> dict:
    return {k: (None if v is None else np.asarray(v)) for k, v in mesh.host(tree).items()}


def _lane_row(ev: dict, info: dict, led: comm.Ledger, j: int, r: int, t0: float) -> dict:
    """The metrics row of lane j (an index into the chunk) at evaluation round r."""
    acc = ev["acc_P"][j]
    row = {"round": r, **led.row(),
           "acc_mean": float(acc.mean()), "acc_min": float(acc.min()), "acc_max": float(acc.max()),
           "acc_global": None if ev["acc_global"] is None else float(ev["acc_global"][j]),
           "acc_ensemble": float(ev["acc_ensemble"][j]),
           "train_loss": float(info["train_loss"][j])}
    # faults.py: faulty peers this round, and the mean test accuracy of the others (null if none)
    row["faulty"] = int(info["faulty"][j]) if "faulty" in info else 0
    honest = ~np.asarray(info["faulty_P"][j], bool) if "faulty_P" in info else np.ones(acc.shape, bool)
    row["acc_mean_honest"] = float(acc[honest].mean()) if honest.any() else None
    for k in PROBE_KEYS:
        row[k] = float(info[k][j]) if k in info and math.isfinite(info[k][j]) else None
    for k, cast in ROUND_KEYS.items():
        row[k] = cast(info[k][j]) if k in info and math.isfinite(info[k][j]) else None
    row["wall_s"] = round(time.perf_counter() - t0, 3)
    return row


def evaluates(cfg: Config, r: int) -> bool:
    """Does a run of `cfg` log a metrics row at round r?"""
    return r <= cfg.rounds and (r % cfg.eval_every == 0 or r == cfg.rounds)


def _segments(cfgs: list, r0: int, every: Optional[int]) -> list[tuple[int, int]]:
    """(first, last) rounds of the stretches that run on the device without the host: each ends at
    a round where some lane evaluates (or a checkpoint every `every` rounds may be due)."""
    last = max(c.rounds for c in cfgs)
    ends = sorted({r for r in range(r0 + 1, last + 1)
                   if any(evaluates(c, r) for c in cfgs) or (every and r % every == 0)})
    out, first = [], r0 + 1
    for end in ends:
        out.append((first, end))
        first = end + 1
    return out


def _round_programs(b: Built, state_sh=None, placement: Optional[mesh.Placement] = None):
    """(one round, a scan over rounds): the group's round vmapped over lanes, each compiled once per
    chunk (the scan once per distinct segment length). The scan keeps the rounds between two
    evaluations on the device; it returns every round's info, stacked. On several devices the state
    keeps its shardings (`state_sh`) and the info comes back replicated."""
    one = jax.vmap(lambda s, d, k, r, v: b.lane_protocol(v).round(s, d, k, r),
                   in_axes=(0, fed.SEED_AXES, 0, None, 0))

    def single(state, data_c, keys, rs, values):
        state, info = one(state, data_c, keys, rs[0], values)
        return state, jax.tree.map(lambda a: a[None], info)

    def scan(state, data_c, keys, rs, values):
        return jax.lax.scan(lambda s, r: one(s, data_c, keys, r, values), state, rs)

    if state_sh is None:
        return jax.jit(single, donate_argnums=0), jax.jit(scan, donate_argnums=0)
    out = (state_sh, mesh.replicated(placement))
    return (jax.jit(single, donate_argnums=0, out_shardings=out),
            jax.jit(scan, donate_argnums=0, out_shardings=out))


def initial_state(b: Built, placement: mesh.Placement):
    """The initial State of all lanes, placed as `placement` says (e.g. to check its memory)."""
    data_c, values, k_init, _, _, _ = _chunk_inputs(b, 0, len(b.seeds), placement)
    init_fn = jax.vmap(lambda k, d, v: b.lane_protocol(v).init(k, d), in_axes=(0, fed.SEED_AXES, 0))
    if placement.mesh is None:
        return jax.jit(init_fn)(k_init, data_c, values)
    sh = mesh.state_shardings(jax.eval_shape(init_fn, k_init, data_c, values), placement,
                              b.protocol.peer_state)
    return jax.jit(init_fn, out_shardings=sh)(k_init, data_c, values)


def _chunk_inputs(b: Built, lo: int, hi: int, placement: mesh.Placement):
    """The device inputs of lanes [lo, hi) (plus the placement's inactive copies of the last lane):
    (data, traced values, init keys, round keys, x_test, y_test), placed on the mesh if there is one."""
    idx = np.asarray(list(range(lo, hi)) + [hi - 1] * placement.pad_lanes)
    data_c = fed.lane_take(b.fed, idx)
    roots = jnp.stack([jax.random.PRNGKey(b.seeds[j]) for j in idx])
    k_init, k_rounds = jnp.moveaxis(jax.vmap(jax.random.split)(roots), 1, 0)
    values = {k: v[idx] for k, v in b.values.items()}
    if placement.mesh is None:
        return (data_c, {k: jnp.asarray(v) for k, v in values.items()}, k_init, k_rounds,
                b.fed.x_test, b.fed.y_test)
    lane = mesh.lane_axis(placement)
    return (mesh.put_fed(data_c, fed.SEED_AXES, placement), mesh.put(values, placement, lane),
            mesh.put(k_init, placement, lane), mesh.put(k_rounds, placement, lane),
            mesh.put(b.fed.x_test, placement, None), mesh.put(b.fed.y_test, placement, None))


def _run_chunk(b: Built, lo: int, hi: int, lanes_out: "_Lanes", bar, saver: checkpoint.Saver,
               resume: Optional[dict]) -> None:
    """All rounds of lanes [lo, hi) as one vmapped program, from round 1 or from a checkpoint."""
    ctx = b.ctx
    cfgs = [b.cfgs[b.lane_cfg[j]] for j in range(lo, hi)]
    placement = mesh.plan(b.cfg.devices, hi - lo, b.cfg.peers)
    data_c, values, k_init, k_rounds, x_test, y_test = _chunk_inputs(b, lo, hi, placement)
    init_fn = jax.vmap(lambda k, d, v: b.lane_protocol(v).init(k, d), in_axes=(0, fed.SEED_AXES, 0))
    ledgers = [comm.Ledger(c.peers) for c in cfgs]
    r0 = resume["round"] if resume else 0
    shape = jax.eval_shape(init_fn, k_init, data_c, values)
    state_sh = mesh.state_shardings(shape, placement, b.protocol.peer_state) if placement.mesh else None
    if r0:
        state = checkpoint.load(saver.out_dir, shape)
        state = jax.device_put(state, state_sh) if state_sh else state
        for led, saved in zip(ledgers, resume["ledgers"]):
            led.restore(saved)
    else:
        state = (jax.jit(init_fn, out_shardings=state_sh) if state_sh else jax.jit(init_fn))(k_init, data_c, values)
    single, scan = _round_programs(b, state_sh, placement)
    evaluate_lanes = jax.vmap(functools.partial(evaluate, ctx.model.apply, classes=ctx.spec.classes),
                              in_axes=(0, 0, None, None))
    eval_fn = (jax.jit(evaluate_lanes, out_shardings=mesh.replicated(placement)) if placement.mesh
               else jax.jit(evaluate_lanes))
    last_round = max(c.rounds for c in cfgs)
    for first, end in _segments(cfgs, r0, saver.every if saver.out_dir is not None else 0):
        rs = jnp.arange(first, end + 1, dtype=jnp.int32)
        state, info_T = (single if end == first else scan)(state, data_c, k_rounds, rs, values)
        info_T = _host(info_T)
        for t, r in enumerate(range(first, end + 1)):
            info = {k: v[t] for k, v in info_T.items()}
            for j, (c, led) in enumerate(zip(cfgs, ledgers)):
                if r > c.rounds or not lanes_out.live(lo + j):
                    continue
                led.add(b.cost_protocol(b.lane_cfg[lo + j]).cost({k: v[j].tolist() for k, v in info.items()}))
                led.add_steps(info["steps_real"][j], info["steps_computed"][j])
                loss = float(info["train_loss"][j])
                if not math.isfinite(loss):
                    lanes_out.diverged(lo + j, f"round {r}, seed {b.seeds[lo + j]}: the training loss is "
                                       f"{loss}; the run stopped (try a smaller optim.lr, now {c.optim.lr})")
        if not any(lanes_out.live(j) for j in range(lo, hi)):
            break
        evaluating = [j for j, c in enumerate(cfgs) if evaluates(c, end) and lanes_out.live(lo + j)]
        if evaluating:
            ev = _host(eval_fn(state.params, state.server, x_test, y_test))
            info = {k: v[-1] for k, v in info_T.items()}
            lanes_out.rows(end, [(lo + j, _lane_row(ev, info, ledgers[j], j, end, lanes_out.t0))
                                 for j in evaluating])
        if bar:
            bar.update(end - first + 1)
        if end < last_round and saver.due(end):
            saver.save(state, lanes_out.meta(lo, end, ledgers))
    if hi < len(b.seeds) and saver.out_dir is not None:
        saver.save(None, lanes_out.meta(hi, 0, []))       # this chunk is done: a resume starts the next one


def _is_oom(e: Exception) -> bool:
    return "RESOURCE_EXHAUSTED" in str(e) or "Out of memory" in str(e)


def run(cfg: Config, out: Optional[str] = None, overwrite: bool = False, progress: bool = True,
        built: Optional[Built] = None, checkpoint_every: Optional[int] = None, resume: bool = False) -> dict:
    """Run one configuration (all its seeds) end to end; returns the last metrics row plus 'out'.

    With `out`, a checkpoint is saved every `checkpoint_every` rounds (None: every few minutes; 0:
    never) and removed when the run finishes; `resume=True` continues the run in `out` from it.
    """
    meta = None
    if not mesh.is_writer():        # several processes (jax.distributed): only process 0 writes
        if resume:
            raise ConfigError("--resume is not supported across several processes yet; resume with one")
        out = None
    if resume:
        meta = _check_resume(cfg, out)
    elif out is not None:
        outdir.check(out, overwrite)     # before the data is loaded: a bad --out fails at once
    b = built or build(cfg)
    cfg = b.cfg
    out_dir = Path(out) if resume else outdir.claim(out, overwrite) if out is not None else None
    if resume:
        _note_resume(out_dir, meta)
    chunk = meta["chunk"] if meta else auto_chunk(b)
    if out_dir and not resume:
        _write_run_files(b, 0, out_dir, chunk)
    saver = checkpoint.Saver(out_dir, checkpoint_every)
    while True:
        try:
            last = _run_all(b, [out_dir], chunk, progress, saver, meta)[0]
            saver.discard()
            if isinstance(last, Exception):
                raise last
            return last
        except NonFiniteLoss:
            raise
        except Exception as e:   # noqa: BLE001 - only out-of-memory is retried, smaller
            if not _is_oom(e) or chunk == 1:
                raise
            chunk, meta = max(1, chunk // 2), None
            print(f"tallysim: the seed batch did not fit in memory; retrying {chunk} seeds at a time",
                  file=sys.stderr)


def run_group(cfgs: list[Config], outs: list, progress: bool = True, built: Optional[Built] = None) -> list:
    """Run configurations that share a static signature (lanes.group) as one compiled program, each
    into its own run directory (claimed with overwrite: the caller has checked them, as `sweep`
    does). Returns per configuration its last metrics row plus 'out', or the exception that stopped
    it (a NonFiniteLoss stops only its own configuration). No checkpoints: an interrupted group
    reruns its unfinished configurations."""
    b = built or build_group(cfgs)
    chunk = auto_chunk(b)
    out_dirs = [outdir.claim(o, True) if mesh.is_writer() else None for o in outs]
    for i, d in enumerate(out_dirs):
        if d is not None:
            _write_run_files(b, i, d, chunk)
    saver = checkpoint.Saver(None, 0)
    while True:
        try:
            return _run_all(b, out_dirs, chunk, progress, saver, None)
        except Exception as e:   # noqa: BLE001 - only out-of-memory is retried, smaller
            if not _is_oom(e) or chunk == 1:
                raise
            chunk = max(1, chunk // 2)
            print(f"tallysim: the lane batch did not fit in memory; retrying {chunk} lanes at a time",
                  file=sys.stderr)


def _write_run_files(b: Built, i: int, out_dir: Path, chunk: int) -> None:
    """config.json (with the devices' `placement`) and partition.json of the group's configuration i."""
    cfg, lanes_i = b.cfgs[i], b.lanes_of(i)
    doc = config.to_dict(cfg)
    doc["placement"] = mesh.plan(cfg.devices, min(chunk, len(b.seeds)), cfg.peers).note
    _write_json(out_dir / CONFIG, doc, indent=2)
    each = [{"seed": b.seeds[j], "shard_sizes": b.class_counts[j].sum(1).tolist(),
             "class_counts": b.class_counts[j].tolist()} for j in lanes_i]
    if cfg.faults.kind != "none":       # the seed's fixed faulty set (faults.redraw=true: the warm-up's)
        for e, j in zip(each, lanes_i):
            e["faulty_peers"] = np.flatnonzero(np.asarray(b.fed.faulty_P[j])).tolist()
    part = {"dataset": b.dataset, "peers": cfg.peers, "partition": config.to_dict(cfg)["partition"],
            "convention": convention(cfg.partition), **each[0]}
    if len(each) > 1:
        part["per_seed"] = each
    _write_json(out_dir / PARTITION, part)


def _write_json(path: Path, obj, indent=None) -> None:
    atomic.write_text(path, json.dumps(obj, indent=indent) + "\n")


def _check_resume(cfg: Config, out) -> dict:
    """One-line errors before anything loads: a tallysim run with a checkpoint, of this very config."""
    if out is None or str(out).strip() == "":
        raise ConfigError("--resume needs --out DIR, the run directory to continue")
    d = Path(out)
    if not outdir.is_run_dir(d):
        raise ConfigError(f"--resume: {out} is not a tallysim run directory; allowed: a directory a "
                          "`tallysim run` wrote")
    meta = checkpoint.read_meta(d)
    saved = config.to_dict(config.validate(config.load_file(str(d / CONFIG))))
    diff = config.diff(saved, config.to_dict(config.validate(cfg)))
    if diff:
        raise ConfigError(f"--resume: this config differs from {d / 'config.json'} ({', '.join(diff[:4])}"
                          f"{', ...' if len(diff) > 4 else ''}); resume with the same config or use --overwrite")
    return meta


def _note_resume(out_dir: Path, meta: dict) -> None:
    """config.json records every resume: from which round and seed chunk, and when."""
    doc = json.loads((out_dir / CONFIG).read_text())
    doc.setdefault("resumed", []).append({"round": meta["round"], "seed_index": meta["lo"],
                                          "at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    _write_json(out_dir / CONFIG, doc, indent=2)


class _Recorder:
    """Writes one configuration's metrics line once every seed has reached a round (seed chunks run
    one after another), whole lines only; knows the host-side state a checkpoint must keep."""

    def __init__(self, seeds: list, out_dir: Optional[Path], chunk: int, bar, resume: Optional[dict]):
        self.seeds, self.out_dir, self.chunk, self.bar = seeds, out_dir, chunk, bar
        self.evals = {int(k): v for k, v in resume["evals"].items()} if resume else {}
        self.lines = resume["lines"] if resume else 0
        self.last = resume["last"] if resume else {}
        self.t0 = time.perf_counter() - (resume["elapsed"] if resume else 0.0)
        self.file = None
        if out_dir:
            path = out_dir / METRICS
            if resume:      # rows written after the checkpoint are recomputed, identically
                keep = path.read_bytes().split(b"\n")[:self.lines] if path.exists() else []
                atomic.write_atomic(path, b"".join(line + b"\n" for line in keep))
            # unbuffered: each row is one write() call, so a crash never leaves half a line; O_NOFOLLOW:
            # a symlink planted as metrics.jsonl is refused, its target never written
            atomic.refuse_symlink(path)
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if resume else os.O_TRUNC)
            self.file = os.fdopen(os.open(path, flags, 0o644), "ab" if resume else "wb", buffering=0)

    def rows(self, r: int, rows: list[dict]) -> None:
        self.evals.setdefault(r, []).extend(rows)
        if len(self.evals[r]) < len(self.seeds):
            return
        self.last = aggregate(self.evals.pop(r), self.seeds)
        if self.file:
            self.file.write((json.dumps(self.last) + "\n").encode())
            self.lines += 1
        if self.bar:
            self.bar.set_postfix(acc=f"{self.last['acc_mean']:.3f}",
                                 MB_per_peer=f"{self.last['bits_per_peer'] / 8e6:.3g}")

    def meta(self, lo: int, r: int, ledgers) -> dict:
        return {"version": 1, "chunk": self.chunk, "lo": lo, "round": r,
                "ledgers": [led.state() for led in ledgers], "evals": self.evals,
                "lines": self.lines, "last": self.last, "elapsed": time.perf_counter() - self.t0}

    def close(self) -> None:
        if self.file:
            self.file.close()


class _Lanes:
    """Routes each lane's rows to its configuration's recorder; a lane whose loss is not finite stops
    its configuration (the others in the group go on)."""

    def __init__(self, b: Built, out_dirs: list, chunk: int, bar, resume: Optional[dict]):
        self.b = b
        self.recs = [_Recorder([b.seeds[j] for j in b.lanes_of(i)], d, chunk, bar, resume)
                     for i, d in enumerate(out_dirs)]
        self.t0 = self.recs[0].t0
        self.failed: dict[int, NonFiniteLoss] = {}

    def live(self, j: int) -> bool:
        return self.b.lane_cfg[j] not in self.failed

    def diverged(self, j: int, message: str) -> None:
        i = self.b.lane_cfg[j]
        err = NonFiniteLoss(message)
        rec = self.recs[i]
        if rec.out_dir:
            atomic.write_text(rec.out_dir / ERROR, message + "\n")
        if len(self.recs) == 1:
            raise err
        self.failed[i] = err

    def rows(self, r: int, lane_rows: list) -> None:
        for i, rec in enumerate(self.recs):
            mine = [row for j, row in lane_rows if self.b.lane_cfg[j] == i]
            if mine:
                rec.rows(r, mine)

    def meta(self, lo: int, r: int, ledgers) -> dict:
        return self.recs[0].meta(lo, r, ledgers)      # checkpoints: one configuration only

    def close(self) -> None:
        for rec in self.recs:
            rec.close()

    def results(self) -> list:
        out = []
        for i, rec in enumerate(self.recs):
            if i in self.failed:
                out.append(self.failed[i])
            else:
                last = dict(rec.last)
                last["out"] = str(rec.out_dir) if rec.out_dir else None
                out.append(last)
        return out


def _run_all(b: Built, out_dirs: list, chunk: int, progress: bool, saver: checkpoint.Saver,
             resume: Optional[dict] = None) -> list:
    n = len(b.seeds)
    start = resume["lo"] if resume else 0
    bounds = [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]
    rounds = [max(b.cfgs[b.lane_cfg[j]].rounds for j in range(lo, hi)) for lo, hi in bounds]
    bar = _progress(sum(rounds), progress)
    if bar and resume:
        k = bounds.index(next(bd for bd in bounds if bd[0] == start))
        bar.update(sum(rounds[:k]) + resume["round"])
    lanes_out = _Lanes(b, out_dirs, chunk, bar, resume)
    try:
        for lo, hi in bounds:
            if lo >= start:
                _run_chunk(b, lo, hi, lanes_out, bar, saver, resume if lo == start else None)
    finally:
        lanes_out.close()
        if bar:
            bar.close()
    return lanes_out.results()


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="round", unit="rd", file=sys.stderr, dynamic_ncols=True)


class _CallableModule(type(sys)):
    """`tallysim.run(cfg, out=...)`: this module, called, is the public API's run (tallysim/api.py)."""

    def __call__(self, cfg: Config, out: Optional[str] = None, **kwargs):
        from tallysim import api
        return api.run(cfg, out, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
