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
