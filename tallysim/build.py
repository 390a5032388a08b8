"""Build a group of configurations for one compiled program: validate, load the data, partition every
lane's seed, place it all on the device, build the protocol (`Built`); and the seeds per compiled
batch that fit in memory (`auto_chunk`). Compiles nothing. run.py runs what this builds.
"""
from __future__ import annotations

import gc
import json
import os
from dataclasses import dataclass, field, fields, replace
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from tallysim import config, data, data_read, model_groups, protocols, sizing
from tallysim.config import Config, ConfigError
from tallysim.fields import first_few
from tallysim.protocols.contract import make as make_protocol   # a plugin's Protocol checked
from tallysim.protocols.base import Context, ModelGroup, Protocol
from tallysim.sim import activations, faults, fed, lanes, local, peers, step_groups, tasks
from tallysim.sim.conv import check_usable as check_conv
from tallysim.sim.models import init_shapes, make_model, param_count


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
    programs: dict = field(default_factory=dict, repr=False)  # run._programs' cache: a run's seed chunks share them
    # datasets with clients (text), for the per-client test metrics: the test examples' client ids
    # [V], and per lane the peer holding each client [K] (-1: none; all -1 unless partition.kind=
    # natural). None on datasets without clients.
    clients_test: np.ndarray = None
    own_clients: list = None
    # the data the lanes train and test on, as data.digest gives it (partition.json records it; a resume
    # whose data file changed since is refused: run.check_same_data)
    data_digest: str = ""
    # data.path's files as read (data_read.state: resolved path, each file's size, times, inode), None
    # without a path or where they changed while read; partition.json records it (data_read.py)
    data_read: Optional[dict] = None
    # run_files.majority_of's cache: the test set's majority floor, read to the host once per run (its
    # partition.json and the mid-run dead-peer watch both use it)
    majority_facts: Optional[dict] = field(default=None, repr=False)

    def __post_init__(self):
        self._made = self.protocol          # what make_protocol gave: a caller may replace self.protocol
        self.cfgs = self.cfgs or [self.cfg]
        self.lane_cfg = self.lane_cfg if self.lane_cfg is not None else [0] * len(self.seeds)
        self.values = self.values or {}

    @property
    def one(self) -> fed.FedData:
        """The first lane's data without the lane axis (for driving a protocol directly)."""
        return fed.seed_slice(self.fed, 0)

    def lane_protocol(self, values: dict, lanes: int = 1) -> Protocol:
        """The protocol with the group's varying fields set to one lane's (traced) values, in a program
        that vmaps `lanes` lanes together on a device (they share the exchange's chunk budget)."""
        if not values:
            # a protocol the caller put in place of the built one (a test's fault, a hook) runs as given,
            # its exchange chunked per lane; the built one is made again for the lanes' shared budget
            if lanes == 1 or self.protocol is not self._made:
                return self.protocol
            return make_protocol(replace(self.ctx, lanes=lanes))
        # the lane's values go to the protocol as arrays (ctx.hp), never into its Config (lanes.py)
        return make_protocol(replace(self.ctx, hparams=dict(values), choices=self.choices, lanes=lanes))

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


