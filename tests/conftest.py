import json
import os
from pathlib import Path

# XLA's persistent compilation cache, shared by every test and every subprocess a test starts (they
# inherit the environment): the suite compiles the same small programs many times (each run makes
# fresh jitted closures, so JAX's in-memory cache misses), and on a 2-core CPU compiling is most of
# a test's time. Measured: a second process running the same tiny tally run took 10.6 s instead of
# 40-76 s. Set before JAX is imported; an explicit JAX_COMPILATION_CACHE_DIR wins.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# The suite's programs are tiny, so XLA's optimisation passes cost far more than they save: with them
# off (jax_disable_most_optimizations) the same three tiny runs (tally, FedAvg, bridge) compiled and
# ran in 188 s instead of 362 s on the loaded 2-core CPU, with identical metrics. Every comparison in
# the suite is between runs compiled the same way, or against hand-derived numbers with a tolerance.
# TALLYSIM_TEST_OPTIMIZE=1 keeps XLA's optimisations (what users run), e.g. before a release.
if os.environ.get("TALLYSIM_TEST_OPTIMIZE") != "1":
    os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

# XLA:CPU's older (LLVM IR) fusion emitters compile these tiny programs in about half the CPU time of
# its MLIR fusion emitters, and compiling is most of the suite's time: one tiny tally run took 3.9 s of
# CPU instead of 7.6 s, bridge 4.0 s instead of 7.7 s (jaxlib 0.10.2, 2-core CPU, cold cache). Same
# reasoning as above: the suite's comparisons are between programs compiled the same way or against
# numbers derived by hand with a tolerance; a test of a bit-for-bit identity between two different
# programs (which the older emitters can round differently) takes the fusion_emitters fixture, which
# compiles its programs with the default emitters, as users do. Only for jaxlib 0.10 (where it was
# measured): XLA aborts the process on a flag it does not know. Subprocesses inherit it (tests that add
# their own XLA_FLAGS append theirs); an XLA_FLAGS that names the flag, or TALLYSIM_TEST_OPTIMIZE=1,
# keeps the user's choice.
LEGACY_EMITTERS = "--xla_cpu_use_fusion_emitters=false"
# XLA:CPU splits each program's LLVM module into parts that it generates machine code for on several
# threads (xla_cpu_parallel_codegen_split_count). The suite's programs are tiny and its two workers
# already keep both cores busy, so the split's copying and threads cost CPU and buy no wall time: in one
# part, three tiny runs (tally, FedAvg, bridge; cold cache, loaded 2-core CPU, jaxlib 0.10.2) took
# 8.90-9.72 s of CPU (mean 9.2 over 4) instead of 9.61-10.20 (mean 9.9 over 3), with identical
# metrics (the same code, generated in one piece); tests/test_progress.py, test_leftovers_dec13.py and
# test_lanes.py together 123.9 -> 110.7 s; tests/test_memory_estimate.py (XLA's passes on) unchanged
# (74.8 -> 76.7, noise). Same conditions and opt-out as the emitters above.
SINGLE_CODEGEN = "--xla_cpu_parallel_codegen_split_count=1"
TEST_ONLY_FLAGS = (LEGACY_EMITTERS, SINGLE_CODEGEN)     # what a subprocess that compiles as users do drops


