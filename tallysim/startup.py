"""What the command line sets up before JAX starts (`start_jax`): `jax.distributed` and the compile
cache. Its own module, below both the command line (cli_commands.py) and `sweep`, which call it once
their config has validated, so a refused config imports no JAX.

Both may run many times in one process (a notebook or a test calling `cli.main` or `tallysim.run` again,
perhaps with other environment variables): a call that asks for what is already set up does nothing;
other compile-cache settings take effect; other multi-process settings cannot (JAX starts its processes
once per process) and are refused in one line (distributed.initialize_distributed)."""
from __future__ import annotations

import os

# The cache directory compile_cache set, and the one in effect before it first did: a later call that
# asks for no tallysim cache puts that back, if nothing else has changed the setting since.
_set: list = []


def cache_dir_asked() -> str | None:
    """The compile cache directory the environment asks tallysim for: None where it must not set one
    (TALLYSIM_COMPILE_CACHE=0, or JAX's own JAX_COMPILATION_CACHE_DIR, which JAX read itself)."""
    from pathlib import Path
    where = os.environ.get("TALLYSIM_COMPILE_CACHE", "")
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        _cache_is_a_directory("JAX_COMPILATION_CACHE_DIR", os.environ["JAX_COMPILATION_CACHE_DIR"])
        return None
    if where == "0":
        return None
    if where:
        _cache_is_a_directory("TALLYSIM_COMPILE_CACHE", where)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        where = str(Path(base) / "tallysim" / "xla")
    # `~` as the shell would expand it (_cache_is_a_directory checks it so): a value set from Python, a
    # notebook's %env or a .env file keeps it literal, and JAX then filled a directory named `~` in the
    # working directory (which `rm -rf ~` to clear it takes for the home); absolute, so a later chdir (a
    # notebook's %cd) does not move the cache
    final = os.path.abspath(Path(os.path.expanduser(where)))
    problem = _unusable(final)
    if problem and os.environ.get("TALLYSIM_COMPILE_CACHE"):
        raise _cache_error("TALLYSIM_COMPILE_CACHE", where, problem)
    if problem:         # the default place (a HOME or XDG_CACHE_HOME that cannot hold it): run, uncached, saying so
        import sys
        print(f"tallysim: warning: the compile cache {final} cannot be used ({problem}); compiling without it "
              "(set TALLYSIM_COMPILE_CACHE to a directory you can write, or 0)", file=sys.stderr)
        return None
    return final


def _unusable(path: str) -> str | None:
    """Why JAX could not keep its cache in `path`, or None: it is made now, as JAX would make it. One it
    could not make or write (TALLYSIM_COMPILE_CACHE=/proc/x, a read-only or missing HOME) compiled every
    program uncached under JAX's own UserWarning, its source line and `warnings.warn(` on stderr."""
    from pathlib import Path
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"cannot make it: {e.strerror or e}"
    if not os.access(path, os.W_OK | os.X_OK):
        return "it is not writable"
    return None


def _cache_error(var: str, where: str, problem: str):
    from tallysim.fields import ConfigError
    return ConfigError(f"{var}={where!r}: {problem}; allowed: a directory tallysim can write (made if missing)"
                       f"{', or 0 to turn the cache off' if var == 'TALLYSIM_COMPILE_CACHE' else ''}")


def compile_cache() -> None:
    """The command line keeps XLA's compiled programs on disk (JAX's persistent compilation cache), so
    rerunning a configuration, a sweep or a figure skips compiling: ~/.cache/tallysim/xla, or
    $TALLYSIM_COMPILE_CACHE; TALLYSIM_COMPILE_CACHE=0 turns it off. JAX's own
    JAX_COMPILATION_CACHE_DIR, when set, wins. Importing tallysim as a library changes nothing.

    Called again with other settings, the new ones take effect (JAX keeps the cache it opened until
    reset_cache); a call that asks for no tallysim cache puts back the directory in effect before the
    first call set one, unless something else changed it since."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache
    current = jax.config.jax_compilation_cache_dir
    where = cache_dir_asked()
    if where is None:
        if not _set or current != _set[0][0]:
            return                          # tallysim set none, or someone changed it since: not ours
        where = _set[0][1]
    if where == current:
        return
    _set[:] = [(where, _set[0][1] if _set else current)]
    jax.config.update("jax_compilation_cache_dir", where)
    compilation_cache.reset_cache()         # a cache already opened would keep its old directory


def cache_in_effect() -> bool:
    """Whether JAX's persistent compile cache is on now (a directory set and caching enabled), so that a
    program compiled once in this process, or before, is read back rather than compiled again: a sweep's
    runs each build their programs anew (fresh closures miss JAX's in-memory cache), and only this cache
    spares the compile (sweep_plan.compiles, the runs' ETA). JAX leaves out programs that compiled in
    under JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS (1 s by default): those cost little either way."""
    import jax
    return bool(jax.config.jax_compilation_cache_dir) and bool(jax.config.jax_enable_compilation_cache)


def _cache_is_a_directory(var: str, where: str) -> None:
    """A cache path that is a file (or under one) made JAX warn at every compile and cache nothing."""
    from pathlib import Path
    from tallysim.fields import ConfigError
    path = Path(os.path.expanduser(where))
    try:
        blocked = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    except OSError as e:        # a name too long for the file system: stat's traceback (ENAMETOOLONG)
        raise _cache_error(var, where, f"cannot make it: {e.strerror or e}") from None
    if blocked is not None:
        raise ConfigError(f"{var}={where!r}: {blocked} is a file; allowed: a directory (made if missing)"
                          f"{', or 0 to turn the cache off' if var == 'TALLYSIM_COMPILE_CACHE' else ''}")


def start_jax() -> None:
    """What a command that runs something sets up before JAX starts: `jax.distributed` (launched with
    TALLYSIM_DISTRIBUTED=1) and the compile cache. `run` and `sweep` call it only once their config
    has validated, so a refused config imports no JAX (~0.25 s of CPU instead of ~2 s), and `figure`
    once its first figure's configs have (figures.main); `bench` never (it times compiling). Safe to
    call again (see the top)."""
    from tallysim import jax_check
    jax_check.importable()              # a JAX_* value JAX cannot read: one line, not its traceback
    from tallysim.sim import distributed
    distributed.initialize_distributed()       # before JAX starts: TALLYSIM_DISTRIBUTED=1; a repeat is checked
    compile_cache()
    jax_check.backend()                 # JAX_PLATFORMS naming a missing backend, 64-bit mode
