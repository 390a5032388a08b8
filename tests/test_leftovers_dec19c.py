"""leftovers22: the sweep's ETA before its first run ends counts the compiles of the runs still to come;
tiny trims and fault fractions are the host counts they make, not a device zero."""
import io
import sys

import pytest

from conftest import tiny
from tallysim import config, figures, progress, progress_lines, sweep, sweep_plan


class Clock:
    """time.perf_counter for the progress modules: the test moves it."""

    def __init__(self, monkeypatch, t: float = 0.0):
        self.t = t
        monkeypatch.setattr(progress.time, "perf_counter", self)     # the one `time` module they all use

    def __call__(self) -> float:
        return self.t


# ------------------------------------------------------------------ 2. the ETA and the compiles to come

def test_the_eta_before_the_first_run_ends_adds_each_compile_to_come(monkeypatch):
    """4 runs, each its own program: the first compiles for 60 s (a tenth of a run came back with it), then
    0.4 runs in 10 s (25 s a run). Training alone: 3.5 runs at 25 s = 1m28s; each of the 3 runs to come
    compiles again for 60 - 0.1 * 25 = 57.5 s: 87.5 + 172.5 = 4m20s."""
    clock = Clock(monkeypatch)
    c = progress.RunsClock(4)
    c.expect_compiles(4)
    c.batch_starts(True)                 # the first run's compile is under way: 3 to come
    clock.t = 60.0
    c.report(0.1, compiled=True)
    assert c.eta() is None and c.eta_text() == "ETA after the first rounds"
    clock.t = 70.0
    c.report(0.5)
    assert c.compile_s() == pytest.approx(57.5)
    assert c.eta() == pytest.approx(3.5 * 25.0 + 3 * 57.5) and c.eta_text() == "ETA 4m20s"


def test_runs_sharing_a_program_add_no_compile(monkeypatch):
    """The same 4 runs as one compiled program (a grouped sweep: one compile, under way): training only,
    as before; a batch that starts without compiling takes nothing off the compiles to come."""
    clock = Clock(monkeypatch)
    c = progress.RunsClock(4)
    c.expect_compiles(2)
    c.batch_starts(True)
    c.batch_starts(False)                # a batch whose program an earlier one compiled: still 1 to come
    assert c.compiles_left == 1
    c.batch_starts(True)
    assert c.compiles_left == 0
    clock.t = 60.0
    c.report(0.1, compiled=True)
    clock.t = 70.0
    c.report(0.5)
    assert c.eta() == pytest.approx(3.5 * 25.0)
    c.batch_starts(True)                 # more starts than expected: never below none
    assert c.compiles_left == 0


