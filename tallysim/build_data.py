"""The data a build reads before anything goes to a device: the training examples with probe.source's
appended (`with_probe_source`), their digest (`data_digest`: partition.json's `data_digest`;
`data_digest_now` for a sweep run again whose every run was skipped), the state of the files data.path
names (`read_state`, data_read.py), and one seed's probe pool and training rest (`pool_and_rest`).
Split from build.py, which builds a group's lanes from them.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np

from tallysim import config, data, data_read
from tallysim.config import Config, ConfigError


def with_probe_source(cfg: Config, ds, runs: tuple = ()):
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


def data_digest(cfg: Config, ds, x_all, y_all, n: int) -> str:
    """data.digest of what the lanes train and test on; data.generated_digest where any of it is generated
    (synthetic, as the data or the probe.source): its floats differ in the last bits between machines."""
    if cfg.data.name not in data.GENERATED and cfg.probe.source not in data.GENERATED:
        return data.digest(x_all, y_all, ds.x_test, ds.y_test)
    return data.generated_digest([y_all, ds.y_test], [x_all[:n], x_all[n:], ds.x_test])


def data_digest_now(cfg: Config) -> str:
    """The digest a run of `cfg` would record in partition.json, from its data as it is now (loaded, nothing
    placed on a device): a sweep run again whose every run is skipped compares its runs' with it."""
    ds = data.load(cfg.data, cfg.data.seed)
    x_all, y_all, _ = with_probe_source(cfg, ds)
    return data_digest(cfg, ds, x_all, y_all, len(ds.y_train))


def read_state(cfg: Config) -> Optional[dict]:
    """data_read.state of the files data.path names (data.name=files, or a named dataset's own files), None
    for generated data or without a path."""
    if not cfg.data.path or cfg.data.name in data.GENERATED:
        return None
    return data_read.state(cfg.data.path)     # data.path is read even where data.name has a cache (data/loading.py)


def pool_and_rest(cfg: Config, n: int, n_source: int, seed: int):
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
