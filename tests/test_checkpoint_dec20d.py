"""checkpoint (dec20d): `sweep --checkpoint-every K` and `figure --checkpoint-every K` (run's cadence,
passed to every run; a group of runs trained as one program saves each run's own lanes), and the sweep's ETA
counting the compiles still to come where no compile cache keeps a program and where a run's seeds
go in chunks of two widths."""
from __future__ import annotations

import json

import pytest

from conftest import crash_after_row, RESUMABLE, TINY, read_rows, tiny
from tallysim import checkpoint, cli, run, sweep

ALLOWED = "--checkpoint-every -1: allowed 0 (never) or a number of rounds"


class Crash(Exception):
    pass


@pytest.mark.slow   # the same code, fast: test_resume.py's test_sweep_resumes_a_partial_run_from_its_checkpoint
# (run_sweep(checkpoint_every=1), one run alone) and the group test below (the command line's option)
def test_a_sweep_killed_after_round_1_resumes_each_run_from_round_1(tmp_path, monkeypatch, capsys):
    """Two runs one at a time (seed=0,1: one program, RESUMABLE's, as the shared `checkpointed` fixture
    compiles it), --checkpoint-every 1, each stopped while round 2 runs (after round 2's row, before its
    checkpoint): the sweep run again continues both from round 1's checkpoint. Without the option the
    sweep kept the default (every 5 minutes): neither tiny run saved one, and both ran again from round 1."""
    out = tmp_path / "sw"
    items = ["sweep", *TINY, *RESUMABLE, "seed=0,1", "--one-at-a-time", "--out", str(out), "--quiet"]
    with monkeypatch.context() as m:
        crash_after_row(m, 2, Crash)
        assert cli.main([*items, "--checkpoint-every", "1"]) == 1       # both failed, each with a checkpoint
    for name in ("seed=0", "seed=1"):
        assert checkpoint.read_meta(out / name)["round"] == 1
    capsys.readouterr()
    assert cli.main([*items, "--checkpoint-every", "1"]) == 0
    for name in ("seed=0", "seed=1"):
        assert [r["round"] for r in read_rows(out / name)] == [1, 2, 3]
        resumed = json.loads((out / name / "config.json").read_text())["resumed"]
        assert [e["round"] for e in resumed] == [1]
        assert not (out / name / checkpoint.FILE).exists()       # finished: its checkpoint removed


@pytest.mark.parametrize("command", [["sweep", "seed=0,1", "--out"], ["figure", "fig1", "--smoke", "--results"]])
def test_a_negative_cadence_is_refused_before_anything_compiles(command, tmp_path, capsys, no_compile):
    """As run refuses it, in run's words (argparse took -1, and Saver's `r % -1 == 0` saved every round)."""
    assert cli.main([*command, str(tmp_path / "o"), "--checkpoint-every", "-1"]) == 2
    assert ALLOWED in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(sweep.ConfigError, match=r"run_sweep\(checkpoint_every=-1\): allowed None \(every few "
                       r"minutes\), 0 \(never\) or a number of rounds"):
        sweep.run_sweep(tiny(), [("a", [])], tmp_path / "api", checkpoint_every=-1)


def test_every_run_and_every_group_gets_the_cadence(tmp_path, monkeypatch):
    """run_sweep (runs stubbed: no training) hands the cadence to every run trained alone and to every
    group (run.run_group's, and its lone runs' after a refusal or a halving); none given: the default."""
    seen = []
    monkeypatch.setattr(sweep, "_run_one", lambda *a: seen.append(("one", a[-1])))
    monkeypatch.setattr(sweep, "_run_grouped", lambda *a: seen.append(("group", a[-1])))
    runs = sweep.expand({}, ["optim.lr=0.02,0.05", "peers=4,5"])
    base = tiny("protocol.name=tally", "rounds=1")
    sweep.run_sweep(base, runs, tmp_path / "g", progress=False, log=lambda s: None, checkpoint_every=3)
    assert seen == [("group", 3), ("group", 3)]
    seen.clear()
    sweep.run_sweep(base, runs, tmp_path / "a", progress=False, log=lambda s: None, grouped=False, checkpoint_every=3)
    assert seen == [("one", 3)] * 4
    seen.clear()
    sweep.run_sweep(base, runs, tmp_path / "d", progress=False, log=lambda s: None)      # no cadence: the default
    assert seen == [("group", None), ("group", None)]


