"""The reference benchmarks in benchmarks/ run from the repository (tiny sizes; numbers not checked)."""
import json
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_vmap_ref_runs_from_the_repository():
    out = subprocess.run([sys.executable, str(BENCH / "vmap_ref.py"), "--model", "mlp", "--peers", "2",
                          "--steps", "2", "--batch", "4", "--loop-max", "2"],
                         cwd=BENCH.parent, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = [line for line in out.stdout.splitlines() if line.startswith("SUMMARY ")]
    rows = json.loads(summary[-1][len("SUMMARY "):])
    assert [(r["P"], r["mode"]) for r in rows] == [(2, "vmap"), (2, "loop")]
    assert all(r["samples_per_s"] > 0 for r in rows)


def test_torch_ref_compiles_and_runs_where_torch_is():
    py_compile.compile(str(BENCH / "torch_ref.py"), doraise=True)
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, str(BENCH / "torch_ref.py"), "--peers", "2", "--steps", "1",
                          "--batch", "2", "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert {json.loads(line)["mode"] for line in out.stdout.splitlines()} == {"loop", "vmap"}
