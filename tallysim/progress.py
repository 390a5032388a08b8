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
"""
from __future__ import annotations

import os
import sys
import time
from typing import Optional

from tallysim.results.metrics import headline_key

# A headline column -> the bar's name for it.
NAMES = {"acc_global": "server", "acc_mean": "peers"}


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
              unit: str = "examples") -> Optional[RoundBar]:
    return RoundBar(total, labels, initial, unit) if enabled else None


class RunsBar:
    """The bar over a sweep's or a figure's runs, above the round bar (tqdm stacks open bars)."""

    def __init__(self, total: int, desc: str = "runs"):
        self.bar = _tqdm(total=total, desc=desc, unit="run", position=0, leave=True)

    def done(self, n: int = 1) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def runs_bar(total: int, enabled: bool, desc: str = "runs") -> Optional[RunsBar]:
    return RunsBar(total, desc) if enabled else None
