"""Nothing a user owns is ever deleted: --overwrite, sweeps and figures replace only what tallysim
wrote, and refuse everything else with one line and exit code 2, before any data is loaded."""
import json
import os
from pathlib import Path

import pytest

from tallysim import cli, outdir, sweep
from tallysim import figures
from tallysim.config import ConfigError
from conftest import TINY, tiny

RUN = [*TINY, "rounds=1", "protocol.name=local", "--quiet"]


def user_files(root: Path) -> dict:
    """A user's files under root: relative path -> bytes."""
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "important.txt").write_bytes(b"thesis draft \x00\x01")
    (root / "sub" / "notes.txt").write_bytes(b"notes")
    return snapshot(root)


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_survive(root: Path, before: dict) -> None:
    now = snapshot(root)
    for rel, data in before.items():
        assert now.get(rel) == data, f"{rel} was changed or deleted"


def refused(argv, capsys, *needles):
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tallysim: error: "), err
    for n in needles:
        assert n in err, err
    return err


def test_overwrite_refuses_a_directory_with_user_files(tmp_path, capsys):
    out = tmp_path / "DIR"
    before = user_files(out)
    refused(["run", *RUN, "--out", str(out), "--overwrite"], capsys, "did not write", "important.txt")
    assert_survive(out, before)
    assert snapshot(out) == before                     # and nothing was added either


def test_overwrite_refuses_user_files_beside_a_previous_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", *RUN, "--out", str(out)]) == 0
    (out / "my_analysis.ipynb").write_bytes(b"{}")
    before = snapshot(out)
    refused(["run", *RUN, "--out", str(out), "--overwrite"], capsys, "my_analysis.ipynb")
    assert snapshot(out) == before


def test_overwrite_replaces_a_previous_tallysim_run(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["run", *RUN, "--out", str(out)]) == 0
    first = json.loads((out / "config.json").read_text())
    assert (out / outdir.MARKER).is_file() and outdir.is_run_dir(out)
    (out / "error.txt").write_text("stale\n")                  # a file a run writes: replaced
    assert cli.main(["run", *RUN, "seed=5", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "config.json").read_text())["seed"] == 5 != first["seed"]
    assert not (out / "error.txt").exists()


def test_overwrite_replaces_a_legacy_run_without_marker(tmp_path):
    # a run written before the marker existed: all three files, a valid config, parseable rows
    out = tmp_path / "old"
    assert cli.main(["run", *RUN, "--out", str(out)]) == 0
    (out / outdir.MARKER).unlink()
    (out / "done.json").unlink(missing_ok=True)
    assert outdir.is_run_dir(out)
    assert cli.main(["run", *RUN, "seed=3", "--out", str(out), "--overwrite"]) == 0
    assert (out / outdir.MARKER).exists() and json.loads((out / "config.json").read_text())["seed"] == 3


@pytest.mark.parametrize("files", [
    {"config.json": b'{"peers": 4}\n', "metrics.jsonl": b'{"round": 1, "acc": 0.5}\n'},    # no partition
    {"config.json": b'{"peers": 4}\n', "metrics.jsonl": b'my own log\n', "partition.json": b"{}"},
    {"config.json": b'{"peers": "many"}', "partition.json": b"{}",
     "metrics.jsonl": b'{"round": 1, "bits_per_peer": 8}\n'},                              # config invalid
])
def test_overwrite_refuses_a_markerless_look_alike(tmp_path, capsys, files):
    # a user's own config.json and metrics.jsonl (no marker) are not a run: byte for byte they survive
    out = tmp_path / "mine"
    out.mkdir()
    for name, data in files.items():
        (out / name).write_bytes(data)
    before = snapshot(out)
    refused(["run", *RUN, "--out", str(out), "--overwrite"], capsys, "not a tallysim run")
    assert snapshot(out) == before


def test_a_marker_that_is_a_link_or_not_ours_is_no_marker(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / outdir.MARKER).write_text("hello")
    assert not outdir.is_run_dir(out)
    (out / outdir.MARKER).unlink()
    (tmp_path / "elsewhere").write_text('{"written_by": "tallysim"}')
    (out / outdir.MARKER).symlink_to(tmp_path / "elsewhere")
    assert not outdir.is_run_dir(out)


def test_overwrite_refuses_a_lone_config_file(tmp_path, capsys):
    # a user's directory holding only a config.json is not a run: it must survive --overwrite
    out = tmp_path / "exp"
    out.mkdir()
    (out / "config.json").write_text('{"peers": 4}')
    before = snapshot(out)
    refused(["run", *RUN, "--out", str(out), "--overwrite"], capsys, "not a tallysim run")
    assert snapshot(out) == before


