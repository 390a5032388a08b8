"""What the progress bars and the progress lines share: which of them a command shows (mode(): bars on
a terminal and in a notebook, plain lines in a log file; --progress and TALLYSIM_PROGRESS force either),
how often lines are written (TALLYSIM_PROGRESS_INTERVAL), and the clock over a sweep's or a figure's
runs that the round bar under it reports its rounds to (its ETA from rounds done, before a run has
finished). The bars are progress.py, the lines progress_lines.py; what both keep of a run's rounds is
progress_rounds.py (re-exported here). What `--quiet` leaves of a sweep's
and a figure's own lines: QuietLog, say, result."""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Optional

from tallysim.fields import ConfigError
# What the round bar and the round lines share (their facts, the compile ticker, a chunk's place): progress_rounds.py
from tallysim.progress_rounds import NAMES, CompileTicker, RoundFacts, chunk_place, headline, short_labels  # noqa: F401

MODES = ("auto", "bars", "lines")
MODE_ENV = "TALLYSIM_PROGRESS"
INTERVAL_ENV = "TALLYSIM_PROGRESS_INTERVAL"
INTERVAL = 30.0         # seconds between two progress lines in a log: a 200-round run of 40 minutes, ~80 lines


_forced: list = []      # the command line's --progress, innermost last (cli.main may be called again)


@contextmanager
def forced(mode: Optional[str]):
    """`--progress MODE` for the command it wraps (None: the environment's, else auto)."""
    _forced.append(mode)
    try:
        yield
    finally:
        _forced.pop()


