"""JAX as tallysim needs it, checked before anything is written or compiled: JAX_* environment values
JAX can read, a backend that starts, and 32-bit arrays. Without these checks a bad value was a JAX
traceback (`JAX_ENABLE_X64=maybe` a ValueError on import, `JAX_PLATFORMS=cuda` on a CPU machine an
AssertionError in jax.process_index) or, for 64-bit mode (JAX_ENABLE_X64=1, or
jax.config.update("jax_enable_x64", True) in a notebook), a type error inside the first round's
program, after the output directory was claimed and the data loaded."""
from __future__ import annotations

import os

from tallysim.fields import ConfigError


def _jax_settings() -> str:
    """The JAX_* and XLA_FLAGS variables set in the environment, for the message."""
    names = sorted(k for k in os.environ if k.startswith("JAX_") or k == "XLA_FLAGS")
    return ", ".join(f"{k}={os.environ[k]!r}" for k in names) or "none set"


def importable() -> None:
    """`import jax` under this environment: JAX reads its JAX_* variables on import and raises a
    ValueError naming the one it cannot read."""
    try:
        import jax  # noqa: F401
    except ValueError as e:
        raise ConfigError(f"JAX cannot start: {e}; allowed: a value JAX reads, or unset it "
                          f"(JAX_* / XLA_FLAGS now: {_jax_settings()})") from None


DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def _device_count_flag() -> None:
    """XLA_FLAGS' virtual CPU device count, the one XLA flag tallysim's docs tell users to set: `=abc`
    made XLA print its 90-line flag list and abort the process, and `=0` failed as "check JAX_PLATFORMS"."""
    for flag in os.environ.get("XLA_FLAGS", "").split():
        name, _, value = flag.partition("=")
        if name == DEVICE_COUNT_FLAG and not (value.isascii() and value.isdigit() and int(value) >= 1):
            raise ConfigError(f"XLA_FLAGS holds {flag}; allowed: {DEVICE_COUNT_FLAG}=N with N a whole number "
                              ">= 1 (the virtual CPU devices), or leave it out")


def backend() -> None:
    """JAX's default backend starts, and arrays are 32-bit (tallysim's programs and bit counts are)."""
    importable()
    _device_count_flag()
    import jax
    try:
        jax.devices()
    except (RuntimeError, AssertionError) as e:        # JAX_PLATFORMS naming a backend this machine lacks
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"JAX cannot start a backend ({first[:200]}); check JAX_PLATFORMS: allowed a "
                          f"platform this machine has (e.g. cpu), or unset it (JAX_* / XLA_FLAGS now: "
                          f"{_jax_settings()})") from None
    if jax.config.jax_enable_x64:
        raise ConfigError("JAX's 64-bit mode is on (JAX_ENABLE_X64 or jax.config.update('jax_enable_x64', "
                          "True)); tallysim's programs are 32-bit: unset JAX_ENABLE_X64, or "
                          "jax.config.update('jax_enable_x64', False) before running")


def device_out_of_memory(e: BaseException) -> bool:
    """Whether `e` is XLA saying the device (or XLA:CPU the host) ran out of memory."""
    return "RESOURCE_EXHAUSTED" in str(e) or "Out of memory" in str(e)


def out_of_memory(e: BaseException) -> bool:
    """Whether `e` says the device or the host ran out of memory (a smaller program may fit): the one
    rule run.py's retry, sweep's halving of a group and checkpoint's reading share."""
    return isinstance(e, MemoryError) or device_out_of_memory(e)
