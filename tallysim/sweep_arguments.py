"""run_sweep's own arguments as a Python caller gives them (`runs`, `out_dir`, the flags, `log`, `meta`,
`checkpoint_every`), checked before anything is validated or written, as api_arguments.py checks
tallysim.run's; `tallysim sweep` builds them itself (sweep_axes.expand). Split from sweep_axes.py. No JAX."""
from __future__ import annotations

from tallysim.config import ConfigError
from tallysim.results.run_dir import SWEEP
from tallysim.run_lock import LOCK
from tallysim.sweep_axes import CASE_ONLY

# the names a sweep's own files take in its directory (its index, the lock one sweep at a time holds)
SWEEP_OWN = frozenset({SWEEP, LOCK})


def check_flags(caller: str, flags: dict) -> None:
    """Keyword flags (progress, grouped) of a Python caller's `caller(...)` True or False: grouped="no", a
    truthy string, ran the runs grouped (run_sweep's and make_figure's, figures/arguments.py)."""
    from tallysim.schema import plain_value
    for flag, value in flags.items():
        if not isinstance(plain_value(value), bool):
            raise ConfigError(f"{caller}({flag}={value!r:.40}): expected True or False")


def check_runs(runs, out_dir, **flags) -> list:
    """run_sweep's `runs` and `out_dir` as a Python caller gives them, checked before anything is validated
    or written (`tallysim sweep` builds them with `expand`): a run that is no (name, overrides) pair was a
    ValueError from tuple unpacking, runs=[] made the directory and an empty index in silence, out_dir=5
    a TypeError from inside os, and two runs of one name ran as two lanes writing one directory, the
    second's rows over the first's; `flags` (progress, grouped) True or False: grouped="no", a truthy
    string, ran the runs grouped. Returns the runs as a list."""
    from tallysim.fields import is_path
    check_flags("run_sweep", flags)
    if not is_path(out_dir):
        raise ConfigError(f"run_sweep(out_dir={out_dir!r:.60}): {type(out_dir).__name__}; allowed: a directory "
                          "path (str or pathlib.Path)")
    from tallysim import outdir
    # as `tallysim sweep --out` refuses them (cli_commands.cmd_sweep): a sweep inside another sweep's folder, whose
    # table and read_rows then took its runs for their own, and a home, the root or the working directory
    outdir.refuse_in_sweep(out_dir, "run_sweep(out_dir=...):")
    outdir.refuse_sweep_at_top(out_dir)
    if isinstance(runs, (str, bytes, dict)) or not isinstance(runs, (list, tuple)):
        raise ConfigError(f"run_sweep(runs={runs!r:.60}): {type(runs).__name__}; allowed: a list of (name, "
                          "[key=value overrides]) pairs, e.g. [('lr0.02', ['optim.lr=0.02'])] (sweep.expand makes them)")
    if not runs:
        raise ConfigError("run_sweep(runs=[]): no run to do; allowed: a list of at least one (name, [key=value "
                          "overrides]) pair")
    for run in runs:
        if not isinstance(run, (list, tuple)) or len(run) != 2:
            raise ConfigError(f"run_sweep: run {run!r:.60} is not a (name, [key=value overrides]) pair; allowed: "
                              "e.g. ('lr0.02', ['optim.lr=0.02'])")
        if not isinstance(run[0], str):     # a list name was a TypeError (unhashable) from the check below
            raise ConfigError(f"run_sweep: run {run!r:.60} is named by a {type(run[0]).__name__}; allowed: a name "
                              "as a str (the run's directory), e.g. ('lr0.02', ['optim.lr=0.02'])")
        if run[0] in SWEEP_OWN:     # the run's directory would be the sweep's own file: FileExistsError at its mkdir
            raise ConfigError(f"run_sweep: run {run[0]!r} is named as a file the sweep writes in out_dir "
                              f"({', '.join(sorted(SWEEP_OWN))}); allowed: any other name")
    seen, folded = {}, {}
    for name, overrides in runs:
        if name.casefold() in folded and folded[name.casefold()] != name:
            raise ConfigError(f"run_sweep: runs {folded[name.casefold()]!r} and {name!r} {CASE_ONLY}; allowed: names "
                              "that differ by more than case")
        folded[name.casefold()] = name
        if name in seen:
            raise ConfigError(f"run_sweep: two runs are named {name!r} ({' '.join(map(str, seen[name])) or 'the base'}"
                              f" and {' '.join(map(str, overrides)) if isinstance(overrides, (list, tuple)) else overrides}"
                              f"), and would write one directory; allowed: one name per run")
        seen[name] = overrides if isinstance(overrides, (list, tuple)) else [overrides]
    return list(runs)


def check_hooks(log, meta, every):
    """run_sweep's log, meta and checkpoint_every as a Python caller gives them, before anything is created:
    log=None was a TypeError at the first run's line and meta=[...] an AttributeError, both after the sweep's
    directory was made; a meta value JSON cannot write failed at sweep.json's first write; and
    checkpoint_every=np.int64(2), which tallysim.run takes, was refused as no number of rounds. Returns
    checkpoint_every as a Python int (or None)."""
    import json
    from tallysim.schema import plain_value
    if not callable(log):
        raise ConfigError(f"run_sweep(log={log!r:.60}): {type(log).__name__}; allowed: a function of one line of "
                          "text, e.g. print (the default) or a logger's info")
    if meta is not None:
        if not isinstance(meta, dict):
            raise ConfigError(f"run_sweep(meta={meta!r:.60}): {type(meta).__name__}; allowed: None or a dict of "
                              "JSON values, written into sweep.json beside its runs")
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"run_sweep(meta=...): {e}; allowed: a dict of JSON values (str, numbers, bools, "
                              "None, lists and dicts of them), written into sweep.json") from None
    every = plain_value(every)      # np.int64 from np.arange, as tallysim.run and Config.replace take it
    if every is not None and (type(every) is not int or every < 0):
        raise ConfigError(f"run_sweep(checkpoint_every={every!r}): allowed None (every few minutes), "
                          "0 (never) or a number of rounds")     # -1 saved every round (r % -1 == 0)
    return every
