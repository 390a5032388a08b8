"""Several processes as one run: the TALLYSIM_DISTRIBUTED* settings checked (one line for anything JAX
would misread), `jax.distributed.initialize()` with a bounded wait for the other processes, and a
second call in one process checked against the first (split from mesh.py; startup.py calls it before
JAX starts)."""
from __future__ import annotations

import os
import sys
import threading
from typing import Optional

import jax

from tallysim.config import ConfigError

DISTRIBUTED_TIMEOUT = 300       # seconds to wait for every process (TALLYSIM_DISTRIBUTED_TIMEOUT)
NOTICE_AFTER = 5                # seconds of waiting before saying so (and when it gives up)
_PROCESS_VARS = ("TALLYSIM_COORDINATOR", "TALLYSIM_NUM_PROCESSES", "TALLYSIM_PROCESS_ID")


def _env_int(env: dict, name: str, lo: int, hi: Optional[int] = None) -> Optional[int]:
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < lo or (hi is not None and value > hi):
        allowed = f"an integer {lo}..{hi}" if hi is not None else f"an integer >= {lo}"
        raise ConfigError(f"{name}={text!r}: allowed {allowed}")
    return value


def distributed_settings(env: Optional[dict] = None) -> Optional[dict]:
    """The checked TALLYSIM_* settings of a multi-process run: None for one process, else the keyword
    arguments of `jax.distributed.initialize` plus "timeout" (seconds). One-line errors for anything
    JAX would misread, ignore or die on: TALLYSIM_DISTRIBUTED other than 1/0/unset (`true` must not
    silently run one process), the process variables without TALLYSIM_DISTRIBUTED=1 or only some of
    them, non-integers, a process id outside 0..N-1, a coordinator that is not host:port."""
    env = os.environ if env is None else env
    flag = env.get("TALLYSIM_DISTRIBUTED", "").strip()
    given = [v for v in _PROCESS_VARS if env.get(v, "").strip()]
    if flag not in ("", "0", "1"):
        raise ConfigError(f"TALLYSIM_DISTRIBUTED={flag!r}: allowed 1 (several processes, jax.distributed) "
                          "or 0/unset (one process)")
    if flag != "1":
        if given:
            raise ConfigError(f"{given[0]} is set but TALLYSIM_DISTRIBUTED is not 1; set "
                              "TALLYSIM_DISTRIBUTED=1 for a multi-process run, or unset "
                              f"{', '.join(given)}")
        return None
    if given and len(given) != len(_PROCESS_VARS):
        missing = [v for v in _PROCESS_VARS if v not in given]
        raise ConfigError(f"{', '.join(given)} set without {', '.join(missing)}; set all three "
                          "(or none, where JAX detects the cluster itself)")
    timeout = _env_int(env, "TALLYSIM_DISTRIBUTED_TIMEOUT", 1, 86400)
    out = {"timeout": DISTRIBUTED_TIMEOUT if timeout is None else timeout}
    if given:
        n = _env_int(env, "TALLYSIM_NUM_PROCESSES", 1, 1 << 20)
        out["num_processes"] = n
        out["process_id"] = _env_int(env, "TALLYSIM_PROCESS_ID", 0, n - 1)
        address = env["TALLYSIM_COORDINATOR"].strip()
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"TALLYSIM_COORDINATOR={address!r}: allowed host:port, e.g. host0:1234 "
                              "(port 1..65535)")
        out["coordinator_address"] = address
    return out


def unread_timeout(env: Optional[dict] = None) -> Optional[str]:
    """The warning for TALLYSIM_DISTRIBUTED_TIMEOUT set where nothing reads it (one process: nothing waits
    for other processes), else None: a setting silently ignored looks like one that took effect."""
    env = os.environ if env is None else env
    text = env.get("TALLYSIM_DISTRIBUTED_TIMEOUT", "").strip()
    if not text or env.get("TALLYSIM_DISTRIBUTED", "").strip() == "1":
        return None
    return (f"TALLYSIM_DISTRIBUTED_TIMEOUT={text} has no effect: it bounds the wait for the other processes of "
            "a multi-process run, and TALLYSIM_DISTRIBUTED is not 1 (one process, nothing to wait for); set "
            "TALLYSIM_DISTRIBUTED=1 for several processes, or unset TALLYSIM_DISTRIBUTED_TIMEOUT")


