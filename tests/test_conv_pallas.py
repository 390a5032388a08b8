"""`model.conv=pallas` (sim/conv_pallas.py): the Pallas kernels compute what the im2col formulation computes,
values and both gradients, for LeNet's and the CNN's convolutions vmapped over peers (each its own kernel)
and over lanes, run in Pallas's interpreter on the CPU; they lower for a CUDA GPU without one; off a GPU
the choice is refused in one line; and a bench cell that raises is recorded as failed while the bench
goes on (benchmarks/gpu.sh, part conv)."""
import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim.config import ConfigError, ModelConfig
from tallysim.sim import conv, conv_pallas

DN = ("NHWC", "HWIO", "NHWC")
KEY = jax.random.PRNGKey(0)
PALLAS = partial(conv.pallas_conv, interpret=True)
# (input H, W, ch_in), kernel (kh, kw, ch_in, ch_out), padding: LeNet's two convs and the CNN's two
SHAPES = {"lenet1": ((28, 28, 1), (5, 5, 1, 6), "SAME"), "lenet2": ((14, 14, 6), (5, 5, 6, 16), "VALID"),
          "cnn1": ((28, 28, 1), (5, 5, 1, 32), "SAME"), "cnn2": ((14, 14, 32), (5, 5, 32, 64), "SAME")}
P, B = 2, 2


def _inputs(dtype, lead=(P,)):
    out = {}
    for i, (name, (xs, ws, _)) in enumerate(SHAPES.items()):
        k = jax.random.fold_in(KEY, i)
        x = jax.random.normal(k, lead + (B,) + xs)
        w = jax.random.normal(jax.random.fold_in(k, 1), lead + ws) / np.sqrt(np.prod(ws[:3]))
        out[name] = (x.astype(dtype), w.astype(dtype))
    return out


def _loss(fn, vmaps: int, names=tuple(SHAPES)):
    """Sum over the four convolutions of sum(sin(conv)) in float32, each vmapped `vmaps` times (peers,
    then lanes): a loss whose gradient reaches every output element with a different weight."""
    def one(name):
        f = lambda x, w: fn(x, w, (1, 1), SHAPES[name][2], dimension_numbers=DN)
        for _ in range(vmaps):
            f = jax.vmap(f)
        return f

    def loss(args):
        return sum(jnp.sum(jnp.sin(one(n)(*args[n]).astype(jnp.float32))) for n in names)
    return loss


def _compare(dtype, vmaps, lead, names=tuple(SHAPES)):
    """Loss, its gradient for every input and kernel, and the outputs: pallas against im2col, in one
    program each (the interpreter's programs take seconds to compile)."""
    args = {n: a for n, a in _inputs(dtype, lead).items() if n in names}
    got = jax.jit(jax.value_and_grad(_loss(PALLAS, vmaps, names)))(args)
    ref = jax.jit(jax.value_and_grad(_loss(conv.im2col_conv, vmaps, names)))(args)
    # bfloat16: both round their output to bfloat16 (8 bits of mantissa) after summing the same
    # products in a different order; float32 differs only by summation order.
    rtol, atol = (1e-5, 1e-5) if dtype == "float32" else (2e-2, 2e-2)
    np.testing.assert_allclose(float(got[0]), float(ref[0]), rtol=rtol)
    for name in names:
        for what, g, r in zip(("input", "kernel"), got[1][name], ref[1][name]):
            assert g.shape == r.shape and g.dtype == r.dtype, (name, what)
            g, r = np.asarray(g, np.float32), np.asarray(r, np.float32)
            scale = float(np.max(np.abs(r)))
            np.testing.assert_allclose(g / scale, r / scale, rtol=rtol, atol=atol, err_msg=f"{name} {what} grad")
    return args


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_pallas_equals_im2col_values_and_gradients_vmapped_over_peers(dtype):
    args = _compare(dtype, vmaps=1, lead=(P,))
    # the outputs themselves, per peer, for one of LeNet's and one of the CNN's
    for name in ("lenet2", "cnn2"):
        x, w = args[name]
        f = lambda fn: jax.vmap(lambda a, b: fn(a, b, (1, 1), SHAPES[name][2], dimension_numbers=DN))(x, w)
        got, ref = jax.jit(lambda: f(PALLAS))(), f(conv.im2col_conv)
        assert got.shape == ref.shape and got.dtype == ref.dtype == jnp.dtype(dtype)
        tol = 1e-5 if dtype == "float32" else 2e-2
        np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(ref, np.float32), rtol=tol, atol=tol)
        # each peer its own kernel: peer 1's output is not peer 0's
        assert not np.allclose(np.asarray(got[0], np.float32), np.asarray(got[1], np.float32))


def test_pallas_equals_im2col_vmapped_over_lanes_and_peers():
    """Two lanes of two peers (a grouped sweep's lanes around the peers' vmap): two grid axes added;
    one of LeNet's convolutions and one of the CNN's."""
    _compare("float32", vmaps=2, lead=(2, P), names=("lenet2", "cnn1"))