def _jaxlib_minor() -> tuple:
    from importlib import metadata
    try:
        return tuple(int(p) for p in metadata.version("jaxlib").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return ()


def with_test_flags(flags: str) -> str:
    """XLA_FLAGS `flags` with each of TEST_ONLY_FLAGS appended unless `flags` names that flag already."""
    for flag in TEST_ONLY_FLAGS:
        if flag.split("=")[0].lstrip("-") not in flags:
            flags = f"{flags} {flag}".strip()
    return flags


if os.environ.get("TALLYSIM_TEST_OPTIMIZE") != "1" and _jaxlib_minor() == (0, 10):
    os.environ["XLA_FLAGS"] = with_test_flags(os.environ.get("XLA_FLAGS", ""))

import pytest

from tallysim import config

FMNIST = Path("/usr/share/datasets/fashion-mnist")

TINY = ["data.name=synthetic", "data.train_size=1600", "data.test_size=300", "data.difficulty=0.5",
        "peers=4", "rounds=2", "probe.per_round=64", "probe.pool_size=200", "batch_size=32",
        "partition.kind=iid", "model.width=32"]


SYNTHETIC_ONLY = ("data.num_classes", "data.input_shape", "data.train_size", "data.test_size", "data.difficulty")


def tiny_for(items) -> list:
    """TINY for a command line whose items name another dataset (`data.name=files`): without TINY's
    synthetic sizes, which a single run refuses with a dataset that does not read them."""
    other = any(i.startswith("data.name=") and i != "data.name=synthetic" for i in items)
    return [t for t in TINY if not (other and t.split("=", 1)[0] in SYNTHETIC_ONLY)]


def tiny(*items: str) -> config.Config:
    """A seconds-scale synthetic configuration; later items override earlier ones."""
    return config.apply_overrides(config.Config(), TINY + list(items))


# TINY without the warm-up epoch before the first exchange (the distillation protocols' default is
# warmup_epochs = local_epochs = 1): for a test file whose checks are not about training (what a run
# shows, writes or refuses), one traced training program fewer per distillation run, every shape
# the same. Measured on tests/test_progress.py (2-core CPU shared, load 4-5, 2026-12-06): 22.0 -> 18.0 s of
# CPU with a cold compile cache, 16.6 -> 13.7 with a warm one (the tracing the persistent cache cannot skip).
# FedAvg, local and the other protocols without a warm-up read 0 as their own value (no refusal).
# Warm-up itself stays checked by the files on TINY and by tests/trust_cases.py's runs.
TINY_NO_WARMUP = TINY + ["warmup_epochs=0"]


def tiny_no_warmup(*items: str) -> config.Config:
    """tiny() on TINY_NO_WARMUP."""
    return config.apply_overrides(config.Config(), TINY_NO_WARMUP + list(items))


def cli_line(capsys, argv) -> tuple:
    """Run the CLI in this process: (its exit status, returned or argparse's SystemExit, and the one stderr
    line it must print, `tallysim: ...`)."""
    from tallysim import cli
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tallysim: "), (code, err)
    return code, err[0]


def free_port() -> int:
    """A TCP port on 127.0.0.1 free now, for a jax.distributed coordinator (the two-process tests of
    test_devices, test_hostile and test_startup; each kept its own copy of this)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hand_run(d: Path, proto: str, vals: dict, *, key="acc_mean", cfg=None, row_extra=None) -> Path:
    """A finished run directory by hand (compare's tests): `vals` {seed: [value at round 1, round 2, ...]}
    of `key`; a diverged seed's NaN marked as aggregate marks it."""
    import numpy as np
    d.mkdir(parents=True)
    seeds = sorted(vals)
    rounds = len(vals[seeds[0]])
    c = {"protocol": {"name": proto}, "rounds": rounds, "seed": seeds[0], "seeds": len(seeds), "peers": 4,
         **(cfg or {})}
    (d / "config.json").write_text(json.dumps(c))
    rows = []
    for r in range(rounds):
        v = [vals[s][r] for s in seeds]
        row = {"round": r + 1, "bits_per_peer": 1024, "acc_mean": 0.5, "acc_global": None, key: float(np.mean(v)),
               **(row_extra or {})}
        if len(seeds) > 1:
            row.update({"seeds": seeds, "per_seed": {key: v}})
        if bad := sum(not np.isfinite(x) for x in v):
            row["seeds_nonfinite"] = {key: bad}
        rows.append(json.dumps(row))
    (d / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    return d


# the smallest two-group figure a figure-folder test writes (a pareto of fedavg and tally, one round of two peers)
TINY_FIGURE = {"kind": "pareto", "title": "tiny",
               "base": {"peers": 2, "rounds": 1, "eval_every": 1, "probe": {"per_round": 32, "pool_size": 100},
                        "partition": {"kind": "iid"},
                        "data": {"name": "synthetic", "train_size": 600, "test_size": 100}, "model": {"width": 8}},
               "groups": {"fedavg": {"protocol": {"name": "fedavg"}}, "tally": {"protocol": {"name": "tally"}}}}


@pytest.fixture
def progress_env_unset(monkeypatch):
    """Progress mode and interval from tallysim's defaults, not from the shell that runs the tests."""
    from tallysim import progress
    for k in (progress.MODE_ENV, progress.INTERVAL_ENV):
        monkeypatch.delenv(k, raising=False)


def wait_for(predicate, timeout: float = 10.0) -> bool:
    """Whether predicate() came true within `timeout` seconds, polled every 0.05 s (a progress timer's line
    from its own thread: test_userjourney_dec12 and dec26c each kept a copy of this)."""
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def one_line(capsys, argv) -> str:
    """The CLI refuses: exit 2 with exactly one stderr line `tallysim: error: ...`, returned."""
    code, line = cli_line(capsys, argv)
    assert code == 2 and line.startswith("tallysim: error: "), (code, line)
    return line


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Tests never write into the user's cache, even when $TALLYSIM_DATA names one: a test that prepares a
    # dataset (or the first real-data load, which caches Debian's Fashion-MNIST) writes into this
    # session's temporary cache instead. Real Fashion-MNIST is read from the Debian files.
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path_factory.getbasetemp() / "cache"))
    # Nor download: a missing dataset is an error here even where tfds and TensorFlow are installed.
    monkeypatch.setenv("TALLYSIM_NO_AUTO_PREPARE", "1")


@pytest.fixture(scope="session", autouse=True)
def _no_fsync():
    # A run writes its files through atomic.commit and metrics_file.sync, each with an fsync (4 a plain
    # run): durability against a power cut, which no test can observe, at 2-20 ms of waiting on the disk
    # each (measured 13-21 ms on the shared 2-core machine's disk). The calls still run, as a no-op, in
    # this process (subprocesses keep the real one); a test that makes fsync fail sets its own
    # (test_outdir's full disk).
    with pytest.MonkeyPatch.context() as m:
        m.setattr(os, "fsync", lambda fd: None)
        yield


@pytest.fixture
def fusion_emitters(monkeypatch):
    """XLA:CPU's default fusion emitters for what one test compiles (the suite compiles with the older
    ones, see the top): for bit-for-bit identities between two different programs, which hold with the
    default emitters but not always with the older ones (they round some fusions differently). Set as a
    per-compilation option, which is also part of the persistent cache's key."""
    if LEGACY_EMITTERS not in os.environ.get("XLA_FLAGS", ""):
        return                                   # already the default emitters (see the top)
    from jax._src import compiler
    compile_options = compiler.get_compile_options

    def with_default_emitters(*args, env_options_overrides=None, **kwargs):
        overrides = {**(env_options_overrides or {}), "xla_cpu_use_fusion_emitters": True}
        return compile_options(*args, env_options_overrides=overrides, **kwargs)
    monkeypatch.setattr(compiler, "get_compile_options", with_default_emitters)


@pytest.fixture
def xla_optimized(fusion_emitters, optimized_code):
    """XLA's optimisation passes on for one test (the suite runs without them, see the top), with the
    default fusion emitters: for bit-for-bit identities between two different programs, which hold for
    what users run."""


@pytest.fixture
def optimized_code():
    """XLA's optimisation passes on for one test, XLA:CPU's emitters left as the suite sets them: for a test
    whose compiled program takes longer to run than to compile, where the passes the suite turns off pay
    (see the top). Measured on a convolution: LLVM's optimisations off, a tiny CNN's three local steps ran
    in 13.2 s of CPU; with them on they compiled in 1.8 s and ran in 1.0 s. Only for a test whose check
    compares programs compiled alike (or holds to a tolerance): the numbers may differ in the last bits."""
    import jax
    before = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", False)
    yield
    jax.config.update("jax_disable_most_optimizations", before)


needs_fmnist = pytest.mark.skipif(not FMNIST.exists(),
                                  reason="real Fashion-MNIST absent: apt-get install dataset-fashion-mnist")


def fail_doomed_figure(tmp_path) -> None:
    """A figure of two groups whose runs all fail at once (an .npz that exists but cannot be read: an
    unprepared data.name is refused before any run starts), made with progress on: what the progress
    shows still counts its runs."""
    import json

    from tallysim import figures
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not an npz archive")
    spec = {"kind": "curves", "title": "doomed",
            "base": {"peers": 2, "rounds": 1, "data": {"name": "files", "path": str(broken)}},
            "groups": {"tally": {"protocol": {"name": "tally"}}, "fedavg": {"protocol": {"name": "fedavg"}}}}
    path = tmp_path / "doomed.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(figures.FigureError):
        figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(tmp_path / "fig"),
                            progress=True, log=lambda m: None)


