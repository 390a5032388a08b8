"""make_figure's own arguments as a Python caller gives them (`results`, `out`, `progress`, `grouped`, `log`,
`checkpoint_every`), checked before anything is planned or written, as sweep_arguments.py checks run_sweep's.
Before, out=None was a TypeError from inside pathlib, and grouped="no" (a truthy string) ran the groups grouped
and checkpoint_every=-1 was refused as `run_sweep(checkpoint_every=-1)`, a function the caller never named,
once the figure's folder had been made. `tallysim figure` builds them itself. No JAX."""
from __future__ import annotations

from tallysim.config import ConfigError


def check(results, out, log, checkpoint_every, **flags) -> None:
    from tallysim.schema import plain_value
    for name, value in (("results", results), ("out", out)):
        if value is None:       # other types: preflight's "is bytes, not a path", as dry_run's
            raise ConfigError(f"make_figure({name}=None): allowed: a directory as a str or pathlib.Path "
                              f"(the default {'results' if name == 'results' else 'figures'}: leave it out)")
    from tallysim.sweep_arguments import check_flags
    check_flags("make_figure", flags)
    if not callable(log):
        raise ConfigError(f"make_figure(log={log!r:.60}): {type(log).__name__}; allowed: a function of one line of "
                          "text, e.g. print (the default)")
    every = plain_value(checkpoint_every)
    if every is not None and (type(every) is not int or every < 0):
        raise ConfigError(f"make_figure(checkpoint_every={checkpoint_every!r}): allowed None (every few minutes), "
                          "0 (never) or a number of rounds")
