"""`tallysim bench`: tiny measurements return rows with the documented keys, the subset flags select
the grid, `--json` prints a JSON list, and the in-package plain-JAX yardstick trains (CPU, seconds)."""
import json
import types

import jax
import jax.numpy as jnp
import pytest

from tallysim import cli
from tallysim.bench import ref as bench_ref, throughput as bench
from tallysim.config import ConfigError

KEYS = {"model", "peers", "dtype", "impl", "samples_per_s", "device"}


def test_measure_tiny_rows_have_the_keys():
    rows = bench.measure("mlp", [2], steps=2, batch=8, dtype="float32", loop_max=2, repeats=1)
    assert [r["impl"] for r in rows] == ["tallysim", "loop", "vmap_ref", "dense"]   # torch_ref: not in the package
    for r in rows:
        assert KEYS <= set(r)
        assert r["peers"] == 2 and r["model"] == "mlp" and r["dtype"] == "float32"
        assert r["device"] == bench.device_name() and r["sec"] > 0 and r["compile_s"] >= 0
        assert r["samples_per_s"] == pytest.approx(2 * 2 * 8 / r["sec"])
        # analytic TFLOP/s: the MLP's 879,200 training FLOPs per example (tests/test_flops.py)
        assert r["flops_per_example"] == 879_200
        assert r["tflops"] == pytest.approx(r["samples_per_s"] * 879_200 / 1e12)
        assert r["of_dense"] == pytest.approx(r["samples_per_s"] / rows[-1]["samples_per_s"])
    assert rows[-1]["of_dense"] == 1.0
    json.dumps(rows)   # rows go to --json and to the figure: plain JSON types only
    text = bench.table(rows)
    assert "tallysim/loop" in text and "tallysim/vmap_ref" in text
    head, _, line = text.splitlines()[:3]
    cells = dict(zip([c.strip() for c in head.split("|")], [c.strip() for c in line.split("|")]))
    assert cells["dense"] == f"{rows[-1]['samples_per_s']:,.0f}"
    assert cells["tallysim/dense"] == f"{rows[0]['of_dense']:.2f}x"
    assert cells["tallysim TFLOP/s"] == f"{rows[0]['tflops']:.3g}"


def test_dense_bound_trains_one_model_on_p_times_the_batch():
    """The dense row's program: one set of weights (no peer axis), batches of P x batch, `steps` steps."""
    module = bench_ref.MLP()
    comp, (params, opt, xs, ys), _ = bench_ref.setup_dense(module, peers=3, steps=2, batch=4, shape=(28, 28, 1))
    assert params["params"]["Dense_0"]["kernel"].shape == (784, 200)     # not (3, 784, 200)
    assert xs.shape == (2, 12, 28, 28, 1) and ys.shape == (2, 12)
    p2, _, losses = comp(params, opt, xs, ys)
    assert losses.shape == (2,) and bool(jnp.isfinite(losses).all())
    assert not jnp.allclose(p2["params"]["Dense_0"]["kernel"], params["params"]["Dense_0"]["kernel"])


@pytest.mark.slow
def test_subsets_loop_max_and_bad_input():
    rows = bench.measure("mlp,lenet", "3", steps=1, batch=4, dtype=["float32", "bfloat16"], loop_max=2,
                         impls=("tallysim", "loop"), max_peers={"lenet": 2}, repeats=1)
    # loop skipped above loop_max, lenet skipped above its cap: one tallysim row per dtype for mlp
    assert [(r["model"], r["dtype"], r["impl"]) for r in rows] == [
        ("mlp", "float32", "tallysim"), ("mlp", "bfloat16", "tallysim")]
    line = bench.table(rows).splitlines()[2]
    assert line.split("|")[4].strip() == "-"             # the loop column says "-"
    rows = bench.measure("lenet", [2], steps=1, batch=4, impls=("tallysim", "loop"), loop_max=2, repeats=1,
                         shape=(12, 12, 1))
    assert [r["conv"] for r in rows][1] == "xla" and rows[0]["conv"].startswith("auto")
    for bad in (dict(model="mlp", peers=[0]), dict(model="nope", peers=[1]), dict(model="mlp", peers=[1], dtype="f16"),
                dict(model="mlp", peers=[1], impls=("x",))):
        with pytest.raises(ConfigError):
            bench.measure(**{"steps": 1, "batch": 4, "loop_max": 2, **bad})
    with pytest.raises(ConfigError):
        bench._parse_ints("10,x", "--peers")


