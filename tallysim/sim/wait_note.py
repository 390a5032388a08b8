"""The note a long wait for a compiled program's result prints (mesh.host): a hang of XLA's CPU thread pool
(docs/text.md, "A run that hangs on a CPU") is silent, with the process's CPU time constant; a stretch of
hundreds of rounds in one scan is silent too, for as long, while the CPU works. The process's CPU time over
the wait tells them apart on a CPU: a busy wait says nothing (the progress lines say the run goes on), an
idle one says it may be stuck. On an accelerator the host idles while the device computes, so the note
there names what is running rather than calling it stuck."""
from __future__ import annotations

import sys
import threading
import time

import jax

BUSY = 0.02     # CPU seconds per wall second over a wait above which the program is working (the hang: 0;
                # a working run on 2 cores at load 25 still gets ~0.08 per thread)


def _say(waited: float, what: str, on_cpu: bool) -> None:
    running = f" ({what})" if what else ""
    tail = (" and the process used no CPU meanwhile: it is stuck (docs/text.md, \"A run that hangs on a CPU\")"
            if on_cpu else "; the device may still be computing it (the result comes when it ends); if it never "
            "does, it is stuck")
    print(f"tallysim: no result from the compiled program after {waited:g} s{running}{tail}", file=sys.stderr,
          flush=True)


class WaitNote:
    """Checks every `period` seconds until stop(): on a CPU, says the program is stuck the first time a
    period passes with the process (every thread, XLA's included) using under BUSY of a core; elsewhere,
    says once what is still running. `what`: the program's work in words, e.g. "rounds 1-400"."""

    def __init__(self, period: float, what: str = ""):
        self.period, self.what, self.done = period, what, threading.Event()
        self.on_cpu = jax.default_backend() == "cpu"
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        waited, cpu = 0.0, time.process_time()
        while not self.done.wait(self.period):
            waited += self.period
            now = time.process_time()
            if not self.on_cpu or now - cpu < BUSY * self.period:
                _say(waited, self.what, self.on_cpu)
                return
            cpu = now

    def __enter__(self) -> "WaitNote":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
