"""tallysim: a JAX single-host simulator for communication-efficient federated learning.

The public API (tallysim/api.py): `Config`, `run(cfg, out=...) -> Results`, `drive(cfg)` (a protocol
round by hand), `load_plugin(module)`, `Results`, `read_rows(dirs)` (every metrics row below some
directories, flat, for pandas), `compare(a, b)` (paired-seed comparison of two runs, a sweep's pairs (family-wise), or committed per-seed CSV rows). Importing tallysim imports no JAX.
"""
__version__ = "0.1.0"

_API = ("Config", "Results", "drive", "load_plugin", "Driver", "read_rows", "compare")


def submodule(package: str, name: str):
    """`package.name` imported, if `name` is a submodule of `package`, else None. The docs call
    `tallysim.startup.compile_cache()`, `tallysim.config.load_file(...)` and
    `tallysim.results.metrics.accuracy(row)` after a plain `import tallysim`, as numpy's submodules
    are used: a package's `__getattr__` imports a submodule on first use, so `import tallysim` still
    imports no JAX and `tallysim.results` none of its modules until one is named."""
    if name.startswith("_"):
        return None
    import importlib
    import importlib.util
    if importlib.util.find_spec(f"{package}.{name}") is None:
        return None
    return importlib.import_module(f"{package}.{name}")


def __getattr__(name):
    if name == "run":
        # `tallysim.run` is also the module run.py; it is callable (`tallysim.run(cfg, out=...)`, the
        # API's run), so both the module's functions and the call work.
        import importlib
        return importlib.import_module("tallysim.run")
    if name in _API:
        from tallysim import api
        return getattr(api, name)
    module = submodule(__name__, name)
    if module is not None:
        return module
    raise AttributeError(f"module 'tallysim' has no attribute {name!r}")


__all__ = ["__version__", "run", *_API]
