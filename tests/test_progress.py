"""What a run says while it runs (tallysim/progress.py), read from the captured stderr: the round bar
names its metric and shows the summary's headline value, says "compiling" and then the compile time;
sweeps and figures show a bar over their runs; a grouped sweep's bar labels its values; --quiet
silences every bar; `run --resume` says where it resumes and what its times count."""
import re

import pytest

from tallysim import checkpoint, cli, run
from tallysim.progress import headline, short_labels
# what these tests read is the progress shown, not the training: TINY without the warm-up epoch
from conftest import crash_after_row, TINY_NO_WARMUP as TINY, fail_doomed_figure, tiny_no_warmup as tiny


@pytest.fixture(autouse=True)
def _bars(monkeypatch):
    """These tests read tqdm's bars out of a captured (not a terminal) stderr, where the default is now
    plain lines (tests/test_progress_logs.py): they ask for the bars."""
    monkeypatch.setenv("TALLYSIM_PROGRESS", "bars")


def _final(err: str) -> str:
    """The bar's last state (tqdm redraws with carriage returns)."""
    return re.split(r"[\r\n]", err.strip())[-1]


@pytest.mark.parametrize("protocol, name", [("fedavg", "server"), ("tally", "peers")])
def test_round_bar_names_the_headline_metric_and_the_compile_time(protocol, name, tmp_path, capsys):
    out = tmp_path / protocol
    assert cli.main(["run", *TINY, f"protocol.name={protocol}", "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "round (compiling)" in cap.err                  # while the first round compiles
    last = _final(cap.err)
    assert re.search(r"compile=\d+\.\ds", last), last
    summary = cap.out.strip().splitlines()[-1]
    accuracy = float(re.search(r"accuracy (\d\.\d{4})", summary).group(1))
    shown = float(re.search(rf"\b{name}=(\d\.\d{{3}})", last).group(1))
    assert shown == pytest.approx(accuracy, abs=6e-4), (last, summary)    # the summary's headline
    assert ("acc=" not in last) and (("peers=" if name == "server" else "server=") not in last)


def test_group_labels_keep_what_differs():
    assert short_labels(["a=1__b=2", "a=1__b=3"]) == ["b=2", "b=3"]
    assert short_labels(["lr=1", "lr=2"]) == ["lr=1", "lr=2"]


def test_headline_names():
    assert headline({"acc_global": 0.8, "acc_mean": 0.5}) == ("server", 0.8)
    assert headline({"acc_global": None, "acc_mean": 0.5}) == ("peers", 0.5)


def test_grouped_sweep_labels_its_values_and_counts_runs(tmp_path, capsys):
    out = tmp_path / "sw"
    assert cli.main(["sweep", *TINY, "optim.lr=0.05,0.1", "protocol.name=tally,local", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"runs: +100%.*4/4", err), err         # the bar over the runs, finished
    assert "ETA after the first run" in err, err              # the runs bar, before any round came back
    values = re.findall(r"(?:peers|server)=\d\.\d{3}(?: \[[^\]]+\])?", err)
    assert values and all(re.fullmatch(r"peers=\d\.\d{3} \[optim\.lr=0\.(05|1)\]", v) for v in values), values


def test_quiet_silences_every_bar(tmp_path, capsys):
    assert cli.main(["sweep", *TINY, "rounds=1", "seed=0,1", "--out", str(tmp_path / "sw"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "runs" not in err and "round" not in err and "it/s" not in err, err


def test_a_figure_shows_one_bar_over_all_its_groups(tmp_path, capsys):
    fail_doomed_figure(tmp_path)
    err = capsys.readouterr().err
    assert re.search(r"doomed runs: +100%.*2/2", err), err
    assert "1/1" not in err                                 # one bar for the figure, not one per group (1 run each)


def test_resume_says_from_which_round_and_what_its_time_counts(tmp_path, capsys, monkeypatch):
    cfg = tiny("protocol.name=tally", "rounds=4")
    out = tmp_path / "r"

    class Crash(Exception):
        pass
    with monkeypatch.context() as m:
        crash_after_row(m, 3, Crash)
        with pytest.raises(Crash):
            run.run(cfg, str(out), progress=False, checkpoint_every=2)
    elapsed = checkpoint.read_meta(out)["elapsed"]
    capsys.readouterr()
    assert cli.main(["run", "--out", str(out), "--resume", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"resuming {out} from round 3 of 4 (checkpoint after round 2)" in err, err
    assert f"the summary's time include the {elapsed:.1f} s it had run up to that checkpoint (the time after it is not counted: those rounds run again)" in err, err


# ----------------------------------------------------------------------------- issue 27: say what will not happen

def test_run_warns_of_events_that_can_never_happen(tmp_path, capsys):
    from tallysim import cli
    code = cli.main(["run", *TINY, "protocol.name=bridge", "rounds=2", "bridge.period=5", "eval_every=3",
                     "--out", str(tmp_path / "b"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "tallysim: warning: bridge.period=5 > rounds=2: no merge happens" in err
    assert "tallysim: warning: eval_every=3 > rounds=2: only the last round is evaluated" in err
    from tallysim import validation
    assert validation.warnings(tiny("protocol.name=bridge", "rounds=2", "bridge.period=2")) == []
    assert "never reaches" in validation.warnings(tiny("protocol.name=tally", "distill.ramp_rounds=4"))[0]
    assert "no faulty peer" in validation.warnings(tiny("faults.kind=label_flip", "faults.fraction=0.1"))[0]


def test_too_many_probes_for_a_shrunk_dataset_says_the_rule(tmp_path, capsys):
    from tallysim import cli
    code = cli.main(["run", *TINY, "probe.pool_size=null", "probe.per_round=1000", "data.train_size=1600",
                     "--out", str(tmp_path / "p"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "10% of the training examples, at most 10,000" in err and "larger probe.pool_size" in err, err


@pytest.mark.parametrize("shape, env, want", [((0, 0), {}, (79, 23)), ((0, 0), {"COLUMNS": "120"}, (119, 23)),
                                              ((100, 30), {"COLUMNS": "7"}, (99, 29))])
def test_the_bar_survives_a_terminal_of_zero_columns(shape, env, want, monkeypatch):
    """A pty that reports 0 columns made tqdm draw into -1 columns: nothing was printed (issue 30).
    Such a terminal now gets $COLUMNS, else 80 columns, and the bar is drawn."""
    import io
    import os
    from tallysim import progress

    class Tty(io.StringIO):
        def fileno(self):
            return 2
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: os.terminal_size(shape))
    for k in ("COLUMNS", "LINES"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    err = Tty()
    monkeypatch.setattr("sys.stderr", err)
    assert progress.screen_shape(err) == want
    bar = progress.RoundBar(5)
    bar.update(2)
    bar.row({"acc_global": None, "acc_mean": 0.5, "bits_per_peer": 8e6})
    bar.close()
    last = _final(err.getvalue())
    assert "round" in last and "2/5" in last and "peers=0.500" in last, err.getvalue()
    assert max(len(x) for x in re.split(r"[\r\n]", err.getvalue())) <= want[0]
    assert progress.screen_shape(io.StringIO()) == (None, None)      # not a terminal: tqdm's default


def test_round_bar_names_its_throughput_after_the_compiled_stretch(monkeypatch, capsys):
    # tokens/s on text, examples/s on images: the work of the stretches after the first (which holds
    # the compile) over the time since the first came back
    from tallysim import progress
    clock = iter([0.0, 10.0, 12.0, 12.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    bar = progress.RoundBar(5, unit="tokens")
    bar.update(1, 999_999)                 # t=10: compiled; this stretch's work is not counted
    assert bar.rate() is None and bar.compile_s == 10.0
    bar.update(2, 3000)                    # t=12: 3000 tokens in 2 s
    assert bar.rate(12.0) == 1500.0
    bar.close()
    assert "tokens/s=1,500" in _final(capsys.readouterr().err)


def test_image_run_bar_shows_examples_per_second(tmp_path, capsys):
    assert cli.main(["run", *TINY, "protocol.name=fedavg", "rounds=3", "eval_every=1", "--out", str(tmp_path / "r")]) == 0
    last = _final(capsys.readouterr().err)
    assert re.search(r"examples/s=[\d,]+", last) and "tokens/s" not in last, last