def test_overwrite_refuses_the_working_directory(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    user_files(work)
    (work / "config.json").write_text("{}")           # even if it looks like a run
    (work / "metrics.jsonl").write_text("")
    monkeypatch.chdir(work)
    before = snapshot(work)
    refused(["run", *RUN, "--out", ".", "--overwrite"], capsys, "working directory")
    refused(["run", *RUN, "--out", str(work.parent), "--overwrite"], capsys)
    assert snapshot(work) == before


def test_overwrite_refuses_home_and_root(tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.json").write_text("{}")
    (home / "metrics.jsonl").write_text("")
    monkeypatch.setenv("HOME", str(home))
    before = snapshot(home)
    refused(["run", *RUN, "--out", str(home), "--overwrite"], capsys, "home directory")
    assert snapshot(home) == before
    with pytest.raises(ConfigError, match="root|working directory"):
        outdir.check("/", overwrite=True)


def test_overwrite_refuses_a_symlink_and_a_file(tmp_path, capsys):
    real = tmp_path / "real"
    assert cli.main(["run", *RUN, "--out", str(real)]) == 0
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    before = snapshot(real)
    refused(["run", *RUN, "--out", str(link), "--overwrite"], capsys, "symbolic link")
    assert snapshot(real) == before
    f = tmp_path / "file.txt"
    f.write_bytes(b"mine")
    refused(["run", *RUN, "--out", str(f), "--overwrite"], capsys, "is a file")
    refused(["run", *RUN, "--out", str(f / "sub")], capsys, "is a file")
    assert f.read_bytes() == b"mine"


def test_bad_out_fails_before_the_data_is_built(tmp_path, capsys, monkeypatch):
    from tallysim import run
    monkeypatch.setattr(run, "build", lambda *a: pytest.fail("build ran before --out was checked"))
    out = tmp_path / "full"
    user_files(out)
    refused(["run", *RUN, "--out", str(out)], capsys, "not empty")
    refused(["run", *RUN, "--out", ""], capsys, "--out is empty")


def test_sweep_refuses_a_run_directory_holding_user_files(tmp_path, capsys):
    out = tmp_path / "sw"
    name = "protocol.name=local"
    before = user_files(out / name)
    code = cli.main(["sweep", *TINY, "rounds=1", "protocol.name=local,tally", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "did not write" in err and name in err, err
    assert_survive(out / name, before)
    assert not (out / "protocol.name=tally").exists()             # refused before anything ran
    # a user's file named like the sweep index survives too
    out2 = tmp_path / "sw2"
    out2.mkdir()
    (out2 / sweep.INDEX).write_text("my own notes")
    assert cli.main(["sweep", *TINY, "rounds=1", "--out", str(out2), "--quiet"]) == 2
    assert (out2 / sweep.INDEX).read_text() == "my own notes"


def test_sweep_reruns_its_own_partial_and_failed_runs(tmp_path):
    out = tmp_path / "sw"
    runs = [("a", []), ("b", ["optim.lr=1e30"])]              # b diverges: a failed run
    recs = sweep.run_sweep(tiny("rounds=1", "protocol.name=local"), runs, out, progress=False,
                           log=lambda m: None)
    assert [r["status"] for r in recs] == ["done", "failed"]
    assert outdir.is_run_dir(out / "b")
    (out / "a" / sweep.DONE).unlink()                               # a's run is now partial
    recs = sweep.run_sweep(tiny("rounds=1", "protocol.name=local"), runs, out, progress=False,
                           log=lambda m: None)
    assert [r["status"] for r in recs] == ["done", "failed"]        # a reran; b, stopped by a NaN under this config, is final (leftovers42)


@pytest.mark.parametrize("group", ["/abs/path", "../../x", "..", ".", "", "a/b", "a\\b"])
def test_figure_group_names_stay_inside_results(tmp_path, group, capsys):
    victim = tmp_path / "x"
    before = user_files(victim)
    spec = {"kind": "curves", "base": {"data": {"name": "synthetic"}},
            "groups": {group: {"protocol": {"name": "local"}}}}
    path = tmp_path / "f.json"
    path.write_text(json.dumps(spec))
    res = tmp_path / "a" / "b" / "results"
    assert cli.main(["figure", str(path), "--results", str(res), "--out", str(tmp_path / "fig"), "--quiet"]) == 2
    assert "figure group" in capsys.readouterr().err
    assert_survive(victim, before)
    assert not res.exists()


@pytest.mark.parametrize("groups", [["a", "b"], {"a": 7}, 3])
def test_figure_groups_must_be_an_object_of_objects(tmp_path, groups, capsys):
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"kind": "curves", "groups": groups}))
    assert cli.main(["figure", str(path), "--results", str(tmp_path / "r"), "--out", str(tmp_path / "o")]) == 2
    assert "group" in capsys.readouterr().err


def test_check_name():
    assert outdir.check_name("protocol.name=tally__seed=1", "run") == "protocol.name=tally__seed=1"
    for bad in ("..", "/x", "a/b", "", "x" * 300, None, 7):
        with pytest.raises(ConfigError):
            outdir.check_name(bad, "run")


# ------------------------------------------------------------- temporary files and symlinks (issue 20)

@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_sweep_never_writes_through_a_fixed_temporary_name(tmp_path, kind):
    # a user's file, or a link to one, named like the index's old fixed temporary file survives
    out = tmp_path / "sw"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"user data \x00\xff")
    tmp_name = out / (sweep.INDEX + ".tmp")
    if kind == "file":
        tmp_name.write_bytes(victim.read_bytes())
    else:
        tmp_name.symlink_to(victim)
    sweep._write_index(out, [{"name": "a", "status": "done"}], None)
    assert victim.read_bytes() == b"user data \x00\xff"
    assert tmp_name.is_symlink() == (kind == "symlink")
    assert tmp_name.read_bytes() == b"user data \x00\xff"
    assert json.loads((out / sweep.INDEX).read_text())["runs"][0]["name"] == "a"
    assert sorted(p.name for p in out.iterdir()) == sorted([sweep.INDEX, tmp_name.name])   # no temp left


