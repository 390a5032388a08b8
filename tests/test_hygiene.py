"""The suite's own hygiene: the data cache is always a temporary one, whatever $TALLYSIM_DATA says."""
import os
from pathlib import Path

from tallysim.data.cache import cache_dir


def test_cache_is_the_sessions_temporary_one(tmp_path_factory):
    assert cache_dir() == Path(os.environ["TALLYSIM_DATA"])
    assert cache_dir().is_relative_to(tmp_path_factory.getbasetemp())


def test_command_line_compile_cache_location(monkeypatch, tmp_path):
    import jax
    from tallysim import cli
    before = jax.config.jax_compilation_cache_dir
    try:
        monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
        monkeypatch.setenv("TALLYSIM_COMPILE_CACHE", str(tmp_path / "xla"))
        cli.compile_cache()
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla")
        monkeypatch.setenv("TALLYSIM_COMPILE_CACHE", "")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
        cli.compile_cache()
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "home-cache" / "tallysim" / "xla")
        jax.config.update("jax_compilation_cache_dir", before)
        monkeypatch.setenv("TALLYSIM_COMPILE_CACHE", "0")
        cli.compile_cache()
        assert jax.config.jax_compilation_cache_dir == before
        monkeypatch.setenv("TALLYSIM_COMPILE_CACHE", str(tmp_path / "other"))
        monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax-own"))
        cli.compile_cache()                      # JAX's own variable wins: nothing changes
        assert jax.config.jax_compilation_cache_dir == before
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def test_results_metrics_imports_nothing_above_it():
    # run.py, sweep.py and cli.py import tallysim.results.metrics; it imports none of them (nor the
    # drawing modules beside it, nor JAX), so the metrics schema has no upward arrow.
    import ast
    import subprocess
    import sys
    import tallysim.results.metrics as m
    tree = ast.parse(Path(m.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
            names.update(f"{node.module}.{a.name}" for a in node.names)
    banned = ("tallysim.run", "tallysim.sweep", "tallysim.cli", "tallysim.results.plot",
              "tallysim.results.pareto", "tallysim.results.figures", "jax")
    assert not [n for n in names if any(n == b or n.startswith(b + ".") for b in banned)], names
    assert {n.split(".")[0] for n in names} <= {"__future__", "json", "math", "os", "pathlib", "typing",
                                                "numpy", "tallysim", "matplotlib"}, names
    code = ("import sys, tallysim.results.metrics\n"
            "bad = [m for m in ('jax', 'tallysim.run', 'tallysim.sweep', 'tallysim.cli', 'matplotlib') "
            "if m in sys.modules]\nassert not bad, bad\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(m.__file__).resolve().parents[2])})
    assert out.returncode == 0, out.stderr
