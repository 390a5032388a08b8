"""Leftovers (dec21a): a peer without local steps no longer pulls the round's mean loss down."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
from pathlib import Path
import pytest

import tallysim
from tallysim.config import ConfigError, ModelConfig
from tallysim.sim import local
from tallysim.sim.fed import FedData
from tallysim.sim.models import make_model
from conftest import tiny_no_warmup

KEY = jax.random.PRNGKey(5)


# ---------------------------------------------------------------- 1. peers with 0 local steps

def test_a_peer_without_steps_reports_the_mean_of_those_that_stepped():
    loss_sum = jnp.array([6.0, 0.0, 4.0, 0.0, 3.0])     # summed losses over each peer's steps
    steps = jnp.array([3, 0, 2, 0, 1])                   # peers 1 and 3 took none
    got = np.asarray(local.stepped_mean_fill(loss_sum, steps))
    np.testing.assert_allclose(got, [2.0, 7 / 3, 2.0, 7 / 3, 3.0], rtol=1e-6)
    assert np.mean(got) == np.float32(7 / 3)             # the mean over the 3 that stepped; was 7/5
    none = np.asarray(local.stepped_mean_fill(jnp.zeros(4), jnp.zeros(4, jnp.int32)))
    assert np.all(none == 0.0)                           # no stepping peer: 0, not NaN (the non-finite stop)
    every = jnp.array([1, 2, 5, 1, 1])
    assert np.array_equal(local.stepped_mean_fill(loss_sum, every), loss_sum / every)   # as before, bit for bit


def test_train_peers_fills_empty_and_capped_peers_with_the_stepping_mean():
    model = make_model(ModelConfig(name="mlp", width=8), 3)
    spec = local.LocalSpec(apply_fn=model.apply, tx=optax.sgd(0.1), batch_size=4, shard_max=8, groups=2)
    x = jax.random.normal(KEY, (40, 3, 3, 1))
    data = FedData(x, jnp.arange(40) % 3, None, None, jnp.arange(4), x[:4], jnp.arange(4) % 3)
    counts = jnp.array([8, 0, 5, 3], jnp.int32)          # peer 1: an empty shard
    shard = jnp.arange(32, dtype=jnp.int32).reshape(4, 8)
    params = jax.vmap(lambda k: model.init(k, x[:1]))(jax.random.split(KEY, 4))
    opt = jax.vmap(spec.tx.init)(params)
    keys = jax.random.split(jax.random.fold_in(KEY, 1), 4)
    cap = jnp.array([99, 99, 99, 0], jnp.int32)          # peer 3: faults.steps=0
    _, _, loss, steps = local.train_peers(spec, params, opt, keys, shard, counts, data, cap_A=cap)
    one = lambda p, o, k, s, c: local.train_peer(spec, p, o, k, s, c, data, None, None)[2]    # the reference
    own = np.asarray(jax.jit(jax.vmap(one))(*jax.tree.map(lambda a: a[jnp.array([0, 2])],
                                                          (params, opt, keys, shard, counts))))
    loss = np.asarray(loss)
    np.testing.assert_allclose(loss[[0, 2]], own, rtol=1e-5)
    np.testing.assert_allclose(loss[[1, 3]], np.mean(own), rtol=1e-5)
    np.testing.assert_allclose(loss.mean(), np.mean(own), rtol=1e-5)   # was half of it
    assert int(steps["steps_real"]) == 2 + 2


def test_round_train_loss_is_over_the_peers_that_stepped(monkeypatch):
    """A run's train_loss: 2 of 4 peers under_trained with faults.steps=0. The old rule (each peer's 0 in
    the mean) read it as k/A of the mean over the k that stepped; a round where no peer steps reads 0."""
    cfg = tiny_no_warmup("protocol.name=local", "rounds=1", "faults.kind=under_trained", "faults.fraction=0.5",
                         "faults.steps=0")
    _, (info,) = _drive(cfg)
    assert int(info["faulty"]) == 2
    new = float(info["train_loss"])
    monkeypatch.setattr(local, "stepped_mean_fill", lambda s, n: s / jnp.maximum(n, 1))   # the old rule
    _, (old,) = _drive(cfg)
    np.testing.assert_allclose(new * 2 / 4, float(old["train_loss"]), rtol=1e-5)
    monkeypatch.undo()
    _, (none,) = _drive(tiny_no_warmup("protocol.name=local", "rounds=1", "faults.kind=under_trained",
                                       "faults.fraction=1.0", "faults.steps=0"))
    assert float(none["train_loss"]) == 0.0 and int(none["steps_real"]) == 0


def _drive(cfg):
    d = tallysim.drive(cfg)
    return d.state, [d.step()[1] for _ in range(d.built.cfg.rounds)]


# ---------------------------------------------------------------- 2. population sizes round half up

def test_population_sizes_round_half_up_as_a_numpy_derivation():
    from tallysim.data import population as pop
    derive = lambda P, mean, sigma, floor, seed: np.maximum(np.floor(np.random.default_rng(
        [seed, pop.POPULATION_STREAM]).lognormal(np.log(mean) - sigma ** 2 / 2, sigma, P) + 0.5), floor)
    for mean, sigma, floor in [(30.0, 1.0, 1), (2.5, 1.0, 0), (7.3, 0.4, 5)]:
        got = pop.population(10 ** 6, 2000, mean, sigma, floor, True, 3).sizes
        assert np.array_equal(got, derive(2000, mean, sigma, floor, 3))
    # sigma 0, equal sizes: rint's half to even gave 2 at 2.5 and 4 at 3.5; half up gives 3 and 4
    assert set(pop.population(1000, 10, 2.5, 0.0, 0, False, 0).sizes) == {3}
    assert set(pop.population(1000, 10, 3.5, 0.0, 0, False, 0).sizes) == {4}
    assert set(pop.population(1000, 10, 3.0, 0.0, 0, False, 0).sizes) == {3}
    # above 0 the mean size is the asked mean up to the rounding (docs/population-data.md)
    big = pop.population(10 ** 6, 200_000, 2.5, 1.0, 0, True, 1).sizes
    assert abs(big.mean() - 2.5) < 0.03


# ---------------------------------------------------------------- 3. a folder find_runs cannot list

def _hand_run(d):
    """A finished run written by hand (marker, config, rows), as tests/test_hostile_dec18d.py's."""
    import json
    from tallysim import outdir
    d.mkdir(parents=True)
    outdir.mark(d)
    (d / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 1, "peers": 2}))
    (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_up": 8, "bits_down": 8, "bits_per_peer": 8.0,
                                                 "acc_mean": 0.5, "acc_peers": [0.5, 0.5], "acc_global": None}) + "\n")


