"""The public API for scripts, notebooks and tests (re-exported by `tallysim`):

    import tallysim
    cfg = tallysim.Config().replace(protocol={"name": "fedprox"}, fedprox={"mu": 0.1}, rounds=5)
    res = tallysim.run(cfg, out="runs/m")       # a Results: res.rows, res.last, res.plot("m.png")
    d = tallysim.drive(cfg)                      # one round at a time: d.step(); d.state, d.info
    tallysim.load_plugin("my_protocols")         # protocols defined outside tallysim
    tallysim.compare("runs/a", "runs/b")         # paired seeds: differences, 95% t-interval, verdict

docs/write-a-protocol.md shows them on a complete example.
"""
from __future__ import annotations

from typing import Optional

from tallysim.config import Config
from tallysim.results.runs import Results, read_rows  # noqa: F401 - tallysim.read_rows


def run(cfg: Config, out: Optional[str] = None, **kwargs) -> Results:
    """Run `cfg` (all its seeds) into `out` (None: a new temporary directory); returns its Results."""
    from tallysim.run import run_results
    return run_results(cfg, out, **kwargs)


class Driver:
    """One protocol, built for `cfg` (its first seed), driven a round at a time by hand: for tests
    and notebooks that look inside a round. `state` is the protocol's State (peers stacked), `info`
    the last round's info dict, `built` what run.build made (data in `built.one`, the Context in
    `built.ctx`, the Protocol in `built.protocol`)."""

    def __init__(self, cfg: Config, seed: Optional[int] = None):
        from tallysim.fields import INT_MAX, ConfigError
        from tallysim.schema import plain_value
        seed = plain_value(seed)        # np.int64 from np.arange, as Config.replace takes it
        if seed is not None and (type(seed) is not int or not 0 <= seed <= INT_MAX):
            # jax.random.PRNGKey takes -1 and 2**40 alike; the CLI's seed field does not
            raise ConfigError(f"drive(seed={seed!r}): expected an integer in 0..{INT_MAX} (or None: the "
                              "config's seed), as the seed field allows")
        from tallysim import validation
        # a single run, as tallysim.run's: a field this protocol or model never reads is refused before
        # anything loads or compiles (a sweep's shared base is another matter; drive builds one config)
        validation.single_run(cfg)      # and its warnings printed on stderr, as tallysim.run's
        from tallysim import jax_check
        jax_check.backend()             # 64-bit mode on in the notebook: one line, not a traceback in a round
        import jax
        from tallysim.run import build
        self.built = build(cfg)
        seed = self.built.cfg.seed if seed is None else seed      # the keys a run of cfg uses
        k_init, self.root = jax.random.split(jax.random.PRNGKey(seed))
        self.state = jax.jit(self.built.protocol.init)(k_init, self.built.one)
        self.round_fn = jax.jit(self.built.protocol.round)
        self.r, self.info = 0, None

    @property
    def protocol(self):
        return self.built.protocol

    def step(self, state=None):
        """Round r+1 from `state` (default: the current one); returns (new state, info) and keeps them."""
        import jax
        import jax.numpy as jnp
        from tallysim.fields import ConfigError
        if state is not None and jax.tree.structure(state) != jax.tree.structure(self.state):
            # a dict or a number was an AttributeError from inside the traced round (`no attribute params`)
            raise ConfigError(f"Driver.step(state=...): a {type(state).__name__} of another structure than the "
                              f"protocol's state; expected its State, as d.state or a step's first return value "
                              "holds it (or None: the current one)")
        self.r += 1
        self.state, self.info = self.round_fn(self.state if state is None else state, self.built.one, self.root,
                                              jnp.int32(self.r))
        return self.state, self.info

    def run(self, rounds: Optional[int] = None) -> list:
        """Rounds r+1 .. r+rounds (default: the config's rounds); returns each round's info on the host."""
        from tallysim.fields import ConfigError
        from tallysim.schema import plain_value
        rounds = plain_value(rounds)        # np.int64 from np.arange, as Config.replace takes it
        if rounds is not None and (type(rounds) is not int or rounds < 1):
            # run(-1) and run(0) returned [] with no round run, run("5") was range's TypeError
            raise ConfigError(f"Driver.run(rounds={rounds!r}): expected a whole number of rounds, 1 or more (or None: "
                              "the config's rounds)")
        import jax
        out = []
        for _ in range(self.built.cfg.rounds if rounds is None else rounds):
            self.step()
            out.append({k: v.tolist() for k, v in jax.device_get(self.info).items()})
        return out

    def bits(self):
        """The last round's exact bits (comm.RoundBits), from the protocol's cost."""
        import jax
        from tallysim.fields import ConfigError
        if self.info is None:       # was the cost of an empty info: a round's bits though no round had run
            raise ConfigError("Driver.bits(): no round has run yet; call d.step() (or d.run(n)) first: the bits "
                              "are the last round's")
        return self.built.protocol.cost({k: v.tolist() for k, v in jax.device_get(self.info).items()})


def drive(cfg: Config, seed: Optional[int] = None) -> Driver:
    """The protocol of `cfg` built and initialised for `seed` (default: the config's first seed), to
    step by hand: `d.step()` runs one round, `d.run(n)` n rounds, `d.bits()` the last round's cost."""
    return Driver(cfg, seed)


def compare(a, b=None, *, by: Optional[str] = None, metric: str = "auto", at: str = "final",
            fmt: Optional[str] = None, out: Optional[str] = None, per_pair: bool = False):
    """Paired-seed comparison, as `tallysim compare`: run directory `a` against `b` seed by seed, or (`by=
    "FIELD=VA,VB"`) each run under `a` (a sweep's --out) with FIELD=VA against the run that differs from it
    only in FIELD; `a` and `b` may be per-seed CSV sides, "FILE.csv:COLUMN=VALUE:..." (with `by`, `a` alone:
    "FILE.csv[:...]"). Over several pairs the intervals are family-wise (Bonferroni's interval, Holm's sign-test
    p) unless `per_pair`. Returns a Comparison (a list of one dict per pair: per-seed values and differences,
    mean, se, ci_low/ci_high, above/below/tied, sign_p, verdict, and over several pairs the unadjusted
    *_per_pair; `.notes`; `.family`; `.text()` the command's markdown or CSV), written to `out` too when given."""
    from tallysim.results.compare import compare as paired
    return paired(a, b, by=by, metric=metric, at=at, fmt=fmt, out=out, per_pair=per_pair)


def load_plugin(module: str) -> list:
    """Import a module that defines protocols (PROTOCOLS = {"name": "factory"}); returns their names."""
    from tallysim import protocols
    return protocols.load_plugin(module)
