"""`tallysim bench`: a tiny measurement returns sane rows, and the CLI prints its table (CPU, seconds)."""
import json
import sys

import pytest

from tallysim import bench, cli
from tallysim.config import ConfigError


def test_measure_tiny():
    rows = bench.measure("mlp", [2], steps=2, batch=8, dtype="float32", loop_max=2)
    assert [r["mode"] for r in rows] == ["vmap", "loop"]
    for r in rows:
        assert r["P"] == 2 and r["model"] == "mlp" and r["dtype"] == "float32"
        assert r["sec"] > 0 and r["samples_per_s"] > 0 and r["compile_s"] > 0
        assert r["samples_per_s"] == pytest.approx(2 * 2 * 8 / r["sec"])
    vmap, loop = rows
    assert loop["ratio"] == pytest.approx(vmap["samples_per_s"] / loop["samples_per_s"])
    assert "ratio vmap/loop" in bench.table(rows)
    json.dumps(rows)   # rows go to --json and to the figure: plain JSON types only


def test_loop_skipped_above_loop_max_and_bad_input():
    rows = bench.measure("mlp", [3], steps=1, batch=4, dtype="float32", loop_max=2)
    assert [r["mode"] for r in rows] == ["vmap"]
    assert bench.table(rows).splitlines()[1].split("|")[2].strip() == "-"
    with pytest.raises(ConfigError):
        bench.measure("mlp", [0], steps=1, batch=4, dtype="float32", loop_max=2)
    with pytest.raises(ConfigError):
        bench._parse_ints("10,x", "--peers")


def test_cli_prints_table(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert cli.main(["bench", "--peers", "2", "--steps", "2", "--batch", "8", "--model", "mlp",
                     "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    assert [r["mode"] for r in rows] == ["vmap", "loop"] and "ratio" in rows[1]
    assert any("ratio vmap/loop" in line for line in lines)
    assert any("devices" in line for line in lines)
    assert json.loads(out.read_text()) == rows
