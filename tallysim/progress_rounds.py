"""What a run's round bar (progress.RoundBar) and its round lines (progress_lines.RoundLines) both keep
and show (RoundFacts): the configurations' short labels, the rate, the compile time, each
configuration's newest headline, and which seed chunk a round falls in (chunk_place); and the ticker
that keeps a compile from looking like a hang (CompileTicker). Split from progress_base.py, which
re-exports every name."""
from __future__ import annotations

import threading
import time
from typing import Optional

from tallysim.results.metrics import headline_key

# A headline column -> the bar's name for it.
NAMES = {"acc_global": "server", "acc_mean": "peers"}


def headline(row: dict) -> tuple[str, float]:
    """(the bar's name, value) of a metrics row's headline accuracy, as the summary line picks it."""
    k = headline_key(row)
    return NAMES.get(k, k), row[k]


class CompileTicker:
    """Calls `tick` every `period` seconds, from a daemon thread, until stop(): while the first stretch of
    rounds compiles (seconds to minutes: 112 s for docs/text.md's first LSTM run on the shared CPU) a
    bar's clock stood still at 00:00 and a log held one `compiling` line, so a slow compile looked like a
    hang. A tick that fails ends the ticking, never the run; period <= 0 ticks never. stop() waits for a
    tick under way, so no `compiling` line lands after the line that says it compiled."""

    def __init__(self, period: float, tick):
        self._stop, self._lock = threading.Event(), threading.Lock()
        if period > 0:
            threading.Thread(target=self._loop, args=(period, tick), daemon=True,
                             name="tallysim-compile-ticker").start()

    def _loop(self, period: float, tick) -> None:
        while not self._stop.wait(period):
            with self._lock:
                if self._stop.is_set():
                    return
                try:
                    tick()
                except Exception:       # a closed stream, a widget gone: progress only, stop quietly
                    return

    def stop(self) -> None:
        with self._lock:
            self._stop.set()


class RoundFacts:
    """What the round bar (progress.RoundBar) and the round lines (progress_lines.RoundLines) both keep
    and show: the configurations' short labels, the work done since the first stretch came back (the
    rate), the compile time, and each configuration's newest headline."""

    def __init__(self, labels: Optional[list], initial: int, unit: str, chunks: Optional[list] = None,
                 noun: str = "seeds"):
        self.labels = short_labels(labels) if labels and len(labels) > 1 else None
        self.runs = len(labels) if labels else 1        # the sweep runs these rounds stand for
        self.unit = unit                # what `work` counts: tokens (next-token tasks) or examples
        self.initial = initial          # the rounds done before a resume (counted, not in the rate or the ETA)
        self.work, self.t_work = 0, None
        self.t0 = time.perf_counter()
        self.compile_s: Optional[float] = None
        self.latest: dict = {}          # label -> (name, value, MB per peer)
        # the seed (or a grouped sweep's lane) chunks these rounds run in one after another, [(lo, hi,
        # rounds)]: the total counts every chunk's rounds, so rounds=400 in two chunks read "round 342/800"
        self.chunks = chunks if chunks and len(chunks) > 1 else None
        self.noun = noun
        self.t_compile = self.t0        # when the stretch compiling now started (a later chunk's: chunk_starts)

    def chunk_starts(self, compiles: bool = False) -> None:
        """run._run_chunk: a seed (lane) chunk starts. The first one __init__ announced; a later one kept
        the finished chunk's `seeds 1-2 of 4, round 400/400` until its first stretch came back, while it
        compiled again (another width). Now: the new chunk's round 0, compiling, its first stretch timed as
        a compile like the first chunk's (the rate starts again after it). `compiles`: its width is new to
        the run (the narrower last chunk), so it compiles programs of its own: the runs' clock is told
        (compiling_again: progress_base.chunk_compiles), which counted it among the compiles to come."""
        if self.compile_s is None:      # nothing has come back since `compiling` was said
            return
        self.ticker.stop()
        self.compile_s, self.t_compile = None, time.perf_counter()
        self.work, self.t_work = 0, None
        self.ticker = self.compiling_again(compiles)

    def where(self, n: int, total: int, coming: bool = False) -> str:
        """`round 142/400`, or in a run of several seed chunks `seeds 3-4 of 4, round 142/400`: the
        chunk that round `n` of all `total` falls in and the round within it (a chunk's last round stays
        in that chunk, not "round 0" of the next). `coming`: `n` rounds are done and the next is under
        way (compiling): at a chunk's end that is the next chunk's round 0 (chunk_place)."""
        if not self.chunks:
            return f"round {n}/{total}"
        return chunk_place(n, self.chunks, self.noun, coming)

    def rate(self, now: Optional[float] = None) -> Optional[float]:
        """Examples (tokens) per second since the first stretch came back; None before a second one."""
        if not self.work or self.t_work is None:
            return None
        return self.work / max((now or time.perf_counter()) - self.t_work, 1e-9)

    def remember(self, row: dict, i: int = 0) -> None:
        """Configuration i's newest aggregated metrics row."""
        name, value = headline(row)
        label = self.labels[i] if self.labels else None
        self.latest[label] = (name, value, row["bits_per_peer"] / 8e6)

    def shown(self) -> Optional[tuple]:
        """(label, name, value, MB per peer) to show: a grouped sweep's best configuration so far, with
        its label; else the one configuration's, label None. None before the first row."""
        if not self.latest:
            return None
        if self.labels:
            label, (name, value, mb) = max(self.latest.items(), key=lambda kv: kv[1][1])
            return label, name, value, mb
        return (None, *self.latest[None])


def chunk_place(n: int, chunks: list, noun: str = "seeds", coming: bool = False) -> str:
    """Round `n` of all the chunks' rounds, [(lo, hi, rounds)] run one after another, as the chunk and the
    round within it: `seeds 3-4 of 4, round 142/400` (`seed 3 of 4` for a chunk of one). `n` at a
    chunk's end is that chunk's last round (`seeds 1-2 of 4, round 400/400`: just done), or with `coming`
    (the rounds to come are compiling: a resume at a chunk's end) the next chunk's `round 0/400`: the
    finished chunk's 400/400 beside `compiling` read as a hang in its last round."""
    of = chunks[-1][1]
    done = 0
    for lo, hi, rounds in chunks:
        if n < done + rounds or (n == done + rounds and not coming) or (lo, hi, rounds) == chunks[-1]:
            which = f"{noun[:-1]} {lo + 1}" if hi - lo == 1 else f"{noun} {lo + 1}-{hi}"
            return f"{which} of {of}, round {n - done}/{rounds}"
        done += rounds
    raise AssertionError("unreachable: the last chunk returns")


def short_labels(names: list) -> list:
    """A group's run names without the `key=value` parts they all share (`a=1__b=2`, `a=1__b=3` ->
    `b=2`, `b=3`): what tells the configurations apart."""
    parts = [str(n).split("__") for n in names]
    common = set.intersection(*(set(p) for p in parts)) if parts else set()
    return ["__".join(x for x in p if x not in common) or str(n) for p, n in zip(parts, names)]
