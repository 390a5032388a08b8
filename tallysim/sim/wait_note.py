"""The note a long wait for a compiled program's result prints (mesh.host): a hang of XLA's CPU thread pool
(docs/text.md, "A run that hangs on a CPU") is silent, with the process's CPU time constant; a stretch of
hundreds of rounds in one scan is silent too, for as long, while the CPU works. The process's CPU time over
the wait tells them apart on a CPU: a busy wait says nothing (the progress lines say the run goes on), an
idle one says it may be stuck. On an accelerator the host idles while the device computes, so CPU time
tells nothing there; the awaited jax Arrays do: `jax.Array.is_ready()` says whether the device finished
them. Not ready: the device is still computing (said once); all ready while the host's fetch has still
not returned GRACE seconds later: the fetch is stuck, not the device. Without Arrays to ask, the note names what is
running rather than calling it stuck."""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Optional

import jax

BUSY = 0.02     # CPU seconds per wall second over a wait above which the program is working (the hang: 0;
                # a working run on 2 cores at load 25 still gets ~0.08 per thread)
GRACE = 60.0    # seconds the fetch gets once every result is ready (they may have come ready just now; a
                # run's results are metrics and a state, copied to the host in seconds)


def _say(waited: float, what: str, tail: str) -> None:
    running = f" ({what})" if what else ""
    print(f"tallysim: no result from the compiled program after {waited:g} s{running}{tail}", file=sys.stderr,
          flush=True)


# what was measured, not "no CPU": the share of one core the process's CPU time over the last period gives
CPU_STUCK = (" and the process used {share:.1%} of a core over the last {period:g} s (under {busy:.0%}, which a "
             "working run stays above): it is stuck (docs/text.md, \"A run that hangs on a CPU\")")
MAYBE = "; the device may still be computing it (the result comes when it ends); if it never does, it is stuck"
COMPUTING = ("; the device is still computing it ({left} of {of} results not ready; the result comes when it "
             "ends)")
FETCH_STUCK = ("; the device finished it (every result is ready) but fetching the results to the host has not "
               "returned: the fetch is stuck, not the device (docs/text.md, \"A run that hangs on a CPU\")")


def _ready(arrays: list) -> Optional[int]:
    """How many of `arrays` the device has not finished, by their is_ready(); None where it cannot tell."""
    try:
        return sum(not a.is_ready() for a in arrays)
    except Exception:       # a deleted or donated buffer, a backend without it: no answer, not a traceback
        return None


class WaitNote:
    """Checks every `period` seconds until stop(): on a CPU, says the program is stuck the first time a
    period passes with the process (every thread, XLA's included) using under BUSY of a core; elsewhere,
    with jax Arrays in `tree` (the results awaited), says once that the device is still computing while
    any is not ready, and that the fetch is stuck where all are ready and the fetch has still not returned
    GRACE seconds later; without them, says once what is still running. `what`: the program's
    work in words, e.g. "rounds 1-400"."""

    def __init__(self, period: float, what: str = "", tree: Any = None):
        self.period, self.what, self.done = period, what, threading.Event()
        self.on_cpu = jax.default_backend() == "cpu"
        self.arrays = [x for x in jax.tree.leaves(tree) if callable(getattr(x, "is_ready", None))]
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        waited, cpu, computing_said = 0.0, time.process_time(), False
        while not self.done.wait(self.period):
            waited += self.period
            now = time.process_time()
            if self.on_cpu:
                if now - cpu < BUSY * self.period:
                    share = max(now - cpu, 0.0) / self.period
                    return _say(waited, self.what, CPU_STUCK.format(share=share, period=self.period, busy=BUSY))
                cpu = now
                continue
            left = _ready(self.arrays) if self.arrays else None
            if left is None:
                return _say(waited, self.what, MAYBE)
            if left == 0:
                grace = min(GRACE, self.period)
                if not self.done.wait(grace):
                    _say(waited + grace, self.what, FETCH_STUCK)
                return
            if not computing_said:
                _say(waited, self.what, COMPUTING.format(left=left, of=len(self.arrays)))
                computing_said = True

    def __enter__(self) -> "WaitNote":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