def test_a_group_killed_after_round_1_resumes_each_run_alone_from_round_1(tmp_path, monkeypatch):
    """optim.lr=0.02,0.05 trained as one program (RESUMABLE), --checkpoint-every 1, stopped while round 2
    runs: each run's directory holds its own lanes of the group's state at round 1 (a group saved none at
    any cadence: a killed grouped sweep ran every round again), and the sweep run again continues each
    alone (the rows of the uninterrupted group, bit for bit but train_loss, equal to float32 rounding)."""
    out = tmp_path / "sw"
    items = ["sweep", *TINY, *RESUMABLE, "optim.lr=0.02,0.05", "--quiet"]
    names = ["optim.lr=0.02", "optim.lr=0.05"]
    default = [*items, "--out", str(tmp_path / "default")]     # no cadence: none (the test below)
    items += ["--out", str(out), "--checkpoint-every", "1"]
    with monkeypatch.context() as m:
        crash_after_row(m, 2, Crash)
        assert cli.main(items) == 1                 # the group failed: each run with its checkpoint
    for name in names:
        meta = checkpoint.read_meta(out / name)
        assert (meta["round"], meta["chunk"], meta["lo"], meta["lines"]) == (1, 1, 0, 1)
        assert meta["config"]["optim"]["lr"] == float(name.split("=")[1])
    assert cli.main(items) == 0
    for name in names:
        assert [r["round"] for r in read_rows(out / name)] == [1, 2, 3]
        assert [e["round"] for e in json.loads((out / name / "config.json").read_text())["resumed"]] == [1]
        assert not (out / name / checkpoint.FILE).exists()
    assert cli.main(default) == 0                   # the group uninterrupted, as one program
    for name in names:
        got, want = no_wall(read_rows(out / name)), no_wall(read_rows(tmp_path / "default" / name))
        # train_loss to float32 rounding: a peer with no local step reports the others' mean
        # (local.stepped_mean_fill), a reduction XLA orders per program width (one lane alone vs the group)
        assert [r.pop("train_loss") for r in got] == pytest.approx([r.pop("train_loss") for r in want], rel=1e-6)
        for r in got + want:
            r.pop("train_loss_std", None)
            r.get("per_seed", {}).pop("train_loss", None)
        assert got == want


def test_a_group_in_lane_chunks_saves_no_checkpoint_and_says_so(tmp_path, monkeypatch, capsys):
    """run.run_group's cadence (the rounds themselves stubbed: built, nothing trained): the group's lanes in
    one chunk take K; in chunks (seed_chunk=1) none, said on stderr (a run's checkpoint is its lanes of
    one state holding them all); no K: none, in silence, as before."""
    seen = []
    monkeypatch.setattr(run, "_run_all", lambda b, outs, chunk, progress, saver, resume, at=None, on_final=None:
                        seen.append((chunk, saver.every)) or [Crash("stub")] * len(outs))
    for items, every, want in (([], 3, (2, 3)), (["seed_chunk=1"], 3, (1, 0)), ([], None, (2, 0))):
        cfgs = sweep.configs(tiny(*RESUMABLE, *items), sweep.expand({}, ["optim.lr=0.02,0.05"]))
        run.run_group(cfgs, [tmp_path / f"{len(seen)}{k}" for k in "ab"], False, warn=False, checkpoint_every=every)
        assert seen[-1] == want
        said = "save no checkpoint (--one-at-a-time saves each run's)" in capsys.readouterr().err
        assert said == (want == (1, 0))


def no_wall(rows: list) -> list:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


# ------------------------------------------------------------------ the ETA's compiles to come

def test_without_the_compile_cache_a_run_on_an_earlier_runs_program_compiles_again(tmp_path, monkeypatch):
    """One at a time, seed=0,1 build one program twice: the compile cache reads the second back (1.3 s
    of 7.9), but without it (TALLYSIM_COMPILE_CACHE=0) seed=1 compiled 12.8 s where seed=0 took 14.3 s
    (XLA's backend compiles counted, 3 and 3: none a cache hit), and the plan counted it as none."""
    import jax
    from tallysim import startup, sweep_plan
    base = tiny(*RESUMABLE)
    runs = sweep.expand({}, ["seed=0,1"])
    cfgs, dirs = sweep.configs(base, runs), [tmp_path / n for n, _ in runs]
    batches = sweep_plan.plan(cfgs, dirs, False)
    assert sweep_plan.compiles(cfgs, dirs, batches, cached=True) == [1, 0]
    assert sweep_plan.compiles(cfgs, dirs, batches, cached=False) == [1, 1]
    # where no argument says, JAX's settings do: the suite runs with the cache on (conftest)
    assert startup.cache_in_effect() and sweep_plan.compiles(cfgs, dirs, batches) == [1, 0]
    was = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        assert not startup.cache_in_effect() and sweep_plan.compiles(cfgs, dirs, batches) == [1, 1]
    finally:
        jax.config.update("jax_enable_compilation_cache", was)