class RunRefused(ConfigError):
    """A data-dependent refusal of one configuration of a group (`index`: its place in the group's
    configurations), found while the group is built: the configuration alone would be refused the
    same way, and the group's others can run without it (sweep._run_grouped). Same message."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


def _check_convs(cfg: Config) -> None:
    """model.conv, and each model group's own, usable on this backend (check_conv): refused in one line
    before the data loads (a group's was refused only when traced)."""
    check_conv(cfg.model.conv)
    for g in model_groups.parse(cfg.model.groups):
        try:
            check_conv(model_groups.group_config(cfg, g).model.conv)
        except ConfigError as e:
            raise ConfigError(f"model.groups group {g.name}: {e}") from None


def _with_probe_source(cfg: Config, ds, runs: tuple = ()):
    """(inputs, labels, n_source): the training examples, followed by probe.source's when it is set
    (the probe pool may then draw from them); its inputs must have the training inputs' shape."""
    if not cfg.probe.source:
        return ds.x_train, ds.y_train, 0
    src = data.load(replace(cfg.data, name=cfg.probe.source, path=None), cfg.data.seed, runs)
    if src.x_train.shape[1:] != ds.x_train.shape[1:] or src.x_train.dtype != ds.x_train.dtype:
        raise ConfigError(f"probe.source={cfg.probe.source!r} has inputs {src.x_train.shape[1:]} "
                          f"{src.x_train.dtype} but {cfg.data.name} has {ds.x_train.shape[1:]} "
                          f"{ds.x_train.dtype}; the pool must have the training inputs' shape and type")
    return (np.concatenate([ds.x_train, src.x_train]), np.concatenate([ds.y_train, src.y_train]),
            len(src.y_train))


def _data_digest(cfg: Config, ds, x_all, y_all, n: int) -> str:
    """data.digest of what the lanes train and test on; data.generated_digest where any of it is generated
    (synthetic, as the data or the probe.source): its floats differ in the last bits between machines."""
    if cfg.data.name not in data.GENERATED and cfg.probe.source not in data.GENERATED:
        return data.digest(x_all, y_all, ds.x_test, ds.y_test)
    return data.generated_digest([y_all, ds.y_test], [x_all[:n], x_all[n:], ds.x_test])


def data_digest_now(cfg: Config) -> str:
    """The digest a run of `cfg` would record in partition.json, from its data as it is now (loaded, nothing
    placed on a device): a sweep run again whose every run is skipped compares its runs' with it."""
    ds = data.load(cfg.data, cfg.data.seed)
    x_all, y_all, _ = _with_probe_source(cfg, ds)
    return _data_digest(cfg, ds, x_all, y_all, len(ds.y_train))


def _read_state(cfg: Config) -> Optional[dict]:
    """data_read.state of the files data.path names (data.name=files, or a named dataset's own files), None
    for generated data or without a path."""
    if not cfg.data.path or cfg.data.name in data.GENERATED:
        return None
    return data_read.state(cfg.data.path)     # data.path is read even where data.name has a cache (data/loading.py)


def _pool_and_rest(cfg: Config, n: int, n_source: int, seed: int):
    """Probe-pool indices and the remaining training indices of one seed."""
    if cfg.probe.source:
        if cfg.probe.pool_size is not None and cfg.probe.pool_size > n_source:     # was cut to n_source, silently
            raise ConfigError(f"probe.pool_size={cfg.probe.pool_size} is more than the {n_source} training examples "
                              f"of probe.source={cfg.probe.source}; allowed: 1..{n_source}, or none (10% of them)")
        size = min(cfg.probe.pool_size or config.default_pool_size(n_source), n_source)
        return n + np.arange(size), np.arange(n)       # source examples are appended after train
    size = cfg.probe.pool_size or config.default_pool_size(n)
    if n < 2:       # no pool size leaves training data: the advice below read "allowed: 1..0"
        raise ConfigError(f"{cfg.data.name} has {n} training example{'s' * (n != 1)}"
                          f"{f' (data.max_train={cfg.data.max_train})' if cfg.data.max_train else ''}: too few "
                          "for a probe pool and training data; allowed: at least 2 (a larger data.max_train)")
    if size >= n:
        raise ConfigError(f"probe.pool_size={size} leaves no training data ({cfg.data.name} has {n} "
                          f"training examples); allowed: 1..{n - 1}")
    return data.split_probe_pool(n, size, seed)


# A full collection after the inputs go to the device frees their host copy at once (issue 33: 768 MB of
# a 10^6-client population held twice otherwise), but its cost grows with every object the process holds:
# in a long process (a test worker, a sweep after many runs) 0.2-1 s of CPU per build for nothing where
# the inputs are small. Below this size the copy goes with Python's own collections.
COLLECT_FROM_BYTES = 64 * 2**20


def build(cfg: Config, runs: tuple = ()) -> Built:
    """Validate, load data, partition every seed and place it all on the device. Compiles nothing.
    `runs`: the run's name (its directory's), which the data's notes name; () where there is none."""
    return build_group([cfg], runs)


def build_group(cfgs: list[Config], runs: tuple = ()) -> Built:
    """`build` for configurations that differ only in per-lane fields (lanes.signature): one lane per
    (configuration, seed), each with its own partition, probe pool, init and keys. `runs`: their names,
    which a note about the data they share names (a sweep's or figure's notes are otherwise alike)."""
    cfgs = [config.validate(c) for c in cfgs]
    cfg = cfgs[0]
    for c in cfgs:     # model.conv=pallas off a GPU: one line before the data loads, not after
        _check_convs(c)
    sig = lanes.signature(cfg)
    for i, c in enumerate(cfgs[1:], 2):
        if lanes.signature(c) != sig:
            # was a ValueError naming no field (run_group([fedavg, local]) from Python, a list mixing tasks)
            was, now = json.loads(sig), json.loads(lanes.signature(c))
            first = ("protocol.name", "data.name", "model.name")      # what sets the rest: said before them
            keys = sorted(set(was) | set(now), key=lambda k: (k not in first, first.index(k) if k in first else 0, k))
            diff = [f"{k}={was.get(k)!r}->{now.get(k)!r}" for k in keys if was.get(k) != now.get(k)]
            raise ConfigError(f"run_group: configuration {i} differs from the first in a field one compiled program "
                              f"cannot vary ({first_few(diff, 3)}); allowed: configurations that differ only in "
                              "learning rates, weights, temperatures, partition, seed or rounds (sweep.run_sweep "
                              "groups any list so), or each run apart")
    read_before = _read_state(cfg)
    ds = data.load(cfg.data, cfg.data.seed, tuple(runs))
    task = tasks.make(ds.task, ds.x_train.shape[1:])
    grouped = bool(model_groups.parse(cfg.model.groups))       # each group's model is checked by _model_groups
    tasks.check(cfg, task, model=not grouped)   # an image model on text, a protocol a task cannot run: one line
    if task.name == "classification" and not grouped:
        tasks.check_shape(cfg, ds.x_train.shape[1:])      # a conv model on flat or too small examples
    n = len(ds.y_train)
    x_all, y_all, n_source = _with_probe_source(cfg, ds, tuple(runs))
    digest = _data_digest(cfg, ds, x_all, y_all, n)      # before the host copy is dropped
    # the files' state the digest stands for, only where it did not change while they were read
    read = read_before if read_before is not None and read_before == _read_state(cfg) else None
    # The inputs go to the device first and every host reference to them is dropped (jax copies a numpy
    # array, even on the CPU): a 10^6-client population's 768 MB of inputs are then held once while the
    # partitions are drawn, not twice (issue 33's memory target; docs/population.md).
    host_bytes = getattr(x_all, "nbytes", 0)
    x_all = fed.to_device(x_all)
    ds = replace(ds, x_train=None)
    if host_bytes >= COLLECT_FROM_BYTES:    # the finished transfer's last hold on the host copy is only
        gc.collect()                        # freed by a collection
    lane_cfg = [i for i, c in enumerate(cfgs) for _ in range(c.seeds)]
    seeds = [c.seed + s for c in cfgs for s in range(c.seeds)]
    parts_per_seed, pools, counts, faulty, own = [], [], [], [], []
    for j, (i, s) in enumerate(zip(lane_cfg, seeds)):
        c = cfgs[i]
        try:        # a refusal here is configuration i's own (its data, its partition): say which
            pool, rest = _pool_and_rest(c, n, n_source, s)
            if j == 0 or lane_cfg[j - 1] != i:
                config.validate_with_data(c, ds.num_classes, len(rest), len(pool))
            labels = ds.y_train[rest]          # once per lane: 10^7 labels, for the partition and its counts
            parts = data.partition(labels, c.peers, c.partition, ds.num_classes, s,
                                   clients=None if ds.clients_train is None else ds.clients_train[rest],
                                   name=cfg.data.name)
            faulty.append(faults.fixed_set(c, s, c.peers))
            own.append(_own_clients(ds, c, s, rest))
            parts = faults.cut_shards(c, parts, faulty[-1], s)         # under_trained: small faulty shards
            parts_per_seed.append(data.ragged(parts).take(rest))     # vectorised: 10^6 clients are one array
            pools.append(pool)
            # int32: the build keeps [P, C] per lane for partition.json (40 MB at 10^6 clients, not 80)
            counts.append(data.class_counts(labels, parts, ds.num_classes, np.int32))
            # a lane of a group is named by its own values (fed.build checks them all again, as lane 0's)
            fed.check_size_rule(c, counts[-1].sum(axis=1), _lane_name(c, s) if len(cfgs) > 1 or c.seeds > 1 else "")
        except RunRefused:
            raise
        except ConfigError as e:
            raise RunRefused(str(e), i) from None
        del parts, rest, labels
    fdata, spec = fed.build(x_all, y_all, parts_per_seed, pools, ds.x_test, ds.y_test, ds.num_classes, cfg,
                            faulty)
    del x_all, y_all, parts_per_seed          # on the device now
    _return_freed_memory()
    spec = spec._replace(task=task.name, groups=cfg.ragged_groups or step_groups.auto_groups(_private_steps(cfg, counts), spec.active,
                                                                       backend=jax.default_backend()))
    model = make_model(cfg.model, ds.num_classes)
    dummy = jnp.zeros((1,) + spec.input_shape, jnp.float32)
    shapes = init_shapes(cfg.model, model, dummy, ds.num_classes, task, cfg.data.name)   # a plugin model: its shapes
    groups = _model_groups(cfg, ds.num_classes, dummy, task)
    if groups:
        spec = spec._replace(active=groups[-1].a_hi)     # the groups' A_g summed (model_groups.active_counts)
    # model.groups: the largest group's model sizes the seed batch (auto_chunk)
    num_params = max(g.num_params for g in groups) if groups else param_count(shapes)
    ctx = Context(cfg=cfg, spec=spec, model=model, num_params=num_params, model_groups=groups)
    return Built(cfg, ctx, make_protocol(ctx), fdata, seeds, counts, ds.name, cfgs=cfgs, lane_cfg=lane_cfg,
                 values=lanes.lane_values(cfgs, lane_cfg), choices=lanes.choices(cfgs),
                 clients_test=ds.clients_test, own_clients=None if own[0] is None else own,
                 data_digest=digest, data_read=read)


def _return_freed_memory() -> None:
    """Hand the host memory the build freed back to the system (glibc's malloc_trim): the build's
    temporaries (permutations, partitions, counts: several times the indices of 10^6 clients) are freed
    but glibc keeps much of it mapped, and the resident set would carry it through every round. A no-op
    where there is no glibc."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _own_clients(ds, c: Config, seed: int, rest) -> np.ndarray | None:
    """[K] int32: the peer that holds each client of the dataset (-1: none; every client unless
    partition.kind=natural, where peer i IS a client), for the per-client test metrics; None on a
    dataset without clients."""
    if ds.clients_test is None:
        return None
    K = len(ds.client_names) if ds.client_names is not None else int(ds.clients_test.max()) + 1
    own = np.full(K, -1, np.int32)
    if c.partition.kind == "natural":
        own[data.natural_clients(ds.clients_train[rest], c.peers, seed, c.data.name,
                                                c.partition.pick)] = np.arange(c.peers)
    return own


def _model_groups(cfg: Config, classes: int, dummy, task) -> tuple:
    """model.groups as the Context's ModelGroups (peer and active ranges, model, parameter count)."""
    groups = model_groups.parse(cfg.model.groups)
    out, lo, a_lo = [], 0, 0
    for g, a in zip(groups, model_groups.active_counts(cfg, groups)):
        gcfg = model_groups.group_config(cfg, g)
        tasks.check(gcfg, task, g.name)         # each group's model must suit the task
        if task.name == "classification":
            tasks.check_shape(gcfg, dummy.shape[1:], g.name)
        m = make_model(gcfg.model, classes)
        shapes = init_shapes(gcfg.model, m, dummy, classes, task, cfg.data.name)   # a group's own model, as the run's
        n = param_count(shapes)
        out.append(ModelGroup(g.name, lo, lo + g.peers, a_lo, a_lo + a, m, n, g.values))
        lo, a_lo = lo + g.peers, a_lo + a
    return tuple(out)


def _lane_name(cfg: Config, seed: int) -> str:
    """A lane of a group, as its own values say: its seed and partition.kind, and the partition fields
    its configuration sets (the group's lanes may differ in any of them: lanes.HOST)."""
    default = config.PartitionConfig()
    own = [f"partition.{f.name}={getattr(cfg.partition, f.name)}" for f in fields(default)
           if f.name != "kind" and getattr(cfg.partition, f.name) != getattr(default, f.name)]
    return ", ".join([f"seed {seed}: partition.kind={cfg.partition.kind}"] + own)


def _private_steps(cfg: Config, counts: list) -> np.ndarray:
    """Real private steps per seed and peer in one round (host-side twin of local.real_steps)."""
    sizes = np.stack([c.sum(1) for c in counts])
    if cfg.local_steps is not None:
        return np.where(sizes > 0, cfg.local_steps, 0)
    return cfg.local_epochs * -(-sizes // cfg.batch_size)


def auto_chunk(b: Built) -> int:
    """Seeds per compiled batch: all of them unless a rough footprint says they would not fit."""
    # seed_chunk is per lane (lanes.HOST): the smallest a group's configurations set wins (config_shapes.
    # asked_chunk, which sweep_plan.widths reads too); the numbers are the same at any batch size
    asked = sizing.asked_chunk(b.cfgs, len(b.seeds))
    if asked is not None:
        return asked
    stats = jax.local_devices()[0].memory_stats() or {}
    limit = stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    return sizing.lanes_that_fit(len(b.seeds), int(0.5 * limit), **lane_shapes(b))


def _group_optim(cfg: Config, g):
    """The optimizer config of model group g's peers (its own optim.name, which sets the moments), or the run's."""
    name = dict(g.values).get("optim.name") if g is not None else None
    return cfg.optim if name is None else replace(cfg.optim, name=name)


def lane_shapes(b: Built) -> dict:
    """What sizing.per_seed_bytes needs to know of a built group (its arguments by name), the model's
    own facts included: its forward pass's bytes per example (sim/activations.py, traced, not
    compiled), the optimizer's state per parameter, the peers trained at once and the data's arrays."""
    cfg, spec = b.cfg, b.ctx.spec
    held = spec.active if b.ctx.cohort else spec.peers      # client_storage=auto: the cohort's models only
    # probes only where peers train on them: the FedAvg family ignores probe.per_round (as validation)
    distill = protocols.traits(cfg.protocol.name).distill
    dummy = jnp.zeros((1,) + spec.input_shape, jnp.float32)
    together = lambda a: -(-a // max(1, min(spec.groups, a)))     # noqa: E731  local.train_peers' groups
    own = []            # model.groups: each group's own model, peers and facts (sizing.per_seed_bytes)
    for g in b.ctx.model_groups or (None,):
        m = g.model if g else b.ctx.model
        params = jax.eval_shape(m.init, jax.random.PRNGKey(0), dummy)
        fact = activations.per_example(m.apply, params, spec.input_shape)
        opt = jax.eval_shape(peers.make_optimizer(_group_optim(cfg, g)).init, params)
        active = g.a_hi - g.a_lo if g else spec.active
        own.append(dict(num_params=param_count(params), peers=active if b.ctx.cohort else (g.hi - g.lo if g else held),
                        active=active, together=together(active), saved=fact.saved, peak=fact.peak,
                        moments=param_count(opt) / max(1, param_count(params)), example=fact.input))
    per_lane = shared = 0
    for leaf, axis in zip(b.fed, fed.SEED_AXES):
        if leaf is not None:
            if axis is None:
                shared += leaf.nbytes
            else:
                per_lane += leaf.nbytes // leaf.shape[0]
    return dict(num_params=b.ctx.num_params, peers=held, active=spec.active, input_shape=spec.input_shape,
                batch_size=cfg.batch_size, probe_batch=(cfg.distill.batch_size or cfg.batch_size) if distill else 0,
                probes=spec.probes if distill else 0, classes=spec.classes,
                soft=protocols.traits(cfg.protocol.name).soft or sizing.counts_target(cfg), positions=tasks.of(spec).positions,
                blocked=not protocols.traits(cfg.protocol.name).soft and sizing.blocks_votes(cfg),
                votes=cfg.vote.weighting == "history", kept=sizing.kept_bytes(cfg),
                together=together(spec.active), saved=max(m["saved"] for m in own), peak=max(m["peak"] for m in own),
                example=own[0]["example"], moments=max(m["moments"] for m in own),
                groups=tuple({k: v for k, v in m.items() if k != "example"} for m in own) if b.ctx.model_groups else (),
                test_examples=int(b.fed.x_test.shape[0]), data=per_lane, shared=shared)