def test_the_runs_bar_and_lines_pass_the_compiles_to_their_clock(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.delenv(progress.MODE_ENV, raising=False)
    for bar in (progress.RunsBar(3), progress_lines.RunsLines(3)):
        bar.expect_compiles(3)
        bar.batch_starts(True)
        assert bar.clock.compiles_left == 2
        bar.close()


def test_which_batches_of_a_sweep_compile(tmp_path):
    """Grouped, each batch is a program of its own; one at a time, a run of shapes an earlier run of this
    sweep compiled does not compile again; a finished run (skipped) compiles nothing."""
    base = tiny("protocol.name=tally", "rounds=1")
    runs = sweep.expand({}, ["optim.lr=0.02,0.05", "peers=4,5"])     # peers is static: two programs
    cfgs, dirs = sweep.configs(base, runs), [tmp_path / n for n, _ in runs]
    grouped = sweep_plan.plan(cfgs, dirs, True)
    assert grouped == [[0, 2], [1, 3]] and sweep_plan.compiles(cfgs, dirs, grouped) == [True, True]
    alone = sweep_plan.plan(cfgs, dirs, False)
    assert sweep_plan.compiles(cfgs, dirs, alone) == [True, True, False, False]
    dirs[1].mkdir()
    (dirs[1] / sweep.DONE).write_text("{}")
    again = sweep_plan.plan(cfgs, dirs, True)
    assert again == [[0, 2], [1], [3]] and sweep_plan.compiles(cfgs, dirs, again) == [True, False, True]
    # a figure's bar over every group is told them before its first group runs
    assert figures._compiles(base, runs, tmp_path, True) == 2
    assert figures._compiles(base, runs, tmp_path / "fresh", False) == 2


def test_the_sweep_tells_its_bar_the_compiles_and_each_batch(monkeypatch, tmp_path):
    """run_sweep (runs stubbed: no training) tells its own bar the compiles to come, then each batch's."""
    seen = []

    class Bar:
        def expect_compiles(self, n):
            seen.append(("expect", n))

        def batch_starts(self, compiles):
            seen.append(("starts", compiles))

        def done(self, n=1, skipped=False):
            pass

        def close(self):
            pass
    monkeypatch.setattr(sweep.progress_bars, "runs_bar", lambda *a, **k: Bar())
    monkeypatch.setattr(sweep, "_run_one", lambda *a, **k: None)
    monkeypatch.setattr(sweep, "_run_grouped", lambda *a, **k: None)
    runs = sweep.expand({}, ["optim.lr=0.02,0.05", "peers=4,5"])
    sweep.run_sweep(tiny("protocol.name=tally", "rounds=1"), runs, tmp_path / "s", grouped=False, log=lambda s: None)
    assert seen == [("expect", 2), ("starts", True), ("starts", True), ("starts", False), ("starts", False)]


# ------------------------------------------------------------------ 3. tiny trims and fractions are host counts

@pytest.mark.parametrize("items, said", [
    (("protocol.name=fedavg", "fedavg.aggregate=trimmed", "fedavg.trim=1e-45"),
     "fedavg.trim=1e-45 trims 0 of 4 models (floor(trim x 4) = 0): fedavg.aggregate=trimmed is their "
     "unweighted mean; a trim of 1/4 or more cuts one from each end"),
    (("protocol.name=softlabel", "softlabel.aggregate=trimmed", "softlabel.trim=1e-45"),
     "softlabel.trim=1e-45 trims 0 of 4 peers' messages"),
    (("protocol.name=fedavg", "fedavg.aggregate=trimmed", "fedavg.trim=1e-45", "fedavg.pre=bucketing",
      "fedavg.bucket=2", "peers=8"), "fedavg.trim=1e-45 trims 0 of 4 buckets"),
    (("protocol.name=fedavg", "fedavg.aggregate=trimmed", "fedavg.trim=0.2", "peers=2"),     # 0.2 of 2 as well
     "fedavg.trim=0.2 trims 0 of 2 models (floor(trim x 2) = 0): fedavg.aggregate=trimmed is their unweighted "
     "mean; no trim below 0.5 cuts one of 2"),
    (("faults.kind=dropout", "faults.fraction=1e-45"),
     "faults.fraction=1e-45 of peers=4 is no faulty peer (floor(fraction * P) = 0): the run has no faults"),
])
def test_a_tiny_trim_or_fault_fraction_is_the_count_it_makes_not_a_device_zero(items, said):
    """The trims and faults.fraction become floor(value x n) on the host (sim/vote.trim_count,
    sim/faults.count): 1e-45 was refused as "the device computes with it as 0"; it is a count of 0, as 0.05
    of 10 is, which the run's warnings say (never the float32 reason)."""
    from tallysim import validation
    cfg = config.validate(tiny(*items))
    assert any(w.startswith(said) for w in validation.warnings(cfg)), validation.warnings(cfg)


def test_a_trim_that_cuts_one_says_nothing_and_the_device_floats_stay_refused():
    from tallysim import validation
    cfg = config.validate(tiny("protocol.name=fedavg", "fedavg.aggregate=trimmed", "fedavg.trim=0.25"))
    assert not [w for w in validation.warnings(cfg) if "trim" in w]
    with pytest.raises(config.ConfigError, match="optim.lr=1e-46 is below float32's smallest normal"):
        config.validate(tiny("optim.lr=1e-46"))


# ------------------------------------------------------------------ 4. one count of a round's cohort

def test_the_summary_counts_a_cohort_with_the_runs_own_active_peers():
    """results/headline.py recomputed max(1, round(participation * peers)) beside config_shapes.active_peers
    (results/ may import only the configuration): it now takes the one function, re-exported by config, as
    do the robust rules' and the cohort rules' checks."""
    from tallysim import config_rules, config_shapes, robust_checks
    from tallysim.results import headline
    assert headline.active_peers is config.active_peers is config_shapes.active_peers
    assert robust_checks.active_peers is config_rules.active_peers is config_shapes.active_peers
    for participation, peers in ((0.25, 10), (0.0001, 1000), (0.5, 3)):
        cfg = config.Config().replace(participation=participation, peers=peers)
        active = config_shapes.active_peers(cfg)
        assert f"{active} of {peers:,} a round" in headline._per_active(cfg, {"round": 1, "bits_per_peer": 8e6})
