"""What a run and a sweep print where stderr is not a terminal (`nohup ... > log 2>&1`, a SLURM or CI log,
`tee`): plain throttled lines instead of tqdm's carriage-return redraws (tallysim/progress_lines.py);
`--progress` / TALLYSIM_PROGRESS force either; the runs bar's ETA before its first run has finished;
and the small leftovers that came with them: min_size's own bound in the too-few-examples message,
exact bits in multi-seed rows, TALLYSIM_DISTRIBUTED_TIMEOUT's warning where nothing reads it.
pytest's captured stderr is not a terminal: what a log file gets."""
import io
import json
import re
import sys

import pytest

from tallysim import cli, progress_lines
from tallysim import progress, progress_base
# what these tests read is what a run prints and writes, not the training: TINY without the warm-up epoch
from conftest import Clock, TINY_NO_WARMUP as TINY, fail_doomed_figure, one_line, tiny_no_warmup as tiny


pytestmark = pytest.mark.usefixtures("progress_env_unset")     # conftest: defaults, not the shell's


# ----------------------------------------------------------------------------- lines, not redraws

def test_a_run_logged_to_a_file_writes_whole_lines(tmp_path, capsys):
    assert cli.main(["run", *TINY, "protocol.name=tally", "rounds=3", "--out", str(tmp_path / "r")]) == 0
    cap = capsys.readouterr()
    assert "\r" not in cap.err, repr(cap.err[-500:])          # tqdm's redraws: one ever-growing line
    lines = cap.err.strip().splitlines()
    assert lines[0] == "round 0/3  compiling", lines
    assert re.fullmatch(r"round 1/3  peers=\d\.\d{4}  MB/peer=\S+  compiled in \d+\.\ds", lines[1]), lines
    last = lines[-1]
    assert re.fullmatch(r"round 3/3  peers=\d\.\d{4}  MB/peer=\S+  [\d,]+ examples/s  \S+ s/round  elapsed \d+s",
                        last), lines
    accuracy = float(re.search(r"accuracy (\d\.\d{4})", cap.out).group(1))
    assert float(re.search(r"peers=(\d\.\d{4})", last).group(1)) == pytest.approx(accuracy, abs=1e-4)
    assert len(lines) <= 4, lines           # start, compiled, (at most one more in 30 s), the last


def test_lines_are_at_most_one_every_interval_plus_the_first_and_the_last(monkeypatch, capsys):
    clock = Clock(monkeypatch)
    bar = progress_lines.RoundLines(1000)
    for r in range(1000):                   # 1000 rounds of 1/8 s, the first with 20 s of compiling
        clock.t += 20.0 if r == 0 else 0.125
        bar.row({"acc_global": None, "acc_mean": 0.5 + r / 4000, "bits_per_peer": 8e3 * (r + 1)})
        bar.update(1, 640)
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split("  ")[0] for line in lines] == ["round 0/1000", "round 1/1000", "round 241/1000",
                                                       "round 481/1000", "round 721/1000", "round 961/1000",
                                                       "round 1000/1000"]
    assert lines[1].endswith("compiled in 20.0s"), lines
    assert lines[2] == "round 241/1000  peers=0.5600  MB/peer=0.241  5,120 examples/s  0.125 s/round  elapsed 50s  ETA 1m35s"
    assert lines[-1] == "round 1000/1000  peers=0.7498  MB/peer=1  5,120 examples/s  0.125 s/round  elapsed 2m25s"


def test_a_stopped_run_says_where_it_stopped(monkeypatch, capsys):
    clock = Clock(monkeypatch)
    bar = progress_lines.RoundLines(100)
    clock.t = 5.0
    bar.update(1, 10)
    clock.t = 6.0
    bar.update(3, 10)                       # throttled: not said
    bar.close()                             # a run that stops (diverged, Ctrl-C) says its last state
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("round 4/100  ") and "ETA" in lines[-1], lines


