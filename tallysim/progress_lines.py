"""Progress as plain lines, for a stderr that is not a terminal (progress_base.mode() == "lines"): a
`nohup ... > log 2>&1`, a batch job's log, CI, `tee`. tqdm would redraw its bar with carriage returns
into one ever-growing line that `less` and `tail -f` cannot show; here each line is a whole statement,
written when there is something new, at most one every TALLYSIM_PROGRESS_INTERVAL seconds (default 30)
plus the first (compiled, or the first run done) and the last:

    round 0/200  compiling
    round 0/200  compiling  elapsed 30s          (only while a compile outlasts the interval)
    round 1/200  peers=0.5121  MB/peer=0.0008  compiled in 9.4s
    round 1/200  running  elapsed 40s  (ETA after the next stretch of rounds)   (only while a stretch outlasts it)
    round 40/200  peers=0.7123  MB/peer=0.0312  51,200 examples/s  12.3 s/round  elapsed 8m10s  ETA 32m48s
    round 200/200  peers=0.8012  MB/peer=0.156  50,950 examples/s  12.2 s/round  elapsed 40m41s
    runs 3/12 (25%)  elapsed 2h02m  ETA 6h06m

A round line under a sweep or a figure ends with the runs' count and ETA (`[runs 2/12, ETA 3h05m]`).
The facts are the bar's (progress.py); the ETA counts from the first stretch of rounds on (compiling
excluded), the runs' ETA from the rounds done of the runs under way.

In a Jupyter kernel without ipywidgets (tqdm draws no widget there, and a cell's stderr is no terminal)
these lines were printed one under another: figures.ipynb's cell grew by a line every 30 s, three or more
per run. There they are one line of the cell's output, updated in place (an IPython display handle,
which needs no widgets), at most once a second (KERNEL_INTERVAL): one line for a command's runs and
rounds together, a new one for the next command.
"""
from __future__ import annotations

import sys
import time
from typing import Optional

from tallysim import progress_base as base


KERNEL_INTERVAL = 1.0     # seconds between two updates of a kernel's one line (nothing piles up there)

_shown: list = []         # a kernel's display handle of the command's one line, once shown


def say(text: str) -> None:
    if base.in_kernel():
        from IPython.display import Pretty, display
        if _shown:
            _shown[0].update(Pretty(text))
        else:
            _shown.append(display(Pretty(text), display_id=True))
        return
    print(text, file=sys.stderr, flush=True)      # whole lines, at once: `tail -f` shows each as written


def _command_starts() -> None:
    """The outermost progress of a command (no runs bar open above it): its own line in a kernel, below
    what the cell printed, not an update of the last command's (maybe another cell's)."""
    if not base.runs_open():
        _shown.clear()


def _interval() -> float:
    return min(base.interval(), KERNEL_INTERVAL) if base.in_kernel() else base.interval()


