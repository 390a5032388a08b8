"""tallysim: a JAX single-host simulator for communication-efficient federated learning.

The public API (tallysim/api.py): `Config`, `run(cfg, out=...) -> Results`, `drive(cfg)` (a protocol
round by hand), `load_plugin(module)`, `Results`. Importing tallysim imports no JAX; it sets one XLA
CPU flag in XLA_FLAGS (below).
"""
__version__ = "0.1.0"

# XLA's CPU runtime (jaxlib 0.10.2) can lose its program's completion: with Eigen's multi-threaded
# intra-op pool on, a round program of the fig11 characters run (Shakespeare, LSTM, softlabel 8-bit or
# cfd) stopped for good in 2 of 3 runs, the executing thread parked in BlockUntilReady with every pool
# worker asleep and no CPU used (docs/text.md, "A run that hangs on a CPU"). With the pool off it
# finished 3 of 3 with the same numbers to the bit. XLA reads XLA_FLAGS once, when its CPU backend starts
# (the first computation, not `import jax`), so this must happen before that; it imports nothing. A flag
# the user already gave (XLA_FLAGS=--xla_cpu_multi_thread_eigen=true) wins.
CPU_FLAG = "--xla_cpu_multi_thread_eigen=false"


def _xla_cpu_flags() -> None:
    import os
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {CPU_FLAG}".strip()


_xla_cpu_flags()

_API = ("Config", "Results", "drive", "load_plugin", "Driver")


def __getattr__(name):
    if name == "run":
        # `tallysim.run` is also the module run.py; it is callable (`tallysim.run(cfg, out=...)`, the
        # API's run), so both the module's functions and the call work.
        import importlib
        return importlib.import_module("tallysim.run")
    if name in _API:
        from tallysim import api
        return getattr(api, name)
    raise AttributeError(f"module 'tallysim' has no attribute {name!r}")


__all__ = ["__version__", "run", *_API]
