"""A run's results as one object (`tallysim.run(cfg)` returns it): its directory, metrics rows and config."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass
class Results:
    """What a run wrote: its directory, its metrics rows (one per evaluation) and its resolved config."""
    out: Path
    rows: list = field(default_factory=list)
    config: dict = field(default_factory=dict)

    @classmethod
    def read(cls, out) -> "Results":
        """Any run directory (written by `tallysim.run` or `tallysim run --out`), its files checked."""
        from tallysim.results import metrics
        cfg, rows = metrics.read_run(out)
        return cls(Path(out), rows, cfg)

    @property
    def last(self) -> dict:
        """The last metrics row (the final evaluation; {} before the first)."""
        return self.rows[-1] if self.rows else {}

    @property
    def status(self) -> str:
        """"done" (every round ran), "incomplete" (stopped early: interrupted, killed, or still running) or
        "failed" (error.txt), as `tallysim table` says; `rows` and `last` alone did not tell a notebook that
        a run it read had stopped at round 5 of 40."""
        from tallysim.results.table import _status
        return _status(self.out, self.config, self.rows)

    def column(self, key: str) -> list:
        """One metrics key over the rows, in round order (None where a row lacks it)."""
        return [r.get(key) for r in self.rows]

    def plot(self, path: Optional[str] = None, metric: str = "auto", title: Optional[str] = None,
             label: Optional[str] = None) -> str:
        """Accuracy against cumulative bits per peer (`tallysim plot`), with a band of +- one std over
        seeds when the run had several; returns the figure's path."""
        from tallysim.results.plot import plot_curves
        return plot_curves([str(self.out)], path or str(self.out / "curve.png"), metric, title,
                           None if label is None else [label])
