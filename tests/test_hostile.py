"""Issue 20 section 3: hostile and careless inputs against extends, checkpoints, distributed settings,
bench flags, sweeps, figures and full disks. Each is one line (ConfigError, `tallysim: error: ...`,
exit 2) before anything runs: never a traceback, a hang, a silent acceptance or a late failure.

Nothing here trains a model except where a test says so (tiny configs)."""
import json
import time

import pytest

from tallysim import cli, config, config_files, run  # noqa: F401  (imported before jit is patched)
from tallysim.config import ConfigError
from conftest import free_port, one_line


def _write(path, doc) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


# ----------------------------------------------------------------------------- extends (tracebacks, hangs)

def test_extends_with_a_nul_byte_is_one_line(tmp_path, capsys):
    bad = _write(tmp_path / "a.json", {"extends": "x\u0000y.json"})
    with pytest.raises(ConfigError, match="NUL byte"):
        config.read_file(bad)
    assert "NUL byte" in one_line(capsys, ["run", "--config", bad, "--out", str(tmp_path / "o")])
    with pytest.raises(ConfigError, match="NUL byte"):
        config.read_file("a\u0000b.json")                  # the --config path itself


def test_an_extends_chain_deeper_than_the_limit_is_refused(tmp_path):
    n = 1500
    for i in range(n):
        _write(tmp_path / f"c{i}.json", {"extends": f"c{i + 1}.json"} if i < n - 1 else {"peers": 3})
    with pytest.raises(ConfigError, match=f"more than {config.MAX_EXTENDS_DEPTH} files deep"):
        config.read_file(str(tmp_path / "c0.json"))
    # exactly at the limit still reads
    k = config.MAX_EXTENDS_DEPTH
    for i in range(k):
        _write(tmp_path / f"d{i}.json", {"extends": f"d{i + 1}.json", f"x{i}": i} if i < k - 1 else {"peers": 3})
    assert config.read_file(str(tmp_path / "d0.json"))["peers"] == 3


def test_an_extends_dag_with_exponentially_many_paths_reads_each_file_once(tmp_path, monkeypatch):
    # first 12 files (2^12 paths: a regression fails here, in a second, instead of hanging below)
    for i in range(12):
        _write(tmp_path / f"h{i}.json", {"extends": [f"h{i + 1}.json"] * 2} if i < 11 else {"peers": 3})
    reads = []
    real = config_files._read_json
    monkeypatch.setattr(config_files, "_read_json", lambda path: reads.append(path) or real(path))
    assert config.read_file(str(tmp_path / "h0.json")) == {"peers": 3}
    assert len(reads) == 12
    # 40 files each extending the next twice: 2^40 paths through the graph
    n = 40
    for i in range(n):
        _write(tmp_path / f"g{i}.json", {"extends": [f"g{i + 1}.json", f"g{i + 1}.json"], "rounds": i + 1}
               if i < n - 1 else {"peers": 3})
    t0 = time.perf_counter()
    d = config.read_file(str(tmp_path / "g0.json"))
    assert time.perf_counter() - t0 < 5
    assert d == {"peers": 3, "rounds": 1}


# ----------------------------------------------------------------------------- TALLYSIM_* distributed settings

ALL3 = {"TALLYSIM_COORDINATOR": "127.0.0.1:1234", "TALLYSIM_NUM_PROCESSES": "2", "TALLYSIM_PROCESS_ID": "1"}


