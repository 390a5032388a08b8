"""The arguments of `tallysim.run(cfg, out=..., ...)` (run.run_results), checked as the command line checks
its options, before anything is loaded or compiled."""
from __future__ import annotations

import os
from pathlib import Path

from tallysim.config import ConfigError
from tallysim.fields import is_path
from tallysim.schema import plain_value


def check(out, overwrite, progress, kwargs: dict) -> tuple:
    """tallysim.run's own arguments, as the command line checks its options: `out=123` was a TypeError
    deep in outdir, `checkpoint_every=-1` (which the CLI refuses) and `"5"` were taken, a truthy string
    (`overwrite="no"`) replaced a directory, and resume=True with overwrite=True was answered as if only
    resume were given."""
    unknown = sorted(set(kwargs) - {"resume", "checkpoint_every", "built"})
    if unknown:      # was a TypeError from the internal run(), after the config had been checked
        raise ConfigError(f"tallysim.run({unknown[0]}=...): no such argument; allowed: out, overwrite, progress, "
                          "resume, checkpoint_every")
    if out is not None and not is_path(out):         # out=b"runs" passed here, and failed inside pathlib
        raise ConfigError(f"tallysim.run(out={out!r}): expected a directory path (str or pathlib.Path), or None "
                          "for a new temporary directory")
    # numpy's True and integers (a flag read from an array, np.int64 from np.arange) as their Python values,
    # as Config.replace takes them: they were "expected True or False" of np.True_
    overwrite, progress = plain_value(overwrite), plain_value(progress)
    kwargs = {k: plain_value(v) for k, v in kwargs.items()}
    flags = {"overwrite": overwrite, "progress": progress, "resume": kwargs.get("resume", False)}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ConfigError(f"tallysim.run({name}={value!r}): expected True or False")
    if flags["resume"] and overwrite:
        raise ConfigError("tallysim.run(resume=True, overwrite=True): resume continues the run in out and "
                          "overwrite replaces it; pass one")
    if flags["resume"]:
        resumable(out)
    elif out is not None:       # as `tallysim run --out` (a sweep's own runs go in through run.run, not here)
        from tallysim import outdir
        outdir.refuse_in_sweep(out, "out")
    every = kwargs.get("checkpoint_every")
    if every is not None and (type(every) is not int or every < 0):
        raise ConfigError(f"tallysim.run(checkpoint_every={every!r}): allowed None (every few minutes), 0 (never) "
                          "or a number of rounds")
    return overwrite, progress, kwargs


def resumable(out) -> None:
    """tallysim.run(resume=True)'s refusals in this API's words: they named --resume, --overwrite and
    --checkpoint-every, and with no `out` a new temporary directory was made and called "not a run"."""
    from tallysim import existing_run, outdir
    if out is None:
        raise ConfigError("tallysim.run(resume=True) needs out=, the run directory to continue")
    d = outdir.destination(out, "out")
    if not outdir.is_run_dir(d):
        raise ConfigError(existing_run.not_a_run(d, out, "tallysim.run(resume=True)", outdir.PYTHON))
    if not (d / outdir.CHECKPOINT).is_file():
        if outdir.run_state(d) == "finished":
            raise ConfigError(f"tallysim.run(resume=True): {out} is a finished run (every round ran; a finished run "
                              f"keeps no checkpoint): tallysim.Results.read({str(out)!r}) reads its results")
        raise ConfigError(f"tallysim.run(resume=True): {out} has no {outdir.CHECKPOINT} to resume from (it stopped "
                          "before its first checkpoint); start it again with overwrite=True (checkpoint_every=N "
                          "saves one every N rounds)")


def check_read(cfg, out, resume) -> None:
    """tallysim.run's config checked as a single run's (validation.check_read: a field its protocol or kind
    does not read), except when it resumes a run whose own config.json does not pass as one: a sweep's or a
    figure's run, whose shared base may set such fields (they skip the check), is resumed with them, as
    `run --resume` resumes it. An unreadable config.json is checked as before (the resume says what is wrong).
    Then validation.warnings() printed on stderr (validation.single_run)."""
    from tallysim import config, validation
    from tallysim.results.metrics import CONFIG
    own = None
    if resume and out is not None:
        try:
            own = config.validate(config.load_file(str(Path(os.fsdecode(out)) / CONFIG)))
        except (ConfigError, OSError, TypeError, ValueError):
            own = None
    validation.single_run(cfg, resumed=bool(resume), own=own)    # its warnings printed, as `tallysim run`'s


def check_group(cfgs, outs, every) -> None:
    """run.run_group's arguments (the grouped runs a sweep batches, also called from Python), checked before
    any directory is locked or data loaded: two runs into one directory ran as two lanes and kept one run's
    files, the other's results lost in silence; one directory fewer than configurations was an IndexError
    after the data had loaded; [] an IndexError, a dict for a Config a TypeError from dataclasses, and
    checkpoint_every=-1 or "2" taken (r % -1 == 0 saved every round)."""
    from tallysim.schema import Config
    what = "run_group(cfgs, outs)"
    if not isinstance(cfgs, (list, tuple)) or not isinstance(outs, (list, tuple)):
        raise ConfigError(f"{what}: expected a list of tallysim.Config and a list of run directories, got "
                          f"{type(cfgs).__name__} and {type(outs).__name__}")
    if not cfgs or len(cfgs) != len(outs):
        raise ConfigError(f"{what}: {len(cfgs)} configurations and {len(outs)} directories; allowed: one run "
                          "directory per configuration, at least one")
    for c in cfgs:
        if not isinstance(c, Config):
            raise ConfigError(f"{what}: a configuration is {type(c).__name__}; allowed: tallysim.Config "
                              "(tallysim.config.from_dict(d) makes one of a dict)")
    seen: dict = {}
    for o in outs:
        if not is_path(o):
            raise ConfigError(f"{what}: directory {o!r:.60} is {type(o).__name__}; allowed: a path (str or "
                              "pathlib.Path)")
        key = os.path.realpath(os.fsdecode(o))
        if key in seen:
            raise ConfigError(f"{what}: two configurations write one directory, {seen[key]} and {o} ({key}); "
                              "allowed: a directory of its own for each")
        seen[key] = o
    every = plain_value(every)
    if every is not None and (type(every) is not int or every < 0):
        raise ConfigError(f"run_group(checkpoint_every={every!r}): allowed None (none), 0 (never) or a number of "
                          "rounds")
