"""What a run shows while it runs, on stderr: one bar over a sweep's or a figure's runs (done / total,
ETA), and under it the bar over the current run's rounds.

The round bar says "compiling" until the first stretch of rounds has come back (XLA compiles the
round and the evaluation on their first call), then how long that took (`compile=`: the first call's
wall time, compiling plus the rounds of that first stretch). Its accuracy is the summary's headline
metric and says which one: `server=` for a server model (FedAvg family, bridge), `peers=` for the
peers' mean. A grouped sweep's bar runs several configurations at once, so it shows a value only
with the configuration it belongs to (the best so far, labelled by its run name).

From the second stretch of rounds on, the bar names the training throughput: `tokens/s` on a
next-token task, `examples/s` on images: the examples (a text example's T positions each count as
a token) that the local steps of every lane processed, local steps x batch size (x T), per second of
wall time since the first stretch came back (compiling excluded; probe distillation steps and
evaluation not counted, their time is).

The bar over the runs estimates the time left from the runs done and the rounds done of the runs
under way (each round bar reports its share to it), so it has an estimate from the first stretch of
rounds of the first run on, not only once a run has finished; before that it says `ETA after the first
run`, and with only runs finished before left (a re-run) `all N runs done before`. While the next run compiles it holds the last run's estimate (`, next run compiling`) rather than
grow it by the seconds that pass with no rounds done.

Where stderr is not a terminal (`nohup ... > log 2>&1`, a batch job's log, CI, `tee`), redrawn bars
would be one ever-growing line of carriage returns; there the same facts are plain lines instead
(progress_lines.py), at most one every TALLYSIM_PROGRESS_INTERVAL seconds (default 30) plus the first
and the last. A notebook keeps its widgets; one without ipywidgets gets the lines as one line updated in
place (progress_lines.py). `--progress bars|lines` (or TALLYSIM_PROGRESS) forces
either.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Optional

from tallysim import progress_base as base
from tallysim.progress_base import (INTERVAL, INTERVAL_ENV, MODE_ENV, MODES, NAMES, RunsClock,  # noqa: F401
                                    duration, forced, headline, interval, mode, short_labels)

# A terminal that reports 0 columns (a pty nobody sized: some containers, CI runners, serial consoles)
# made tqdm's own sizing draw into -1 columns, which prints nothing at all: the bar vanished. The
# fallback is what shutil.get_terminal_size uses: $COLUMNS / $LINES, else 80 x 24.
FALLBACK = (80, 24)


def screen_shape(fp) -> tuple:
    """(columns, rows) for tqdm, one less than the terminal's as tqdm takes them; (None, None) when
    `fp` is no terminal (tqdm's default width); a size of 0 replaced by $COLUMNS/$LINES or 80x24."""
    try:
        cols, rows = os.get_terminal_size(fp.fileno())
    except (AttributeError, OSError, ValueError):       # no fileno (io.UnsupportedOperation is an OSError)
        return None, None

    def env(name, default):
        try:
            v = int(os.environ.get(name, ""))
        except ValueError:
            return default
        return v if v > 0 else default
    cols = cols if cols > 0 else env("COLUMNS", FALLBACK[0])
    rows = rows if rows > 0 else env("LINES", FALLBACK[1])
    return max(cols - 1, 20), max(rows - 1, 1)


def _tqdm(**kw):
    tqdm = base.auto_tqdm()             # without tqdm's "IProgress not found" in a notebook lacking ipywidgets
    if tqdm.__module__.startswith("tqdm.notebook"):    # a widget: columns mean nothing there
        return tqdm(file=sys.stderr, dynamic_ncols=True, **kw)
    ncols, nrows = screen_shape(sys.stderr)
    bar = tqdm(file=sys.stderr, ncols=ncols, nrows=nrows, **kw)
    bar.dynamic_ncols = screen_shape        # re-measured at each redraw, as dynamic_ncols=True would
    return bar


class RoundBar(base.RoundFacts):
    """The per-run bar over rounds; `labels` names a grouped sweep's configurations (None: one)."""

    def __init__(self, total: int, labels: Optional[list] = None, initial: int = 0, unit: str = "examples",
                 chunks: Optional[list] = None, noun: str = "seeds"):
        # in seed chunks: the chunk that compiles (at its round 0 on a resume at a chunk's end, not 400/400)
        desc = (f"{base.chunk_place(initial, chunks, noun, coming=True)} (compiling)"
                if chunks and len(chunks) > 1 else "round (compiling)")
        self.bar = _tqdm(total=total, initial=initial, desc=desc, unit="rd")
        super().__init__(labels, initial, unit, chunks, noun)   # its clock starts once the bar is up, as before
        # tqdm redraws only on an update: while compiling its elapsed time stood at 00:00; a notebook's
        # widget is left to its own thread
        self.ticker = base.CompileTicker(0 if base.in_notebook() else 1.0, self._compiling)

    def _compiling(self) -> None:
        self.bar.refresh()              # after the compile too: a stretch of long rounds froze the clock

    def compiling_again(self, compiles: bool = False) -> base.CompileTicker:
        """chunk_starts: the next chunk's round 0, compiling, and the ticker that keeps the clock moving;
        `compiles`: programs of its own (its width), a compile the runs' clock counted to come."""
        if compiles:
            base.chunk_compiles()
        self.bar.set_description(f"{self.where(self.bar.n, self.bar.total, coming=True)} (compiling)")
        return base.CompileTicker(0 if base.in_notebook() else 1.0, self._compiling)

    def update(self, rounds: int, work: int = 0) -> None:
        """`rounds` more rounds done, in which the local steps processed `work` examples (or tokens)."""
        now = time.perf_counter()
        compiled = self.compile_s is None
        if compiled:                    # the first stretch has come back: compiled (the clock still ticks)
            self.compile_s = now - self.t_compile
            self.t_work = now           # its work is timed with the compile: not counted
            self.bar.set_description("round", refresh=False)
            self._show()
        elif work:
            self.work += work
            self._show(now)
        if self.chunks:             # the bar counts every chunk's rounds: its text names the chunk and round
            self.bar.set_description(self.where(self.bar.n + rounds, self.bar.total), refresh=False)
        # the runs bar redraws its ETA (a stretch timed with its compile is not in its rate)
        base.report_rounds(self.bar.n + rounds, self.bar.total, self.runs, self.initial, compiled)
        self.bar.update(rounds)

    def row(self, row: dict, i: int = 0) -> None:
        """Configuration i's newest aggregated metrics row."""
        self.remember(row, i)
        self._show()

    def _show(self, now: Optional[float] = None) -> None:
        post = {}
        shown = self.shown()
        if shown is not None:
            label, name, value, mb = shown
            if label is not None:       # a grouped sweep: the best configuration so far, with its name
                post["best"] = f"{name}={value:.3f} [{label}]"
            else:
                post[name] = f"{value:.3f}"
                post["MB_per_peer"] = f"{mb:.3g}"
        rate = self.rate(now)
        if rate is not None:
            post[f"{self.unit}/s"] = f"{rate:,.0f}"
        if self.compile_s is not None:
            post["compile"] = f"{self.compile_s:.1f}s"
        self.bar.set_postfix(post)

    def note(self, line: str) -> None:
        """A warning while the bar runs (run_recorders' dead peers): on its own line above the bar."""
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.ticker.stop()
        self.bar.close()


def round_bar(total: int, enabled: bool, labels: Optional[list] = None, initial: int = 0,
              unit: str = "examples", chunks: Optional[list] = None, noun: str = "seeds"):
    """The round bar, or its lines where stderr is a log (mode()); None when `enabled` is false.
    `chunks`: [(lo, hi, rounds)] of a run in several seed (`noun`: or lane) chunks, whose rounds `total`
    adds up; its text then names the chunk and the round within it (progress_base.chunk_place)."""
    if not enabled:
        return None
    if mode() == "lines":
        from tallysim.progress_lines import RoundLines
        return RoundLines(total, labels, initial, unit, chunks, noun)
    return RoundBar(total, labels, initial, unit, chunks, noun)


# tqdm's own ETA is `?` until a run has finished (its rate counts finished runs); this one is the clock's
RUNS_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


class RunsBar:
    """The bar over a sweep's or a figure's runs, above the round bar (tqdm stacks open bars)."""

    def __init__(self, total: int, desc: str = "runs", done_before: int = 0):
        self.clock = RunsClock(total, done_before)
        self.bar = _tqdm(total=total, desc=desc, unit="run", position=0, leave=True, bar_format=RUNS_FORMAT,
                         postfix=self.clock.eta_text())
        base.open_runs(self)

    def report(self, partial: float, worked: Optional[float] = None, compiled: bool = False) -> None:
        """The round bar under it reports its rounds (progress_base.report_rounds), once per stretch of
        rounds: the ETA is redrawn with them (a redraw is cheap)."""
        self.clock.report(partial, worked, compiled)
        self.bar.set_postfix_str(self.clock.eta_text())

    def expect_compiles(self, n: int) -> None:
        self.clock.expect_compiles(n)       # the sweep's (or figure's) batches that compile (RunsClock)

    def batch_starts(self, compiles: int) -> None:
        self.clock.batch_starts(compiles)

    def done(self, n: int = 1, skipped: bool = False) -> None:
        self.clock.count(n, skipped)
        self.bar.set_postfix_str(self.clock.eta_text(), refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        base.close_runs(self)
        self.bar.close()


def runs_bar(total: int, enabled: bool, desc: str = "runs", done_before: int = 0):
    """The bar over runs, or its lines where stderr is a log (mode()); None when `enabled` is false.
    `done_before`: how many of the runs finished before (RunsClock)."""
    if not enabled:
        return None
    if mode() == "lines":
        from tallysim.progress_lines import RunsLines
        return RunsLines(total, desc, done_before)
    return RunsBar(total, desc, done_before)
