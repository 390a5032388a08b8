"""The arguments of `tallysim.run(cfg, out=..., ...)` (run.run_results), checked as the command line checks
its options, before anything is loaded or compiled."""
from __future__ import annotations

import os

from tallysim.config import ConfigError


def check(out, overwrite, progress, kwargs: dict) -> None:
    """tallysim.run's own arguments, as the command line checks its options: `out=123` was a TypeError
    deep in outdir, `checkpoint_every=-1` (which the CLI refuses) and `"5"` were taken, a truthy string
    (`overwrite="no"`) replaced a directory, and resume=True with overwrite=True was answered as if only
    resume were given."""
    unknown = sorted(set(kwargs) - {"resume", "checkpoint_every", "built"})
    if unknown:      # was a TypeError from the internal run(), after the config had been checked
        raise ConfigError(f"tallysim.run({unknown[0]}=...): no such argument; allowed: out, overwrite, progress, "
                          "resume, checkpoint_every")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise ConfigError(f"tallysim.run(out={out!r}): expected a directory path (str or pathlib.Path), or None "
                          "for a new temporary directory")
    flags = {"overwrite": overwrite, "progress": progress, "resume": kwargs.get("resume", False)}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ConfigError(f"tallysim.run({name}={value!r}): expected True or False")
    if flags["resume"] and overwrite:
        raise ConfigError("tallysim.run(resume=True, overwrite=True): resume continues the run in out and "
                          "overwrite replaces it; pass one")
    every = kwargs.get("checkpoint_every")
    if every is not None and (type(every) is not int or every < 0):
        raise ConfigError(f"tallysim.run(checkpoint_every={every!r}): allowed None (every few minutes), 0 (never) "
                          "or a number of rounds")
