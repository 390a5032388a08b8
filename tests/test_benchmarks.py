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


def _conv_rows():
    row = lambda impl, conv, rate, model="cnn": dict(model=model, dtype="bfloat16", peers=100, impl=impl, conv=conv,
                                                     samples_per_s=rate, device="gpu:NVIDIA H200", tflops=rate * 7e-5)
    return [row("tallysim", "xla", 600_000), row("vmap_ref", "xla", 650_000), row("tallysim", "im2col", 500_000),
            row("tallysim", "nchw", 700_000), row("tallysim", "xla", 2_000_000, "lenet"),
            row("vmap_ref", "xla", 1_900_000, "lenet"), row("tallysim", "nchw", 1_800_000, "lenet")]


def test_gpu_table_has_a_conv_column_and_auto_conv_rows(tmp_path):
    """bench --conv xla,im2col,nchw (gpu.sh part conv): one line per conv, plain vmap beside each; and
    --auto-conv prints the fastest conv's AUTO_CONV row per (device kind, model), ready to paste."""
    path = tmp_path / "conv.json"
    path.write_text(json.dumps(_conv_rows()))
    res = _gpu_table(path)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line.startswith("| cnn") or line.startswith("| lenet")]
    assert "| model | dtype | P | conv | tallysim | plain vmap |" in res.stdout
    assert [line.split(" | ")[3] for line in lines] == ["xla", "im2col", "nchw", "xla", "nchw"]
    assert all(" 650,000 " in line for line in lines[:3])           # vmap_ref beside every cnn conv
    res = subprocess.run([sys.executable, str(BENCH / "gpu_table.py"), "--auto-conv", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert '("NVIDIA H200", "cnn", "nchw"),' in res.stdout and '("NVIDIA H200", "lenet", "xla"),' in res.stdout
    assert "xla 600,000, im2col 500,000, nchw 700,000" in res.stdout


def test_gpu_sh_conv_part_is_named_and_within_the_lease():
    text = (BENCH / "gpu.sh").read_text()
    assert "conv)" in text and "CONVS:-xla,im2col,nchw,pallas" in text and "--auto-conv" in text
    assert "xla_flags)" in text and "xla_gpu_force_conv_nchw" in text


def _bench_row(model, impl, rate, P=100, conv=None, dtype="bfloat16"):
    return dict(model=model, dtype=dtype, peers=P, impl=impl, conv=conv, samples_per_s=rate,
                device="gpu:NVIDIA H200", tflops=rate * 7.24e-5 if model == "cnn" else None)


def _gpu_sh(out, **env):
    import os
    return subprocess.run(["bash", str(BENCH / "gpu.sh")], cwd=BENCH.parent, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, OUT=str(out), PY=sys.executable, **env))


def test_gpu_sh_table_step_on_canned_json(tmp_path):
    """gpu.sh's last step as the lease runs it (PARTS=table: the tables from the JSON already in $OUT, no
    JAX): the model table from table_cnn.json with table_rest.json named missing, then the conv part's
    lines and its AUTO_CONV rows, all in $OUT/table.md."""
    (tmp_path / "table_cnn.json").write_text(json.dumps(
        [_bench_row("cnn", "tallysim", 577_858, conv="auto:xla"), _bench_row("cnn", "vmap_ref", 662_639, conv="xla"),
         _bench_row("cnn", "dense", 1_379_135, conv="auto:xla")]))
    (tmp_path / "conv.json").write_text(json.dumps(_conv_rows()))
    res = _gpu_sh(tmp_path, PARTS="table")
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "table.md").read_text()
    assert text in res.stdout
    assert "| cnn | bfloat16 | 100 | 577,858 | 662,639 | 1,379,135 | 41.8 | 99.8 | 0.42 | 0.48 |" in text
    assert "table_rest.json: missing" in text
    conv = text.split("convolution formulations")[1]
    assert "| model | dtype | P | conv |" in conv and "| cnn | bfloat16 | 100 | nchw | 700,000 |" in conv
    assert '("NVIDIA H200", "cnn", "nchw"),' in conv
    assert "unknown part" not in res.stdout


def test_gpu_sh_default_parts_fit_one_command_and_shrink_for_a_dry_run(tmp_path):
    """The default parts' time limits add up to under one 10-minute command with a minute to spare, and
    PEERS/STEPS reach every bench part (the dry run on a CPU before a lease: docs/gpu.md)."""
    import re
    text = (BENCH / "gpu.sh").read_text()
    default = re.search(r'PARTS=\$\{PARTS:-([a-z_ ]+)\}', text).group(1).split()
    assert default == ["env", "table_cnn", "table_rest", "torch", "conv"]
    limit = {"env": int(re.search(r"part env (\d+) ", text).group(1))}
    for name, var, secs in re.findall(r'part (\w+) "\$\{(\w+):-(\d+)\}"', text):
        limit[name] = int(secs)
    assert sum(limit[p] for p in default) <= 540, limit
    bench_calls = re.findall(r'-m tallysim bench --full[^;]*?--json', text, re.S)
    assert len(bench_calls) == 4 and all('"$(peers ' in c and '--steps "$STEPS" --batch "$BATCH"' in c for c in bench_calls)
    assert "torch_ref.py --peers $tp --steps $STEPS --batch $BATCH" in text


def test_gpu_sh_torch_part_skips_cleanly_without_torch(tmp_path):
    """PyTorch is no tallysim dependency and may be absent on a lent machine: the part says so and leaves
    no empty JSON lines behind; where torch is installed it runs (tiny: PEERS=1 STEPS=1 BATCH=2)."""
    res = _gpu_sh(tmp_path, PARTS="torch", PEERS="1", STEPS="1", BATCH="2")
    assert res.returncode == 0, res.stderr
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "== torch: skipped (PyTorch is not installed" in res.stdout
        assert not list(tmp_path.glob("torch_*.jsonl")) and "Traceback" not in res.stdout + res.stderr
    else:
        assert {json.loads(line)["mode"] for line in (tmp_path / "torch_f32.jsonl").read_text().splitlines()} \
            == {"loop", "vmap"}
