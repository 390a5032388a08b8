"""Review of the 2026-12-06 merge (539db82..cc32dc2): `tallysim clean`, data_read.py, lazy submodules,
read_rows' None, NaN vote_acc, the non-IID matched-bits config and doc.

- `tallysim clean RUN_DIR` (its help: "a run's, a sweep's or a folder of them") refused every run directory
  given itself, naming the run's own config.json and marker as "entries tallysim did not write"; and a
  path naming nothing (a typo, a quoted '~') returned 0 without a word.
- data_read's state stood for other contents in two known ways: a network file system's cached attributes
  (a path's stat on an NFS client: a file rewritten on another node read as unchanged, so an all-skipped
  sweep re-run reused the old digest and never said the data changed), and whole-second times of a file
  written less than a second or two before it was measured.
Nothing here compiles.
"""
import os
import pathlib
import subprocess
import sys

from tallysim import cli, data_read, outdir

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _run(d: pathlib.Path) -> pathlib.Path:
    d.mkdir(parents=True)
    (d / outdir.MARKER).write_text('{"written_by": "tallysim"}\n')
    for name in ("config.json", "metrics.jsonl", "partition.json", "done.json"):
        (d / name).write_text("{}\n")
    return d


# ------------------------------------------------------------------ 1. tallysim clean RUN_DIR

def test_clean_takes_a_run_directory_itself_and_keeps_a_users_files(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "res" / "sweep"
    run, other = _run(sweep / "a=1"), _run(sweep / "a=2")
    (sweep / "sweep.json").write_text('{"runs": []}\n')
    assert cli.main(["clean", "res/sweep/a=1/"]) == 0, capsys.readouterr().err
    assert not run.exists() and other.exists() and (sweep / "sweep.json").exists()
    assert "removed res/sweep/a=1" in capsys.readouterr().out
    (other / "NOTES.md").write_text("mine")                 # a user's file in a run: named, nothing removed
    assert cli.main(["clean", str(other)]) == 2
    err = capsys.readouterr().err
    assert "NOTES.md" in err and "config.json" not in err, err
    assert (other / "NOTES.md").read_text() == "mine" and (other / "metrics.jsonl").exists()


def test_clean_refuses_a_run_whose_sweep_is_being_written_and_says_a_missing_dir(tmp_path, capsys,
                                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = _run(tmp_path / "sweep" / "a=1")
    (tmp_path / "sweep" / outdir.LOCK).write_text("")
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               "fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "print('held', flush=True); time.sleep(60)", str(tmp_path / "sweep" / outdir.LOCK)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cli.main(["clean", "sweep/a=1"]) == 2       # the sweep may be about to write it
        assert "is inside" in capsys.readouterr().err
        assert (run / "metrics.jsonl").exists()
        group = tmp_path / "sweep" / "group"              # a figure's group folder of finished runs
        _run(group / "b=1")
        assert cli.main(["clean", "sweep/group"]) == 2
        assert "is inside" in capsys.readouterr().err and (group / "b=1" / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    assert cli.main(["clean", "no-such-results"]) == 0
    assert "nothing to remove: no-such-results does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------ 2. data_read: state that proves nothing

def test_state_is_the_servers_not_a_cached_stat(tmp_path, monkeypatch):
    """An NFS client answers a path's stat from its attribute cache; opening the file asks the server
    (close-to-open). Simulated: the path's stat returns the state before a rewrite elsewhere."""
    f = tmp_path / "d.npz"
    f.write_bytes(b"a" * 100)
    stale = os.stat(f)
    was = data_read.state(f)
    f.write_bytes(b"b" * 100)                       # the same size, other contents
    real_stat = pathlib.Path.stat

    def cached(self, *a, **k):
        return stale if os.path.abspath(self) == str(f) else real_stat(self, *a, **k)
    monkeypatch.setattr(pathlib.Path, "stat", cached)
    assert data_read.state(f) != was


def test_whole_second_times_of_a_file_just_written_are_not_recorded(tmp_path, monkeypatch):
    f = tmp_path / "d.npz"
    f.write_bytes(b"a" * 100)
    st = os.stat(f)
    real_fstat = os.fstat

    def coarse(age_s):
        t = (int(data_read.time.time()) - age_s) * 10**9        # a FAT/HFS+ time: whole seconds

        def fstat(fd):
            got = list(real_fstat(fd))
            got[7:10] = [t // 10**9] * 3                         # st_atime, st_mtime, st_ctime (ints)
            return os.stat_result(got, {"st_atime_ns": t, "st_mtime_ns": t, "st_ctime_ns": t})
        return fstat
    monkeypatch.setattr(data_read.os, "fstat", coarse(0))
    assert data_read.state(f) is None               # a rewrite later this second would read the same
    monkeypatch.setattr(data_read.os, "fstat", coarse(10))
    got = data_read.state(f)                        # settled: recorded
    assert got is not None and got["files"][0][1] == st.st_size and got["files"][0][2] % 10**9 == 0, got
    monkeypatch.undo()
    assert data_read.state(f) is not None           # nanosecond times (ext4, xfs, tmpfs): recorded at once


def test_a_large_directory_is_not_stated_whole(tmp_path, monkeypatch):
    for i in range(data_read.MAX_FILES + 40):
        (tmp_path / f"f{i}").write_bytes(b"")
    calls = []
    real = pathlib.Path.stat
    monkeypatch.setattr(pathlib.Path, "stat", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    assert data_read.state(tmp_path) is None
    assert len(calls) < data_read.MAX_FILES, len(calls)


# ------------------------------------------------------------------ 3. the lazy submodules

def test_lazy_submodules_never_run_main_and_import_no_jax(tmp_path):
    code = ("import sys, tallysim\n"
            "for name in ('__main__', 'cli', 'clean', 'data_read', 'sweep'):\n"
            "    try:\n"
            "        getattr(tallysim, name)\n"
            "    except AttributeError:\n"
            "        print('no', name)\n"
            "print('jax' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, cwd=ROOT,
                       timeout=60)
    assert p.returncode == 0 and p.stdout.split("\n")[:2] == ["no __main__", "False"], (p.stdout, p.stderr)


def test_a_named_dataset_with_a_path_records_the_path_it_reads(tmp_path, monkeypatch):
    """fashion_mnist with data.path=DIR reads DIR, also where the name has a prepared cache (data/loading.py;
    until userjourney11 the cache won and DIR was never opened, so a missing DIR went unnoticed):
    partition.json's data_read names DIR's files either way."""
    from tallysim import build_data, config
    src = tmp_path / "fm"
    src.mkdir()
    (src / "train-images-idx3-ubyte.gz").write_bytes(b"x")
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path / "cache"))
    cfg = config.apply_overrides(config.Config(), ["data.name=fashion_mnist", f"data.path={src}"])
    assert build_data.read_state(cfg)["path"] == str(src.resolve())       # no cache: DIR is what is read
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "fashion_mnist.npz").write_bytes(b"")
    assert build_data.read_state(cfg)["path"] == str(src.resolve())


def test_results_repr_never_raises(tmp_path):
    # a notebook (and a debugger, a traceback's locals) calls repr: it raised AttributeError on a Results
    # made by hand with config=None (the status it shows reads config.get)
    import tallysim
    assert repr(tallysim.Results(tmp_path, rows=[{"round": 1}], config=None)) == f"Results({str(tmp_path)!r}, 1 rows)"
    assert repr(tallysim.Results(tmp_path, rows=[{"round": 1}], config={"protocol": "tally"})).startswith("Results(")
