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
run`.

Where stderr is not a terminal (`nohup ... > log 2>&1`, a batch job's log, CI, `tee`), redrawn bars
would be one ever-growing line of carriage returns; there the same facts are plain lines instead
(progress_lines.py), at most one every TALLYSIM_PROGRESS_INTERVAL seconds (default 30) plus the first
and the last. A notebook keeps its widgets. `--progress bars|lines` (or TALLYSIM_PROGRESS) forces
either.
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Optional

from tallysim.fields import ConfigError
from tallysim.results.metrics import headline_key

# A headline column -> the bar's name for it.
NAMES = {"acc_global": "server", "acc_mean": "peers"}

MODES = ("auto", "bars", "lines")
MODE_ENV = "TALLYSIM_PROGRESS"
INTERVAL_ENV = "TALLYSIM_PROGRESS_INTERVAL"
INTERVAL = 30.0         # seconds between two progress lines in a log: a 200-round run of 40 minutes, ~80 lines


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


# ----------------------------------------------------------------------------- bars or lines

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


def in_notebook() -> bool:
    """Whether tqdm.auto draws widgets here (a Jupyter kernel): a notebook's stderr is no terminal either."""
    from tqdm.auto import tqdm
    return tqdm.__module__.startswith("tqdm.notebook")


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
    before) count as done but not in the rate."""

    def __init__(self, total: int):
        self.total, self.n, self.ran, self.partial = total, 0, 0, 0.0
        self.t0 = time.perf_counter()

    def eta(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds left; None before any round of any run has come back."""
        worked = self.ran + self.partial
        if worked <= 0:
            return None
        elapsed = (time.perf_counter() if now is None else now) - self.t0
        return elapsed * max(self.total - self.n - self.partial, 0.0) / worked

    def eta_text(self, now: Optional[float] = None) -> str:
        if self.n >= self.total:
            return "done"
        left = self.eta(now)
        return "ETA after the first run" if left is None else f"ETA {duration(left)}"

    def count(self, n: int, skipped: bool) -> None:
        self.n += n
        self.ran += 0 if skipped else n
        self.partial = 0.0

    def report(self, partial: float) -> None:
        """The runs under way are `partial` runs' worth done (a round bar's rounds done / all of them,
        times the configurations it runs)."""
        self.partial = partial


def report_rounds(done: int, total: int, runs: int) -> None:
    """A round bar's progress, to the bar over runs it runs under (if any)."""
    if _outer and total > 0:
        _outer[-1].report(runs * min(done, total) / total)


def outer_status() -> str:
    """`[runs 2/12, ETA 3h05m]` for a round line under a bar over runs; "" without one."""
    if not _outer:
        return ""
    c = _outer[-1].clock
    return f"  [runs {c.n}/{c.total}, {c.eta_text()}]"


def _tqdm(**kw):
    from tqdm.auto import tqdm
    if tqdm.__module__.startswith("tqdm.notebook"):    # a widget: columns mean nothing there
        return tqdm(file=sys.stderr, dynamic_ncols=True, **kw)
    ncols, nrows = screen_shape(sys.stderr)
    bar = tqdm(file=sys.stderr, ncols=ncols, nrows=nrows, **kw)
    bar.dynamic_ncols = screen_shape        # re-measured at each redraw, as dynamic_ncols=True would
    return bar


def headline(row: dict) -> tuple[str, float]:
    """(the bar's name, value) of a metrics row's headline accuracy, as the summary line picks it."""
    k = headline_key(row)
    return NAMES.get(k, k), row[k]


def short_labels(names: list) -> list:
    """A group's run names without the `key=value` parts they all share (`a=1__b=2`, `a=1__b=3` ->
    `b=2`, `b=3`): what tells the configurations apart."""
    parts = [str(n).split("__") for n in names]
    common = set.intersection(*(set(p) for p in parts)) if parts else set()
    return ["__".join(x for x in p if x not in common) or str(n) for p, n in zip(parts, names)]


class RoundBar:
    """The per-run bar over rounds; `labels` names a grouped sweep's configurations (None: one)."""

    def __init__(self, total: int, labels: Optional[list] = None, initial: int = 0, unit: str = "examples"):
        self.labels = short_labels(labels) if labels and len(labels) > 1 else None
        self.runs = len(labels) if labels else 1        # the sweep runs this bar's rounds stand for
        self.unit = unit                # what `work` counts: tokens (next-token tasks) or examples
        self.work, self.t_work = 0, None
        # initial: the rounds done before a resume (counted, but not in the rate or the ETA)
        self.bar = _tqdm(total=total, initial=initial, desc="round (compiling)", unit="rd")
        self.t0 = time.perf_counter()
        self.compile_s: Optional[float] = None
        self.latest: dict = {}          # label -> (name, value, MB per peer)

    def update(self, rounds: int, work: int = 0) -> None:
        """`rounds` more rounds done, in which the local steps processed `work` examples (or tokens)."""
        now = time.perf_counter()
        if self.compile_s is None:      # the first stretch has come back: compiled
            self.compile_s = now - self.t0
            self.t_work = now           # its work is timed with the compile: not counted
            self.bar.set_description("round", refresh=False)
            self._show()
        elif work:
            self.work += work
            self._show(now)
        report_rounds(self.bar.n + rounds, self.bar.total, self.runs)   # before the redraw: one refresh
        if _outer:
            _outer[-1].refresh()
        self.bar.update(rounds)

    def rate(self, now: Optional[float] = None) -> Optional[float]:
        """Examples (tokens) per second since the first stretch came back; None before a second one."""
        if not self.work or self.t_work is None:
            return None
        return self.work / max((now or time.perf_counter()) - self.t_work, 1e-9)

    def row(self, row: dict, i: int = 0) -> None:
        """Configuration i's newest aggregated metrics row."""
        name, value = headline(row)
        label = self.labels[i] if self.labels else None
        self.latest[label] = (name, value, row["bits_per_peer"] / 8e6)
        self._show()

    def _show(self, now: Optional[float] = None) -> None:
        post = {}
        if self.latest:
            if self.labels:             # the best configuration so far, with its name
                label, (name, value, mb) = max(self.latest.items(), key=lambda kv: kv[1][1])
                post["best"] = f"{name}={value:.3f} [{label}]"
            else:
                name, value, mb = self.latest[None]
                post[name] = f"{value:.3f}"
                post["MB_per_peer"] = f"{mb:.3g}"
        rate = self.rate(now)
        if rate is not None:
            post[f"{self.unit}/s"] = f"{rate:,.0f}"
        if self.compile_s is not None:
            post["compile"] = f"{self.compile_s:.1f}s"
        self.bar.set_postfix(post)

    def close(self) -> None:
        self.bar.close()


def round_bar(total: int, enabled: bool, labels: Optional[list] = None, initial: int = 0,
              unit: str = "examples"):
    """The round bar, or its lines where stderr is a log (mode()); None when `enabled` is false."""
    if not enabled:
        return None
    if mode() == "lines":
        from tallysim.progress_lines import RoundLines
        return RoundLines(total, labels, initial, unit)
    return RoundBar(total, labels, initial, unit)


# tqdm's own ETA is `?` until a run has finished (its rate counts finished runs); this one is the clock's
RUNS_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


class RunsBar:
    """The bar over a sweep's or a figure's runs, above the round bar (tqdm stacks open bars)."""

    def __init__(self, total: int, desc: str = "runs"):
        self.clock = RunsClock(total)
        self.bar = _tqdm(total=total, desc=desc, unit="run", position=0, leave=True, bar_format=RUNS_FORMAT,
                         postfix=self.clock.eta_text())
        _outer.append(self)

    def report(self, partial: float) -> None:
        self.clock.report(partial)

    def refresh(self) -> None:
        self.bar.set_postfix_str(self.clock.eta_text())     # once per stretch of rounds: a redraw is cheap

    def done(self, n: int = 1, skipped: bool = False) -> None:
        self.clock.count(n, skipped)
        self.bar.set_postfix_str(self.clock.eta_text(), refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        if self in _outer:
            _outer.remove(self)
        self.bar.close()


def runs_bar(total: int, enabled: bool, desc: str = "runs"):
    """The bar over runs, or its lines where stderr is a log (mode()); None when `enabled` is false."""
    if not enabled:
        return None
    if mode() == "lines":
        from tallysim.progress_lines import RunsLines
        return RunsLines(total, desc)
    return RunsBar(total, desc)