def spy_probes(monkeypatch, module) -> list:
    """[x_M, target_M, weight_M] (numpy) of each round's probes as `module.local_round` receives them, in
    order: what the peers are trained on (test_text_distill, test_text_vote)."""
    import jax
    import numpy as np
    out, real = [], module.local_round

    def spy(ctx, lspec, state, data, keys, idx, probes=None, **kw):
        if probes is not None:
            jax.debug.callback(lambda *a: out.append([np.asarray(v) for v in a]), probes.x_M,
                               probes.target_M, probes.weight_M)
        return real(ctx, lspec, state, data, keys, idx, probes=probes, **kw)
    monkeypatch.setattr(module, "local_round", spy)
    return out


class Clock:
    """time.perf_counter for the progress modules (progress, progress_base, progress_lines, progress_rounds
    share one `time` module): the test moves it by setting `t`."""

    def __init__(self, monkeypatch, t: float = 0.0):
        from tallysim import progress
        self.t = t
        monkeypatch.setattr(progress.time, "perf_counter", self)

    def __call__(self) -> float:
        return self.t


def read_rows(run_dir) -> list:
    """The metrics.jsonl rows of a run directory."""
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def drive_rounds(cfg) -> tuple:
    """(the state after every round of cfg, each round's info), driven round by round (tallysim.drive):
    for a run compared bit for bit with itself under a monkeypatch (same_leaves)."""
    import tallysim
    d = tallysim.drive(cfg)
    infos = [d.step()[1] for _ in range(d.built.cfg.rounds)]
    return d.state, infos


