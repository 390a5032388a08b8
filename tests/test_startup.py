"""startup.start_jax is safe to call again in one process (a notebook or a test calling cli.main or
tallysim.run repeatedly): the same settings do nothing, other compile-cache settings take effect, and
other multi-process settings, which JAX cannot change once its processes started, are one line saying
so. Each case runs in a fresh Python (JAX's distributed state and its cache are per process)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str, **env) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON line, returned."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("TALLYSIM_") and k != "JAX_COMPILATION_CACHE_DIR"}
    environ.update(PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **env)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environ, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_multi_process_start_is_harmless_and_other_settings_are_refused():
    port, other = free_port(), free_port()
    got = _python(f"""
        import json, os
        from tallysim import startup
        from tallysim.config import ConfigError
        out = {{}}
        def attempt(key):
            try:
                startup.start_jax()
                out[key] = "ok"
            except ConfigError as e:
                out[key] = str(e)
            except Exception as e:         # what the unguarded second jax.distributed.initialize raised
                out[key] = type(e).__name__ + ": " + str(e)
        attempt("first")
        import jax
        out["processes"] = jax.process_count()
        attempt("again")
        os.environ["TALLYSIM_COORDINATOR"] = "127.0.0.1:{other}"
        attempt("other coordinator")
        for k in ("TALLYSIM_DISTRIBUTED", "TALLYSIM_COORDINATOR", "TALLYSIM_NUM_PROCESSES", "TALLYSIM_PROCESS_ID"):
            del os.environ[k]
        attempt("one process")
        print(json.dumps(out))
        """, TALLYSIM_DISTRIBUTED="1", TALLYSIM_COORDINATOR=f"127.0.0.1:{port}", TALLYSIM_NUM_PROCESSES="1",
        TALLYSIM_PROCESS_ID="0", TALLYSIM_COMPILE_CACHE="0")
    assert got["first"] == "ok" and got["processes"] == 1
    assert got["again"] == "ok", got["again"]
    for key in ("other coordinator", "one process"):
        assert got[key].startswith("this process already joined a multi-process run (num_processes=1, "
                                   f"process_id=0, coordinator_address=127.0.0.1:{port})"), got[key]
        assert "needs a new process" in got[key]
    assert f"coordinator_address=127.0.0.1:{other} needs a new process" in got["other coordinator"]
    assert "one process (TALLYSIM_DISTRIBUTED unset) needs a new process" in got["one process"]


def test_a_multi_process_start_after_jax_started_says_why_it_cannot():
    port = free_port()
    got = _python(f"""
        import json, os
        import jax.numpy as jnp
        from tallysim import startup
        from tallysim.config import ConfigError
        startup.start_jax()                       # one process
        float(jnp.ones(3).sum())                  # JAX has started
        os.environ.update(TALLYSIM_DISTRIBUTED="1", TALLYSIM_COORDINATOR="127.0.0.1:{port}",
                          TALLYSIM_NUM_PROCESSES="1", TALLYSIM_PROCESS_ID="0")
        try:
            startup.start_jax()
            print(json.dumps({{"error": None}}))
        except ConfigError as e:
            print(json.dumps({{"error": str(e)}}))
        """, TALLYSIM_COMPILE_CACHE="0")
    assert got["error"] and got["error"].startswith("TALLYSIM_DISTRIBUTED=1, but JAX already started in this "
                                                    "process"), got
    assert "run it in a new process" in got["error"]


def test_a_second_call_with_another_compile_cache_uses_it(tmp_path):
    """The first call's cache holds the first program; after TALLYSIM_COMPILE_CACHE names another
    directory, the next program goes there (JAX kept its opened cache before); =0 puts back what was
    in effect before (no cache), and a repeat of the same settings changes nothing."""
    first, second = tmp_path / "first", tmp_path / "second"
    got = _python(f"""
        import json, os
        import jax, jax.numpy as jnp
        from tallysim import startup
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        out = {{"before": jax.config.jax_compilation_cache_dir}}
        startup.start_jax()
        startup.start_jax()                      # the same settings again: nothing changes
        float(jax.jit(lambda x: x * 2)(jnp.ones(3)).sum())
        os.environ["TALLYSIM_COMPILE_CACHE"] = {str(second)!r}
        startup.start_jax()
        float(jax.jit(lambda x: x * 3 + 1)(jnp.ones(4)).sum())
        out["dir"] = jax.config.jax_compilation_cache_dir
        os.environ["TALLYSIM_COMPILE_CACHE"] = "0"
        startup.start_jax()
        out["off"] = jax.config.jax_compilation_cache_dir
        print(json.dumps(out))
        """, TALLYSIM_COMPILE_CACHE=str(first))
    assert got["before"] is None and got["dir"] == str(second) and got["off"] is None, got
    assert len([p for p in first.iterdir() if p.name.startswith("jit__lambda")]) == 1, list(first.iterdir())
    assert len([p for p in second.iterdir() if p.name.startswith("jit__lambda")]) == 1, list(second.iterdir())
