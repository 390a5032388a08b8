"""A run's results as one object (`tallysim.run(cfg)` returns it): its directory, metrics rows and config;
and `read_rows(dirs)`, every metrics row of every run below some directories (a sweep, a figure's
results) as one flat list, ready for `pandas.DataFrame`."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tallysim.config import ConfigError


# what Results.plot's errors call its inputs (plot_curves' say `--out` only to `tallysim plot`)
RESULTS_PLOT = {"--out": "path", "--metric": "metric", "--title": "title", "--label": "label"}


@dataclass
class Results:
    """What a run wrote: its directory, its metrics rows (one per evaluation) and its resolved config."""
    out: Path
    rows: list = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def __post_init__(self):
        from tallysim.fields import is_path
        if not is_path(self.out):       # Results(3): a Results of the directory '3'
            raise ConfigError(f"Results({self.out!r}): out is a run directory (str or pathlib.Path); to read one: "
                              "tallysim.Results.read(DIR)")
        # a str kept as given made .plot() a TypeError ("unsupported operand type(s) for /: 'str' and 'str")
        self.out = Path(self.out)
        # rows and config made by hand are what the properties read: rows=["a"] was an AttributeError from
        # .dead_peers, rows={...} a KeyError -1 from .last (a dict indexed), config=[...] passed
        if isinstance(self.rows, tuple):
            self.rows = list(self.rows)
        if not isinstance(self.rows, list) or not all(isinstance(r, dict) for r in self.rows):
            bad = self.rows if not isinstance(self.rows, list) else next(r for r in self.rows if not isinstance(r, dict))
            raise ConfigError(f"Results(rows=...): {bad!r:.60} is {type(bad).__name__}; allowed: a list of metrics "
                              "rows, each a dict (as metrics.jsonl's lines read), e.g. [{'round': 1, 'acc_mean': 0.5}]")
        if self.config is not None and not isinstance(self.config, dict):   # None: repr's plain form (review_dec17)
            raise ConfigError(f"Results(config={self.config!r:.60}): {type(self.config).__name__}; allowed: a dict "
                              "(config.json's object, e.g. tallysim.config.to_dict(cfg))")
        # "~/runs/a" (as Results.read expands it) and a sweep's directory were empty Results in silence too
        where = Path(os.path.expanduser(self.out))
        if not self.rows and not self.config and (where / "metrics.jsonl").is_file():
            # Results("runs/a") of a finished run was an empty Results, 0 rows, in silence
            raise ConfigError(f"Results({str(self.out)!r}) holds only what it is given (rows=, config=), here none; "
                              f"to read the run in {self.out}: tallysim.Results.read({str(self.out)!r})")
        if not self.rows and not self.config and (where / "sweep.json").is_file():
            raise ConfigError(f"Results({str(self.out)!r}): {self.out} is a sweep directory; a Results is one run "
                              f"(tallysim.Results.read({str(self.out / 'RUN')!r})), and tallysim.read_rows"
                              f"({str(self.out)!r}) reads the whole sweep")

    @classmethod
    def read(cls, out) -> "Results":
        """Any run directory (written by `tallysim.run` or `tallysim run --out`), its files checked."""
        from tallysim.results import metrics
        cfg, rows = metrics.read_run(out)
        res = cls.__new__(cls)      # not __post_init__'s check: a run of no rows yet and no config.json reads
        res.out, res.rows, res.config = Path(metrics.directory(out)), rows, cfg   # "~/runs/a" expanded, as written
        return res

    @property
    def last(self) -> dict:
        """The last metrics row (the final evaluation; {} before the first)."""
        return self.rows[-1] if self.rows else {}

    @property
    def status(self) -> str:
        """"done" (every round ran), "running" (another process writes it now), "incomplete" (stopped early:
        interrupted or killed) or
        "failed" (error.txt), as `tallysim table` says ("unknown" when config.json, which holds the round count,
        is gone); `rows` and `last` alone did not tell a notebook that
        a run it read had stopped at round 5 of 40."""
        from tallysim.results.table import run_status
        return run_status(self.out, self.config, self.rows)

    @property
    def majority_acc(self) -> Optional[float]:
        """What always predicting the most frequent test target scores on the test set the run evaluated
        (partition.json's `majority_acc`; None for a run written before it was recorded): the floor its
        accuracy must pass to mean anything (on Shakespeare words the comma's 0.0898)."""
        from tallysim.results import partition_file
        return partition_file.majority(self.out).get("majority_acc")

    @property
    def dead_peers(self) -> list:
        """The peers whose own test accuracy stayed at or below the floor at every evaluation after the
        first ("peer 0", "seed 1 peer 0"; results/dead_peers.py): the demo's seed 1 ran with peer 0 at
        0.1000 all 15 rounds, in its peer mean; [] for none, or where the headline is a server model's."""
        from tallysim.results import dead_peers
        dead = dead_peers.of_run(self.out, self.rows, self.config)
        return list(dead.names) if dead else []

    def __repr__(self) -> str:
        # a notebook shows a cell's last value: the dataclass's repr was every row and the whole config,
        # kilobytes for a five-round run; `rows` and `config` are one attribute away. A repr never raises
        # (a debugger, a traceback's locals and a notebook call it): a Results made by hand with a config
        # that is no dict (`status` reads it) gets the plain one
        try:
            return self._summary()
        except Exception:
            rows = len(self.rows) if isinstance(self.rows, list) else "?"
            return f"Results({str(self.out)!r}, {rows} rows)"

    def _summary(self) -> str:
        from tallysim.results.headline import FLOOR_MARGIN, at_floor, bits_text, diverged_of, headline_key
        proto = (self.config.get("protocol") or {}).get("name", "?") if isinstance(self.config, dict) else "?"
        head = f"Results({str(self.out)!r}: {proto}, {self.status}, {len(self.rows)} rows"
        last = self.last
        if not last:
            return head + ")"
        key = headline_key(last)
        acc = last.get(key)
        shown = f"{acc:.4f}" if isinstance(acc, (int, float)) else str(acc)
        if gone := diverged_of(last, key):      # `acc_mean nan` said no word why: a seed's NaN in the mean
            shown += f" ({gone})"
        from tallysim.results import partition_file
        floor = partition_file.majority(self.out)
        if at_floor(acc, floor):     # 0.1132 read "at the floor 0.1812": say below where it is below
            where = "below" if acc < floor["majority_acc"] - FLOOR_MARGIN else "at"
            shown += f", {where} the floor {floor['majority_acc']:.4f}"
        from tallysim.results import dead_peers     # peers at the floor all run (results/dead_peers.py)
        shown += dead_peers.clause(dead_peers.of_run(self.out, self.rows, self.config))
        return (head + f"; round {last.get('round')}: {key} {shown} @ {bits_text(last.get('bits_per_peer'))} bits per peer)")

    def column(self, key: str) -> list:
        """One metrics key over the rows, in round order (None where a row lacks it, or holds null: e.g.
        `acc_global` without a server model). A key no row has is a KeyError naming the near ones: a
        typo would otherwise read as a column of None."""
        if not isinstance(key, str):        # column(3): "'int' object is not iterable" from the near-name search
            raise UnknownKey(f"Results.column({key!r}): a metrics key is a str, e.g. 'acc_mean' or 'bits_per_peer'")
        if self.rows and not any(key in r for r in self.rows):
            raise UnknownKey(unknown_key(key, self.rows, f"{self.out}/metrics.jsonl"))
        return [r.get(key) for r in self.rows]

    def plot(self, path: Optional[str] = None, metric: str = "auto", title: Optional[str] = None,
             label: Optional[str] = None) -> str:
        """Accuracy against cumulative bits per peer (`tallysim plot`), with a band of +- one std over
        seeds when the run had several; returns the figure's path."""
        from tallysim.fields import is_path
        from tallysim.results.plot import plot_curves
        if path is not None and not is_path(path):      # plot(path=3): a TypeError from inside os.path
            raise ConfigError(f"Results.plot(path={path!r}): expected a file path (str or pathlib.Path), or None "
                              "for curve.png in the run directory")
        for name, value in (("metric", metric), ("title", title), ("label", label)):
            # metric=["acc_mean"] was "TypeError: unhashable type: 'list'"; label=["a", "b"] drew the legend
            # entry "['a', 'b']" and title=5 the title "5", in silence
            if not (isinstance(value, str) or value is None and name != "metric"):
                raise ConfigError(f"Results.plot({name}={value!r:.60}): {type(value).__name__}; allowed: a str"
                                  f"{' (a metrics key, or auto)' if name == 'metric' else ', or None'}")
        self._own_rows("plot")
        return plot_curves([str(self.out)], path or str(self.out / "curve.png"), metric, title,
                           None if label is None else [label], names=RESULTS_PLOT)


    def _own_rows(self, what: str) -> None:
        """`what` draws the run directory's metrics.jsonl: a Results made by hand with rows of its own (a filter
        of a run's, or rows computed in a notebook) drew its directory's other rows as its own in silence, or
        said "has no metrics.jsonl" of a Results that holds rows."""
        from tallysim.results import run_dir
        try:
            on_disk = run_dir.read_rows(self.out)
        except ConfigError:
            on_disk = None
        # a run still going on has written more rows since it was read: those are the same run's, drawn
        if on_disk is None or on_disk[:len(self.rows)] != self.rows:
            there = ("which cannot be read (none there, or damaged), not" if on_disk is None else
                     "whose rows are not")
            raise ConfigError(f"Results.{what}() draws {self.out}/metrics.jsonl, {there} the {len(self.rows)} rows this "
                              "Results holds (made by hand, or the run was written again since it was read); allowed: "
                              f"tallysim.Results.read(DIR).{what}() of a run directory, or matplotlib on the rows "
                              "(r.column('bits_per_peer'), r.column('acc_mean'))")


class UnknownKey(KeyError):
    """A metrics key no row has; printed as its message (a KeyError's str() would be the repr)."""

    def __str__(self) -> str:
        return str(self.args[0])


def unknown_key(key: str, rows: list, where: str) -> str:
    """The message for a metrics key that none of `rows` has: the near keys, then every key."""
    import difflib
    keys = list(dict.fromkeys(k for r in rows for k in r))
    near = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    if key in ("accuracy", "acc", "final", "best"):      # the names `tallysim table` and the plots show
        hint += ("the headline accuracy is acc_global where there is a server model, else acc_mean "
                 "(tallysim.results.metrics.accuracy(row)); ")
    if key in ("ppl", "perplexity", "client_mean", "client_p10"):     # table's own text columns (and plot's ppl)
        hint += ("a next-token run's columns are ppl_mean, acc_own_mean, acc_own_p10 (the peers') and ppl_global, "
                 "acc_client_mean, acc_client_p10 (the server model's); `tallysim table` shows the headline "
                 "model's as ppl, client_mean, client_p10; ")
    if "@" in key:      # acc_mean@a of a run without groups was offered acc_min and acc_max
        groups = sorted({k.partition("@")[2] for k in keys if "@" in k})
        hint += (f"@NAME is a model group of these rows: {', '.join(groups)}; " if groups else
                 "@NAME columns are a model.groups run's, and these rows have none; ")
    return f"{key!r} is not a key of the rows of {where}; {hint}keys: {', '.join(keys)} (docs/cli.md, \"Where results go\")"


def read_rows(dirs, strict: bool = False) -> list[dict]:
    """Every metrics row of every run at or below `dirs` (one path or a list), one flat dict per (run,
    evaluation): `run` (the run's path under the directory given, as `tallysim table` names it),
    `protocol`, `accuracy` (the row's headline accuracy: acc_global where there is a server model, else
    acc_mean, as table, plot and the summary line show it) and the config fields whose values differ between the runs (the swept ones, as
    `tallysim table` finds them; None where the run's protocol does not read the field, as `table`
    leaves its cell empty), then the row's own keys (docs/cli.md, "Where results go"): `round`,
    the cumulative `bits_up`/`bits_down` over all peers, the cumulative `bits_per_peer`, the
    accuracies, ... `pandas.DataFrame(tallysim.read_rows("results/alpha"))` is the whole sweep in one
    long table. Rows are as written: nothing is averaged or converted (but strict JSON's "Infinity",
    "-Infinity" and "NaN" strings, read back as the floats they stand for: docs/protocols.md).

    A corrupt run (a torn metrics.jsonl, an unreadable config.json) is skipped with one warning
    (`warnings.warn`, a UserWarning) naming the run and why, as `tallysim table` skips it: one bad run
    of a sweep used to fail the whole read. `strict=True` raises on it instead (ConfigError); with
    every run found unreadable it raises either way."""
    import warnings
    from tallysim.results import metrics
    from tallysim.results.table import flatten, swept_fields, unread_blank
    if not isinstance(strict, bool):     # strict="no" is truthy: it raised where the caller asked it not to
        raise ConfigError(f"read_rows(strict={strict!r}): expected True or False")

    def skip(d, label, e):
        if strict:
            raise e
        warnings.warn(f"read_rows: skipping run {label}: {e}", stacklevel=4)    # the caller of read_rows

    found = [(label, cfg, rows) for _, label, cfg, rows in
             metrics.read_runs(dirs, skip)]
    from tallysim.results.sweep_gaps import notes
    for line in notes(dirs, "read_rows"):       # a sweep's runs not run yet: part of it read as the whole
        warnings.warn(line, stacklevel=2)
    swept = [k for k in swept_fields([cfg for _, cfg, _ in found]) if k != "protocol.name"]
    out = []
    for label, cfg, rows in found:
        # a swept field this run's protocol never reads is None, as `table`'s empty cell: FedAvg's
        # distill.weight read 1.0 beside the bridge's 0 and 1, so a groupby put it with the voting runs
        flat = unread_blank(flatten(cfg), swept)
        swept_values = {k: flat.get(k) for k in swept}
        # `accuracy`: the row's headline accuracy (acc_global where there is a server model, else acc_mean),
        # the number table, plot and the summary line show: a DataFrame of tally beside FedAvg plotted
        # acc_mean, FedAvg's peers' own models, unless the reader knew to pick per row (userjourney7);
        # after the protocol, before the swept fields, as the docstring and docs/api.md list them
        out += [{"run": label, "protocol": flat.get("protocol.name"), "accuracy": row.get(metrics.headline_key(row)),
                 **swept_values, **row} for row in rows]
    return out
