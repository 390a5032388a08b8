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


def _gpu_table(*paths):
    return subprocess.run([sys.executable, str(BENCH / "gpu_table.py"), *map(str, paths)],
                          capture_output=True, text=True, timeout=60)


def test_gpu_table_from_the_json_bench_writes(tmp_path):
    """benchmarks/gpu.sh's last step: the table from `tallysim bench --json` files made on this CPU, one
    of them missing (a part that ran out of time) and named under the table instead of stopping it."""
    from tallysim import cli
    out = tmp_path / "table_mlp.json"
    assert cli.main(["bench", "--model", "mlp", "--peers", "2", "--steps", "1", "--batch", "4", "--dtype",
                     "float32", "--repeats", "1", "--impl", "tallysim,vmap_ref,dense", "--json", str(out)]) == 0
    rows = {r["impl"]: r for r in json.loads(out.read_text())}
    res = _gpu_table(out, tmp_path / "table_cnn.json")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "on cpu" in lines[0] and "dense = one model" in lines[0]
    head = [c.strip() for c in lines[1].strip("|").split("|")]
    assert head == ["model", "dtype", "P", "tallysim", "plain vmap", "dense", "TFLOP/s tallysim", "TFLOP/s dense",
                    "tallysim / dense", "vmap / dense"]
    cells = dict(zip(head, [c.strip() for c in lines[3].strip("|").split("|")]))
    rate = {k: r["samples_per_s"] for k, r in rows.items()}
    assert cells["model"] == "mlp" and cells["P"] == "2"
    assert cells["tallysim"] == f"{rate['tallysim']:,.0f}" and cells["dense"] == f"{rate['dense']:,.0f}"
    assert cells["TFLOP/s tallysim"] == f"{rate['tallysim'] * 879_200 / 1e12:.3g}"
    assert cells["tallysim / dense"] == f"{rate['tallysim'] / rate['dense']:.2f}"
    assert cells["vmap / dense"] == f"{rate['vmap_ref'] / rate['dense']:.2f}"
    assert "table_cnn.json: missing" in lines[-1]


def test_gpu_table_with_nothing_to_show_says_why(tmp_path):
    (tmp_path / "cut.json").write_text('[{"model": "cnn", "imp')          # killed mid-write
    res = _gpu_table(tmp_path / "cut.json", tmp_path / "none.json")
    assert res.returncode == 1 and "cut.json: unreadable" in res.stdout and "none.json: missing" in res.stdout
    res = _gpu_table()
    assert res.returncode == 2 and "usage" in res.stderr
    # rows from before the analytic count (docs/gpu/, 2026-11-27): samples/s shown, TFLOP/s and the bound "-"
    res = _gpu_table(BENCH.parent / "docs" / "gpu" / "call2_table_cnn_f32.json")
    assert res.returncode == 0 and "| cnn | float32 | 100 | 338,569 | 337,534 | - | - | - | - | - |" in res.stdout
    twice = _gpu_table(*[BENCH.parent / "docs" / "gpu" / "call2_table_cnn_f32.json"] * 2)
    assert "cnn float32 100 tallysim: measured twice" in twice.stdout      # a mixed cell is flagged


def test_bench_json_file_keeps_the_rows_of_a_run_cut_short(tmp_path, monkeypatch):
    """gpu.sh kills a part at its time limit: `--json FILE` must already hold every row measured so far."""
    from tallysim import cli
    from tallysim.bench import throughput
    out = tmp_path / "rows.json"
    seen = []
    real = throughput.write_json
    monkeypatch.setattr(throughput, "write_json",
                        lambda rows, dest: (seen.append([r["impl"] for r in rows]), real(rows, dest)))
    assert cli.main(["bench", "--model", "mlp", "--peers", "2", "--steps", "1", "--batch", "4", "--dtype",
                     "float32", "--repeats", "1", "--impl", "tallysim,dense", "--json", str(out)]) == 0
    assert seen == [["tallysim"], ["tallysim", "dense"], ["tallysim", "dense"]]   # after each row, then complete
    assert "of_dense" in json.loads(out.read_text())[0]