def test_a_narrower_last_seed_chunk_is_a_compile_of_its_own(tmp_path):
    """seeds=5 with seed_chunk=2 run chunks of 2, 2 and 1: the chunk of 1 compiled its own programs
    (13.8 s of the run's 30.0 s of compiling, TALLYSIM_COMPILE_CACHE=0), which the plan did not count."""
    from tallysim import sweep_plan
    base = tiny(*RESUMABLE)
    one = sweep.configs(base, [("a", ["seeds=5", "seed_chunk=2"])])
    assert sweep_plan.widths(one) == [2, 1] and sweep_plan.compiles(one, [tmp_path / "a"], [[0]]) == [2]
    even = sweep.configs(base, [("a", ["seeds=4", "seed_chunk=2"])])
    assert sweep_plan.widths(even) == [2] and sweep_plan.compiles(even, [tmp_path / "a"], [[0]]) == [1]
    # a group's lanes are chunked together: seeds 2 + 3 in chunks of 2 (the smallest asked) end in one of 1
    group = sweep.configs(base, [("a", ["seeds=2", "seed_chunk=2"]), ("b", ["seeds=3", "seed_chunk=4"])])
    assert sweep_plan.widths(group) == [2, 1]
    assert sweep_plan.widths(sweep.configs(base, [("a", ["seeds=5"])])) == [5]     # sized at run time: one
    # one at a time with the cache, a second such run reads both back; without it, compiles both again
    two = sweep.configs(base, sweep.expand({}, ["seed=0,5", "seeds=5", "seed_chunk=2"]))
    dirs = [tmp_path / "x", tmp_path / "y"]
    assert sweep_plan.compiles(two, dirs, [[0], [1]], cached=True) == [2, 0]
    assert sweep_plan.compiles(two, dirs, [[0], [1]], cached=False) == [2, 2]


def test_the_clock_counts_a_batchs_later_compile_until_its_chunk_starts(monkeypatch):
    """Two runs of seeds=5 in chunks of 2, no compile cache: 4 compiles. The first (60 s, a tenth of a run
    back with it) is under way when the batch starts; 0.4 runs then take 10 s (25 s a run). Left: 1.5
    runs of training, the chunk of 1's compile in this run and the next run's two, 57.5 s each. When that
    chunk starts its compile is under way (taken off), and its first stretch is measured as one."""
    from conftest import Clock
    from tallysim import progress
    clock = Clock(monkeypatch)
    c = progress.RunsClock(2)
    c.expect_compiles(4)
    c.batch_starts(2)
    assert (c.compiles_left, c.in_batch) == (2, 1)
    clock.t = 60.0
    c.report(0.1, compiled=True)
    clock.t = 70.0
    c.report(0.5)
    assert c.eta() == pytest.approx(1.5 * 25.0 + 3 * 57.5)
    c.chunk_compiles()                  # the chunk of 1 starts compiling
    assert (c.compiles_left, c.in_batch, c.compiling) == (2, 0, True)
    assert c.eta() == pytest.approx(1.5 * 25.0 + 2 * 57.5)
    clock.t = 130.0
    c.report(0.6, compiled=True)        # its first stretch: 60 s, 0.1 runs of it rounds
    assert c.compile_s() == pytest.approx(57.5)
    c.chunk_compiles()                  # a chunk the plan did not count (sized to memory): not a compile
    assert (c.compiles_left, c.in_batch, c.compiling) == (2, 0, False)


def test_a_run_tells_its_bar_which_seed_chunks_compile(monkeypatch):
    """run._run_chunk: test_checkpoint_never's config (seeds=3 in chunks of 2: widths 2 and 1, its compiled
    programs); each chunk's width is new to the run, so each compiles. A later chunk's compile reaches the
    runs' clock through an open bar over runs (progress_base.chunk_compiles): see the comment at the end."""
    starts = []

    class Bar:
        def chunk_starts(self, compiles=False):
            starts.append(compiles)

        def update(self, *a, **k):
            pass

        def row(self, *a, **k):
            pass

        def close(self):
            pass
    with monkeypatch.context() as m:
        m.setattr(run.progress_bars, "round_bar", lambda *a, **k: Bar())
        run.run(tiny("protocol.name=fedavg", "rounds=2", "seeds=3", "seed_chunk=2", "eval_every=1"), None)
    assert starts == [True, True]
    # the round facts pass a later chunk's compile to the clock over runs, in bars and lines alike:
    # test_review_dec20m.py's test_a_later_chunks_compile_reaches_the_runs_clock_in_either_mode