def test_cli_json_stdout_and_file(tmp_path, capsys):
    args = ["bench", "--peers", "2,3", "--steps", "1", "--batch", "4", "--model", "mlp", "--dtype", "float32",
            "--loop-max", "2", "--repeats", "1", "--impl", "tallysim,loop"]
    assert cli.main(args + ["--json"]) == 0
    cap = capsys.readouterr()
    rows = json.loads(cap.out)                           # stdout is exactly the JSON list
    assert isinstance(rows, list) and all(KEYS <= set(r) for r in rows)
    assert [(r["peers"], r["impl"]) for r in rows] == [(2, "tallysim"), (2, "loop"), (3, "tallysim")]
    assert "tallysim/loop" in cap.err and "cpu" in cap.err     # the table and the device go to stderr
    out = tmp_path / "rows.json"
    assert cli.main(args[:2] + ["2"] + args[3:-1] + ["tallysim", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "tallysim/vmap_ref" in text and "conv=xla" in text and "model.conv=auto" in text
    assert [(r["peers"], r["impl"]) for r in json.loads(out.read_text())] == [(2, "tallysim")]


def test_cpu_default_grid_and_full():
    ns = lambda **kw: types.SimpleNamespace(**{"model": None, "peers": None, "dtype": None, "steps": None,
                                               "full": False, **kw})
    if jax.default_backend() != "cpu":
        pytest.skip("the CPU default applies on a CPU only")
    opts = bench.resolve_args(ns())
    assert opts["model"] == bench.CPU["model"] and opts["max_peers"] == bench.CPU_MAX_PEERS and opts["notes"]
    opts = bench.resolve_args(ns(full=True))
    assert opts["model"] == bench.FULL["model"] and opts["max_peers"] is None and not opts["notes"]
    opts = bench.resolve_args(ns(model="cnn", peers="1000", dtype="bfloat16", steps=3))
    assert (opts["model"], opts["peers"], opts["steps"], opts["max_peers"]) == ("cnn", "1000", 3, None)


# the CNN case (about 30 s on 2 cores) is in `make test-all`; the MLP case trains the same yardstick code
@pytest.mark.parametrize("module", [bench_ref.MLP(), pytest.param(bench_ref.CNN(), marks=pytest.mark.slow)],
                         ids=["mlp", "cnn"])
def test_vmap_ref_yardstick_trains(module):
    """The plain-JAX yardstick: 2 models, vmapped, learn a fixed batch (loss falls), and setup() runs."""
    shape = (28, 28, 1) if isinstance(module, bench_ref.MLP) else (16, 16, 3)   # small: fast on a CPU
    train, tx = bench_ref.make_train(module.apply)
    key = jax.random.PRNGKey(0)
    params = bench_ref.init_peers(module, jax.random.split(key, 2), shape)
    opt = jax.vmap(tx.init)(params)
    x = jax.random.uniform(key, (2, 1, 8) + shape, minval=-1.0, maxval=1.0)   # tallysim's input range
    y = jax.random.randint(jax.random.fold_in(key, 1), (2, 1, 8), 0, 10)
    steps = 20
    xs, ys = jnp.repeat(x, steps, axis=1), jnp.repeat(y, steps, axis=1)
    _, _, loss_PxT = jax.jit(jax.vmap(train))(params, opt, xs, ys)
    assert loss_PxT.shape == (2, steps) and bool(jnp.all(jnp.isfinite(loss_PxT)))
    assert bool(jnp.all(loss_PxT[:, -1] < 0.8 * loss_PxT[:, 0]))   # each model learns its batch
    comp, args, tc = bench_ref.setup(module, 2, 2, 4, shape)
    p, o, losses = comp(*args)
    assert losses.shape == (2, 2) and tc > 0


def test_round_bench_tiny_protocols_against_local():
    """`bench --round`: each protocol's round time beside local training's, on the same peers and data."""
    from tallysim.bench import rounds as bench_round
    rows = bench_round.run(model="mlp", peers=2, steps=1, batch=8, dtype="float32", probes=16, rounds=1,
                           protocols=("local", "fedavg"), log=lambda _: None, repeats=1)
    assert [r["protocol"] for r in rows] == ["local", "fedavg"]
    assert rows[0]["vs_local"] == 1.0
    assert rows[1]["vs_local"] == pytest.approx(rows[1]["round_s"] / rows[0]["round_s"], rel=1e-2)
    for r in rows:
        assert r["steps_per_round"] == 2          # P x local_steps, both protocols
        assert r["samples_per_s"] == pytest.approx(2 * 8 / r["round_s"])
    json.dumps(rows)
    assert "fedavg" in bench_round.table(rows) and "vs local" in bench_round.table(rows)
    assert rows[0]["device"] == "cpu" and "on cpu: mlp" in bench_round.table(rows)    # not `cpu: cpu`


def test_sweep_bench_table_reports_diverged_runs():
    from tallysim.bench import sweep as bench_sweep
    r = {"device": "gpu: x", "runs": 108, "smoke": False, "data": "fashion_mnist", "programs_grouped": 1,
         "grouped_s": 25.1, "grouped_runs_per_hour": 15472, "programs_one_at_a_time": 108,
         "one_at_a_time_s": 1058.2, "one_at_a_time_runs_per_hour": 367, "one_at_a_time_timed": 6,
         "ratio": 42.11, "grouped_diverged": 22, "one_at_a_time_diverged": 2}
    text = bench_sweep.table(r)
    assert "42.11x" in text and "grouped 22, one at a time 2" in text
    assert "diverged" not in bench_sweep.table({**r, "grouped_diverged": 0, "one_at_a_time_diverged": 0})


def test_conv_choice_reaches_the_tallysim_column():
    """`bench --conv im2col|xla` times the tallysim column with that convolution (the GPU comparison)."""
    rows = bench.measure("lenet", [1], steps=1, batch=4, dtype="float32", impls=["tallysim"], repeats=1,
                         conv="xla")
    assert [(r["impl"], r["conv"]) for r in rows] == [("tallysim", "xla")]
    assert "model.conv=xla" in bench.header(rows, 1, 4)


def test_round_bench_defaults_follow_the_backend():
    from tallysim.bench import rounds as bench_round
    none = types.SimpleNamespace(model=None, peers=None, steps=None, dtype=None, protocols=None)
    assert bench_round.resolve(none, "gpu")["model"] == "cnn" and bench_round.resolve(none, "gpu")["peers"] == 100
    cpu = bench_round.resolve(none, "cpu")
    assert (cpu["model"], cpu["peers"], cpu["dtype"]) == ("mlp", 10, "float32")
    given = types.SimpleNamespace(model="lenet", peers="7,9", steps=3, dtype="bfloat16", protocols="local,tally")
    assert bench_round.resolve(given, "cpu") == dict(model="lenet", peers=7, steps=3, dtype="bfloat16",
                                                     protocols=("local", "tally"))


def test_several_convs_give_a_row_each_and_a_conv_column():
    """`bench --conv xla,nchw`: the tallysim column once per conv, vmap_ref (always conv=xla) once; the
    MLP (no convolution) once; an unknown conv is refused with what is allowed."""
    rows = bench.measure("lenet,mlp", [1], steps=1, batch=4, dtype="float32", impls=["tallysim", "vmap_ref"],
                         repeats=1, conv="xla,nchw")
    assert [(r["model"], r["impl"], r["conv"]) for r in rows] == [
        ("lenet", "tallysim", "xla"), ("lenet", "vmap_ref", "xla"), ("lenet", "tallysim", "nchw"),
        ("mlp", "tallysim", None), ("mlp", "vmap_ref", None)]
    text = bench.table(rows)
    head, _, *lines = text.splitlines()
    assert "conv" in head.split(" | ")[3]
    assert [line.split(" | ")[3].strip() for line in lines] == ["xla", "nchw", "-"]
    with pytest.raises(ConfigError, match="unknown conv 'winograd'; allowed: auto, xla, im2col, nchw"):
        bench.measure("lenet", [1], steps=1, batch=4, impls=["tallysim"], conv="xla,winograd")
