"""leftovers21: the sweep's ETA before its first run ends leaves compiling out of its rate; a JSON config
file's float that reads as 0.0 refused as typed; outdir.py split by job."""
import io
import sys

import pytest

from tallysim import progress, progress_base, progress_lines

from conftest import Clock


pytestmark = pytest.mark.usefixtures("progress_env_unset")     # conftest: defaults, not the shell's


# ------------------------------------------------------------------ 1. the runs' ETA leaves the compile out

def test_the_runs_clock_leaves_a_compiled_stretch_out_of_its_rate(monkeypatch):
    """60 s of compile for a tenth of a run: elapsed over work said 60 * 3.9 / 0.1 = 39m; the measured
    stretch after it (0.4 runs in 10 s) says 3.5 runs left at 25 s each."""
    clock = Clock(monkeypatch)
    c = progress.RunsClock(4)
    clock.t = 60.0
    c.report(0.1, compiled=True)
    assert c.eta() is None and c.eta_text() == "ETA after the first rounds"
    clock.t = 70.0
    c.report(0.5)
    assert c.eta() == pytest.approx(3.5 * 10.0 / 0.4) and c.eta_text() == "ETA 1m28s"
    c.count(1, skipped=False)           # a run has finished: its whole time (compile too) is the rate's
    clock.t = 100.0
    assert c.eta() == pytest.approx(70.0 * 3)


def test_the_runs_bar_and_lines_eta_leave_the_round_bars_compile_out(monkeypatch):
    """Through the round bar (and lines) reporting to the runs bar: the first stretch is the compile's."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    clock = Clock(monkeypatch)
    runs, rounds = progress.RunsBar(4), progress.RoundBar(10)
    clock.t = 60.0
    rounds.update(1, 100)                  # compiled in 60 s
    assert "ETA after the first rounds" in str(runs.bar), str(runs.bar)
    clock.t = 64.0
    rounds.update(4, 100)                  # 0.4 runs in 4 s: 3.5 runs left, 35 s (not 64 * 3.5 / 0.5)
    assert runs.clock.eta() == pytest.approx(35.0) and "ETA 35s" in str(runs.bar), str(runs.bar)
    rounds.close()
    runs.close()

    said = []
    monkeypatch.setattr(progress_lines, "say", said.append)
    clock.t = 0.0
    runs, rounds = progress_lines.RunsLines(4), progress_lines.RoundLines(10)
    clock.t = 60.0
    rounds.update(1, 100)
    assert said[-1].endswith("[runs 0/4, ETA after the first rounds]"), said
    clock.t = 64.0
    rounds.update(9, 100)                  # the run's last stretch: said at once
    # 3 runs left at 4 s per 0.9 run: 13 s (elapsed over work said 64 * 3 / 1 = 3m12s)
    assert said[-1].endswith("[runs 0/4, ETA 13s]"), said
    rounds.close()
    runs.close()
    assert progress_base._outer == []


# ------------------------------------------------------------------ 2. a config file's 1e-400 as typed

@pytest.mark.parametrize("text, key", [('{"optim": {"lr": 1e-400}}', "'lr' is 1e-400"),
                                       ('{"participation": -2.5E-999}', "'participation' is -2.5E-999"),
                                       ('{"model.groups": [[1, 3e-400]]}', "'model.groups' is 3e-400")])
def test_a_config_files_number_that_reads_as_zero_is_refused_as_typed(tmp_path, text, key):
    """json.load read 1e-400 as 0.0 before tallysim saw it, and it was refused as `0.0` (key=value
    overrides refuse it as typed: test_leftovers_dec18g)."""
    from tallysim import config
    p = tmp_path / "c.json"
    p.write_text(text)
    with pytest.raises(config.ConfigError) as e:
        config.read_file(str(p))
    msg = str(e.value)
    assert msg.startswith(f"config file {str(p)!r}: the key {key}, smaller in size than the smallest float"), msg
    assert "\n" not in msg and "0.0" in msg


def test_a_config_files_zero_written_small_stays_zero(tmp_path):
    from tallysim import config
    p = tmp_path / "c.json"
    p.write_text('{"optim": {"lr": 0.1, "weight_decay": 0e-400}, "participation": 1e-300}')
    d = config.read_file(str(p))
    assert d == {"optim": {"lr": 0.1, "weight_decay": 0.0}, "participation": 1e-300}
    assert all(type(v) is float for v in (d["optim"]["lr"], d["optim"]["weight_decay"], d["participation"]))


# ------------------------------------------------------------------ 3. outdir.py split: out_path.py

def test_outdirs_path_checks_live_in_out_path_and_stay_importable_from_outdir():
    """outdir.py sat at the 400-line limit: the checks on the path an output names moved to out_path.py;
    outdir.X stays the same function for every caller (sweep, cli, clean, figures, checkpoint)."""
    from tallysim import out_path, outdir
    for name in ("check_text", "destination", "check_name", "protected"):
        assert getattr(outdir, name) is getattr(out_path, name), name
    with pytest.raises(outdir.ConfigError, match="not allowed as a directory name"):
        outdir.check_name("a/b", "run name")
