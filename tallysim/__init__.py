"""tallysim: a JAX single-host simulator for communication-efficient federated learning.

The public API (tallysim/api.py): `Config`, `run(cfg, out=...) -> Results`, `drive(cfg)` (a protocol
round by hand), `load_plugin(module)`, `Results`, `read_rows(dirs)` (every metrics row below some
directories, flat, for pandas). Importing tallysim imports no JAX.
"""
__version__ = "0.1.0"

_API = ("Config", "Results", "drive", "load_plugin", "Driver", "read_rows")


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