@pytest.mark.parametrize("env, match", [
    ({"TALLYSIM_DISTRIBUTED": "true", **ALL3}, "TALLYSIM_DISTRIBUTED='true': allowed 1"),     # not silently one process
    ({"TALLYSIM_DISTRIBUTED": "yes"}, "allowed 1"),
    ({"TALLYSIM_PROCESS_ID": "1"}, "TALLYSIM_PROCESS_ID is set but TALLYSIM_DISTRIBUTED is not 1"),   # alone
    ({"TALLYSIM_DISTRIBUTED": "0", **ALL3}, "is set but TALLYSIM_DISTRIBUTED is not 1"),
    ({"TALLYSIM_DISTRIBUTED": "1", "TALLYSIM_PROCESS_ID": "0"}, "set without TALLYSIM_COORDINATOR, TALLYSIM_NUM"),
    ({"TALLYSIM_DISTRIBUTED": "1", **ALL3, "TALLYSIM_NUM_PROCESSES": "two"}, "TALLYSIM_NUM_PROCESSES='two': allowed an integer"),
    ({"TALLYSIM_DISTRIBUTED": "1", **ALL3, "TALLYSIM_PROCESS_ID": "1.5"}, "TALLYSIM_PROCESS_ID='1.5'"),
    ({"TALLYSIM_DISTRIBUTED": "1", **ALL3, "TALLYSIM_PROCESS_ID": "2"}, r"TALLYSIM_PROCESS_ID='2': allowed an integer 0\.\.1"),
    ({"TALLYSIM_DISTRIBUTED": "1", **ALL3, "TALLYSIM_PROCESS_ID": "-1"}, r"allowed an integer 0\.\.1"),
    ({"TALLYSIM_DISTRIBUTED": "1", **ALL3, "TALLYSIM_NUM_PROCESSES": "0"}, "TALLYSIM_NUM_PROCESSES='0'"),
    ({"TALLYSIM_DISTRIBUTED": "1", **ALL3, "TALLYSIM_COORDINATOR": "host0"}, "allowed host:port"),
    ({"TALLYSIM_DISTRIBUTED": "1", **ALL3, "TALLYSIM_COORDINATOR": "host0:99999"}, "allowed host:port"),
    ({"TALLYSIM_DISTRIBUTED": "1", "TALLYSIM_DISTRIBUTED_TIMEOUT": "soon"}, "TALLYSIM_DISTRIBUTED_TIMEOUT='soon'"),
])
def test_bad_distributed_settings_are_one_line(env, match, monkeypatch, capsys, tmp_path):
    from tallysim.sim import distributed
    with pytest.raises(ConfigError, match=match):
        distributed.distributed_settings(env)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert match.split("'")[0].split(" ")[0] in one_line(capsys, ["run", "rounds=1", "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_good_distributed_settings():
    from tallysim.sim import distributed
    assert distributed.distributed_settings({}) is None
    assert distributed.distributed_settings({"TALLYSIM_DISTRIBUTED": "0"}) is None
    assert distributed.distributed_settings({"TALLYSIM_DISTRIBUTED": "1"}) == {"timeout": distributed.DISTRIBUTED_TIMEOUT}
    assert distributed.distributed_settings({"TALLYSIM_DISTRIBUTED": "1", **ALL3, "TALLYSIM_DISTRIBUTED_TIMEOUT": "7"}) == \
        {"timeout": 7, "num_processes": 2, "process_id": 1, "coordinator_address": "127.0.0.1:1234"}


@pytest.mark.parametrize("who", ["peer", "coordinator"])
def test_a_distributed_run_whose_peers_never_answer_fails_in_one_line_within_the_timeout(who, tmp_path):
    """Process 1 whose coordinator never starts, process 0 whose peer never starts: each gives up after
    TALLYSIM_DISTRIBUTED_TIMEOUT seconds with one line, exit 2 (JAX alone would abort with a stack trace)."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, JAX_PLATFORMS="cpu", TALLYSIM_DISTRIBUTED="1", TALLYSIM_DISTRIBUTED_TIMEOUT="3",
               TALLYSIM_COORDINATOR=f"127.0.0.1:{free_port()}", TALLYSIM_NUM_PROCESSES="2",
               TALLYSIM_PROCESS_ID="1" if who == "peer" else "0")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "tallysim", "run", "rounds=1", "--quiet", "--out", str(tmp_path / "o")],
                       env=env, capture_output=True, text=True, timeout=120)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr[-2000:]
    assert "did not answer within 3 s" in lines[0]
    assert time.perf_counter() - t0 < 60
    assert not (tmp_path / "o").exists()


def _bare_env(**extra) -> dict:
    """This environment without any cluster manager's variables JAX would auto-detect."""
    import os
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "OMPI_", "PMI_", "PMIX_", "MV2_", "TALLYSIM_", "MPI_", "TPU_"))}
    return dict(env, JAX_PLATFORMS="cpu", **extra)


