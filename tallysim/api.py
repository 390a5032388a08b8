"""The public API for scripts, notebooks and tests (re-exported by `tallysim`):

    import tallysim
    cfg = tallysim.Config().replace(protocol={"name": "fedprox"}, fedprox={"mu": 0.1}, rounds=5)
    res = tallysim.run(cfg, out="runs/m")       # a Results: res.rows, res.last, res.plot("m.png")
    d = tallysim.drive(cfg)                      # one round at a time: d.step(); d.state, d.info
    tallysim.load_plugin("my_protocols")         # protocols defined outside tallysim

docs/write-a-protocol.md shows them on a complete example.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tallysim.config import Config


@dataclass
class Results:
    """What a run wrote: its directory, its metrics rows (one per evaluation) and its resolved config."""
    out: Path
    rows: list = field(default_factory=list)
    config: dict = field(default_factory=dict)

    @classmethod
    def read(cls, out) -> "Results":
        from tallysim.results import metrics
        cfg, rows = metrics.read_run(out)
        return cls(Path(out), rows, cfg)

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}

    def column(self, key: str) -> list:
        return [r.get(key) for r in self.rows]

    def plot(self, path: Optional[str] = None, metric: str = "auto", title: Optional[str] = None) -> str:
        """Accuracy against cumulative bits per peer (`tallysim plot`); returns the figure's path."""
        from tallysim.results.plot import plot_curves
        return plot_curves([str(self.out)], path or str(self.out / "curve.png"), metric, title)


def run(cfg: Config, out: Optional[str] = None, overwrite: bool = False, progress: bool = False,
        **kwargs) -> Results:
    """Run `cfg` (all its seeds) into `out` (None: a new temporary directory); returns its Results.
    kwargs: as tallysim.run.run (checkpoint_every, resume)."""
    from tallysim.run import run as run_one
    out = out if out is not None else tempfile.mkdtemp(prefix="tallysim-")
    run_one(cfg, str(out), overwrite=overwrite or not any(Path(out).iterdir()), progress=progress, **kwargs)
    return Results.read(out)


class Driver:
    """One protocol, built for `cfg` (its first seed), driven a round at a time by hand: for tests
    and notebooks that look inside a round. `state` is the protocol's State (peers stacked), `info`
    the last round's info dict, `built` what run.build made (data in `built.one`, the Context in
    `built.ctx`, the Protocol in `built.protocol`)."""

    def __init__(self, cfg: Config, seed: int = 0):
        import jax
        from tallysim.run import build
        self.built = build(cfg)
        k_init, self.root = jax.random.split(jax.random.PRNGKey(seed))
        self.state = jax.jit(self.built.protocol.init)(k_init, self.built.one)
        self.round_fn = jax.jit(self.built.protocol.round)
        self.r, self.info = 0, None

    @property
    def protocol(self):
        return self.built.protocol

    def step(self, state=None):
        """Round r+1 from `state` (default: the current one); returns (new state, info) and keeps them."""
        import jax.numpy as jnp
        self.r += 1
        self.state, self.info = self.round_fn(self.state if state is None else state, self.built.one, self.root,
                                              jnp.int32(self.r))
        return self.state, self.info

    def bits(self):
        """The last round's exact bits (comm.RoundBits), from the protocol's cost."""
        return self.built.protocol.cost({k: v.tolist() for k, v in (self.info or {}).items()})


def drive(cfg: Config, seed: int = 0) -> Driver:
    return Driver(cfg, seed)


def load_plugin(module: str) -> list:
    """Import a module that defines protocols (PROTOCOLS = {"name": "factory"}); returns their names."""
    from tallysim import protocols
    return protocols.load_plugin(module)