def same_leaves(a, b) -> bool:
    """Two pytrees (states) equal bit for bit, leaf by leaf."""
    import jax
    import numpy as np
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def run_rows(cfg, out) -> list:
    """Run cfg into `out` and return its metrics rows without the wall-clock column."""
    from tallysim import run
    run.run(cfg, str(out), progress=False)
    rows = read_rows(out)
    for row in rows:
        row.pop("wall_s")
    return rows


def assert_rows_close(a: list, b: list, what: str, exact, close) -> None:
    """Metrics rows of two runs that must agree: `exact` keys equal, `close` keys to 1e-4 relative /
    2e-3 absolute (the tests using it say why numerics may differ in the last bits)."""
    import numpy as np
    assert len(a) == len(b), what
    for ra, rb in zip(a, b):
        for k in exact:
            assert rb.get(k) == ra.get(k), f"{what} round {ra['round']} {k}"
        for k in close:
            if ra.get(k) is None:
                assert rb.get(k) is None, f"{what} {k}"
                continue
            np.testing.assert_allclose(rb[k], ra[k], rtol=1e-4, atol=2e-3, err_msg=f"{what} round {ra['round']} {k}")


def argv(*items: str) -> list:
    """TINY with later items replacing a key's earlier value, for `python -m tallysim run` (the real
    command line refuses a key given twice; cli.main([...]) and tiny() let later items win)."""
    keys = {i.split("=", 1)[0] for i in items if "=" in i and not i.startswith("-")}
    return [t for t in TINY if t.split("=", 1)[0] not in keys] + list(items)


@pytest.fixture
def registry_restored():
    """(test_hostile_dec07, test_hostile_dec09) The protocols a test's plugin registers are gone after it (other tests list every protocol)."""
    from tallysim import protocols
    from tallysim.protocols import plugin_import
    live_dicts = (protocols._EXTERNAL, protocols._LOADED, plugin_import._IMPORTED, protocols._MODELS,
                  protocols._MODEL_PLUGIN,     # and the models a plugin adds (test_userjourney_dec14)
                  protocols._POSITION_BYTES)   # with what they declare for the memory estimate
    before = tuple(dict(d) for d in live_dicts)
    yield
    for live, saved in zip(live_dicts, before):
        live.clear()
        live.update(saved)
    protocols._generation[0] += 1


@pytest.fixture
def no_compile(monkeypatch):
    """Fails a test whose input reaches jax.jit: a refusal must come before anything compiles."""
    import jax

    # Importing the run's modules calls jax.jit at module level (sim/faults.py's decorator, optax's own), a
    # decoration, no compile: a test run alone whose input first imported them (tallysim.drive does) failed
    # "compiled before refusing" (textplugin_dec15's other_tasks, which passed after another test had
    # imported them). Imported here, with the real jit, first: under a second once per process.
    import tallysim.run  # noqa: F401

    def boom(*a, **k):
        raise AssertionError("compiled before refusing the input")
    monkeypatch.setattr(jax, "jit", boom)


@pytest.fixture
def no_measure(monkeypatch):
    """Fails a `tallysim bench` test that starts measuring: its flags must be refused first."""
    from tallysim.bench import devices, population, rounds, sweep as bench_sweep, throughput
    for mod, fn in ((population, "measure"), (bench_sweep, "run"), (throughput, "measure"), (rounds, "run"),
                    (devices, "measure")):
        monkeypatch.setattr(mod, fn, lambda *a, **k: pytest.fail("measured before refusing"))


RESUMABLE = ["protocol.name=local", "rounds=3", "eval_every=1"]