def test_distributed_alone_without_a_cluster_is_one_line(tmp_path):
    """TALLYSIM_DISTRIBUTED=1 and nothing else, where JAX detects no cluster: JAX's ValueError traceback
    before; now one line naming what to set, exit 2, nothing created."""
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-m", "tallysim", "run", "rounds=1", "--quiet", "--out", str(tmp_path / "o")],
                       env=_bare_env(TALLYSIM_DISTRIBUTED="1"), capture_output=True, text=True, timeout=120)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr[-2000:]
    assert lines[0].startswith("tallysim: error: TALLYSIM_DISTRIBUTED=1") and "TALLYSIM_COORDINATOR" in lines[0]
    assert not (tmp_path / "o").exists()


def test_a_long_wait_for_a_peer_says_so_before_it_gives_up(tmp_path):
    """A peer that never starts: past distributed.NOTICE_AFTER seconds the process says what it waits for
    and when it gives up (minutes of silence read as a hang), then fails in one error line."""
    import subprocess
    import sys
    from tallysim.sim import distributed
    env = _bare_env(TALLYSIM_DISTRIBUTED="1", TALLYSIM_DISTRIBUTED_TIMEOUT=str(distributed.NOTICE_AFTER + 2),
                    TALLYSIM_COORDINATOR=f"127.0.0.1:{free_port()}", TALLYSIM_NUM_PROCESSES="2",
                    TALLYSIM_PROCESS_ID="0")
    p = subprocess.run([sys.executable, "-m", "tallysim", "run", "rounds=1", "--quiet", "--out", str(tmp_path / "o")],
                       env=env, capture_output=True, text=True, timeout=120)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 2, p.stderr[-2000:]
    assert "waiting for the other processes" in lines[0] and f"giving up after {distributed.NOTICE_AFTER + 2} s" in lines[0]
    assert lines[1].startswith("tallysim: error: process 0:")


def test_a_coordinator_that_does_not_resolve_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TALLYSIM_DISTRIBUTED", "1")
    for k, v in {**ALL3, "TALLYSIM_COORDINATOR": "no-such-host.invalid:1234"}.items():
        monkeypatch.setenv(k, v)
    assert "does not resolve" in one_line(capsys, ["run", "rounds=1", "--out", str(tmp_path / "o")])


# ----------------------------------------------------------------------------- checkpoints on --resume


def _copy(src, tmp_path):
    import shutil
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


def _rewrite_meta(d, **changes):
    import numpy as np
    from tallysim import checkpoint
    with np.load(d / checkpoint.FILE) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays.pop("__meta__")).decode())
    for k, v in changes.items():
        if v is None:
            meta.pop(k)
        else:
            meta[k] = v
    np.savez(d / checkpoint.FILE, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)


def _flip_a_bit_in_the_largest_leaf(path):
    import struct
    import zipfile
    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if i.filename.startswith("leaf_")), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    data = info.header_offset + 30 + name_len + extra_len
    raw[data + info.file_size - 5] ^= 0x10          # inside the array's values, past the .npy header
    path.write_bytes(bytes(raw))


def _resume_line(capsys, d, no_compile) -> str:
    return one_line(capsys, ["run", "--out", str(d), "--resume", "--quiet"])


