"""Build a group of configurations for one compiled program: validate, load the data, partition every
lane's seed, place it all on the device, build the protocol (`Built`). Compiles nothing. run.py runs
what this builds. The data it reads (probe.source, the digest, the probe pool) is build_data.py's; the
seeds per compiled batch that fit in memory (`auto_chunk`, `lane_shapes`) are lane_memory.py's.
"""
from __future__ import annotations

import gc
import json
from dataclasses import dataclass, field, fields, replace
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from tallysim import build_data, config, data, model_groups
# the data a build reads and the memory its lanes need, split from here (build.X, as before)
from tallysim.build_data import data_digest_now  # noqa: F401
from tallysim.lane_memory import auto_chunk, lane_shapes  # noqa: F401
from tallysim.config import Config, ConfigError
from tallysim.fields import first_few
from tallysim.protocols.contract import make as make_protocol   # a plugin's Protocol checked
from tallysim.protocols.base import Context, ModelGroup, Protocol
from tallysim.sim import faults, fed, lanes, step_groups, tasks
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
    programs: dict = field(default_factory=dict, repr=False)  # programs.chunk_programs' cache: a run's seed chunks share them
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
    read_before = build_data.read_state(cfg)
    ds = data.load(cfg.data, cfg.data.seed, tuple(runs))
    task = tasks.make(ds.task, ds.x_train.shape[1:])
    grouped = bool(model_groups.parse(cfg.model.groups))       # each group's model is checked by _model_groups
    tasks.check(cfg, task, model=not grouped)   # an image model on text, a protocol a task cannot run: one line
    if task.name == "classification" and not grouped:
        tasks.check_shape(cfg, ds.x_train.shape[1:])      # a conv model on flat or too small examples
    n = len(ds.y_train)
    x_all, y_all, n_source = build_data.with_probe_source(cfg, ds, tuple(runs))
    digest = build_data.data_digest(cfg, ds, x_all, y_all, n)      # before the host copy is dropped
    # the files' state the digest stands for, only where it did not change while they were read
    read = read_before if read_before is not None and read_before == build_data.read_state(cfg) else None
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
            pool, rest = build_data.pool_and_rest(c, n, n_source, s)
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