def crash_after_row(m, at: int, exc=KeyboardInterrupt) -> None:
    """Patch (on monkeypatch `m`) run._Recorder.rows to raise exc(at) right after round `at`'s row is written,
    before that round's checkpoint: the crash or Ctrl-C between the two that the resume tests start from."""
    from tallysim import run
    orig = run._Recorder.rows

    def rows(self, r, per_seed):
        orig(self, r, per_seed)
        if r == at:
            raise exc(r)
    m.setattr(run._Recorder, "rows", rows)


@pytest.fixture(scope="session")
def checkpointed(tmp_path_factory):
    """A run directory interrupted after writing round 2's row, with the checkpoint of round 1 (one row
    before it). Shared: tests copy it before damaging it."""
    from tallysim import checkpoint, run
    out = tmp_path_factory.mktemp("ckpt") / "run"
    with pytest.MonkeyPatch.context() as m:
        crash_after_row(m, 2)
        with pytest.raises(KeyboardInterrupt):
            run.run(tiny(*RESUMABLE), str(out), progress=False, checkpoint_every=1)
    assert (out / checkpoint.FILE).is_file()
    return out


# The order in which `make test`'s two workers take files (--dist loadfile: a file stays on one worker).
# xdist hands out files with the most tests first, so the few-test, compile-heavy files came last and
# one worker could still be compiling one of them while the other sat idle. Longest first instead:
# the files that cost the most (measured 2026-12-05 on the 2-core CPU, cold cache), then the rest in
# file-name order, then the files of many quick tests, which fill the gaps at the end. A file missing
# from these lists only runs where name order puts it.
HEAVY_FIRST = ["test_lane_reads.py", "test_protocol_rounds.py", "test_groups.py", "test_trust_resume.py",
               "test_trust_groups.py", "test_population.py",
               "test_figures.py", "test_progress.py", "test_devices.py", "test_byzantine.py", "test_faults.py",
               "test_privacy.py", "test_plugins.py", "test_extends.py", "test_topk_soft.py", "test_cohort_draw.py",
               "test_models.py", "test_exchange.py", "test_conv.py",
               # files since then with a test among the CI's 15 slowest (2026-12-06, fresh clone, idle), which
               # name order put in the middle or, for the text files, just before the quick files at the end
               "test_memory_estimate.py", "test_leftovers5.py", "test_text_lanes.py", "test_leftovers4.py",
               "test_leftovers_dec13.py", "test_wordclaim.py", "test_review_dec12.py", "test_local_lean.py"]
QUICK_LAST = ["test_hostile.py", "test_data.py", "test_config.py", "test_protocol_traits.py", "test_partition.py",
              "test_bad_inputs.py", "test_refusals.py", "test_config_fields.py", "test_fields_read.py"]


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):      # pytest-xdist: keep the order below
        config.option.loadscopereorder = False


# Python's cyclic collector in a test process: tracing JAX programs makes millions of short-lived objects,
# and every full collection walks every live one, JAX's and tallysim's modules included. After collection
# (every test module imported) those are frozen out of the collector's walks, and the young generation
# is collected every 10,000 allocations instead of 700. Measured on four tiny runs with a warm compile
# cache (2-core CPU, loaded): 7.0-7.2 s of CPU with Python's defaults, 6.1-6.7 s so. Nothing a test
# checks depends on when garbage is collected. TALLYSIM_TEST_GC=default keeps Python's settings.
GC_THRESHOLD = (10_000, 10, 10)


def pytest_collection_finish(session):
    import gc
    if os.environ.get("TALLYSIM_TEST_GC") != "default":
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLD)


def pytest_collection_modifyitems(config, items):
    first = {name: i for i, name in enumerate(HEAVY_FIRST)}
    last = {name: i for i, name in enumerate(QUICK_LAST)}

    def place(item):
        name = item.path.name
        if name in first:
            return (0, first[name], "")
        return (2, last[name], "") if name in last else (1, 0, name)
    items.sort(key=place)        # stable: a file's tests keep their order


def watch_wait_note(monkeypatch, capsys, cpu_per_period, what="rounds 1-400", on_cpu=True):
    """sim.wait_note.WaitNote._watch on a fake clock (tests/test_review_dec27a, test_leftovers_dec28e): over
    len(cpu_per_period) periods of 600 s, the process using those CPU seconds in each; returns stderr."""
    from tallysim.sim import wait_note
    cpu = [0.0]
    used = iter(cpu_per_period)

    class Done:
        def wait(self, period):
            try:
                cpu[0] += next(used)
                return False
            except StopIteration:
                return True
    monkeypatch.setattr(wait_note.time, "process_time", lambda: cpu[0])
    note = wait_note.WaitNote(600.0, what)
    note.done, note.on_cpu = Done(), on_cpu
    note._watch()
    return capsys.readouterr().err
