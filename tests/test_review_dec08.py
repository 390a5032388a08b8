"""Review of the Dec 08 change (progress in logs, memory sizing, text padding mask, model.conv=pallas,
pixel checks, results): each test failed on the merged main (d6e1231) and passes after the fix."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from tallysim import progress_base
from tallysim.data.base import DataError, checked


@pytest.fixture
def no_outer():
    """No bar over runs left open by a test (progress_base._outer is process-wide)."""
    before = list(progress_base._outer)
    yield
    progress_base._outer[:] = before


def test_runs_eta_after_a_resume_counts_only_rounds_run_here(no_outer, capsys, monkeypatch):
    """A sweep of 2 runs whose first resumes at round 90 of 100: after the compiled stretch (round 91),
    one round in 1 s leaves ~108 s (8 rounds, then a run of 100). The resumed rounds counted as worked in
    this process's time: ETA ~1 s. (Since leftovers21 the compiled stretch is not in the rate at all.)"""
    from tallysim.progress_lines import RoundLines, RunsLines
    t = [0.0]
    monkeypatch.setattr(progress_base.time, "perf_counter", lambda: t[0])
    runs = RunsLines(2)
    rounds = RoundLines(100, initial=90)
    t[0] = 30.0
    rounds.update(1)                    # compiled in 30 s
    assert runs.clock.eta() is None
    t[0] = 31.0
    rounds.update(1)
    assert runs.clock.eta() == pytest.approx(108.0, rel=1e-6)
    rounds.close()
    runs.close()


def test_runs_eta_bars_count_the_resume_too(no_outer, monkeypatch):
    """The terminal bars report as the lines do (the same clock, the same resume)."""
    from tallysim import progress
    monkeypatch.setattr(progress_base, "mode", lambda: "bars")
    t = [0.0]
    monkeypatch.setattr(progress_base.time, "perf_counter", lambda: t[0])
    runs = progress.RunsBar(2)
    bar = progress.RoundBar(100, initial=90)
    t[0] = 30.0
    bar.update(1)
    t[0] = 31.0
    bar.update(1)
    assert runs.clock.eta() == pytest.approx(108.0, rel=1e-6)
    bar.close()
    runs.close()


@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_no_images_for_some_labels_is_one_line(dtype):
    """0 images and 3 labels in a split: numpy's "zero-size array to reduction operation" (the pixel-range
    check ran before the count check), now the count's own DataError."""
    x = np.zeros((2, 4, 4, 1), dtype)
    with pytest.raises(DataError, match="disagree"):
        checked("t", np.zeros((0, 4, 4, 1), dtype), np.zeros(3, int), x, np.zeros(2, int))


def test_cli_main_leaves_the_callers_stdout_buffering(monkeypatch, tmp_path):
    """cli.main from a script: the command line-buffers a non-terminal stdout for itself, and left the
    script's stdout line-buffered after it returned."""
    from tallysim import cli
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", line_buffering=False)
    monkeypatch.setattr(sys, "stdout", stream)
    rc = cli.main(["run", "--print-config", "rounds=1"])
    monkeypatch.undo()
    assert rc == 0
    assert stream.line_buffering is False


def _make_figure_command(target: str, args: str) -> list:
    """The `tallysim figure ...` words `make -n TARGET ARGS=...` would run (nothing is run)."""
    import shlex
    import shutil
    import subprocess
    from pathlib import Path
    if shutil.which("make") is None:
        pytest.skip("no make here")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(["make", "-n", target, f"ARGS={args}", f"VENV={sys.prefix}"], cwd=root,
                         capture_output=True, text=True, timeout=30).stdout
    lines = [shlex.split(ln) for ln in out.splitlines() if " figure " in ln]
    assert len(lines) == 1, out
    words = lines[0]
    return words[words.index("figure"):], out


def test_make_figure_with_a_progress_in_args_runs(tmp_path, capsys):
    """docs/figures.md's `make fig8 ARGS="--one-at-a-time --progress lines"`: the target's own --quiet
    and the --progress made `--quiet shows no progress and --progress lines shows it` (rc 2, nothing ran)."""
    from tallysim import cli
    words, _ = _make_figure_command("fig8", "--one-at-a-time --progress lines")
    words[words.index("--results") + 1] = str(tmp_path / "r")
    words[words.index("--out") + 1] = str(tmp_path / "f")
    rc = cli.main(words + ["--dry-run"])
    assert rc == 0, capsys.readouterr().err
    assert _make_figure_command("fig8", "")[0][-2:] == ["--progress", "lines"]   # without --progress: lines


def test_make_matched_bits_dry_run_makes_no_table():
    """`make matched-bits ARGS=--dry-run` ran nothing, then `tallysim table` of the runs it did not make
    failed (no run directories)."""
    _, out = _make_figure_command("matched-bits", "--dry-run")
    assert "tallysim table" not in out
    assert "tallysim table" in _make_figure_command("matched-bits", "")[1]


def test_a_groups_pallas_conv_is_refused_before_the_data_loads(monkeypatch):
    """`model.groups=...;b:2:lenet,model.conv=pallas` on a CPU: build_group checked only the run's
    model.conv before loading the data, so the group's was refused at trace, after the load, not naming
    the group."""
    from tallysim import build, config, data
    from tallysim.config import ConfigError
    monkeypatch.delenv("TALLYSIM_PALLAS_INTERPRET", raising=False)
    monkeypatch.setattr(data, "load", lambda *a, **k: pytest.fail("the data loaded before the refusal"))
    cfg = config.apply_overrides(config.Config(), [
        "data.name=synthetic", "data.input_shape=16x16x1", "peers=4", "rounds=1",
        "model.groups=a:2:mlp;b:2:lenet,model.conv=pallas"])
    with pytest.raises(ConfigError, match="group b: model.conv=pallas needs a GPU"):
        build.build_group([cfg])


def test_read_rows_and_table_share_one_reader(tmp_path):
    """read_rows and `tallysim table` each had their own copy of the skip-a-corrupt-run loop, and
    read_rows named a list of directories as Python's repr (`under ['a', 'b']`)."""
    import warnings
    import tallysim
    from tallysim.config import ConfigError
    from tallysim.results import table
    dirs = []
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        (d / "metrics.jsonl").write_text("not json\n")
        (d / "config.json").write_text("{}")
        dirs.append(str(d))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError) as e:
            tallysim.read_rows(dirs)
    assert str(e.value) == (f"no readable run under {dirs[0]}, {dirs[1]}: the 2 run directories found could not "
                            "be read (above)")
    assert len(caught) == 2 and caught[0].filename == __file__          # the warning points at the caller
    said = []
    with pytest.raises(ConfigError) as e2:
        table.table_rows(dirs, log=said.append)
    assert str(e2.value) == str(e.value) and len(said) == 2
