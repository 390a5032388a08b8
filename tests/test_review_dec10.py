"""Review of the 10 Dec merges (review8, leftovers7, hostile6, cnnclaim and the config_reads split).

make clean (tallysim/clean.py) removed a run a live tallysim process was writing, and removed with
`shutil.rmtree` after the check, so whatever appeared in OUT between the check and the removal went too.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from tallysim import clean, outdir
from test_leftovers_dec10 import _results as leftovers_results


def _results(root: Path) -> Path:
    """test_leftovers_dec10's results directory, its demo run with the lock file a run leaves."""
    out = leftovers_results(root)
    (out / "demo" / "tally" / outdir.LOCK).write_text("")
    return out


def test_clean_refuses_a_run_a_tallysim_process_is_writing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = _results(tmp_path / "results")
    fd = os.open(out / "demo" / "tally" / outdir.LOCK, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)          # as run_lock.lock holds it while a run writes
    try:
        assert clean.main(["results"]) == 2
    finally:
        os.close(fd)
    assert "is writing it right now; wait for it to finish" in capsys.readouterr().err
    assert (out / "demo" / "tally" / "metrics.jsonl").exists() and (out / "fig1" / "main" / "sweep.json").exists()
    assert clean.main(["results"]) == 0 and not out.exists()     # finished: removed


def test_clean_removes_only_what_it_checked(tmp_path, monkeypatch, capsys):
    """Whatever appears or is replaced in OUT after the check stays (rmtree removed it), a directory
    swapped for a link is not followed, and the rest (tallysim's) goes."""
    monkeypatch.chdir(tmp_path)
    out = _results(tmp_path / "results")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "metrics.jsonl").write_text("mine")
    approve = clean._approve

    def meanwhile(*a, **k):
        got = approve(*a, **k)
        (out / "fig1" / "notes.txt").write_text("written after the check")
        (out / "demo" / "tally" / "config.json").unlink()
        (out / "demo" / "tally" / "config.json").write_text('{"mine": 1}')    # same name, another file
        group = out / "fig1" / "main" / "seed=0"
        for f in group.iterdir():
            f.unlink()
        group.rmdir()
        group.symlink_to(elsewhere)                       # a checked run directory, now a link
        return got
    monkeypatch.setattr(clean, "_approve", meanwhile)
    assert clean.main(["results"]) == 2
    err = capsys.readouterr().err
    assert "kept what appeared or changed there during the removal" in err and "notes.txt" in err
    assert (out / "fig1" / "notes.txt").read_text() == "written after the check"
    assert (out / "demo" / "tally" / "config.json").read_text() == '{"mine": 1}'
    assert (elsewhere / "metrics.jsonl").read_text() == "mine"
    assert not (out / "fig1" / "main" / "sweep.json").exists()       # checked, unchanged: removed
    assert not (out / "demo" / "tally" / "metrics.jsonl").exists()


# ----------------------------------------------------------------------------- figure config shapes
from conftest import one_line  # noqa: E402

from tallysim import cli  # noqa: E402

FIGURE = {"title": "t", "kind": "final_vs", "x": "peers", "groups": {"a": {"protocol": {"name": "tally"}}},
          "base": {"rounds": 2, "data": {"name": "synthetic", "train_size": 1600, "test_size": 300},
                   "partition": {"kind": "iid"}, "probe": {"per_round": 64, "pool_size": 200}},
          "sweep": {"peers": [4, 6]}, "smoke": {"sweep": {"peers": [4]}}}


@pytest.mark.parametrize("change, smoke, expected", [
    ({"x": ["peers"]}, False, "x=['peers'] is list; allowed: the name of one sweep axis"),
    ({"sweep": [{"peers": 4}]}, False, "`sweep` must be an object"),
    ({"groups": {"a": {"sweep": [{"peers": 4}]}}}, False, "`groups.a.sweep` must be an object"),
    ({"smoke": {"sweep": [4]}}, True, "`smoke.sweep` must be an object"),
])
def test_a_figure_sweep_or_x_of_the_wrong_shape_is_one_line(change, smoke, expected, tmp_path, capsys):
    """spec_keys' x check put them in a set ("unhashable type"), group_plans updated a dict with them
    ("dictionary update sequence element #0"): tracebacks."""
    path = tmp_path / "f.json"
    path.write_text(json.dumps({**FIGURE, **change}))
    line = one_line(capsys, ["figure", str(path), "--dry-run", *(["--smoke"] if smoke else []),
                             "--results", str(tmp_path / "r"), "--out", str(tmp_path / "o")])
    assert expected in line, line


# ----------------------------------------------------------------------------- a number in other digits
from tallysim import config  # noqa: E402
from tallysim.config import ConfigError  # noqa: E402


@pytest.mark.parametrize("item, expected", [("peers=٣", "'٣': expected an integer in ASCII digits 0-9"),
                                            ("optim.lr=０.1", "expected a number in ASCII digits 0-9"),
                                            ("peers=x", "'x': expected an integer")])
def test_a_number_in_another_scripts_digits_says_which_digits_are_allowed(item, expected):
    """hostile6 refused `peers=٣` (it ran 3 peers) as "expected an integer": of what reads as one."""
    with pytest.raises(ConfigError) as e:
        config.apply_overrides(config.Config(), [item])
    assert str(e.value).endswith(expected), e.value


def test_clean_says_what_it_could_not_remove(tmp_path, monkeypatch, capsys):
    """A file it may not unlink (a read-only directory, another user's) is named, not a traceback."""
    monkeypatch.chdir(tmp_path)
    out = _results(tmp_path / "results")
    unlink = os.unlink

    def refuse(name, *a, **k):
        if name == "config.json":
            raise PermissionError(13, "Permission denied")
        return unlink(name, *a, **k)
    monkeypatch.setattr(os, "unlink", refuse)
    assert clean.main(["results"]) == 2
    assert "results/demo/tally/config.json (Permission denied)" in capsys.readouterr().err
    assert (out / "demo" / "tally" / "config.json").exists()


def test_a_test_label_beyond_the_training_labels_of_idx_files_says_how_to_keep_it():
    """IDX files (a directory) cannot save num_classes, which was the only way the refusal named."""
    import numpy as np
    from tallysim.data.base import DataError, checked
    x = np.zeros((6, 4, 4), np.uint8)
    with pytest.raises(DataError, match=r"IDX files cannot declare one: save the four arrays and num_classes in an .npz"):
        checked("d", x, np.array([0, 1, 2, 0, 1, 2]), x, np.array([0, 1, 2, 3, 0, 1]), where="idx_dir")
