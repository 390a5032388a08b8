"""leftovers30: small items. 1. a stray metrics.jsonl (or one beside a project's config.json) in a parent
folder no longer refuses every derived output below it (atomic.run_above: a run is tallysim's marker, or
config.json beside a metrics.jsonl whose first row is a run's; the walk stops at the root and a home);
2. a resumed run's tracker logs the seeds_counted/<key> an uninterrupted one does; 3. a seed's NaN/inf is
kept in aggregate's mean and counted (seeds_nonfinite); 4. a plugin's float bit count where floats skip
whole numbers (2**53; float32 2**24) refused; 5. Results.plot / pareto.collect errors name their
parameters, the CLI its flags; 6. sweep run names that differ only in case refused; 7. bench --sweep
--sample N times N runs."""
import json

import pytest


# ----------------------------------------------------------------------------- 1. run_above's walk

def _legacy_run(d):
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 1}))
    (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 800.0, "acc_mean": 0.5}) + "\n")


STRAYS = [{"metrics.jsonl": '{"loss": 1.0}\n'}, {"config.json": "{}", "metrics.jsonl": '{"step": 3, "loss": 1.0}\n'}]


@pytest.mark.parametrize("stray", STRAYS)
def test_a_stray_file_two_levels_up_refuses_nothing(stray, tmp_path):
    # a metrics.jsonl of another tool in a project folder two levels above the results (or beside the
    # project's config.json) made every --out below it "inside the run directory <project>"
    from tallysim import atomic
    from tallysim.config import ConfigError
    proj = tmp_path / "proj"
    _legacy_run(proj / "work" / "res" / "a")
    for name, text in stray.items():
        (proj / name).write_text(text)
    out = proj / "work" / "res" / "p.png"
    atomic.refuse_results_file(out)            # every derived --out's check (pareto, plot, table, figure, bench)
    assert atomic.run_above(proj / "work" / "res" / "a" / "p.png") == proj / "work" / "res" / "a"
    # a real run two levels up is still refused: a legacy pair
    (proj / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 8.0}) + "\n")
    (proj / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=f"is inside the run directory {proj},"):
        atomic.refuse_results_file(out)


def test_pareto_below_a_stray_metrics_file_writes(tmp_path, capsys):
    from tallysim.cli import main
    proj = tmp_path / "proj"
    _legacy_run(proj / "work" / "res" / "a")
    (proj / "metrics.jsonl").write_text('{"loss": 1.0}\n')
    out = proj / "work" / "res" / "p.png"
    assert main(["pareto", str(proj / "work" / "res"), "--out", str(out)]) == 0, capsys.readouterr().err
    assert out.is_file()


def test_run_above_stops_at_a_home_directory(tmp_path, monkeypatch):
    from tallysim import atomic
    home = tmp_path / "home"
    _legacy_run(home)                       # a home that looks like a run: never written as one
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr("pathlib.Path.home", classmethod(lambda cls: home))
    assert atomic.run_above(home / "res" / "t.md") is None
    _legacy_run(home / "res" / "a")
    assert atomic.run_above(home / "res" / "a" / "sub" / "t.md") == home / "res" / "a"
    (home / "res" / "m").mkdir()
    (home / "res" / "m" / ".tallysim-run").write_text(json.dumps({"written_by": "tallysim"}))
    assert atomic.run_above(home / "res" / "m" / "x" / "y" / "t.md") == home / "res" / "m"
    # an empty metrics.jsonl beside a config: a run stopped before its first row
    (home / "res" / "e").mkdir()
    (home / "res" / "e" / "config.json").write_text("{}")
    (home / "res" / "e" / "metrics.jsonl").write_text("")
    assert atomic.run_above(home / "res" / "e" / "t.md") == home / "res" / "e"


# ----------------------------------------------------------------------------- 2. a resumed tracker's counts

class _Writer:
    """A tracker backend that keeps what it is given (tracking's TensorBoardWriter/MLflowWriter calls)."""
    def __init__(self):
        self.rows = []

    def start(self, name, hparams):
        pass

    def row(self, step, values):
        self.rows.append((step, {k: v for k, v in values.items() if k.startswith("seeds_counted/")}))

    def image(self, name, png):
        pass

    def close(self):
        pass


