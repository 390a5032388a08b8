"""More than one device (mesh.py): the same numbers on 1 and 8 devices, 1/8 of the peer state per
device, and a run across two processes.

The 8-device tests need 8 devices, which a CPU process only has when XLA_FLAGS asks for them before JAX
starts; so `test_eight_virtual_devices` runs this file's `multidevice` tests in a fresh pytest process
with XLA_FLAGS=--xla_force_host_platform_device_count=8, and the rest of the suite keeps one device.

Tolerance: bits exactly; accuracies and losses to 1e-4 relative / 2e-3 absolute: peer sharding
changes the order of the cross-device sums (vote counts are integers and exact, float means are not).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from tallysim import config, run
from tallysim.sim import mesh
from tallysim.config import ConfigError
from conftest import TINY, assert_rows_close, free_port, tiny, read_rows

EIGHT = jax.device_count() >= 8
multidevice = pytest.mark.skipif(not EIGHT, reason="needs 8 devices (run by test_eight_virtual_devices)")
COMPARE = ("acc_mean", "acc_min", "acc_max", "acc_ensemble", "acc_global", "train_loss", "vote_acc",
           "softavg_acc", "consensus_acc", "epsilon")
EXACT = ("round", "bits_up", "bits_down", "bits_per_peer", "steps_real", "faulty")


def _rows(path):
    rows = read_rows(path)
    for r in rows:
        r.pop("wall_s")
    return rows


def _same(a, b, what):
    assert_rows_close(a, b, what, EXACT, COMPARE)


def test_one_device_plan_and_errors():
    p = mesh.plan(1, lanes=3, peers=4)
    assert p.mesh is None and p.axis is None
    with pytest.raises(ConfigError, match=r"devices=99 but JAX sees \d+ device.*allowed: 1\.\."):
        mesh.plan(99, lanes=1, peers=4)


def test_eight_virtual_devices(tmp_path, request):
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu")
    # `make test` (-m "not slow") runs the fast multidevice cases (lanes, padded lanes, peers); make
    # test-all runs them all.
    marks = "multidevice and not slow" if "not slow" in (request.config.getoption("markexpr") or "") else "multidevice"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-m", marks, "-p", "no:cacheprovider",
                           str(Path(__file__)), "--basetemp", str(tmp_path / "bt")],
                          env=env, capture_output=True, text=True, timeout=1500, cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1], proc.stdout[-2000:]


# Every protocol, lanes (seeds) and peers sharded, partial participation; one round each (a
# second round adds nothing the first does not exercise, and 8 virtual devices share 2 cores here).
CASES = {
    "tally seeds (lanes)": ["protocol.name=tally", "seeds=8"],
    "fedavg partial participation, 3 seeds (lanes, padded)": ["protocol.name=fedavg", "seeds=3",
                                                              "participation=0.5"],
    "softlabel (peers)": ["protocol.name=softlabel", "peers=8"],
    "bridge (peers)": ["protocol.name=bridge", "peers=8", "bridge.density=0.1", "bridge.period=1"],
    "feddf partial (peers)": ["protocol.name=feddf", "peers=8", "feddf.steps=5", "participation=0.5"],
    "fedprox (peers)": ["protocol.name=fedprox", "peers=8"],
    "local (peers)": ["protocol.name=local", "peers=8"],
    # client_storage=auto: the server model alone (no peer-axis state), the cohort gathered from sharded shards
    "fedavg cohort storage (peers)": ["protocol.name=fedavg", "peers=8", "participation=0.5", "client_storage=auto"],
    # privacy.*: the noise comes from each lane's keys, so sharding lanes or peers draws the same noise.
    # No warm-up: a lane's warm-up trains on one device either way (bridge (peers) shards one over 8 in
    # make test, "tally seeds (lanes)" in make test-all), and compiling it was a third of this case
    "tally private, 8 seeds (lanes)": ["protocol.name=tally", "seeds=8", "privacy.noise=2", "warmup_epochs=0"],
    "softlabel private (peers)": ["protocol.name=softlabel", "peers=8", "privacy.noise=0.5"],
    # cohort_draw=sequential (sim/cohort.py) with a population's storage: each lane draws its cohort and
    # (faults.redraw) its cohort's faulty status from its own round key, so sharding peers or lanes draws
    # the same cohorts; size rule over the sharded shard offsets, dropout's coins for the cohort
    "fedavg sequential draw, redrawn faults (peers)": [
        "protocol.name=fedavg", "peers=16", "participation=0.25", "client_storage=auto", "cohort_draw=sequential",
        "participation_rule=size", "faults.kind=dropout", "faults.fraction=0.5", "faults.redraw=true",
        "faults.drop_prob=0.5"],
    "fedavg sequential draw, 3 seeds (lanes, padded)": ["protocol.name=fedavg", "seeds=3", "peers=6",
                                                         "participation=0.5", "cohort_draw=sequential"],
}


# "tally seeds (lanes)" is slow: "tally private, 8 seeds (lanes)" shards the same axis of the same
# protocol and checks the noise as well (the suite's slowest test was this subprocess, issue 30).
FAST = ("fedavg partial participation, 3 seeds (lanes, padded)", "bridge (peers)",
        "tally private, 8 seeds (lanes)", "fedavg cohort storage (peers)",
        "fedavg sequential draw, redrawn faults (peers)")   # its lanes case: 31 s here, slow


@pytest.mark.multidevice
@multidevice
@pytest.mark.parametrize("case", [c if c in FAST else pytest.param(c, marks=pytest.mark.slow) for c in CASES])
def test_same_numbers_on_one_and_eight_devices(case, tmp_path):
    items = [*CASES[case], "rounds=1"]
    run.run(tiny(*items, "devices=1"), str(tmp_path / "one"), progress=False)
    run.run(tiny(*items, "devices=8"), str(tmp_path / "eight"), progress=False)
    _same(_rows(tmp_path / "one"), _rows(tmp_path / "eight"), case)
    note = json.loads((tmp_path / "eight" / "config.json").read_text())["placement"]
    assert ("lanes" in note) == ("lanes" in case), note


@pytest.mark.multidevice
@multidevice
@pytest.mark.parametrize("axis, items", [("lane", ["seeds=8"]), ("peer", ["peers=8"])])
def test_peer_state_per_device_is_an_eighth(axis, items):
    # warmup_epochs=0: tally's init without its warm-up training, which changes no array's shape or
    # placement (out_shardings place the state) and compiled most of this test's time
    cfg = config.validate(tiny("protocol.name=tally", "warmup_epochs=0", *items))
    b = run.build(cfg)
    one = run.initial_state(b, mesh.plan(1, len(b.seeds), cfg.peers))
    eight_plan = mesh.plan(8, len(b.seeds), cfg.peers)
    assert eight_plan.axis == axis
    eight = run.initial_state(b, eight_plan)
    ratio = mesh.per_device_bytes(eight.params) / mesh.per_device_bytes(one.params)
    assert ratio == pytest.approx(1 / 8), ratio


def two_processes(argv_of, timeout: int, **env) -> tuple:
    """`python argv_of(pid)...` as the two CPU processes of one jax.distributed run (2 devices each, gloo
    collectives, a free coordinator port). Returns (procs, outs:
    (stdout, stderr) each); both killed afterwards, so a hung pair (the faults the tests guard) does not
    outlive its test."""
    port, procs = free_port(), []
    for pid in range(2):
        penv = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2",
                    JAX_PLATFORMS="cpu", TALLYSIM_DISTRIBUTED="1", TALLYSIM_COORDINATOR=f"127.0.0.1:{port}",
                    TALLYSIM_NUM_PROCESSES="2", TALLYSIM_PROCESS_ID=str(pid), **env)
        procs.append(subprocess.Popen([sys.executable, *argv_of(pid)], env=penv,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        return procs, [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            p.kill()


@pytest.mark.slow
def test_two_processes_give_the_single_process_numbers(tmp_path):
    """`tallysim run` under jax.distributed with two CPU processes of 2 devices each (gloo
    collectives): only process 0 writes, and its metrics equal a one-process run's."""
    items = [*TINY, "protocol.name=tally", "seeds=4"]
    procs, outs = two_processes(lambda pid: ["-m", "tallysim", "run", *items, "--quiet", "--out", str(tmp_path / f"dist{pid}")],
                                600)
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e[-3000:]
    assert (tmp_path / "dist0" / "metrics.jsonl").exists() and not (tmp_path / "dist1").exists()
    assert json.loads((tmp_path / "dist0" / "config.json").read_text())["placement"].startswith("lanes sharded over 4")
    run.run(tiny("protocol.name=tally", "seeds=4", "devices=1"), str(tmp_path / "single"), progress=False)
    _same(_rows(tmp_path / "single"), _rows(tmp_path / "dist0"), "two processes")


@pytest.mark.multidevice
@pytest.mark.slow
@multidevice
def test_bench_devices_table():
    from tallysim.bench import devices as bench_devices
    rows = bench_devices.measure([1, 8, 16], rounds=2, extra=["data.train_size=800", "data.test_size=100", "model.name=mlp",
                                                             "local_steps=1"], log=lambda _: None)
    assert [r["devices"] for r in rows] == [1, 8]                      # 16 > the 8 devices: skipped
    assert rows[1]["placement"].startswith("peers sharded over 8") and rows[1]["samples_per_s"] > 0
    assert "8" in bench_devices.table(rows)
