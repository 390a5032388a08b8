"""Reading runs and drawing them: `metrics` (the run-directory schema, the headline accuracy, seed
aggregation, the summary line, the matplotlib setup; the headline numbers are in `headline`, the
row writer in `rows`, both re-exported by `metrics`), `plot` (`tallysim plot`), `pareto`
(`tallysim pareto`) and `figures` (`tallysim figure`). Nothing is imported here, so `run` can use
`metrics` without loading the plotting modules; `tallysim.results.metrics` after a plain `import
tallysim` imports it on first use."""


def __getattr__(name):
    # tallysim.submodule's rule, written here: importing the package `tallysim` from one of its layers
    # would be an import cycle (tests/test_hygiene.py)
    import importlib
    import importlib.util
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