def _locked(monkeypatch, *folders):
    """chmod 000 the folders; where that denies nothing (root), os.scandir raises the PermissionError the
    kernel would (os.walk lists through it), and Path.exists in them too."""
    import os
    from pathlib import Path
    for f in folders:
        os.chmod(f, 0)
    if os.geteuid() != 0:
        return
    real_scandir, real_exists = os.scandir, Path.exists
    locked = {os.path.realpath(f) for f in folders}

    def scandir(path="."):
        if os.path.realpath(path) in locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def exists(self, *a, **k):
        if os.path.realpath(self.parent) in locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_exists(self, *a, **k)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(Path, "exists", exists)


def test_find_runs_names_a_folder_it_cannot_list(tmp_path, monkeypatch, capsys):
    import os
    from tallysim import cli
    from tallysim.results import metrics
    _hand_run(tmp_path / "top" / "ok")
    _hand_run(tmp_path / "top" / "locked" / "hidden")
    try:
        _locked(monkeypatch, tmp_path / "top" / "locked")
        said = []
        found = metrics.find_runs([tmp_path / "top"], lambda d, label, e: said.append((label, str(e))))
        assert [label for _, label in found] == ["ok"]
        assert said == [("locked", "cannot list this folder (Permission denied): any runs under it are left out")]
        assert metrics.find_runs([tmp_path / "top"]) == found                   # no callback: as before
        assert cli.main(["table", str(tmp_path / "top")]) in (0, None)         # the one readable run, and a line
        err = capsys.readouterr().err
        assert f"table: skipping {tmp_path / 'top' / 'locked'}: cannot list this folder" in err
        assert "Traceback" not in err
        # the folder given is the one it cannot enter: one line, not an exists() traceback
        _locked(monkeypatch, tmp_path / "top")
        with pytest.raises(ConfigError, match=r"no run directories .* \(1 folder not listed, above\)"):
            metrics.read_runs([tmp_path / "top"], lambda d, label, e: said.append((label, str(e))))
        assert said[-1][0] == str(tmp_path / "top")
    finally:
        os.chmod(tmp_path / "top", 0o755)
        os.chmod(tmp_path / "top" / "locked", 0o755)


# ---------------------------------------------------------------- 4. bench --sweep and runs finished before