def test_a_sweep_in_a_log_says_runs_done_and_the_eta_from_rounds_done(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(progress.INTERVAL_ENV, "0")                # a line every stretch of rounds
    assert cli.main(["sweep", *TINY, "rounds=2", "seed=0,1", "--out", str(tmp_path / "sw")]) == 0
    cap = capsys.readouterr()
    assert "\r" not in cap.err, repr(cap.err[-500:])
    lines = cap.err.strip().splitlines()
    # the compiled stretch gives no rate (leftovers21: its time is the compile's); the next one an ETA
    assert re.search(r"^round 1/2  best peers=\d\.\d{4} \[seed=[01]\]  compiled in \S+  \[runs 0/2, ETA after "
                     r"the first rounds\]$", cap.err, re.M), lines
    assert re.search(r"^round 2/2  .*\[runs 0/2, ETA \d", cap.err, re.M), lines   # an ETA while the only group runs
    assert lines[-1].startswith("runs 2/2 (100%)  elapsed "), lines
    assert "[1..2/2] 2 runs as one program" in cap.out


def test_stdout_is_line_buffered_when_it_is_a_file(monkeypatch, capsys):
    """`> log 2>&1`: Python buffers a file's stdout in blocks, so a sweep's `[3/12] ...` and summary lines
    landed kilobytes after the progress lines they belong with."""
    out = io.TextIOWrapper(io.BytesIO())
    monkeypatch.setattr(sys, "stdout", out)
    assert not out.line_buffering
    during, forced = [], progress_base.forced
    monkeypatch.setattr(progress_base, "forced", lambda mode: during.append(out.line_buffering) or forced(mode))
    assert cli.main(["run", *TINY, "--print-config"]) == 0
    assert during == [True]                 # while the command runs
    assert not out.line_buffering           # and the caller's stream as it was after (test_review_dec08)


# ----------------------------------------------------------------------------- choosing bars or lines

def test_auto_is_bars_on_a_terminal_and_in_a_notebook_and_lines_elsewhere(monkeypatch):
    monkeypatch.setattr(progress_base, "in_notebook", lambda: False)
    assert progress.mode() == "lines"                              # captured: not a terminal
    monkeypatch.setattr(progress_base, "is_terminal", lambda fp: True)
    assert progress.mode() == "bars"
    monkeypatch.setattr(progress_base, "is_terminal", lambda fp: False)
    monkeypatch.setattr(progress_base, "in_notebook", lambda: True)     # a kernel's stderr is no terminal either
    assert progress.mode() == "bars"


def test_the_flag_and_the_environment_force_either(monkeypatch):
    monkeypatch.setenv(progress.MODE_ENV, "bars")
    assert progress.mode() == "bars"
    with progress.forced("lines"):                                 # --progress wins over the environment
        assert progress.mode() == "lines"
        with progress.forced(None):                                # no flag: the environment's
            assert progress.mode() == "bars"
    monkeypatch.setenv(progress.MODE_ENV, "auto")
    assert progress.mode() == "lines"
    from tallysim import cli_parser
    assert cli_parser.PROGRESS_MODES == progress.MODES


def test_progress_bars_on_the_command_line_draws_the_bars_into_a_file(tmp_path, capsys):
    assert cli.main(["run", *TINY, "rounds=1", "--progress", "bars", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "\r" in err and "round (compiling)" in err, err


@pytest.mark.parametrize("env, argv, words", [
    ({}, ["--quiet", "--progress", "lines"], "--quiet shows no progress and --progress lines shows it"),
    ({"TALLYSIM_PROGRESS": "fancy"}, [], "TALLYSIM_PROGRESS='fancy': allowed auto, bars, lines"),
    ({"TALLYSIM_PROGRESS_INTERVAL": "-1"}, [], "TALLYSIM_PROGRESS_INTERVAL='-1': allowed a number of seconds"),
    ({"TALLYSIM_PROGRESS_INTERVAL": "soon"}, [], "TALLYSIM_PROGRESS_INTERVAL='soon'"),
    ({}, ["--progress", "fancy"], "--progress: invalid choice: 'fancy'"),
])
def test_bad_progress_settings_are_one_line(env, argv, words, tmp_path, capsys, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    line = one_line(capsys, ["run", *TINY, *argv, "--out", str(tmp_path / "r")])
    assert words in line, line
    assert not (tmp_path / "r").exists()


def test_a_bad_environment_value_from_python_warns_and_uses_the_default(monkeypatch, capsys):
    monkeypatch.setenv(progress.MODE_ENV, "fancy")
    monkeypatch.setattr(progress_base, "in_notebook", lambda: False)
    monkeypatch.setattr(progress_base, "_warned", set())
    assert progress.mode() == "lines" and progress.interval() == progress.INTERVAL
    assert progress.mode() == "lines"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tallysim: warning: TALLYSIM_PROGRESS='fancy'"), err   # once


# ----------------------------------------------------------------------------- the runs' ETA (bars)

def test_the_runs_clock_counts_rounds_under_way_and_not_skipped_runs(monkeypatch):
    clock = Clock(monkeypatch)
    c = progress.RunsClock(4)
    assert c.eta_text() == "ETA after the first run"
    clock.t = 10.0
    c.report(0.5)                           # half of one run in 10 s: 3.5 runs left, 70 s
    assert c.eta() == pytest.approx(70.0) and c.eta_text() == "ETA 1m10s"
    c.count(2, skipped=True)                # done before: counted, not in the rate
    c.report(0.5)
    assert c.eta() == pytest.approx(10.0 * 1.5 / 0.5)
    c.count(2, skipped=False)
    assert c.eta_text() == "done"


def test_the_runs_bar_has_an_eta_before_its_first_run_finishes(monkeypatch):
    """tqdm's own ETA over runs was `?` until a whole run (or group) had finished: hours, for a sweep of
    long runs. The round bar under it now reports its rounds done."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    runs = progress.RunsBar(4)
    assert "0/4" in str(runs.bar) and "ETA after the first run" in str(runs.bar), str(runs.bar)
    rounds = progress.RoundBar(10)
    rounds.update(1, 100)
    rounds.update(4, 100)                   # half the first run
    assert re.search(r"0/4 \[[\d:]+, ETA \d", str(runs.bar)), str(runs.bar)
    assert runs.clock.partial == pytest.approx(0.5)
    rounds.close()
    runs.done()
    assert runs.clock.partial == 0 and "1/4" in str(runs.bar)
    runs.close()
    assert progress_base._outer == []


def test_a_grouped_round_bar_counts_for_all_its_runs(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    runs = progress.RunsBar(6)
    rounds = progress.RoundBar(10, labels=["lr=1", "lr=2", "lr=3"])
    rounds.update(5, 0)
    assert runs.clock.partial == pytest.approx(1.5)     # 3 configurations, half their rounds
    rounds.close()
    runs.close()


# ----------------------------------------------------------------------------- leftovers

def test_too_few_examples_for_min_size_names_min_sizes_bound(capsys, tmp_path):
    """partition.min_size=1500 of 1,400 examples said "allowed: peers <= 0"."""
    line = one_line(capsys, ["run", *TINY, "partition.kind=dirichlet", "partition.min_size=1500",
                             "--out", str(tmp_path / "r")])
    assert "peers <= 0" not in line, line
    assert ("peers=4 needs at least 6000 training examples (1500 each: partition.min_size=1500, the fewest a "
            "peer may hold) but synthetic has 1400 after the probe pool; allowed: partition.min_size <= 350 "
            "with peers=4") in line, line
    line = one_line(capsys, ["run", *TINY, "partition.kind=dirichlet", "partition.min_size=300", "peers=5",
                             "--out", str(tmp_path / "r")])
    assert line.endswith("allowed: partition.min_size <= 280 with peers=5 or peers <= 4 with "
                         "partition.min_size=300"), line
    line = one_line(capsys, ["run", *TINY, "peers=2000", "--out", str(tmp_path / "r")])
    assert line.endswith("peers=2000 needs at least 2000 training examples (one per peer) but synthetic has "
                         "1400 after the probe pool; allowed: peers <= 1400"), line


def test_multi_seed_rows_keep_bits_every_seed_agrees_on_exact():
    from tallysim.results.headline import aggregate
    rows = [{"round": 2, "bits_up": 3072, "bits_down": 100 + s, "bits_per_peer": 0.1, "steps_real": 132,
             "acc_mean": 0.1, "kept": 1.0, "faulty": 0, "acc_global": None, "wall_s": 1.0 + s} for s in range(3)]
    out = aggregate(rows, [0, 1, 2])
    assert type(out["bits_up"]) is int and out["bits_up"] == 3072 and out["bits_up_std"] == 0.0
    assert out["bits_per_peer"] == 0.1          # a float mean of three 0.1s is 0.10000000000000002
    assert type(out["steps_real"]) is int and type(out["faulty"]) is int
    assert out["bits_down"] == 101.0 and out["bits_down_std"] > 0       # seeds that differ: the mean
    assert type(out["kept"]) is float and out["acc_global"] is None and out["wall_s"] == 3.0
    assert out["per_seed"]["bits_up"] == [3072] * 3
    import numpy as np
    assert out["acc_mean"] == float(np.mean([0.1] * 3))                 # accuracies: the mean, as before
    assert aggregate(rows[:1], [0]) is rows[0]                          # one seed: the row itself


def test_a_multi_seed_run_writes_integer_bits(tmp_path):
    from tallysim import run
    run.run(tiny("rounds=1", "seeds=2"), str(tmp_path / "r"), progress=False)
    row = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["seeds"] == [0, 1]
    assert type(row["bits_up"]) is int and type(row["bits_down"]) is int, row
    assert row["bits_up"] == row["per_seed"]["bits_up"][0] == row["per_seed"]["bits_up"][1]


def test_the_distributed_timeout_without_distributed_says_it_has_no_effect(monkeypatch, capsys):
    from tallysim import startup
    from tallysim.sim import distributed
    assert distributed.unread_timeout({}) is None
    assert distributed.unread_timeout({"TALLYSIM_DISTRIBUTED": "1", "TALLYSIM_DISTRIBUTED_TIMEOUT": "60"}) is None
    assert "has no effect" in distributed.unread_timeout({"TALLYSIM_DISTRIBUTED": "0", "TALLYSIM_DISTRIBUTED_TIMEOUT": "60"})
    monkeypatch.setenv("TALLYSIM_DISTRIBUTED_TIMEOUT", "60")
    startup.start_jax()                     # safe to call again (the tests have started JAX)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tallysim: warning: TALLYSIM_DISTRIBUTED_TIMEOUT=60 has no effect: it bounds the wait for the "
                   "other processes of a multi-process run, and TALLYSIM_DISTRIBUTED is not 1 (one process, "
                   "nothing to wait for); set TALLYSIM_DISTRIBUTED=1 for several processes, or unset "
                   "TALLYSIM_DISTRIBUTED_TIMEOUT"], err


def test_a_figure_in_a_log_says_its_runs_done(tmp_path, capsys):
    fail_doomed_figure(tmp_path)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("doomed runs 1/2 (50%)  elapsed ") and " ETA " in lines[0], lines   # the first
    assert lines[-1].startswith("doomed runs 2/2 (100%)  elapsed ") and "ETA" not in lines[-1], lines
    assert progress_base._outer == []