def check_env(env: Optional[dict] = None) -> None:
    """TALLYSIM_PROGRESS and TALLYSIM_PROGRESS_INTERVAL, checked before a command runs anything."""
    env = os.environ if env is None else env
    mode = env.get(MODE_ENV, "").strip()
    if mode and mode not in MODES:
        raise ConfigError(f"{MODE_ENV}={mode!r}: allowed {', '.join(MODES)} (auto: bars on a terminal or in a "
                          "notebook, plain lines in a log file)")
    text = env.get(INTERVAL_ENV, "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0 <= value <= 86400:
            raise ConfigError(f"{INTERVAL_ENV}={text!r}: allowed a number of seconds 0..86400 (0: a line "
                              f"every stretch of rounds; default {INTERVAL:g})")


_warned: set = set()


def _checked_env() -> tuple:
    """(mode, interval) from the environment; a bad value (the command line refuses it first) is one
    warning and the default, never a failed run."""
    try:
        check_env()
    except ConfigError as e:
        if str(e) not in _warned:         # once, not once per bar
            _warned.add(str(e))
            print(f"tallysim: warning: {e}; using the defaults", file=sys.stderr)
        return "auto", INTERVAL
    mode = os.environ.get(MODE_ENV, "").strip() or "auto"
    text = os.environ.get(INTERVAL_ENV, "").strip()
    return mode, (float(text) if text else INTERVAL)


def auto_tqdm():
    """tqdm.auto's class, imported without its warning: in a Jupyter kernel without ipywidgets (plain
    Jupyter, nbclient; Colab has it) tqdm.auto printed "IProgress not found. Please update jupyter and
    ipywidgets" into the cell's output and fell back to its text bar, which shows the same progress."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from tqdm.auto import tqdm
    return tqdm


def in_notebook() -> bool:
    """Whether tqdm.auto draws widgets here (a Jupyter kernel): a notebook's stderr is no terminal either."""
    return auto_tqdm().__module__.startswith("tqdm.notebook")


def in_kernel() -> bool:
    """Whether this is a Jupyter kernel, widgets or not (tqdm.autonotebook's test: IPython's shell with an
    IPKernelApp). Without ipywidgets, in_notebook() is false there and progress is lines
    (progress_lines.py), which a kernel shows as one line updated in place."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in getattr(shell, "config", {})
    except Exception:           # an IPython too old or half imported: no kernel to draw in
        return False


def is_terminal(fp) -> bool:
    try:
        return bool(fp.isatty())
    except (AttributeError, OSError, ValueError):      # a closed or odd stream: not a terminal
        return False


def mode() -> str:
    """"bars" or "lines": --progress, else TALLYSIM_PROGRESS, else auto: bars on a terminal and in a
    notebook, lines elsewhere (tqdm's own `disable=None` draws nothing off a terminal; a log wants lines)."""
    asked = _forced[-1] if _forced and _forced[-1] else _checked_env()[0]
    if asked != "auto":
        return asked
    return "bars" if in_notebook() or is_terminal(sys.stderr) else "lines"


def interval() -> float:
    return _checked_env()[1]


def duration(seconds: float) -> str:
    """`45s`, `12m05s`, `3h05m`: a time in a log line, exact enough for an ETA."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


# ----------------------------------------------------------------------------- the runs' clock

_outer: list = []       # the open bars over runs (a figure's or a sweep's), innermost last


class RunsClock:
    """done / total and the time left over a sweep's or a figure's runs, from the runs done and the
    rounds done of the runs under way (`partial`, reported by their round bar). Runs skipped (done
    before) count as done but not in the rate. Between a run's end and the next run's first stretch of
    rounds (its compile, mostly) the estimate is the one the last run's end gave, and says the next run
    is compiling: elapsed time over unchanged work made it climb by (runs left / runs done) seconds a
    second, 2 s a second under a long compile. `done_before`: the runs known finished before (a re-run
    skips them): not in the time left, and with only they left there is no ETA to wait for (a re-run of
    a finished figure said `ETA after the first run` with nothing left to run). Until a run has finished
    the rate is the measured stretches' only: a stretch that came back with its compile (`compiled`) is
    neither time nor work in it. Elapsed time over the first stretch was mostly compile: a sweep done in
    1m40s said `ETA 23m41s`. Once a run has finished, its whole time (compile too) is the rate's.
    Until then the runs still to come that compile (`expect_compiles`, less one per `batch_starts` that
    compiles: the sweep knows which batches share a program already compiled) each add the compile
    time measured so far (a compiling batch's first stretch's seconds less its rounds at the measured
    rate; a later seed chunk's first stretch, whose programs the first chunk made, is not one): where
    every run compiles anew, training time alone was too low by a compile per run left. A batch may
    compile more than one program (sweep_plan.compiles: seeds=5 in chunks of 2 compile the chunk of 1
    too): the first is under way when it starts, the others are to come until their chunk starts
    (`chunk_compiles`), whose first stretch is then measured as a compile too."""

    def __init__(self, total: int, done_before: int = 0):
        self.total, self.n, self.ran, self.partial, self.worked = total, 0, 0, 0.0, 0.0
        self.skips_left = min(max(done_before, 0), total)      # the runs done before not yet counted
        self.t0 = time.perf_counter()
        self.t_ended: Optional[float] = None    # a run ended then, and the next has reported nothing yet
        # the measured stretches (not compiling) before a run has finished: their seconds and runs' worth
        self.t_report, self.w_report = self.t0, 0.0
        self.measured_s, self.measured_w = 0.0, 0.0
        self.compiles_left = 0          # compiles expected of batches not yet started (expect_compiles)
        self.compiled: list = []        # (seconds, runs' worth) of each stretch that came back with its compile
        # a batch that compiles has started and its first stretch is not back: only that stretch is a
        # compile's; a later seed chunk's first stretch reuses the chunk's programs (programs.chunk_programs)
        self.compiling = False
        self.in_batch = 0               # the batch under way's compiles still to come (its narrower chunk's)

    def eta(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds left; None before any round came back (before a run ends: any measured stretch)."""
        worked = self.ran + self.worked
        if worked <= 0:
            return None
        left = max(self.total - self.n - self.skips_left - self.partial, 0.0)
        if self.ran == 0:
            if self.measured_w <= 0:
                return None
            return self.measured_s * left / self.measured_w + (self.compiles_left + self.in_batch) * self.compile_s()
        end = self.t_ended if self.t_ended is not None else time.perf_counter() if now is None else now
        return (end - self.t0) * left / worked

    def eta_text(self, now: Optional[float] = None) -> str:
        if self.n >= self.total:
            return "done"
        if self.n + self.skips_left >= self.total:      # only runs done before are left: nothing to wait for
            return f"all {self.total} runs done before" if self.ran == 0 else "the rest done before"
        left = self.eta(now)
        if left is None:        # rounds back but only compiled ones: no rate yet
            return "ETA after the first rounds" if self.worked > 0 else "ETA after the first run"
        return f"ETA {duration(left)}" + (", next run compiling" if self.t_ended is not None else "")

    def compile_s(self) -> float:
        """The seconds one compile took, on average over the stretches that came back with theirs: each
        one's time less its rounds at the measured rate (0 before a measured stretch)."""
        if not self.compiled or self.measured_w <= 0:
            return 0.0
        rate = self.measured_s / self.measured_w
        return sum(max(s - w * rate, 0.0) for s, w in self.compiled) / len(self.compiled)

    def expect_compiles(self, n: int) -> None:
        """`n` more batches of runs will compile their program (sweep_plan.compiles)."""
        self.compiles_left += max(int(n), 0)

    def batch_starts(self, compiles: int) -> None:
        """A batch of runs starts, compiling `compiles` programs (True: one): the first is under way and
        its first stretch back is the one compile_s measures; the others come with the batch's later
        chunks (chunk_compiles). None of them is among the later batches' to come any more."""
        self.compiling = compiles > 0
        self.compiles_left = max(self.compiles_left - int(compiles), 0)
        self.in_batch = max(int(compiles) - 1, 0)

    def chunk_compiles(self) -> None:
        """A later seed (lane) chunk of the batch under way compiles programs of its own width: one of the
        batch's compiles to come is under way, its first stretch measured as a compile. One the plan
        did not count (chunks sized to memory at run time) is neither: it stays out of the rate."""
        if self.in_batch > 0:
            self.in_batch -= 1
            self.compiling = True

    def count(self, n: int, skipped: bool) -> None:
        self.n += n
        self.ran += 0 if skipped else n
        self.skips_left = max(self.skips_left - n, 0) if skipped else self.skips_left
        self.partial = self.worked = 0.0
        self.t_ended = time.perf_counter()

    def report(self, partial: float, worked: Optional[float] = None, compiled: bool = False) -> None:
        """The runs under way are `partial` runs' worth done (a round bar's rounds done / all of them,
        times the configurations it runs), `worked` of it in this process (None: all of it). A resumed
        run's rounds from before the resume are done but took none of this clock's time: counted as
        worked, a run resumed at round 90 of 100 gave an ETA of a second after its first round.
        `compiled`: these came back with their compile (a run's or a chunk's first stretch): not measured."""
        now = time.perf_counter()
        self.partial = partial
        self.worked = partial if worked is None else worked
        total = self.ran + self.worked
        if not compiled and total > self.w_report:
            self.measured_s += now - self.t_report
            self.measured_w += total - self.w_report
        elif compiled and self.compiling:
            # the batch's compile; a seed chunk's first stretch is `compiled` too (its round line says
            # `compiling`) but its programs were made for the first chunk: averaged in, a 4-chunk run's
            # near-zero restarts cut the compile each run to come adds to a quarter
            self.compiled.append((now - self.t_report, max(total - self.w_report, 0.0)))
            self.compiling = False
        self.t_report, self.w_report = now, total
        self.t_ended = None         # the run under way has come back: the rate counts its time again


def open_runs(bar) -> None:
    """A bar (or lines) over runs opens: the round bars under it report to it, innermost last."""
    _outer.append(bar)


def runs_open() -> bool:
    """Whether a bar (or lines) over runs is open: a round bar is then part of its command."""
    return bool(_outer)


def close_runs(bar) -> None:
    if bar in _outer:
        _outer.remove(bar)


def report_rounds(done: int, total: int, runs: int, initial: int = 0, compiled: bool = False) -> None:
    """A round bar's progress, to the bar over runs it runs under (if any); `initial`: the rounds done
    before a resume (done, but not worked in this process's time); `compiled`: the stretch just back
    was timed with its compile (RunsClock.report)."""
    if _outer and total > 0:
        done = min(done, total)
        _outer[-1].report(runs * done / total, runs * max(done - initial, 0) / total, compiled)


def chunk_compiles() -> None:
    """A round bar's later chunk compiles its own programs (RoundFacts.chunk_starts): to the bar over runs
    it runs under (if any), RunsClock.chunk_compiles."""
    if _outer:
        _outer[-1].clock.chunk_compiles()


def outer_status() -> str:
    """`[runs 2/12, ETA 3h05m]` for a round line under a bar over runs; "" without one."""
    if not _outer:
        return ""
    c = _outer[-1].clock
    return f"  [runs {c.n}/{c.total}, {c.eta_text()}]"


# --quiet silences progress, in every command (docs/cli.md): run's bar or lines, and a sweep's or a
# figure's per-run lines too (`[3/12] name`, each run's summary, `group ...`), which `sweep --quiet` and
# `figure --quiet` printed all the same. A run's failure is said in the command's closing lines (sweep's
# `failed: NAME: ...` on stderr, figure's `left out` or its error); a note is not progress: it still goes
# out, to stderr, one line naming its run (the run's `[3/12]` line is not there to say which); what the
# command produces (a figure's `wrote ...`) still goes to stdout.

class QuietLog:
    """A sweep's or a figure's `log` under --quiet: progress lines dropped; see `say` and `result`."""

    def __call__(self, line: str) -> None:
        pass

    @staticmethod
    def note(line: str, name: str = "") -> None:
        print(f"tallysim: {name + ': ' if name else ''}{line.strip()}", file=sys.stderr)

    @staticmethod
    def result(line: str) -> None:
        print(line)


def say(log, line: str, name: str = "") -> None:
    """A note about run `name` (not progress): through `log`, beside the run's own lines; under
    --quiet (a QuietLog) on stderr, naming the run. Any other `log` (a script's) takes it as it is."""
    if isinstance(log, QuietLog):
        log.note(line, name)
    else:
        log(line)


def result(log, line: str) -> None:
    """What the command produced (a figure's `wrote ...`): through `log`, and on stdout under --quiet."""
    if isinstance(log, QuietLog):
        log.result(line)
    else:
        log(line)