def initialize_distributed() -> bool:
    """`jax.distributed.initialize()` when the launcher asked for it (TALLYSIM_DISTRIBUTED=1, with
    TALLYSIM_COORDINATOR, TALLYSIM_NUM_PROCESSES and TALLYSIM_PROCESS_ID, or JAX's cluster
    auto-detection giving them). On CPUs the processes talk through gloo. Returns whether this is a
    multi-process run.

    Every process waits at most TALLYSIM_DISTRIBUTED_TIMEOUT seconds (default 300) for the others and
    the coordinator; past it, one line and exit 2. JAX's own timeout aborts the process with a C++
    stack trace, so a watchdog thread ends it first (JAX's is set a minute later)."""
    settings = distributed_settings()
    unread = unread_timeout()
    if unread:
        print(f"tallysim: warning: {unread}", file=sys.stderr, flush=True)
    _coordinator_resolves(settings)      # wrong whatever this process did before: said first
    if _already_set_up(settings):
        return jax.process_count() > 1
    if settings is None:
        return False
    timeout = settings.pop("timeout")
    # CPU devices of different processes talk through gloo (harmless for accelerators). Set before
    # initialize: asking for the backend first would start JAX single-process.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")

    who = settings.get("process_id", "?")
    where = settings.get("coordinator_address", "auto-detected")

    def still_waiting():                # a silent wait of minutes looks like a hang
        print(f"tallysim: process {who}: waiting for the other processes and the coordinator ({where}); "
              f"giving up after {timeout} s (TALLYSIM_DISTRIBUTED_TIMEOUT)", file=sys.stderr, flush=True)

    def give_up():
        print(f"tallysim: error: process {who}: the other processes or the coordinator ({where}) did not "
              f"answer within {timeout} s (TALLYSIM_DISTRIBUTED_TIMEOUT); start every process, check the "
              "address", file=sys.stderr, flush=True)
        os._exit(2)
    timers = [threading.Timer(timeout, give_up)]
    if timeout > NOTICE_AFTER:
        timers.append(threading.Timer(NOTICE_AFTER, still_waiting))
    for t in timers:
        t.daemon = True
        t.start()
    try:
        jax.distributed.initialize(initialization_timeout=timeout + 60, **settings)
    except (ValueError, RuntimeError) as e:
        # TALLYSIM_DISTRIBUTED=1 alone where JAX detects no cluster (SLURM, Open MPI, ...): JAX raises
        # "coordinator_address should be defined" from deep inside; say what to set instead
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"TALLYSIM_DISTRIBUTED=1 but JAX could not start the processes ({first}); set "
                          "TALLYSIM_COORDINATOR=host:port, TALLYSIM_NUM_PROCESSES and TALLYSIM_PROCESS_ID "
                          "(where no cluster manager JAX detects runs), or unset TALLYSIM_DISTRIBUTED for "
                          "one process") from None
    finally:
        for t in timers:
            t.cancel()
    _joined.append(dict(settings, timeout=timeout))
    return jax.process_count() > 1


def _coordinator_resolves(settings: Optional[dict]) -> None:
    if settings is None or "coordinator_address" not in settings:
        return
    import socket
    host = settings["coordinator_address"].rpartition(":")[0].strip("[]")
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        raise ConfigError(f"TALLYSIM_COORDINATOR={settings['coordinator_address']!r}: the host {host!r} "
                          "does not resolve; give a reachable host:port (process 0's)") from None


# The settings this process joined a multi-process run with (initialize_distributed): JAX's processes
# cannot be left or joined again in one process, so a second call checks its settings against them.
_joined: list = []


def _already_set_up(settings: Optional[dict]) -> bool:
    """Whether an earlier call (a notebook's second run, a test calling the command line again)
    already set up what `settings` asks for: then nothing is to be done. A request this process can
    no longer honour is one line saying why: JAX starts its processes once per process, and only
    before JAX has started (jax.distributed.initialize's own rule)."""
    import jax.distributed
    if not _joined and not jax.distributed.is_initialized():
        if settings is not None:
            from jax._src import xla_bridge     # no public query; jax.distributed would refuse anyway
            if xla_bridge.backends_are_initialized():
                raise ConfigError("TALLYSIM_DISTRIBUTED=1, but JAX already started in this process as one "
                                  "process (an earlier run or computation); jax.distributed must start "
                                  "before JAX does: run it in a new process")
        return False
    if not _joined:                # the caller started jax.distributed itself: its processes are used
        return True
    where = lambda s: {k: v for k, v in s.items() if k != "timeout"}     # noqa: E731 - the timeout may differ
    if settings is None or where(settings) != where(_joined[0]):
        asked = ("one process (TALLYSIM_DISTRIBUTED unset)" if settings is None else
                 ", ".join(f"{k}={v}" for k, v in where(settings).items()) or "auto-detected processes")
        had = ", ".join(f"{k}={v}" for k, v in where(_joined[0]).items()) or "auto-detected"
        raise ConfigError(f"this process already joined a multi-process run ({had}) and JAX cannot leave "
                          f"or change it; {asked} needs a new process")
    return True
