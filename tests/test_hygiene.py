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


# The layering: tallysim/sim/ holds the vmapped building blocks; they import each other and what lies
# beneath them (config, sizing, validation, data), never what is built on them.
BENEATH_SIM = {"tallysim.config", "tallysim.sizing", "tallysim.validation", "tallysim.data"}


def _tallysim_imports(path: Path, package: str):
    """(line, module) for every tallysim module `path` imports, relative imports resolved."""
    import ast
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # `from tallysim import x` imports the module tallysim.x (or a name of tallysim's __init__)
            names = [f"{base}.{a.name}" for a in node.names] if base in ("tallysim", "tallysim.sim") else [base]
        else:
            continue
        yield from ((node.lineno, n) for n in names if n == "tallysim" or n.startswith("tallysim."))


def test_sim_imports_nothing_above_it():
    sim = Path(__file__).resolve().parent.parent / "tallysim" / "sim"
    files = sorted(sim.rglob("*.py"))
    assert len(files) > 10, files
    bad = []
    for f in files:
        package = "tallysim.sim" + "".join("." + p for p in f.parent.relative_to(sim).parts)
        for line, name in _tallysim_imports(f, package):
            ok = (name == "tallysim.sim" or name.startswith("tallysim.sim.")
                  or any(name == b or name.startswith(b + ".") for b in BENEATH_SIM))
            if not ok:
                bad.append(f"{f.relative_to(sim.parent.parent)}:{line} imports {name}")
    assert not bad, "tallysim/sim/ imports from above it:\n" + "\n".join(bad)


def test_sim_rule_catches_an_upward_import(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from tallysim import run, config\nfrom .. import protocols\nimport tallysim.cli\n"
                 "from tallysim.sim import vote\nfrom . import lanes\n")
    got = [n for _, n in _tallysim_imports(f, "tallysim.sim")]
    assert got == ["tallysim.run", "tallysim.config", "tallysim.protocols", "tallysim.cli",
                   "tallysim.sim.vote", "tallysim.sim.lanes"]


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