def test_a_resumed_runs_tracker_logs_the_counts_an_uninterrupted_one_does(tmp_path, monkeypatch):
    # round 1's acc_mean short (1 of 2 seeds), rounds 2-3 whole: an uninterrupted tracker logs
    # seeds_counted/acc_mean at every round from 1 (2.0 at the whole rounds); a run resumed from its
    # round-1 checkpoint started with no short key and logged none at rounds 2-3
    from conftest import crash_after_row, RESUMABLE, read_rows, tiny
    from tallysim import checkpoint, run, run_recorders, tracking
    writers = []

    def open_run(cfg, out_dir, fresh=True, name=None):
        writers.append(_Writer())
        return tracking.RunTracker(cfg, out_dir, [writers[-1]], name)
    agg = run_recorders.aggregate

    def aggregate(rows, seeds):              # a short mean at round 1, as a seed's missing value makes it
        row = agg(rows, seeds)
        return {**row, "seeds_counted": {"acc_mean": 1}} if row["round"] == 1 else row
    monkeypatch.setattr(tracking, "open_run", open_run)
    monkeypatch.setattr(run_recorders, "aggregate", aggregate)
    items = (*RESUMABLE, "seeds=2")
    b = run.build(tiny(*items))
    with monkeypatch.context() as m:
        crash_after_row(m, 2)
        with pytest.raises(KeyboardInterrupt):
            run.run(tiny(*items), str(tmp_path / "cut"), progress=False, built=b, checkpoint_every=1)
    assert checkpoint.read_meta(tmp_path / "cut")["round"] == 1
    run.run(tiny(*items), str(tmp_path / "cut"), progress=False, built=b, checkpoint_every=1, resume=True)
    # the uninterrupted run's tracker: every row in turn (a resumed run's rows are the uninterrupted run's,
    # tests/test_checkpoint*.py), which a run without a checkpoint gives its tracker as it writes them
    uninterrupted = _Writer()
    t = tracking.RunTracker(tiny(*items), None, [uninterrupted])
    for row in read_rows(tmp_path / "cut"):
        t.row(row)
    whole = uninterrupted.rows
    assert whole == [(1, {"seeds_counted/acc_mean": 1.0}), (2, {"seeds_counted/acc_mean": 2.0}),
                     (3, {"seeds_counted/acc_mean": 2.0})]
    assert writers[-1].rows == whole[1:]        # rounds 2 and 3, counted as the uninterrupted run counted them


# ----------------------------------------------------------------------------- 3. a NaN seed in aggregate

