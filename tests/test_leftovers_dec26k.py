"""leftovers53: a long stretch of rounds on a CPU is not called a hang (sim/wait_note); pareto draws the
floor line plot draws; an unusable TALLYSIM_DATA is said once; a figure group's folder error names what
--results was given."""
import re
import time

from tallysim.sim import mesh, wait_note
from conftest import TINY_FIGURE


def _busy(seconds):
    def fetch(tree):
        end = time.process_time() + seconds
        while time.process_time() < end:     # CPU time, as XLA's threads use it computing a stretch of rounds
            pass
        return tree
    return fetch


def test_a_working_stretch_of_rounds_is_not_called_stuck(monkeypatch, capsys):
    # 400 rounds in one scan on a CPU: no result for many minutes, the process busy all along; the 600 s
    # note said "no result ... if the process uses no CPU it is stuck" of a run that was working
    monkeypatch.setattr(mesh, "_fetch", _busy(0.6))     # CPU seconds: on a loaded machine, longer in wall time
    monkeypatch.setattr(mesh, "WAIT_NOTE_S", 0.2)
    assert mesh.host({"a": 1}, "rounds 1-400, one compiled stretch") == {"a": 1}
    assert capsys.readouterr().err == ""


def test_an_idle_wait_is_still_called_stuck_naming_the_stretch(monkeypatch, capsys):
    def idle(tree):
        time.sleep(0.5)      # the hang: CPU time constant
        return tree
    monkeypatch.setattr(mesh, "_fetch", idle)
    monkeypatch.setattr(mesh, "WAIT_NOTE_S", 0.1)
    mesh.host({"a": 1}, "rounds 1-400, one compiled stretch")
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err            # once, not every period
    assert re.search(r"no result from the compiled program after 0\.1 s \(rounds 1-400, one compiled stretch\) and the "
                     r"process used [01]\.\d% of a core over the last 0\.1 s \(under 2%, which a working run stays "
                     r"above\): it is stuck", err), err


def test_on_an_accelerator_the_note_says_the_device_may_still_be_computing(monkeypatch, capsys):
    monkeypatch.setattr(mesh, "_fetch", _busy(0.4))
    monkeypatch.setattr(mesh, "WAIT_NOTE_S", 0.1)
    monkeypatch.setattr(wait_note.jax, "default_backend", lambda: "gpu")
    mesh.host({"a": 1}, "rounds 1-400, one compiled stretch")
    err = capsys.readouterr().err
    assert "(rounds 1-400, one compiled stretch); the device may still be computing it" in err, err


def _run(d, acc, bits, proto, floor=0.0898):
    import json

    from tallysim.results import metrics
    d.mkdir(parents=True)
    (d / metrics.CONFIG).write_text(json.dumps({"protocol": {"name": proto}, "rounds": 3}))
    (d / metrics.METRICS).write_text(json.dumps({"round": 3, "bits_per_peer": bits, "acc_mean": acc,
                                                  "wall_s": 1.0}) + "\n")
    (d / "done.json").write_text("{}")
    (d / metrics.PARTITION).write_text(json.dumps({"majority_acc": floor, "majority_class": 4}))
    return str(d)


def _floor_labels(points, metric="auto"):
    from tallysim.results import metrics, pareto
    fig, ax = metrics.pyplot().subplots()
    pareto.draw(ax, points, pareto.frontier(points), metric=metric)
    labels = [line.get_label() for line in ax.get_lines()]
    metrics.pyplot().close(fig)
    return [lab for lab in labels if "most frequent test target" in lab]


def test_pareto_draws_the_floor_line_plot_draws(tmp_path):
    # tally at the comma's 0.0898 for 10^4 bits beside FedAvg's 0.10 for 10^8: plot drew the floor under
    # both, pareto did not, and tally's point read as a cheap frontier
    from tallysim.results import pareto
    dirs = [_run(tmp_path / "t", 0.0897, 5.4e4, "tally"), _run(tmp_path / "f", 0.10, 9.6e7, "fedavg")]
    points = pareto.collect(dirs, log=lambda m: None)
    assert _floor_labels(points) == ["most frequent test target alone (0.0898)"]
    # another test set (another floor), or a point with no run folder: no single line to draw
    other = pareto.collect([_run(tmp_path / "o", 0.5, 1e5, "tally", floor=0.5)], log=lambda m: None)
    assert _floor_labels(points + other) == []
    assert _floor_labels([{**p, "dir": None} for p in points]) == []
    out = tmp_path / "p.png"
    pareto.plot(points, pareto.frontier(points), str(out))
    assert out.stat().st_size > 0