class RoundLines(base.RoundFacts):
    """RoundBar's interface (update, row, rate, close), as throttled lines."""

    def __init__(self, total: int, labels: Optional[list] = None, initial: int = 0, unit: str = "examples",
                 chunks: Optional[list] = None, noun: str = "seeds"):
        super().__init__(labels, initial, unit, chunks, noun)
        self.total, self.n, self.n_work = total, initial, initial
        self.interval = _interval()
        _command_starts()
        self.said_at, self.said_n = self.t0, None
        self.beat_at = self.t_stretch = self.t0
        # in seed chunks the line names the chunk's round already; "after round 540" counted all chunks'
        resumed = (" (resumed)" if self.chunks else f" (resumed after round {initial})") if initial else ""
        say(f"{self.where(initial, total, coming=True)}  compiling{resumed}")
        # a compile longer than the interval says it is still compiling, and for how long, each interval
        self.ticker = base.CompileTicker(self.interval, self._compiling)

    def _compiling(self) -> None:
        if self.compile_s is None:
            say(f"{self.where(self.n, self.total, coming=True)}  compiling  elapsed "
                f"{base.duration(time.perf_counter() - self.t_compile)}" + base.outer_status())

    def _running(self) -> None:
        """Between two stretches of rounds, once an interval has passed with no line: still running, the
        time since the start, and the time left at the rounds' pace so far (after the first stretch only
        the compile's, which is no pace: it says when an ETA comes)."""
        now = time.perf_counter()
        quiet = now - max(self.said_at, self.beat_at)
        if self.compile_s is None or self.n >= self.total or quiet < self.interval:
            return
        text = f"{self.where(self.n, self.total)}  running  elapsed {base.duration(now - self.t0)}"
        if self.n > self.n_work:
            per_round = (self.t_stretch - self.t_work) / (self.n - self.n_work)
            left = per_round * (self.total - self.n) - (now - self.t_stretch)     # past the end: duration's 0s
            text += f"  ETA {base.duration(left)}"
        else:
            text += "  (ETA after the next stretch of rounds)"
        say(text + base.outer_status())
        # its own clock: the stretch's full line (its accuracy) is not held back by it, nor is said_n
        # moved, so close() still says the last rounds' full line
        self.beat_at = now

    def compiling_again(self, compiles: bool = False) -> base.CompileTicker:
        """chunk_starts: the next chunk's round 0, compiling, said at once and each interval after;
        `compiles`: as RoundBar's (the runs' clock told)."""
        if compiles:
            base.chunk_compiles()
        say(f"{self.where(self.n, self.total, coming=True)}  compiling")
        return base.CompileTicker(self.interval, self._compiling)

    def update(self, rounds: int, work: int = 0) -> None:
        now = time.perf_counter()
        self.n += rounds
        base.report_rounds(self.n, self.total, self.runs, self.initial, compiled=self.compile_s is None)
        if self.compile_s is None:      # the first stretch has come back: always said (how long it took)
            self.ticker.stop()
            self.compile_s = now - self.t_compile
            self.t_work, self.n_work = now, self.n
            # a stretch of eval_every rounds can run for minutes (tally on 5,716 word windows: 2 rounds
            # in 4 min under load) with no line: each interval without one now says it is still running
            self.ticker = base.CompileTicker(self.interval, self._running)
            return self._say(now)
        self.t_stretch = now
        self.work += work
        if self.n >= self.total or now - self.said_at >= self.interval:
            self._say(now)

    def row(self, row: dict, i: int = 0) -> None:
        self.remember(row, i)

    def line(self, now: float) -> str:
        parts = [self.where(self.n, self.total)]
        shown = self.shown()
        if shown is not None:
            label, name, value, mb = shown
            if label is not None:       # a grouped sweep: the best configuration so far, with its name
                parts.append(f"best {name}={value:.4f} [{label}]")
            else:
                parts += [f"{name}={value:.4f}", f"MB/peer={mb:.3g}"]
        if self.n == self.n_work:       # only the compiled stretch so far
            parts.append(f"compiled in {self.compile_s:.1f}s")
        else:
            rate = self.rate(now)
            if rate is not None:
                parts.append(f"{rate:,.0f} {self.unit}/s")
            per_round = (now - self.t_work) / (self.n - self.n_work)
            parts += [f"{per_round:.3g} s/round", f"elapsed {base.duration(now - self.t0)}"]
            if self.n < self.total:
                parts.append(f"ETA {base.duration(per_round * (self.total - self.n))}")
        return "  ".join(parts) + base.outer_status()

    def _say(self, now: float) -> None:
        say(self.line(now))
        self.said_at, self.said_n = now, self.n

    def close(self) -> None:
        """The last state, unless just said (a run that stopped early, or its last stretch throttled)."""
        self.ticker.stop()
        if self.compile_s is not None and self.said_n != self.n:
            self._say(time.perf_counter())


class RunsLines:
    """RunsBar's interface (done, close), as lines: one per finished run or group, throttled as the
    round lines are, the first and the last always."""

    def __init__(self, total: int, desc: str = "runs", done_before: int = 0):
        self.clock = base.RunsClock(total, done_before)
        self.desc = desc
        self.interval = _interval()
        self.said_at, self.said_n = None, 0
        _command_starts()
        base.open_runs(self)

    def report(self, partial: float, worked: Optional[float] = None, compiled: bool = False) -> None:
        self.clock.report(partial, worked, compiled)      # no line of its own: the round lines carry the runs' ETA

    def expect_compiles(self, n: int) -> None:
        self.clock.expect_compiles(n)       # the sweep's (or figure's) batches that compile (RunsClock)

    def batch_starts(self, compiles: int) -> None:
        self.clock.batch_starts(compiles)

    def done(self, n: int = 1, skipped: bool = False) -> None:
        self.clock.count(n, skipped)
        now = time.perf_counter()
        if self.said_at is None or self.clock.n >= self.clock.total or now - self.said_at >= self.interval:
            self._say(now)

    def _say(self, now: float) -> None:
        c = self.clock
        say(f"{self.desc} {c.n}/{c.total} ({100 * c.n / max(c.total, 1):.0f}%)  elapsed "
            f"{base.duration(now - c.t0)}" + ("" if c.n >= c.total else f"  {c.eta_text(now)}"))
        self.said_at, self.said_n = now, c.n

    def close(self) -> None:
        base.close_runs(self)
        if self.said_n != self.clock.n:     # stopped (Ctrl-C) with runs done since the last line
            self._say(time.perf_counter())
