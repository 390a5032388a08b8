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