def test_peer_matmul_pads_and_slices_any_shape():
    """Rows, contraction and columns that are no tile's multiple (Triton needs power-of-two blocks):
    padded in, sliced out, gradients through the pad."""
    a = jax.random.normal(KEY, (77, 41))
    w = jax.random.normal(jax.random.fold_in(KEY, 1), (41, 100))
    f = lambda mm: lambda a, w: jnp.sum(jnp.sin(mm(a, w)))
    got = jax.jit(jax.value_and_grad(f(partial(conv_pallas.peer_matmul, interpret=True)), (0, 1)))(a, w)
    ref = jax.value_and_grad(f(jnp.matmul), (0, 1))(a, w)
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-4, atol=1e-4)


def test_pallas_lowers_for_a_cuda_gpu_without_one():
    """The training step's convolution lowered for CUDA on this CPU-only machine: the three kernels
    (forward, input gradient, weight gradient) go through Pallas's Triton lowering, whose power-of-two
    block checks run here; vmap over peers is the launch grid's third axis."""
    x = jnp.zeros((P, B, 14, 14, 6), jnp.bfloat16)
    w = jnp.zeros((P, 5, 5, 6, 16), jnp.bfloat16)
    f = lambda x, w: jnp.sum(jax.vmap(lambda a, b: conv.pallas_conv(a, b, (1, 1), "VALID", dimension_numbers=DN,
                                                                     interpret=False))(x, w).astype(jnp.float32))
    try:
        lowered = jax.jit(jax.grad(f, (0, 1))).trace(x, w).lower(lowering_platforms=("cuda",))
    except (ImportError, NotImplementedError) as e:      # a jaxlib built without Pallas's Triton lowering
        pytest.skip(f"this jaxlib cannot lower Pallas kernels for CUDA: {type(e).__name__}: {e}")
    text = lowered.as_text()
    assert text.count("custom_call @__gpu$xla.gpu.triton") == 3, "forward + input and weight gradients"
    assert "tallysim_peer_matmul" in text and f"grid_z = {P}" in text
    assert "stablehlo.convolution" not in text            # no grouped convolution left, forward or backward
    # lanes around peers: a 4-axis grid (2 tile axes + 2 vmaps), which the Triton lowering folds into 3
    lanes = lambda x, w: jnp.sum(jax.vmap(jax.vmap(
        lambda a, b: conv.pallas_conv(a, b, (1, 1), "SAME", dimension_numbers=DN)))(x, w).astype(jnp.float32))
    text = jax.jit(jax.grad(lanes, (0, 1))).trace(jnp.stack([x] * 3), jnp.stack([w] * 3)).lower(
        lowering_platforms=("cuda",)).as_text()
    assert text.count("custom_call @__gpu$xla.gpu.triton") == 3


def test_pallas_is_refused_off_a_gpu_in_one_line(monkeypatch):
    monkeypatch.delenv(conv_pallas.INTERPRET_ENV, raising=False)
    with pytest.raises(ConfigError, match=r"model.conv=pallas needs a GPU .* backend is cpu; allowed here: auto, "
                                          r"xla, im2col, nchw .* TALLYSIM_PALLAS_INTERPRET=1") as e:
        conv.conv_fn("pallas", "cnn")
    assert "\n" not in str(e.value)
    conv.check_usable("pallas", backend="gpu")                # a GPU: no objection
    conv.check_usable("im2col")                               # the others: never refused
    monkeypatch.setenv(conv_pallas.INTERPRET_ENV, "1")        # asked for by name: the interpreter
    assert conv.conv_fn("pallas", "cnn") is conv.pallas_conv


def test_auto_never_picks_pallas_without_a_row():
    assert all(choice != "pallas" for _, _, choice in conv.AUTO_CONV) and conv.AUTO_DEFAULT != "pallas"
    for kind in ("cpu", "NVIDIA H200", "NVIDIA H100 80GB HBM3", "TPU v5 lite"):
        for model in ("lenet", "cnn", "resnet8"):
            assert conv.auto_choice(model, kind) != "pallas"


def test_a_run_with_pallas_on_a_cpu_is_refused_before_the_data_loads(monkeypatch, tmp_path):
    from conftest import tiny
    from tallysim import build, data
    monkeypatch.delenv(conv_pallas.INTERPRET_ENV, raising=False)
    monkeypatch.setattr(data, "load", lambda *a, **k: pytest.fail("data loaded before the refusal"))
    with pytest.raises(ConfigError, match="model.conv=pallas needs a GPU"):
        build.build(tiny("model.name=lenet", "model.conv=pallas"))


def test_flops_do_not_depend_on_the_formulation(monkeypatch):
    """flops.py counts the network's FLOPs, not the formulation's (padding to tiles included)."""
    from tallysim.bench import flops
    monkeypatch.setenv(conv_pallas.INTERPRET_ENV, "1")
    for model in ("lenet", "cnn"):
        counts = {c: flops.count(ModelConfig(name=model, conv=c), 10, (28, 28, 1)) for c in ("xla", "im2col", "pallas")}
        assert counts["pallas"] == counts["xla"] == counts["im2col"], counts