@pytest.mark.parametrize("damage, match", [
    ("flip", "fails its CRC check"),                                   # BadZipFile, once after compiling
    ("no lo", "no valid 'lo' .another tallysim version"),             # KeyError, once
    ("no ledgers", "no valid 'ledgers'"),
    ("version 2", "checkpoint version 2, this tallysim reads version 1"),   # silently accepted, once
    ("no version", "checkpoint version None"),
    ("round 50", "at round 50 but this run has rounds=3"),              # silently accepted, once
    ("lo 7", "seed index 7"),
    ("truncated", "unreadable"),
    # config.json edited after the checkpoint: `run --resume` without a config reads it (once: continued
    # silently under the other protocol); the checkpoint names the config that computed it
    ("edit protocol.name=fedavg", "computed by protocol 'local' but the config now names 'fedavg'"),
    ("edit optim.lr=0.5", r"differs from the config .*checkpoint.npz was computed under \(optim.lr=0.05->0.5"),
])
def test_a_damaged_or_foreign_checkpoint_is_refused_in_one_line(damage, match, checkpointed, tmp_path, capsys,
                                                                no_compile):
    from tallysim import checkpoint
    d = _copy(checkpointed, tmp_path)
    ck = d / checkpoint.FILE
    if damage == "flip":
        _flip_a_bit_in_the_largest_leaf(ck)
    elif damage == "truncated":
        ck.write_bytes(ck.read_bytes()[:-100])
    elif damage.startswith("edit "):
        doc = json.loads((d / "config.json").read_text())
        key, value = damage[5:].split("=")
        section, field = key.split(".")
        doc[section][field] = float(value) if field == "lr" else value
        (d / "config.json").write_text(json.dumps(doc))
    elif damage.startswith("no "):
        _rewrite_meta(d, **{damage[3:]: None})
    else:
        key, value = damage.split()
        _rewrite_meta(d, **{{"version": "version", "round": "round", "lo": "lo"}[key]: int(value)})
    before = (d / "metrics.jsonl").read_bytes()
    import re
    assert re.search(match, _resume_line(capsys, d, no_compile))
    assert (d / "metrics.jsonl").read_bytes() == before


def test_the_undamaged_checkpoint_resumes(checkpointed, tmp_path, capsys):
    """The control for the test above: the same directory, undamaged, resumes to 3 rows."""
    from conftest import read_rows
    d = _copy(checkpointed, tmp_path)
    assert cli.main(["run", "--out", str(d), "--resume", "--quiet"]) == 0
    assert [r["round"] for r in read_rows(d)] == [1, 2, 3]


# ----------------------------------------------------------------------------- one writer per run directory

