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
    if where == "0" or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    if not where:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        where = str(Path(base) / "tallysim" / "xla")
    import jax
    jax.config.update("jax_compilation_cache_dir", where)


def start_jax() -> None:
    """What a command that runs something sets up before JAX starts: `jax.distributed` (launched with
    TALLYSIM_DISTRIBUTED=1) and the compile cache. `run` and `sweep` call it only once their config
    has validated, so a refused config imports no JAX (~0.25 s of CPU instead of ~2 s), and `figure`
    once its first figure's configs have (figures.main); `bench` never (it times compiling)."""
    from tallysim.sim import mesh
    mesh.initialize_distributed()       # before JAX starts: TALLYSIM_DISTRIBUTED=1
    compile_cache()