def test_bench_records_a_cell_that_raises_as_failed_and_goes_on(monkeypatch, capsys):
    """On a CPU without the interpreter, pallas is refused inside its cell: that cell's tallysim row is
    `failed` with the reason, and the conv after it is still measured."""
    from tallysim.bench import throughput
    monkeypatch.delenv(conv_pallas.INTERPRET_ENV, raising=False)
    rows = throughput.measure("lenet", 2, steps=1, batch=2, impls=["tallysim"], repeats=1, conv="pallas,im2col")
    got = [(r["model"], r["conv"], r["samples_per_s"] is not None) for r in rows]
    assert got == [("lenet", "pallas", False), ("lenet", "im2col", True)]
    failed = rows[0]
    assert failed["failed"].startswith("ConfigError: model.conv=pallas needs a GPU") and failed["tflops"] is None
    text = throughput.table(rows)
    assert "failed" in text.splitlines()[2]
    json.dumps(rows)                                           # the --json file can hold it


def test_gpu_table_shows_a_failed_formulation_and_never_chooses_it(tmp_path):
    bench_dir = Path(__file__).resolve().parent.parent / "benchmarks"
    row = lambda model, conv, rate, impl="tallysim", **kw: dict(
        model=model, dtype="bfloat16", peers=100, impl=impl, conv=conv, samples_per_s=rate,
        device="gpu:NVIDIA H200", tflops=None if rate is None else rate * 7e-5, **kw)
    rows = [row("cnn", "xla", 600_000), row("cnn", "xla", 650_000, "vmap_ref"), row("cnn", "im2col", 500_000),
            row("cnn", "pallas", None, failed="XlaRuntimeError: INTERNAL: Triton compilation failed"),
            row("lenet", "xla", 2_000_000), row("lenet", "pallas", 2_500_000)]
    path = tmp_path / "conv.json"
    path.write_text(json.dumps(rows))
    run = lambda *a: subprocess.run([sys.executable, str(bench_dir / "gpu_table.py"), *a, str(path)],
                                    capture_output=True, text=True, timeout=60)
    res = run()
    assert res.returncode == 0, res.stderr
    assert "| cnn | bfloat16 | 100 | pallas | failed | 650,000 |" in res.stdout
    assert "failed: cnn bfloat16 P=100 conv=pallas tallysim: XlaRuntimeError: INTERNAL: Triton" in res.stdout
    res = run("--auto-conv")
    assert res.returncode == 0, res.stderr
    assert '("NVIDIA H200", "cnn", "xla"),' in res.stdout and "pallas failed" in res.stdout
    assert '("NVIDIA H200", "lenet", "pallas"),' in res.stdout        # where it ran and won, it is chosen


@pytest.mark.slow        # ~10-20 s on 2 shared cores: the whole LeNet compiled twice, its convs interpreted
def test_lenet_through_flax_equals_im2col_with_a_shared_input(monkeypatch):
    """The model path a run takes (make_model -> nn.Conv -> conv_fn): LeNet's logits and parameter
    gradients with pallas equal im2col's, vmapped over peers' parameters with one shared input batch
    (evaluation's case: only the kernel operand is batched)."""
    from tallysim.sim import peers
    from tallysim.sim.models import make_model
    monkeypatch.setenv(conv_pallas.INTERPRET_ENV, "1")
    nets = {c: make_model(ModelConfig(name="lenet", conv=c), 10) for c in ("pallas", "im2col")}
    params = peers.init_params(nets["im2col"], KEY, 2, (28, 28, 1), shared=False)
    x = jax.random.uniform(jax.random.fold_in(KEY, 3), (2, 28, 28, 1))
    y = jnp.array([3, 7])

    def grads(net):
        def loss(p):
            logits = net.apply(p, x)
            return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(2), y]), logits
        return jax.jit(jax.vmap(jax.grad(loss, has_aux=True)))(params)
    got, ref = grads(nets["pallas"]), grads(nets["im2col"])
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-4, atol=1e-5)


def test_bench_cli_exits_1_with_the_failed_cell_named(monkeypatch, capsys, tmp_path):
    from tallysim import cli
    monkeypatch.delenv(conv_pallas.INTERPRET_ENV, raising=False)
    out = tmp_path / "rows.json"
    assert cli.main(["bench", "--model", "lenet", "--peers", "1", "--steps", "1", "--batch", "2", "--dtype",
                     "float32", "--impl", "tallysim", "--conv", "pallas", "--repeats", "1", "--json", str(out)]) == 1
    cap = capsys.readouterr()
    assert "lenet float32 P=1 conv=pallas tallysim: FAILED (ConfigError: model.conv=pallas needs a GPU" in cap.err
    assert "Traceback" not in cap.err                          # a refusal is its one line
    assert "failed: lenet float32 P=1 conv=pallas tallysim: ConfigError" in cap.out
    assert json.loads(out.read_text())[0]["failed"].startswith("ConfigError: model.conv=pallas")