def _hold_lock(d):
    """What a second tallysim process does while it writes d: flock its lock file."""
    import fcntl
    import os
    from tallysim import outdir
    fd = os.open(d / outdir.LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


@pytest.mark.parametrize("how", ["--resume", "--overwrite"])
def test_a_run_directory_being_written_is_refused(how, checkpointed, tmp_path, capsys, no_compile):
    import os
    from conftest import RESUMABLE, TINY
    d = _copy(checkpointed, tmp_path)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    fd = _hold_lock(d)
    try:
        argv = ["run", "--out", str(d), how, "--quiet"] + ([*TINY, *RESUMABLE] if how == "--overwrite" else [])
        assert "is being written by another tallysim process" in one_line(capsys, argv)
    finally:
        os.close(fd)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_a_run_directory_named_through_dotdot_is_locked_as_itself(checkpointed, tmp_path, capsys, no_compile):
    """`--resume --out A/missing/../../run` is `run`: its lock is seen (before, the lock check looked at
    the unresolvable text and let a second writer in)."""
    import os
    d = _copy(checkpointed, tmp_path)
    (tmp_path / "A").mkdir()
    fd = _hold_lock(d)
    try:
        line = one_line(capsys, ["run", "--out", f"{tmp_path}/A/missing/../../run", "--resume", "--quiet"])
    finally:
        os.close(fd)
    assert "is being written by another tallysim process" in line and not (tmp_path / "A" / "missing").exists()


def test_a_sweep_leaves_no_error_file_in_a_run_another_process_is_writing(tmp_path, no_compile):
    """Two identical sweeps into one --out: the second found each run directory locked by the first,
    wrote error.txt into it, and the first then wrote done.json beside it. Now a busy run is reported
    failed in the second sweep's index only, alone or grouped (grouped runs hold their locks too,
    where before they held none and two sweeps wrote one directory at once)."""
    import os
    from tallysim import outdir, sweep
    from conftest import tiny
    out = tmp_path / "sw"
    for runs in ([("a", [])], [("a", ["seed=1"]), ("b", ["seed=2"])]):
        fds = []
        for name, _ in runs:
            (out / name).mkdir(parents=True, exist_ok=True)
            outdir.mark(out / name)
            fds.append(_hold_lock(out / name))
        try:
            recs = sweep.run_sweep(tiny("protocol.name=local", "rounds=1"), runs, out, progress=False,
                                   log=lambda s: None)
        finally:
            for fd in fds:
                os.close(fd)
        assert [r["status"] for r in recs] == ["failed"] * len(runs)
        assert all("being written by another tallysim process" in r["error"] for r in recs)
        assert not list(out.glob("*/error.txt"))


@pytest.mark.slow
def test_two_resumes_at_once_one_is_refused(checkpointed, tmp_path):
    """Two real processes: the first holds the lock for the whole run, the second exits 2 at once
    and metrics.jsonl ends with rounds 1, 2, 3, none repeated."""
    import os
    import subprocess
    import sys
    from conftest import read_rows
    d = _copy(checkpointed, tmp_path)
    argv = [sys.executable, "-m", "tallysim", "run", "--out", str(d), "--resume", "--quiet"]
    slow = ("import sys, time\nfrom tallysim import cli, run\norig = run._Recorder.rows\n"
            "def rows(self, r, rows):\n    time.sleep(2)\n    orig(self, r, rows)\n"
            "run._Recorder.rows = rows\nsys.exit(cli.main(sys.argv[1:]))\n")      # a first run that takes a while
    first = subprocess.Popen([sys.executable, "-c", slow, *argv[3:]], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    from tallysim import outdir
    deadline = time.time() + 60
    import fcntl
    while time.time() < deadline:        # wait until the first holds the lock
        fd = os.open(d / outdir.LOCK, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            break
        finally:
            os.close(fd)
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    second = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 2 and "is being written by another tallysim process" in second.stderr, second.stderr
    assert [r["round"] for r in read_rows(d)] == [1, 2, 3]


def test_the_lock_file_is_a_run_file(tmp_path):
    from tallysim import outdir
    assert outdir.LOCK in outdir.RUN_FILES


# ----------------------------------------------------------------------------- a full disk

def full_disk(monkeypatch, prefix: str = "") -> None:
    """Temporary files whose name starts with `prefix` are written to /dev/full: every write fails with
    ENOSPC, and so does the flush a buffered file does when closed, as on a real full disk."""
    import os
    import tempfile
    real = tempfile.mkstemp

    def mkstemp(*a, **k):
        fd, path = real(*a, **k)
        if (k.get("prefix") or "").startswith(prefix):
            os.close(fd)
            fd = os.open("/dev/full", os.O_WRONLY)
        return fd, path
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_a_full_disk_in_any_atomic_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    """The class: whatever atomic.writing writes (config, index, checkpoint, cache), a full disk leaves
    the destination untouched and no temporary file, however much was written before the error."""
    import errno
    from tallysim import atomic
    (tmp_path / "kept.json").write_text("old")
    full_disk(monkeypatch)
    for data in (b"x" * 10, b"x" * (1 << 20)):          # within a buffer and past it
        with pytest.raises(OSError) as e:
            atomic.write_atomic(tmp_path / "kept.json", data)
        assert e.value.errno == errno.ENOSPC
        assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json"]
        assert (tmp_path / "kept.json").read_text() == "old"


def test_a_full_disk_writing_the_data_cache_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    import numpy as np
    from tallysim.data.base import DataError, Dataset
    from tallysim.data.cache import cache_dir, write_cache
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path / "cache"))
    full_disk(monkeypatch)
    x = np.zeros((8, 2, 2, 1), np.uint8)
    with pytest.raises(DataError, match="cannot write the data cache .*No space left on device"):
        write_cache(Dataset("tiny", x, np.zeros(8, np.int32), x, np.zeros(8, np.int32), 2), "tiny")
    assert not list(cache_dir().iterdir())


def test_a_full_disk_during_a_checkpoint_is_one_line_and_leaves_no_temporary_file(tmp_path, capsys, monkeypatch):
    from conftest import RESUMABLE, TINY
    full_disk(monkeypatch, prefix=".checkpoint.npz.")
    out = tmp_path / "o"
    line = one_line(capsys, ["run", *TINY, *RESUMABLE, "--out", str(out), "--quiet", "--checkpoint-every", "1"])
    assert "the disk is full" in line and "No space left on device" in line
    assert sorted(p.name for p in out.iterdir()) == [".tallysim-lock", ".tallysim-run", "config.json",
                                                     "metrics.jsonl", "partition.json"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1     # the row before it is kept


def test_a_full_disk_writing_the_sweep_index_is_one_line_and_leaves_no_temporary_file(tmp_path, capsys,
                                                                                       monkeypatch, no_compile):
    """The disk fills while sweep.json is written: whether the write or the rename of its temporary
    file fails, the sweep stops with one line and no temporary file stays in --out."""
    import errno
    import os
    import pathlib
    from conftest import TINY
    full = OSError(errno.ENOSPC, "No space left on device")
    real_write_text, real_replace = pathlib.Path.write_text, os.replace

    def write_text(self, data, *a, **k):
        if '"runs"' in data:
            real_write_text(self, data[:10], *a, **k)           # half of it reached the disk
            raise full
        return real_write_text(self, data, *a, **k)

    def replace(src, dst, *a, **k):
        if os.path.basename(dst) == "sweep.json":
            raise full
        return real_replace(src, dst, *a, **k)
    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "sw"
    line = one_line(capsys, ["sweep", *TINY, "protocol.name=local", "rounds=1", "seed=0,1", "--out", str(out), "--quiet"])
    assert "the disk is full" in line
    assert not [p.name for p in out.iterdir() if "tmp" in p.name]


# ----------------------------------------------------------------------------- devices, sweep and figure sizes

def test_devices_beyond_what_jax_sees_creates_no_directory(tmp_path, capsys, no_compile):
    from conftest import TINY
    out = tmp_path / "o"
    assert "devices=999 but JAX sees" in one_line(capsys, ["run", *TINY, "devices=999", "--out", str(out)])
    assert not out.exists()
    sw = tmp_path / "sw"
    line = one_line(capsys, ["sweep", *TINY, "devices=999", "seed=0,1,2", "--out", str(sw)])
    assert "sweep run seed=0: devices=999" in line and not sw.exists()
    assert "devices=999" in one_line(capsys, ["sweep", *TINY, "devices=999", "seed=0,1", "--out", str(sw), "--dry-run"])


def test_a_sweep_above_the_limit_is_refused_before_any_run_is_listed(tmp_path, capsys, monkeypatch):
    from tallysim import sweep
    calls = []
    monkeypatch.setattr(sweep.config, "validate", lambda c: calls.append(c) or c)
    axes = [f"{k}=" + ",".join(str(i + 1) for i in range(1000)) for k in ("seed", "rounds", "peers")]   # 10^9
    t0 = time.perf_counter()
    for extra in ([], ["--dry-run"]):
        line = one_line(capsys, ["sweep", *axes, "--out", str(tmp_path / "sw"), *extra])
        assert "has 1,000,000,000 runs" in line and f"at most {sweep.MAX_RUNS:,}" in line
    assert time.perf_counter() - t0 < 5 and not calls and not (tmp_path / "sw").exists()
    # a figure: the same limit over all its groups (two of 6,000)
    fig = _write(tmp_path / "big.json", {"kind": "curves", "base": {"data": {"name": "synthetic"}},
                                         "groups": {"a": {}, "b": {}},
                                         "sweep": {"seed": list(range(100)), "rounds": list(range(1, 61))}})
    for extra in ([], ["--dry-run"]):
        assert "the figure has 12,000 runs" in one_line(capsys, ["figure", fig, "--results", str(tmp_path / "r"),
                                                                 "--out", str(tmp_path / "f"), *extra])
    assert not (tmp_path / "r").exists() and not (tmp_path / "f").exists()
    # at the limit it is counted and listed
    assert len(sweep.expand({}, ["seed=" + ",".join(map(str, range(100))), "rounds=" + ",".join(map(str, range(1, 101)))])) \
        == sweep.MAX_RUNS


def _figure(tmp_path, name):
    return _write(tmp_path / name, {"kind": "curves", "base": {"data": {"name": "synthetic"}, "rounds": 1},
                                    "groups": {"tally": {"protocol": {"name": "tally"}}}})


def test_a_figure_whose_name_escapes_or_is_too_long_is_refused_before_running(tmp_path, capsys, monkeypatch, no_compile):
    from tallysim import sweep
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: pytest.fail("ran before refusing the name"))
    dots = _figure(tmp_path, "...json")                           # its stem is '..'
    argv = ["--results", str(tmp_path / "r" / "x"), "--out", str(tmp_path / "f")]
    assert "is not allowed as a directory name" in one_line(capsys, ["figure", dots, *argv])
    long = _figure(tmp_path, "f" * 240 + ".json")                 # a legal file, but <stem>_table.md is not
    assert "use one plain name of 1..200 bytes" in one_line(capsys, ["figure", long, *argv])
    # a pareto figure's panel tables are <stem>_<panel>_frontier.csv
    pareto = _write(tmp_path / ("p" * 150 + ".json"), {"kind": "pareto", "base": {"data": {"name": "synthetic"}},
                                                       "groups": {"tally": {}}, "panels": {"q" * 100: {"peers": 4}}})
    assert "of at most 255 bytes" in one_line(capsys, ["figure", pareto, *argv])
    assert "of at most 255 bytes" in one_line(capsys, ["figure", pareto, "--dry-run", *argv])
    assert not (tmp_path / "r").exists() and not (tmp_path / "f").exists() and not (tmp_path / "r" / "..").exists()


# ----------------------------------------------------------------------------- bench flags

@pytest.mark.parametrize("argv, match", [
    (["bench", "--devices", "abc"], "expected a comma list of positive counts"),          # was a traceback
    (["bench", "--devices", "1,x"], "expected a comma list"),
    (["bench", "--devices", "999"], "none of these counts can be measured"),            # was exit 0, nothing measured
    (["bench", "--sweep", "--sample", "-1"], "--sample -1: allowed 0"),               # was accepted
])
def test_bad_bench_flags_are_one_line_before_measuring(argv, match, capsys, monkeypatch):
    from tallysim.bench import devices, sweep as bench_sweep
    monkeypatch.setattr(devices, "measure", lambda *a, **k: pytest.fail("measured before refusing"))
    monkeypatch.setattr(bench_sweep, "run", lambda *a, **k: pytest.fail("measured before refusing"))
    assert match in one_line(capsys, argv)


@pytest.mark.parametrize("mode", [["--devices", "1"], ["--sweep", "--smoke"], ["--round"], []])
def test_bench_json_into_a_directory_is_refused_before_measuring(mode, tmp_path, capsys, monkeypatch):
    from tallysim.bench import devices, rounds, sweep as bench_sweep, throughput
    for mod, fn in ((devices, "measure"), (bench_sweep, "run"), (rounds, "main"), (throughput, "main")):
        monkeypatch.setattr(mod, fn, lambda *a, **k: pytest.fail("measured before refusing --json"))
    assert "is a directory" in one_line(capsys, ["bench", *mode, "--json", str(tmp_path)])
    assert "does not exist" in one_line(capsys, ["bench", *mode, "--json", str(tmp_path / "no" / "x.json")])


# ----------------------------------------------------------------------------- prepare offline

def test_prepare_offline_is_one_line_without_absl_warnings(tmp_path):
    """tfds, looking for a local copy, logs 'WARNING:absl:Variant folder ... has no dataset_info.json'
    before tallysim's one-line error; that line must not reach the user."""
    pytest.importorskip("tensorflow_datasets")
    import os
    import subprocess
    import sys
    offline = ("import sys\nfrom tallysim import cli\nfrom tallysim.data import prepare as p\n"
               "p._reachable = lambda *a, **k: False\n"          # never download, even where CI is online
               "sys.exit(cli.main(['prepare', 'cifar10']))\n")
    env = dict(os.environ, TFDS_DATA_DIR=str(tmp_path / "tfds"), TALLYSIM_DATA=str(tmp_path / "cache"))
    p = subprocess.run([sys.executable, "-c", offline], env=env, capture_output=True, text=True, timeout=300)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "cannot prepare 'cifar10'" in lines[0], p.stderr
