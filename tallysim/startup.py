"""What the command line sets up before JAX starts (`start_jax`): `jax.distributed` and the compile
cache. Its own module, below both the command line (cli_commands.py) and `sweep`, which call it once
their config has validated, so a refused config imports no JAX."""
from __future__ import annotations


def compile_cache() -> None:
    """The command line keeps XLA's compiled programs on disk (JAX's persistent compilation cache), so
    rerunning a configuration, a sweep or a figure skips compiling: ~/.cache/tallysim/xla, or
    $TALLYSIM_COMPILE_CACHE; TALLYSIM_COMPILE_CACHE=0 turns it off. JAX's own
    JAX_COMPILATION_CACHE_DIR, when set, wins. Importing tallysim as a library changes nothing."""
    import os
    from pathlib import Path
    where = os.environ.get("TALLYSIM_COMPILE_CACHE", "")
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        _cache_is_a_directory("JAX_COMPILATION_CACHE_DIR", os.environ["JAX_COMPILATION_CACHE_DIR"])
        return
    if where == "0":
        return
    if where:
        _cache_is_a_directory("TALLYSIM_COMPILE_CACHE", where)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        where = str(Path(base) / "tallysim" / "xla")
    import jax
    jax.config.update("jax_compilation_cache_dir", where)


def _cache_is_a_directory(var: str, where: str) -> None:
    """A cache path that is a file (or under one) made JAX warn at every compile and cache nothing."""
    from pathlib import Path
    from tallysim.fields import ConfigError
    path = Path(where).expanduser()
    blocked = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise ConfigError(f"{var}={where!r}: {blocked} is a file; allowed: a directory (made if missing)"
                          f"{', or 0 to turn the cache off' if var == 'TALLYSIM_COMPILE_CACHE' else ''}")


def start_jax() -> None:
    """What a command that runs something sets up before JAX starts: `jax.distributed` (launched with
    TALLYSIM_DISTRIBUTED=1) and the compile cache. `run` and `sweep` call it only once their config
    has validated, so a refused config imports no JAX (~0.25 s of CPU instead of ~2 s), and `figure`
    once its first figure's configs have (figures.main); `bench` never (it times compiling)."""
    from tallysim import jax_check
    jax_check.importable()              # a JAX_* value JAX cannot read: one line, not its traceback
    from tallysim.sim import mesh
    mesh.initialize_distributed()       # before JAX starts: TALLYSIM_DISTRIBUTED=1
    compile_cache()
    jax_check.backend()                 # JAX_PLATFORMS naming a missing backend, 64-bit mode
