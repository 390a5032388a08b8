"""`config.validate`: every check on a Config that does not need the data, and the ones that do.

Each failure is a `ConfigError` with one line naming the field, the bad value and what is allowed.
Nothing here loads data, allocates arrays or compiles: types, ranges (every float finite), names that
must fit the file system (field_checks.py), the rules between fields (config_rules.py) and the fields a
run would ignore (config_reads.py), and a rough memory estimate that refuses sizes no machine could hold
(here, from sizing.py). The names of the modules split from this one are re-exported: `validation.X`
keeps working.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from pathlib import Path
from typing import Optional

from tallysim import model_groups, protocols, robust_checks, sizing, work_estimate
from tallysim import config_reads
from tallysim.config_reads import MESSAGE_FAULTS, check_read  # noqa: F401 - validation.X, as before
from tallysim.config_rules import check_pool_size, check_rules, ties_on_text  # noqa: F401 - validation.X, as before
from tallysim.soft_rounding import UNIFORM_ZERO_FROM, cfd_uniform_zero_from, soft_rounds_to_zero  # noqa: F401 - validation.X, as before
from tallysim.field_checks import check_data_path, check_data_paths, installed_choices, not_known  # noqa: F401
from tallysim.fields import first_few
from tallysim.field_checks import (ALPHA_KINDS, CHOICES, FLOAT_RANGES, INT_RANGES, MAX_NAME,  # noqa: F401
                                   TYPE_NAMES, live_choices, check_name, check_path, check_ranges, check_types,
                                   json_kind, show, split_optional, type_ok)
from tallysim.sizing import KNOWN_SHAPES, estimate_bytes  # noqa: F401 - validation.X, as before
from tallysim.schema import Config, ConfigError, get_field


def memory_limit() -> int:
    """This machine's physical memory in bytes (refuse beyond it: nothing bigger can be allocated)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


_fmt = sizing.fmt


def estimate_parts(cfg: Config) -> list[tuple[str, int, str]]:
    """sizing.estimate_bytes with model.groups' groups (each its own config and A_g), which sizing, below
    model_groups in the layers, cannot parse: the estimate counted the run's model.* for every peer."""
    groups = model_groups.parse(cfg.model.groups)
    return sizing.estimate_bytes(cfg, tuple((g.name, model_groups.group_config(cfg, g), a)
                                            for g, a in zip(groups, model_groups.active_counts(cfg, groups))))


def memory_note(cfg: Config, limit: int | None = None) -> str:
    """The memory estimate check_memory refuses by, as one line for a run that fits (`run
    --print-config` prints it on stderr): before, a user could see it only in a refusal."""
    limit = memory_limit() if limit is None else limit
    parts = estimate_parts(cfg)
    what, size, _ = max(parts, key=lambda p: p[1])
    total = sum(b for _, b, _ in parts)
    guess = sizing.assumed(cfg)
    return (f"memory estimate: {_fmt(total)} (the largest part: {what} {_fmt(size)}), of this "
            f"machine's {_fmt(limit)}; rough, from the config alone: the big allocations, not Python and JAX "
            "themselves (a run above the machine's memory is refused; docs/population.md)"
            + (f"; data.path: {guess}" if guess else ""))


def check_memory(cfg: Config, limit: int | None = None) -> None:
    limit = memory_limit() if limit is None else limit
    parts = estimate_parts(cfg)
    total = sum(b for _, b, _ in parts)
    if total > limit:
        what, size, keys = max(parts, key=lambda p: p[1])
        fix = keys if keys.startswith("set ") else f"lower {keys}"     # sizing: a field to set, or to lower
        guess = sizing.assumed(cfg)
        raise ConfigError(f"this configuration needs at least {_fmt(total)} of memory ({what} alone "
                          f"{_fmt(size)}), more than this machine's {_fmt(limit)}; {fix}"
                          + (f" (data.path: {guess})" if guess else ""))