def test_bench_sweep_counts_runs_finished_before_apart(monkeypatch, tmp_path):
    """A run sweep.json records as done_before (a keep folder that held it) was counted as failed: the
    benchmark raised "2 runs failed". Now counted apart, left out of the timing, said in the table."""
    from tallysim import sweep
    from tallysim.bench import sweep as bench_sweep

    def fake(base, todo, out, **kw):
        import time
        time.sleep(0.02)                        # a time to divide by
        status = lambda i: "done_before" if i < 2 else ("skipped" if i == 2 else "done")   # "skipped": old files
        return [{"name": n, "status": status(i)} for i, (n, _) in enumerate(todo)]
    monkeypatch.setattr(sweep, "run_sweep", fake)
    logs = []
    r = bench_sweep.run(smoke=True, data="synthetic", log=logs.append, keep=str(tmp_path))
    assert r["runs"] == 8 and r["grouped_done_before"] == r["one_at_a_time_done_before"] == 3
    assert r["grouped_timed"] == r["one_at_a_time_timed"] == 5
    assert "finished before (left as they were, not timed): grouped 3, one at a time 3" in logs[-1]
    assert "(seconds from 5 runs)" in logs[-1] and "sampled" not in logs[-1]
    monkeypatch.setattr(sweep, "run_sweep", lambda base, todo, out, **kw: [{"name": n, "status": "done_before"}
                                                                           for n, _ in todo])
    with pytest.raises(RuntimeError, match="all 8 runs grouped were finished before .* none was timed"):
        bench_sweep.run(smoke=True, data="synthetic", log=logs.append, keep=str(tmp_path))
    monkeypatch.setattr(sweep, "run_sweep", lambda base, todo, out, **kw: [{"name": n, "status": "failed",
                                                                            "error": "boom"} for n, _ in todo])
    with pytest.raises(RuntimeError, match="8 runs failed"):                                 # still raised
        bench_sweep.run(smoke=True, data="synthetic", log=logs.append, keep=str(tmp_path))


# ---------------------------------------------------------------- 5. experiments/*.py: --help and no argument

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
LIBRARIES = ("__init__.py",)             # imported by the scripts, not run (niid_shape.py has a main since leftovers29)
# with no argument these run their default experiment (minutes): checked with --help only
DEFAULT_RUNS = ("deadpeer_reference.py", "eval_batch_changes.py", "memory_estimate.py", "niid_shape.py",
                "scale_probe_exchange.py",
                "side_by_side.py", "step_program.py", "time_compile.py", "time_shakespeare_round.py",
                "time_small_rounds.py", "wordclaim.py")


def _script(monkeypatch, capsys, name, *argv):
    """(exit code, stdout + stderr) of experiments/NAME run in this process (its imports are the tests')."""
    import os
    import runpy
    import sys
    monkeypatch.setattr(sys, "argv", [str(EXPERIMENTS / name), *argv])
    monkeypatch.syspath_prepend(str(EXPERIMENTS.parent))
    code = 0
    # Some scripts set JAX_* variables at import (time_compile.py turns the compile cache off and drops
    # JAX_COMPILATION_CACHE_DIR): put the environment back, or every later test in this worker runs
    # without the cache and test_startup's subprocess wrote none (CI40/41)
    environ = dict(os.environ)
    try:
        runpy.run_path(str(EXPERIMENTS / name), run_name="__main__")
    except SystemExit as e:
        code = e.code
    finally:
        os.environ.clear()
        os.environ.update(environ)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_every_experiment_script_answers_help_and_no_argument_with_usage(monkeypatch, capsys):
    """selective_fd_words.py with no argument was an IndexError; chunk_changes/probe_split_changes and
    sigterm_compile the same, textclaim a ValueError, time_shakespeare_round/time_small_rounds --help a
    ValueError (int("--help")), time_compile --help ran its whole default experiment."""
    scripts = sorted(p.name for p in EXPERIMENTS.glob("*.py") if p.name not in LIBRARIES)
    assert set(DEFAULT_RUNS) <= set(scripts) and "selective_fd_words.py" in scripts
    for name in scripts:
        code, out = _script(monkeypatch, capsys, name, "--help")
        assert code in (0, None) and ("usage:" in out or f"python experiments/{name}" in out), (name, out[-300:])
        assert "Traceback" not in out
    for name in sorted(set(scripts) - set(DEFAULT_RUNS)):
        code, out = _script(monkeypatch, capsys, name)
        assert code == 2 and "usage:" in out and "error: the following arguments are required" in out, (name, out)
    code, out = _script(monkeypatch, capsys, "selective_fd_words.py")
    assert "{default,trained}" in out                      # names what is allowed
