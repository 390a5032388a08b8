"""Leftovers of 2026-12-06's reviews: two sweeps (or figures) into one directory at once (1); SIGTERM during
XLA's compile (2); a plugin that fails to load registers nothing (3); a plugin model's memory estimate (4)."""
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tallysim import clean, config, figures, outdir, sweep
from tallysim import run as runmod
from tallysim.cli import main

SMALL = ["data.name=synthetic", "data.train_size=1500", "data.test_size=200", "peers=3", "rounds=1",
         "probe.per_round=50", "probe.pool_size=200", "partition.kind=iid", "model.width=32"]
ROOT = Path(__file__).resolve().parents[1]


def _fake_run(cfg, out=None, overwrite=False, progress=True, built=None, **kw):
    """Stands in for run.run: one metrics row, nothing compiled."""
    outdir.claim(Path(out), overwrite)
    row = {"round": cfg.rounds, "bits_per_peer": 8e6, "acc_mean": 0.5, "acc_global": None, "acc_ensemble": 0.6,
           "wall_s": 0.1}
    (Path(out) / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    return {**row, "out": out}


def _one_at_a_time(monkeypatch, run):
    monkeypatch.setattr(runmod, "run", run)
    monkeypatch.setattr(runmod, "run_group", lambda *a, **k: pytest.fail("grouped: use --one-at-a-time"))


# ----------------------------------------------------------------------------- 1: one sweep per directory

def test_a_second_sweep_of_another_grid_is_refused_while_the_first_runs(tmp_path, monkeypatch):
    """Two sweeps of different grids into one directory: the index was the later grid's alone while both
    grids' runs lay beside it. Now the second is refused before it writes anything, and the first's
    index describes its own grid."""
    started, finish = threading.Event(), threading.Event()

    def slow(cfg, out=None, **kw):
        started.set()
        assert finish.wait(30)
        return _fake_run(cfg, out, **kw)

    _one_at_a_time(monkeypatch, slow)
    out = tmp_path / "sw"
    base = config.apply_overrides(config.Config(), SMALL)
    first = threading.Thread(target=sweep.run_sweep, args=(base, sweep.expand({}, ["seed=1,2"]), out),
                             kwargs=dict(progress=False, log=lambda _: None, grouped=False))
    first.start()
    try:
        assert started.wait(30)
        with pytest.raises(outdir.SweepBusy, match="another tallysim sweep"):
            sweep.run_sweep(base, sweep.expand({}, ["seed=7,8"]), out, progress=False, log=lambda _: None,
                            grouped=False)
    finally:
        finish.set()
        first.join(30)
    index = json.loads((out / "sweep.json").read_text())
    assert [r["name"] for r in index["runs"]] == ["seed=1", "seed=2"]
    assert all(r["status"] == "done" for r in index["runs"])
    assert not (out / "seed=7").exists() and not (out / "seed=8").exists()
    # the lock went with the first sweep: the edited grid runs after it, as before (its index: its grid)
    _one_at_a_time(monkeypatch, _fake_run)
    recs = sweep.run_sweep(base, sweep.expand({}, ["seed=7,8"]), out, progress=False, log=lambda _: None,
                           grouped=False)
    assert [r["status"] for r in recs] == ["done", "done"]
    assert [r["name"] for r in json.loads((out / "sweep.json").read_text())["runs"]] == ["seed=7", "seed=8"]


def _hold_sweep_lock(d: Path) -> subprocess.Popen:
    """Another process holding d's sweep lock (as a running `tallysim sweep` does) until its stdin closes."""
    code = ("import sys; from tallysim import outdir\n"
            f"with outdir.sweep_lock({str(d)!r}):\n    print('held', flush=True); sys.stdin.read()\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert p.stdout.readline().strip() == "held"
    return p


def test_the_command_line_sweep_is_refused_in_one_line_by_another_process(tmp_path, capsys, monkeypatch,
                                                                          no_compile):
    _one_at_a_time(monkeypatch, lambda *a, **k: pytest.fail("ran a run while another sweep writes"))
    out = tmp_path / "sw"
    other = _hold_sweep_lock(out)
    try:
        assert main(["sweep", *SMALL, "seed=1,2", "--one-at-a-time", "--quiet", "--out", str(out)]) == 2
    finally:
        other.stdin.close()
        other.wait(30)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(out) in err and "another tallysim sweep" in err
    assert "wait for it to finish" in err and "run this command again" in err and "another --out" in err
    assert sorted(p.name for p in out.iterdir()) == [outdir.LOCK]          # no index, no run directory
    # the other process gone, its lock went with it: the same command runs
    _one_at_a_time(monkeypatch, _fake_run)
    assert main(["sweep", *SMALL, "seed=1,2", "--one-at-a-time", "--quiet", "--out", str(out)]) == 0
    assert (out / "seed=2" / "done.json").is_file()


def test_a_figure_takes_every_groups_lock_before_its_first_group_runs(tmp_path, monkeypatch, no_compile):
    """A figure whose second group's directory another sweep (or figure) writes is refused before its
    first group runs: it used to run group one and then fail (or, before the sweep lock, overwrite the
    other's index)."""
    _one_at_a_time(monkeypatch, lambda *a, **k: pytest.fail("ran a group while another writes one"))
    spec = {"kind": "curves", "title": "two", "base": {"peers": 2, "rounds": 1, "data": {"name": "synthetic"}},
            "groups": {"tally": {"protocol": {"name": "tally"}}, "fedavg": {"protocol": {"name": "fedavg"}}}}
    path = tmp_path / "two.json"
    path.write_text(json.dumps(spec))
    other = _hold_sweep_lock(tmp_path / "res" / "two" / "fedavg")
    try:
        with pytest.raises(outdir.SweepBusy, match="another tallysim sweep"):
            figures.make_figure(str(path), results=str(tmp_path / "res"), out=str(tmp_path / "fig"),
                                progress=False, log=lambda m: None, grouped=False)
    finally:
        other.stdin.close()
        other.wait(30)
    assert [p.name for p in (tmp_path / "res" / "two" / "tally").iterdir()] == [outdir.LOCK]   # nothing run
    # and its own lock was given back: this process can take it again
    with outdir.sweep_lock(tmp_path / "res" / "two" / "tally"):
        pass


def test_clean_removes_a_sweeps_lock_but_not_a_sweep_being_written(tmp_path, monkeypatch):
    _one_at_a_time(monkeypatch, _fake_run)
    out = tmp_path / "res" / "sw"
    sweep.run_sweep(config.apply_overrides(config.Config(), SMALL), sweep.expand({}, ["seed=1"]), out,
                    progress=False, log=lambda _: None, grouped=False)
    assert (out / outdir.LOCK).is_file()
    other = _hold_sweep_lock(out)
    try:
        with pytest.raises(clean.Refused, match="sweep .*is writing it right now"):
            clean.check(str(tmp_path / "res"), cwd=tmp_path)
    finally:
        other.stdin.close()
        other.wait(30)
    p, ours = clean._approve(str(tmp_path / "res"), cwd=tmp_path)
    assert clean.remove(p, ours) == [] and not (tmp_path / "res").exists()



# ----------------------------------------------------------------------------- 2: SIGTERM during a compile

def test_an_interrupted_command_line_ends_without_the_interpreters_teardown(tmp_path, monkeypatch, capsys):
    """SIGTERM during XLA's compile is handled at once (jax checks signals inside the compile call), but
    XLA's compile threads go on, and the interpreter's teardown under them died of SIGSEGV (exit 139, not
    143: measured on the demo config, jax 0.10.2, in the run's and in a resume's compile). The command
    line now ends with os._exit(128 + signal) after its one line; cli.main([...]) from Python returns."""
    from tallysim import cli

    def stopped(args):
        raise cli.Terminated(15)

    class Ended(Exception):
        pass

    def fake_exit(code):
        raise Ended(code)

    monkeypatch.setattr(cli, "_with_progress", stopped)
    monkeypatch.setattr(cli.os, "_exit", fake_exit)
    argv = ["run", *SMALL, "--out", str(tmp_path / "r")]
    assert cli.main(argv) == 143                          # from Python: returned, the process goes on
    monkeypatch.setattr(sys, "argv", ["tallysim", *argv])
    with pytest.raises(Ended) as ended:
        cli.main()                                        # the command line: ended at once, with its status
    assert ended.value.args == (143,)
    assert "stopped by SIGTERM" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 3: a plugin loads whole or not at all

@pytest.mark.parametrize("second_protocol, models, clash", [
    ("lc15_two", "{'lenet': 'f'}", "model.name='lenet' is already taken"),       # a model name a built-in's
    ("fedavg", "{'lc15_net': 'f'}", "protocol.name='fedavg' is already taken"),  # the second protocol's name
])
def test_a_plugin_refused_at_load_registers_nothing(second_protocol, models, clash, tmp_path, monkeypatch,
                                                     registry_restored):
    """load_plugin registered a module's protocols, then found its model name (or a later protocol name)
    taken: the load failed, yet the first protocols stayed registered in the process."""
    from tallysim import protocols
    from tallysim.config import ConfigError
    module = f"lc15_plugin_{second_protocol}"       # one module per case: an import is cached
    (tmp_path / f"{module}.py").write_text(
        f"PROTOCOLS = {{'lc15_one': 'make', {second_protocol!r}: 'make'}}\nMODELS = {models}\n\n"
        "def make(ctx):\n    pass\n\n\ndef f(k):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=clash):
        protocols.load_plugin(module)
    assert "lc15_one" not in protocols.names() and "lc15_two" not in protocols.names()
    assert protocols.plugin_of("lc15_one") is None and "lc15_net" not in protocols.plugin_models()
    assert protocols.factory("fedavg").__module__ == "tallysim.protocols.fedavg"


# ----------------------------------------------------------------------------- 4: a plugin model's memory

def test_the_memory_estimate_counts_a_plugin_models_parameters_exactly(monkeypatch, registry_restored):
    """100,000 + 128 C parameters was the estimate of every plugin model (tinyconv: 101,280 for its 23,626
    on 28x28x1 examples of 10 classes): now its own count, from eval_shape of its init, as the run has it."""
    import jax.numpy as jnp

    from tallysim import protocols, sizing, validation
    from tallysim.sim.models import init_shapes, make_model, param_count
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    protocols.load_plugin("tinyconv")
    cfg = config.apply_overrides(config.Config(), [*SMALL[:-1], "model.name=tinyconv", "data.input_shape=28x28x1",
                                                   "data.num_classes=10", "peers=5", "protocol.name=fedavg",
                                                   "fedavg.aggregate=median"])
    exact = param_count(init_shapes(cfg.model, make_model(cfg.model, 10), jnp.zeros((1, 28, 28, 1)), 10)["params"])
    assert exact == 160 + 4_640 + 3_136 + 15_690          # the convolutions, LayerNorm, Dense (own-model.md)
    assert sizing.models_bytes(cfg) == (4 * 3 * exact * 5, 4 * 3 * exact * (5 + 1))
    parts = {what: b for what, b, _ in sizing.estimate_bytes(cfg)}
    assert parts["the robust parameter aggregation"] == 4 * 2 * exact * 5
    with pytest.raises(config.ConfigError, match=sizing.fmt(sum(parts.values()))):
        validation.check_memory(cfg, limit=1)              # the memory guard's refusal: the same total