def test_an_unusable_data_cache_folder_is_said_once(monkeypatch, capsys):
    # TALLYSIM_DATA=/proc/nope: Fashion-MNIST came from Debian's files, its cache write failed, and the run
    # went on without a word (each run decoding the IDX files again)
    import numpy as np
    from tallysim.config import DataConfig
    from tallysim.data import cache, loading
    from tallysim.data.base import Dataset
    x, y = np.zeros((4, 28, 28, 1), np.uint8), np.arange(4, dtype=np.int32)
    monkeypatch.setattr(loading, "debian_fashion_mnist", lambda name: Dataset(name, x, y, x, y, 10))
    monkeypatch.setattr(cache, "_SAID", set(), raising=False)
    monkeypatch.setenv("TALLYSIM_DATA", "/proc/nope")
    for _ in range(2):
        assert len(loading._source(DataConfig(name="fashion_mnist"), 0).y_train) == 4
    err = capsys.readouterr().err
    assert err.count("tallysim: warning: cannot write the data cache /proc/nope/fashion_mnist.npz (") == 1, err
    assert "set TALLYSIM_DATA to a writable directory; this run reads fashion_mnist without it" in err


def test_text_data_to_prepare_into_an_unusable_folder_is_refused_before_the_parse(monkeypatch):
    # shakespeare prepared on first use parsed the plays (~15 s) and only then found /proc/nope unusable
    import pytest
    from tallysim.data import text
    from tallysim.data.base import DataError
    monkeypatch.setenv("TALLYSIM_DATA", "/proc/nope")
    monkeypatch.setattr(text, "read_plays", lambda: pytest.fail("parsed the plays first"))
    with pytest.raises(DataError, match=r"cannot write the data cache /proc/nope/shakespeare.npz \(.*\); set "
                                        "TALLYSIM_DATA to a writable directory"):
        text.load("shakespeare")


def test_an_image_dataset_to_prepare_into_an_unusable_folder_is_refused_before_the_download(monkeypatch):
    import importlib

    import pytest
    from tallysim.data import loading
    from tallysim.data.base import DataError
    prepare = importlib.import_module("tallysim.data.prepare")      # tallysim.data.prepare is also a function
    monkeypatch.setenv("TALLYSIM_DATA", "/proc/nope")
    monkeypatch.setattr(prepare, "prepare", lambda name: pytest.fail("downloaded first"))
    with pytest.raises(DataError, match=r"cannot write the data cache /proc/nope/cifar10.npz"):
        loading._prepare_on_first_use("cifar10")


FIGURE = TINY_FIGURE


def test_a_group_folder_error_names_what_was_given_to_results(tmp_path, capsys, no_compile):
    # "--results RES/tiny/tally ...; choose another --results": every --out of the sweep's words became
    # --results, naming the group's folder as the value given to --results
    import json

    import pytest

    from conftest import one_line
    from tallysim import outdir
    from tallysim.config import ConfigError
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(FIGURE))
    group = tmp_path / "res" / "tiny" / "tally"
    group.mkdir(parents=True)
    (group / outdir.MARKER).write_text('{"written_by": "tallysim"}\n')       # a `tallysim run` folder
    line = one_line(capsys, ["figure", str(path), "--results", str(tmp_path / "res"), "--out",
                             str(tmp_path / "fig"), "--dry-run"])
    assert line.startswith("tallysim: error: figure group 'tally': "), line
    assert f"choose another --results than {tmp_path / 'res'} (the runs of group 'tally' go in {group})" in line, line
    assert f"--results {group}" not in line, line
    blocked = tmp_path / "plain"
    blocked.write_text("a file")
    from tallysim import sweep
    from tallysim.out_path import Given
    with pytest.raises(ConfigError) as e:         # the words figures/plans.py passes down (was a regex's rewrite)
        sweep.checked_out(blocked / "tiny" / "g", [], [], Given("--results", blocked, "group 'g'"))
    said = str(e.value)
    assert said == (f"the folder {blocked / 'tiny' / 'g'} of group 'g' (under --results {blocked}): {blocked} is a "
                    "file, not a directory"), said