def test_sweep_refuses_a_symlinked_index(tmp_path, capsys):
    out = tmp_path / "sw"
    out.mkdir()
    target = tmp_path / "looks_like_an_index.json"
    target.write_text('{"runs": []}\n')
    (out / sweep.INDEX).symlink_to(target)
    refused(["sweep", *TINY, "rounds=1", "protocol.name=local", "--out", str(out), "--quiet"], capsys,
            "symbolic link")
    assert target.read_text() == '{"runs": []}\n' and (out / sweep.INDEX).is_symlink()
    assert sorted(p.name for p in out.iterdir()) == [sweep.INDEX]


def test_write_atomic_refuses_a_link_and_leaves_no_temporary_on_error(tmp_path, monkeypatch):
    from tallysim import atomic
    target = tmp_path / "t.txt"
    target.write_text("mine")
    link = tmp_path / "l.json"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        atomic.write_text(link, "x")
    assert target.read_text() == "mine" and link.is_symlink()

    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        atomic.write_text(tmp_path / "new.json", "x" * 100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.json", "t.txt"]


def test_a_temporary_left_by_a_killed_write_keeps_the_run_a_run(tmp_path):
    from tallysim import atomic
    out = tmp_path / "r"
    assert cli.main(["run", *RUN, "--out", str(out)]) == 0
    (out / ".checkpoint.npz.abcd_123.tmp").write_bytes(b"torn")     # what kill -9 mid-save leaves
    assert outdir.is_run_dir(out)
    (out / ".important.txt.abcd_123.tmp").write_bytes(b"not ours")  # not a temp of a run file
    assert not outdir.is_run_dir(out)
    assert atomic.is_temp_of(".sweep.json.k2j4_x9a.tmp", {"sweep.json"})
    assert not atomic.is_temp_of("sweep.json.tmp", {"sweep.json"})


# ----------------------------------------------------------------------------- the real destination (issue 30)

def users_run_lookalike(b: Path) -> dict:
    """A user's own folder holding files named like a run's."""
    b.mkdir(parents=True)
    (b / "config.json").write_text('{"mine": 1}')
    (b / "metrics.jsonl").write_text("my numbers\n")
    return snapshot(b)


@pytest.mark.parametrize("overwrite", [False, True])
def test_dotdot_through_a_missing_directory_is_the_real_destination(tmp_path, capsys, monkeypatch, overwrite):
    """`A/missing/../../B` is B (the file system creates A/missing, then walks up): the non-empty and
    ownership checks see B, and nothing is created on the way (A/missing once held the run)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "A").mkdir()
    before = users_run_lookalike(tmp_path / "B")
    out = "A/missing/../../B"
    refused(["run", *RUN, "--out", out] + ["--overwrite"] * overwrite, capsys,
            "not a tallysim run directory" if overwrite else "is not empty")
    assert snapshot(tmp_path / "B") == before and not (tmp_path / "A" / "missing").exists()
    with pytest.raises(ConfigError, match="not empty"):
        outdir.check_sweep_dir(out, {"r": Path(out) / "r"}, "done.json", "sweep.json") or outdir.check(out, False)
    assert outdir.destination(out) == Path("B") and outdir.destination("A/../A/x") == Path("A/x")


def test_dotdot_after_a_link_that_means_two_places_is_refused(tmp_path, capsys):
    """`link/../B`, link -> elsewhere/deep: the file system reads elsewhere/B, a reader of the text B
    beside link. Two destinations: refused, naming both, and neither is touched."""
    (tmp_path / "elsewhere" / "deep").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere" / "deep")
    out = str(tmp_path / "link" / ".." / "B")
    refused(["run", *RUN, "--out", out], capsys, "follows a symbolic link", str(tmp_path / "elsewhere" / "B"))
    refused(["sweep", *RUN, "seed=1,2", "--out", out], capsys, "follows a symbolic link")
    assert not (tmp_path / "B").exists() and not (tmp_path / "elsewhere" / "B").exists()


def test_undecodable_bytes_in_a_path_are_one_line(tmp_path, capsys):
    """Bytes that are not UTF-8 (Python's lone surrogates) in --out or any argument: one line, nothing
    created (a UnicodeEncodeError traceback before)."""
    bad = str(tmp_path) + "/r\udcff"
    refused(["run", *RUN, "--out", bad], capsys, "not valid UTF-8", "\\udcff")
    refused(["sweep", *RUN, "seed=1,2", "--out", bad], capsys, "not valid UTF-8")
    refused(["run", *RUN, "--out", str(tmp_path / "ok"), "--tensorboard", bad], capsys, "--tensorboard")
    for path in (bad, os.fsencode(bad)):        # the Python API's paths too, str or bytes
        with pytest.raises(ConfigError, match="not valid UTF-8"):
            outdir.check(path, False)
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        outdir.check_name("seed=\udcfe", "sweep run")
    assert list(tmp_path.iterdir()) == []


def fake_run(d: Path, rounds: int, last: int, checkpoint: bool) -> Path:
    """A run directory as tallysim leaves it (no JAX): finished, interrupted, or stopped early."""
    from tallysim import config
    d.mkdir(parents=True)
    (d / outdir.MARKER).write_text(json.dumps({"written_by": "tallysim"}))
    (d / "config.json").write_text(json.dumps(config.to_dict(tiny("protocol.name=local", f"rounds={rounds}"))))
    (d / "partition.json").write_text("{}")
    (d / "metrics.jsonl").write_text("".join(json.dumps({"round": r, "bits_per_peer": 0}) + "\n"
                                             for r in range(1, last + 1)))
    if checkpoint:
        (d / outdir.CHECKPOINT).write_bytes(b"PK")
    return d


def test_a_plain_run_into_an_earlier_run_says_what_it_holds_and_what_to_pass(tmp_path):
    """Interrupted: --resume is the advice (and --overwrite loses it); finished: where its results are;
    a user's folder: as before. The Python API spells the same advice as keyword arguments."""
    cases = {"interrupted": (fake_run(tmp_path / "i", 4, 2, True), ["interrupted run", "pass --resume"]),
             "finished": (fake_run(tmp_path / "f", 4, 4, False), ["finished run", "f/metrics.jsonl"]),
             "stopped": (fake_run(tmp_path / "s", 4, 1, False), ["stopped before its first checkpoint"])}
    for state, (d, needles) in cases.items():
        assert outdir.run_state(d) == state
        with pytest.raises(ConfigError) as e:
            outdir.check(d, False)
        assert all(n in str(e.value) for n in needles), str(e.value)
    with pytest.raises(ConfigError, match="pass resume=True to continue it, overwrite=True"):
        outdir.check(tmp_path / "i", False, words=outdir.PYTHON)


def test_resume_of_a_finished_run_says_where_its_results_are_not_overwrite(tmp_path, capsys):
    d = fake_run(tmp_path / "f", 2, 2, False)
    err = refused(["run", "--out", str(d), "--resume"], capsys, "is a finished run", str(d / "metrics.jsonl"))
    assert "--overwrite" not in err
    d2 = fake_run(tmp_path / "s", 2, 1, False)
    refused(["run", "--out", str(d2), "--resume"], capsys, "stopped before its first checkpoint", "--overwrite")


def test_the_python_api_makes_a_new_out_and_its_advice_is_python(tmp_path):
    """`tallysim.run(cfg, out=NEW_DIR)` (the docs' example) made no directory and failed with
    FileNotFoundError; into an existing run it said "pass --overwrite" to a Python caller."""
    import tallysim
    cfg = tiny("protocol.name=local", "rounds=1")
    out = tmp_path / "new" / "m"
    res = tallysim.run(cfg, out=str(out))
    assert [r["round"] for r in res.rows] == [1] and outdir.run_state(out) == "finished"
    with pytest.raises(ConfigError) as e:
        tallysim.run(cfg, out=str(out))
    assert "pass overwrite=True" in str(e.value) and "--" not in str(e.value)
    with pytest.raises(ConfigError, match="choose another out$"):
        tallysim.run(cfg, out=str(tmp_path), overwrite=True)       # not a run directory: refused as such
