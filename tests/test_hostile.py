"""Issue 20 section 3: hostile and careless inputs against extends, checkpoints, distributed settings,
bench flags, sweeps, figures and full disks. Each is one line (ConfigError, `tallysim: error: ...`,
exit 2) before anything runs: never a traceback, a hang, a silent acceptance or a late failure.

Nothing here trains a model except where a test says so (tiny configs)."""
import json
import time

import pytest

from tallysim import cli, config
from tallysim.config import ConfigError


def one_line(capsys, argv) -> str:
    """Run the CLI; it must exit 2 with exactly one stderr line `tallysim: error: ...`."""
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("tallysim: error: "), (code, err)
    return err[0]


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


def test_an_extends_dag_with_exponentially_many_paths_reads_each_file_once(tmp_path):
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

def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    from tallysim.sim import mesh
    with pytest.raises(ConfigError, match=match):
        mesh.distributed_settings(env)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert match.split("'")[0].split(" ")[0] in one_line(capsys, ["run", "rounds=1", "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_good_distributed_settings():
    from tallysim.sim import mesh
    assert mesh.distributed_settings({}) is None
    assert mesh.distributed_settings({"TALLYSIM_DISTRIBUTED": "0"}) is None
    assert mesh.distributed_settings({"TALLYSIM_DISTRIBUTED": "1"}) == {"timeout": mesh.DISTRIBUTED_TIMEOUT}
    assert mesh.distributed_settings({"TALLYSIM_DISTRIBUTED": "1", **ALL3, "TALLYSIM_DISTRIBUTED_TIMEOUT": "7"}) == \
        {"timeout": 7, "num_processes": 2, "process_id": 1, "coordinator_address": "127.0.0.1:1234"}


@pytest.mark.parametrize("who", ["peer", "coordinator"])
def test_a_distributed_run_whose_peers_never_answer_fails_in_one_line_within_the_timeout(who, tmp_path):
    """Process 1 whose coordinator never starts, process 0 whose peer never starts: each gives up after
    TALLYSIM_DISTRIBUTED_TIMEOUT seconds with one line, exit 2 (JAX alone would abort with a stack trace)."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, JAX_PLATFORMS="cpu", TALLYSIM_DISTRIBUTED="1", TALLYSIM_DISTRIBUTED_TIMEOUT="3",
               TALLYSIM_COORDINATOR=f"127.0.0.1:{_free_port()}", TALLYSIM_NUM_PROCESSES="2",
               TALLYSIM_PROCESS_ID="1" if who == "peer" else "0")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "tallysim", "run", "rounds=1", "--quiet", "--out", str(tmp_path / "o")],
                       env=env, capture_output=True, text=True, timeout=120)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr[-2000:]
    assert "did not answer within 3 s" in lines[0]
    assert time.perf_counter() - t0 < 60
    assert not (tmp_path / "o").exists()


def test_a_coordinator_that_does_not_resolve_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TALLYSIM_DISTRIBUTED", "1")
    for k, v in {**ALL3, "TALLYSIM_COORDINATOR": "no-such-host.invalid:1234"}.items():
        monkeypatch.setenv(k, v)
    assert "does not resolve" in one_line(capsys, ["run", "rounds=1", "--out", str(tmp_path / "o")])