# log.*'s backends (tallysim/tracking.py): config field -> (module to import, pip extra)
TRACKING_PACKAGES = {"tensorboard": ("tensorboardX", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def check_tracking(cfg: Config) -> None:
    """One-line errors before anything loads: a usable directory, an installed backend."""
    for backend, value in (("tensorboard", cfg.log.tensorboard), ("mlflow", cfg.log.mlflow)):
        if value is None:
            continue
        module, extra = TRACKING_PACKAGES[backend]
        if not value.strip() or "\x00" in value:
            raise ConfigError(f"log.{backend}={value!r} is empty; allowed: "
                              f"{'a directory' if backend == 'tensorboard' else 'an experiment name'} or none")
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"log.{backend} needs the {module} package, which is not installed; "
                              f"pip install 'tallysim[{extra}]' (or leave log.{backend} unset)")
    if cfg.log.tensorboard is not None:
        d = Path(os.path.expanduser(cfg.log.tensorboard))     # as tracking.tensorboard_dir writes it
        for p in (d, *d.parents):
            if p.exists() and not p.is_dir():
                raise ConfigError(f"log.tensorboard={cfg.log.tensorboard}: {p} is a file; allowed: a directory "
                                  "(created if missing)")


def never_merges(cfg: Config) -> bool:
    """A bridge run whose first merge (round bridge.period) comes after its last round: tally, with its
    headline (the server model) left at the shared initialisation. `warnings` says so for a single run,
    sweep_axes.warn_unmerged for a sweep's runs."""
    return cfg.protocol.name == "bridge" and cfg.bridge.density > 0 and cfg.bridge.period > cfg.rounds


def warnings(cfg: Config) -> list[str]:
    """Configured events that can never happen in this run (allowed, but probably not meant): one line
    each, printed before a single run starts (single_run: the CLI's run, tallysim.run, tallysim.drive)."""
    out, name = [], cfg.protocol.name
    if never_merges(cfg):
        out.append(f"bridge.period={cfg.bridge.period} > rounds={cfg.rounds}: no merge happens in this run, so "
                   "it is tally, and its server model (acc_global, the summary's headline) stays the shared "
                   "init: read the peers' mean (acc_mean)")
    if name == "fedct" and cfg.fedct.period > cfg.rounds:
        out.append(f"fedct.period={cfg.fedct.period} > rounds={cfg.rounds}: no exchange happens in this run "
                   "(rounds b, 2b, ...), so it is local training alone and sends 0 bits")
    if cfg.eval_every > cfg.rounds:
        out.append(f"eval_every={cfg.eval_every} > rounds={cfg.rounds}: only the last round is evaluated")
    if protocols.traits(name).distill and cfg.distill.ramp_rounds > cfg.rounds:
        out.append(f"distill.ramp_rounds={cfg.distill.ramp_rounds} > rounds={cfg.rounds}: the distillation "
                   f"weight never reaches distill.weight (at most {cfg.rounds / cfg.distill.ramp_rounds:.2g} of it)")
    if cfg.faults.kind != "none" and sizing.faulty_peers(cfg) == 0:     # as the run counts them (sim/faults.count)
        # warned, not refused, as drop_prob=0 below: fig8 and robustness sweep faults.fraction with 0 as the
        # fault-free point (a sweep prints no warnings)
        if cfg.faults.fraction == 0:
            out.append(f"faults.kind={cfg.faults.kind} with faults.fraction=0 makes no peer faulty: the run has no "
                       "faults (faults.fraction in (0, 1] makes floor(fraction * peers) of them faulty)")
        else:
            out.append(f"faults.fraction={cfg.faults.fraction} of peers={cfg.peers} is no faulty peer "
                       "(floor(fraction * P) = 0): the run has no faults")
    if cfg.faults.kind == "dropout" and cfg.faults.drop_prob == 0:
        # warned, not refused: a sweep over drop_prob may hold 0 as its fault-free point, as fig8 and
        # robustness hold faults.fraction=0 (warnings() is a single run's; sweeps do not print them)
        out.append("faults.kind=dropout with faults.drop_prob=0 drops nobody: every faulty peer's message "
                   "arrives each round, so the run has no faults (faults.drop_prob in (0, 1] loses some)")
    if cfg.faults.kind == "dropout" and cfg.faults.drop_prob == 1 and sizing.faulty_peers(cfg) == cfg.peers:
        # faults.fraction=1: every message lost, every round; the run
        # wrote 0 bits and its protocol's name beside local training's accuracy, and no line said so
        out.append(f"faults.kind=dropout with faults.fraction={cfg.faults.fraction:g} makes all {cfg.peers} peers "
                   "faulty and faults.drop_prob=1 loses every message they send: nothing is exchanged in any "
                   "round (0 bits), so the peers train alone (faults.fraction below 1, or faults.drop_prob "
                   "below 1, leaves some messages arriving)")
    voters = sizing.active_peers(cfg)      # a probe's top count is at most A
    if round(cfg.participation * cfg.peers) == 0 and not cfg.model.groups:
        # participation=1e-9 (or 0.1 of 4 peers) ran one peer a round, a quarter of them, in silence; groups
        # draw max(1, round(participation * P_g)) each, as docs/groups.md says
        out.append(f"participation={cfg.participation:g} of peers={cfg.peers} rounds to no peer: 1 peer a round "
                   f"takes part (participation {1 / cfg.peers:.3g}); the cohort is max(1, round(participation * peers))")
    out += _groups_rounded_up(cfg)
    if cfg.privacy.noise > 0 and cfg.privacy.threshold > voters:
        out.append(f"privacy.threshold={cfg.privacy.threshold:g} is above the {voters} votes a probe can get (the "
                   "active peers): a probe is answered only where the noise lifts its top count past it, so "
                   "most abstain and train nothing")
    if config_reads.accounted(cfg) and cfg.privacy.delta >= 1 / cfg.peers:
        # privacy.delta=0.999999 reported epsilon 0.0, read as perfect privacy: publishing one random peer's
        # whole data outright is already (0, 1/P)-DP at user level (two runs differ in one of P peers)
        out.append(f"privacy.delta={cfg.privacy.delta:g} is not below 1/peers = {1 / cfg.peers:.3g}: releasing one "
                   f"random peer's data outright is (0, {1 / cfg.peers:.3g})-DP, so epsilon at this delta "
                   "promises little (privacy.delta well below 1/peers, e.g. 1e-5)")
    unheld = unheld_classes(cfg)
    if unheld:
        C, held = unheld
        # "at most 4 of the 10 classes to any peer" read as each peer's share; it is all the peers' together
        out.append(f"partition.kind=label_quantity with partition.k={cfg.partition.k} and peers={cfg.peers} gives "
                   f"the peers together at most {held} of the {C} classes: at least {C - held} are in the test set "
                   f"and no peer trains on them, so test accuracy is capped near {held}/{C} (peers >= "
                   f"{-(-C // cfg.partition.k)} can hold every class)")
    out += soft_rounds_to_zero(cfg)
    out += robust_checks.warnings(cfg)
    work = work_estimate.warning(cfg)       # local_steps=10**7: a run of days, accepted in silence
    out += [work] if work else []
    return out


def _groups_rounded_up(cfg: Config) -> list[str]:
    """model.groups whose participation * P_g rounds to no peer: each still draws one a round, so
    participation=0.25 of groups a:2;b:2 ran 2 of 4 peers a round (0.5), in silence (the warning above
    is skipped with groups)."""
    if not cfg.model.groups or cfg.participation >= 1:
        return []
    groups = model_groups.parse(cfg.model.groups)
    up = [g for g in groups if round(cfg.participation * g.peers) == 0]
    if not up:
        return []
    active = sum(model_groups.active_counts(cfg, groups))
    named = [f"{g.name} ({g.peers} peer{'s' if g.peers > 1 else ''})" for g in up]
    return [f"participation={cfg.participation:g} rounds to no peer of group "
            f"{first_few(named, 3)}: every group draws "
            f"max(1, round(participation * its peers)) a round, so {active} of the {cfg.peers} peers take part "
            f"(participation {active / cfg.peers:.3g}, not {cfg.participation:g})"]


def unheld_classes(cfg: Config) -> Optional[tuple[int, int]]:
    """(C, at most how many classes any peer holds) where label_quantity's peers x k cannot cover the
    C classes: the one-class split of 6 peers on Fashion-MNIST trained on 6 classes and was tested on 10,
    in silence (its accuracy read 0.10 where 10 peers read 0.18). None otherwise, and for data.name=files
    (its header may declare classes it holds no example of: the partition refuses that case itself) or a
    dataset whose classes sizing only guesses."""
    if cfg.partition.kind != "label_quantity":
        return None
    if cfg.data.name != "synthetic" and cfg.data.name not in KNOWN_SHAPES:
        return None
    C = sizing.data_shape(cfg)[1]
    held = cfg.peers * cfg.partition.k
    return (C, held) if held < C else None


# what each entrance that runs several configurations calls them, and how it would run them apart
OVERLAP_REMEDY = {"sweep runs": "sweep seed with seeds=1, or drop the seed axis and set seeds=N (one run of N "
                                "seeds, mean and std)",
                  "grouped runs": "give each run seeds=1, or run one of them with seeds=N (mean and std)"}


def seed_overlap(names: list[str], cfgs: list[Config], what: str = "sweep runs") -> Optional[str]:
    """One warning line where two configurations that differ only in `seed` share seeds: a run covers
    seeds seed..seed + seeds - 1, so `seed=0,1` with `seeds=2` ran seed 1 twice (in run seed=0 and run
    seed=1) and their means are not independent; None where no two overlap (the same seed in runs that
    differ in another field is a paired comparison, meant). `what`: a key of OVERLAP_REMEDY."""
    by_rest: dict = {}
    for name, cfg in zip(names, cfgs):
        by_rest.setdefault(repr(dataclasses.replace(cfg, seed=0)), []).append((name, cfg))
    for group in by_rest.values():
        for i, (a, ca) in enumerate(group):
            for b, cb in group[i + 1:]:
                lo, hi = max(ca.seed, cb.seed), min(ca.seed + ca.seeds, cb.seed + cb.seeds) - 1
                if ca.seed != cb.seed and lo <= hi:
                    shared = f"seed {lo}" if lo == hi else f"seeds {lo}..{hi}"
                    return (f"{what} {a} (seeds {ca.seed}..{ca.seed + ca.seeds - 1}) and {b} (seeds "
                            f"{cb.seed}..{cb.seed + cb.seeds - 1}) share {shared}: each run covers seed..seed + "
                            f"seeds - 1, so their results are not independent; {OVERLAP_REMEDY[what]}")
    return None


def warn_seed_overlap(names: list[str], cfgs: list[Config], what: str = "sweep runs") -> None:
    """seed_overlap's line on stderr, once: `tallysim sweep` (its dry run too), `sweep.run_sweep` and
    `run.run_group` each call it for the configurations they were given."""
    line = seed_overlap(names, cfgs, what)
    if line:
        print(f"tallysim: warning: {line}", file=sys.stderr)


def validate(cfg: Config) -> Config:
    """Check everything that does not need the data; return the resolved config."""
    if not isinstance(cfg, Config):
        # a dict (config.json's) said no more than that, nor how to make a Config of it
        how = ("; a dict of fields, nested as in config.json, becomes one with tallysim.config.from_dict(d) "
               "(its unknown keys refused by name)" if isinstance(cfg, dict) else
               "; build one with tallysim.Config().replace(peers=10, optim={'lr': 0.1})")
        raise ConfigError(f"expected a tallysim.Config, got {type(cfg).__name__}{how}")
    check_types(cfg)
    for key, allowed in live_choices().items():
        value = get_field(cfg, key)
        allowed = installed_choices(key, value, allowed)    # an installed package's plugin: loaded when named
        if value not in allowed and key == "protocol.name" and protocols.unusable(value):
            raise ConfigError(f"protocol.name={show(value)} cannot be used: {protocols.unusable(value)}")
        if value not in allowed:
            raise ConfigError(not_known(key, value, allowed))
    check_ranges(cfg)
    check_name("data.name", cfg.data.name)
    if cfg.probe.source is not None:
        check_name("probe.source", cfg.probe.source)
    if cfg.data.path is not None:
        check_path("data.path", cfg.data.path)
    if cfg.log.tensorboard is not None:
        check_path("log.tensorboard", cfg.log.tensorboard)
    check_tracking(cfg)
    check_rules(cfg)
    check_memory(cfg)
    check_pool_size(cfg)
    return cfg.resolved()


def single_run(cfg: Config, resumed: bool = False, own: Config | None = None) -> None:
    """The checks of a single run's config before anything loads or compiles, where `tallysim run`,
    tallysim.run and tallysim.drive all come, once per run: a field its protocol or kind never reads is
    refused (check_read; a resume: check_read_resumed with the run's own config `own`), then each of
    warnings() is printed on stderr, one line each (the API printed none: only the CLI did).
    Sweeps and figures do not come here, on purpose: their grids hold fault-free and other degenerate
    points deliberately (fig8 and robustness sweep faults.fraction with 0, drop_prob with 0), so the
    warnings would be noise on every such run, and their shared base may set fields some runs ignore."""
    if resumed:
        check_read_resumed(cfg, own)
    else:
        check_read(validate(cfg))
    check_data_path(cfg)
    for w in warnings(validate(cfg)):
        print(f"tallysim: warning: {w}", file=sys.stderr)


def check_read_resumed(cfg: Config, own: Config | None) -> None:
    """A resumed run's config (`cfg`: its own config.json with what the resume changes) checked as a single
    run's (check_read) only if the run's own config (`own`, validated; None where it cannot be read)
    passes as one: a sweep's or a figure's run may hold fields its protocol or kind does not read (their
    shared base), which nothing given at the resume can have set; an item that changes what is computed
    is refused by the resume's comparison with the checkpoint's config in any case. `run --resume` and
    tallysim.run(resume=True) both ask this; an unreadable config.json is checked as before (the resume
    then says what is wrong with it)."""
    if own is not None and not config_reads.reads_all(own):
        return
    check_read(validate(cfg))


def too_few_examples(cfg: Config, min_each: int, train_examples: int) -> str:
    """Every peer must get min_each examples (partition.min_size for dirichlet and population, else 1):
    say which of peers and partition.min_size can change, and to what. `min_size=1500` on a dataset
    of 1,400 examples once said "allowed: peers <= 0"; the bound crossed there is min_size's."""
    need = cfg.peers * max(min_each, 1)
    tail = f"but {cfg.data.name} has {train_examples} after the probe pool"
    if min_each <= 1:
        return (f"peers={cfg.peers} needs at least {need} training examples (one per peer) {tail}; "
                f"allowed: peers <= {train_examples}")
    fits_min = train_examples // cfg.peers             # the largest min_size these peers can all get
    fits_peers = train_examples // min_each            # the most peers that can each get min_size
    options = ([f"partition.min_size <= {fits_min} with peers={cfg.peers}"] if fits_min >= 1 else []) + \
              ([f"peers <= {fits_peers} with partition.min_size={min_each}"] if fits_peers >= 1 else [])
    return (f"peers={cfg.peers} needs at least {need} training examples ({min_each} each: "
            f"partition.min_size={min_each}, the fewest a peer may hold) {tail}; allowed: "
            f"{' or '.join(options) or 'a larger data.train_size'}")


def validate_with_data(cfg: Config, num_classes: int, train_examples: int, pool_examples: int) -> None:
    """Checks that need the dataset's size and class count (still before anything compiles)."""
    # not on text, whose windows hold a label per position: the partition refuses any label split there, and
    # "partition.k=100 exceeds the 80 classes; allowed: 1..80" sent the user to a k no text run accepts
    if cfg.partition.kind == "label_quantity" and cfg.partition.k > num_classes \
            and cfg.data.name not in sizing.KNOWN_TEXT:
        raise ConfigError(f"partition.k={cfg.partition.k} exceeds the {num_classes} classes of "
                          f"{cfg.data.name}; allowed: 1..{num_classes}")
    min_each = cfg.partition.min_size if cfg.partition.kind in ("dirichlet", "population") else 1
    reused = cfg.partition.kind == "population" and cfg.partition.reuse     # clients may share examples
    # natural: one client per peer, refused by the clients that hold a sequence (data/partition.py); the
    # examples bound said "allowed: peers <= 270" where 192 clients held the 270 (hostile19)
    if cfg.peers * max(min_each, 1) > train_examples and not reused and cfg.partition.kind != "natural":
        raise ConfigError(too_few_examples(cfg, min_each, train_examples))
    if cfg.faults.kind == "confident_wrong" and cfg.faults.target >= num_classes:
        raise ConfigError(f"faults.target={cfg.faults.target} is not a class of {cfg.data.name} "
                          f"({num_classes} classes); allowed: -1 (a random wrong class) or 0..{num_classes - 1}")
    # only where peers train on this round's probes (TRAITS.distill): the FedAvg family draws none, and
    # ignores probe.per_round as it does any field it does not read that is not protocol-specific
    check_pool_size(cfg, pool_examples, "probe.pool_size" if cfg.probe.pool_size is not None else
                    "probe.pool_size is unset: 10% of the training examples, at most 10,000")