def test_a_non_finite_seed_stays_in_the_mean_and_is_counted():
    # a diverged seed's NaN (or inf) perplexity is a result: the mean is NaN (inf), not the other seeds'
    # mean, and seeds_nonfinite says how many seeds were not finite; a missing value (None) is still left
    # out and counted in seeds_counted, as before
    import math
    import warnings
    from tallysim.results.metrics import aggregate
    from tallysim.results.rows import dumps_row, revive
    rows = [{"round": 2, "ppl_mean": 12.0, "ppl_global": 9.0, "vote_acc": 0.5, "acc_mean": 0.6},
            {"round": 2, "ppl_mean": math.nan, "ppl_global": math.inf, "vote_acc": None, "acc_mean": 0.7},
            {"round": 2, "ppl_mean": 14.0, "ppl_global": 11.0, "vote_acc": 0.7, "acc_mean": 0.8}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # numpy's "invalid value" over inf said nothing useful
        row = aggregate(rows, [0, 1, 2])
    assert math.isnan(row["ppl_mean"]) and math.isnan(row["ppl_mean_std"])
    assert row["ppl_global"] == math.inf and math.isnan(row["ppl_global_std"])
    assert row["seeds_nonfinite"] == {"ppl_mean": 1, "ppl_global": 1}
    assert row["seeds_counted"] == {"vote_acc": 2} and row["vote_acc"] == pytest.approx(0.6)
    assert math.isnan(row["per_seed"]["ppl_mean"][1])
    back = revive(json.loads(dumps_row(row)))        # strict JSON and back
    assert back["seeds_nonfinite"] == {"ppl_mean": 1, "ppl_global": 1} and math.isnan(back["ppl_mean"])
    assert "seeds_nonfinite" not in aggregate([r for i, r in enumerate(rows) if i != 1], [0, 2])


# ----------------------------------------------------------------------------- 4. float bit counts past 2**53

@pytest.mark.parametrize("bits, limit", [
    (dict(up=2.0 ** 53, down=0, active=4), "2**53"),             # 2**53 + 1 bits as a float: 2**53, exact-looking
    (dict(up=8, down=1e17, active=4), "2**53"),
    (dict(up=8, down=0, active=4, up_total=float(2 ** 60)), "2**53"),
    (dict(up=float(2 ** 24), down=0, active=4), None),            # a Python float below 2**53: exact, counted
    (dict(up=8, down=0, active=4, up_total=None), None),
])
def test_a_plugins_float_bits_past_exact_whole_numbers_are_refused(bits, limit):
    import numpy as np
    from tallysim.protocols import contract
    from tallysim.sim.comm import RoundBits
    from tallysim.config import ConfigError
    cost = contract._checked_cost("protocol 'p' (plugin 'm')", lambda info: RoundBits(**bits))
    if limit is None:
        assert all(type(v) is int for v in cost({})[:3])
        return
    with pytest.raises(ConfigError) as e:
        cost({})
    msg = str(e.value)
    assert len(msg.splitlines()) == 1 and msg.startswith("protocol 'p' (plugin 'm'): cost(info) returned RoundBits(")
    assert f"a float at or above {limit}" in msg and "expected an int (Python's or numpy's)" in msg, msg


def test_float32_and_each_peers_float_bits_are_refused_where_rounded():
    import numpy as np
    from tallysim.protocols import contract
    from tallysim.sim.comm import RoundBits
    from tallysim.config import ConfigError
    # float32 holds every whole number only below 2**24 (16,777,217 bits as float32 is 16,777,216)
    with pytest.raises(ConfigError, match=r"RoundBits\(up=np\.float32\(1\.6777216e\+07\)\), a float32 at or above 2\*\*24"):
        contract._checked_cost("protocol 'p' (plugin 'm')",
                               lambda info: RoundBits(np.float32(2 ** 24 + 1), 0, 4))({})
    # each peer's own bits (up_A) too; ints of any size pass
    up = 2 ** 60
    with pytest.raises(ConfigError, match=r"up_A=\.\.\.\) with .*a float at or above 2\*\*53"):
        contract._checked_cost("p", lambda info: RoundBits(up, 0, 2, up_A=(float(up), float(up))))({})
    assert contract._checked_cost("p", lambda info: RoundBits(up, 0, 2, up_A=(up, up)))({}).up_A == (up, up)


# ----------------------------------------------------------------------------- 5. errors worded for the caller

FLAGS = ("--out", "--metric", "--which", "--label", "--title")


def test_results_plot_and_pareto_collect_name_their_parameters_and_the_cli_its_flags(tmp_path, capsys):
    # Results.plot(path="c.txt") said "--out c.txt: .txt is not an image format", pareto.collect(metric=...)
    # "--metric ...": flags a Python caller never gave. The CLI keeps its flags.
    import tallysim
    from tallysim.cli import main
    from tallysim.config import ConfigError
    from tallysim.results import pareto
    res = tmp_path / "res"
    _legacy_run(res / "a")
    got = tallysim.Results.read(res / "a")
    for kw, said in [({"path": str(tmp_path / "c.txt")}, f"path {tmp_path / 'c.txt'}: .txt is not an image format"),
                     ({"path": str(tmp_path)}, f"path {tmp_path} is a directory"),
                     ({"path": str(res / "a" / "sub" / "c.png")}, f"path {res / 'a' / 'sub' / 'c.png'} is inside"),
                     ({"metric": "nope"}, "metric 'nope' is not a column"),
                     ({"label": ""}, "label '' is empty")]:
        with pytest.raises(ConfigError) as e:
            got.plot(**kw)
        assert said in str(e.value) and not any(f in str(e.value) for f in FLAGS), str(e.value)
    for kw, said in [({"metric": "ppl_mean"}, "metric 'ppl_mean' is better lower"),
                     ({"metric": "acc_mean_std"}, "metric 'acc_mean_std' is a std over seeds"),
                     ({"which": "last"}, "which='last' is not known")]:
        with pytest.raises(ConfigError) as e:
            pareto.collect([res], **kw)
        assert said in str(e.value) and not any(f in str(e.value) for f in FLAGS), str(e.value)
    # the command line: the flags, as before
    assert main(["plot", str(res / "a"), "--out", str(tmp_path / "c.txt")]) == 2
    assert f"--out {tmp_path / 'c.txt'}: .txt is not an image format" in capsys.readouterr().err
    assert main(["plot", str(res / "a"), "--out", str(tmp_path / "c.png"), "--metric", "nope"]) == 2
    assert "--metric 'nope' is not a column" in capsys.readouterr().err
    assert main(["pareto", str(res), "--out", str(tmp_path / "p.png"), "--metric", "ppl_mean"]) == 2
    assert "--metric 'ppl_mean' is better lower" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 6. names that differ only in case

def test_sweep_runs_whose_names_differ_only_in_case_are_refused_before_anything_runs(tmp_path, capsys, no_compile):
    # data.path=A.npz,a.npz named its runs `data.path=A.npz` and `data.path=a.npz`: one directory on macOS's
    # and Windows' default file systems, the second run's rows over the first's
    from conftest import tiny
    from tallysim import sweep
    from tallysim.cli import main
    from tallysim.config import ConfigError
    with pytest.raises(ConfigError, match=r"sweep runs 'data\.path=A\.npz' and 'data\.path=a\.npz' \(their directories' "
                                          r"names\) differ only in case: one directory on a case-insensitive "
                                          r"file system"):
        sweep.expand({}, ["data.path=A.npz,a.npz"])
    assert [n for n, _ in sweep.expand({}, ["data.path=A.npz,b.npz"])] == ["data.path=A.npz", "data.path=b.npz"]
    out = tmp_path / "s"
    assert main(["sweep", "--out", str(out), "data.name=files", "data.path=A.npz,a.npz"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "differ only in case" in err and not out.exists(), err
    with pytest.raises(ConfigError, match=r"run_sweep: runs 'A' and 'a' differ only in case: .*; allowed: names "
                                          "that differ by more than case"):
        sweep.run_sweep(tiny("rounds=1"), [("A", []), ("b", []), ("a", ["seed=1"])], out)
    assert not out.exists()


# ----------------------------------------------------------------------------- 7. bench --sweep --sample N

def test_bench_sweep_sample_n_times_n_runs_spread_over_the_sweep(monkeypatch):
    # runs[::ceil(108 / 50)] timed 36 runs for --sample 50 (and 54 for 40, 108 // 3 = 36 for 37..53)
    import time
    from tallysim import sweep
    from tallysim.bench import sweep as bench_sweep
    runs = list(range(108))
    for n in range(1, 108):
        got = bench_sweep.sampled(runs, n)
        gaps = {b - a for a, b in zip(got, got[1:])}
        assert len(got) == n and got[0] == 0 and len(set(got)) == n and max(gaps, default=1) - min(gaps, default=1) <= 1
    assert bench_sweep.sampled(runs, 0) == runs and bench_sweep.sampled(runs, 500) == runs
    assert bench_sweep.sampled(runs, 6) == [0, 18, 36, 54, 72, 90]        # docs/gpu.md's --sample 6: as before
    timed, said = [], []

    def run_sweep(base, todo, out, **kw):      # nothing trains: what each leg is given, each run done
        timed.append(len(todo))
        time.sleep(0.02)                       # a grouped time that rounds to 0.00 s divides the ratio by 0
        return [{"name": name, "status": "done"} for name, _ in todo]
    monkeypatch.setattr(sweep, "run_sweep", run_sweep)
    # the smoke sweep's 8 runs (cheaper to list than the full 108): --sample 5 timed 4 (a stride of 2)
    r = bench_sweep.run(smoke=True, data="synthetic", log=said.append, sample=5)
    assert timed == [8, 5] and r["one_at_a_time_timed"] == 5
    assert "bench --sweep: 5 runs one at a time ..." in said and "(seconds from 5 sampled runs)" in said[-1]
