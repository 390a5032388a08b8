"""`tallysim sweep`: axes, names, validation before running, done.json markers, skip and resume."""
import json
from pathlib import Path

import pytest

from tallysim import config, outdir, sweep
from tallysim import run as runmod
from tallysim.cli import main
from tallysim.config import ConfigError

SMALL = ["data.name=synthetic", "data.train_size=1500", "data.test_size=200", "peers=3", "rounds=1",
         "probe.per_round=50", "probe.pool_size=200", "partition.kind=iid", "model.width=32"]


def small_cfg():
    return config.apply_overrides(config.Config(), SMALL)


# ----------------------------------------------------------------------------- expand

def test_expand_cross_product_and_names():
    runs = sweep.expand({}, ["protocol.name=tally,softlabel", "bridge.density=0.01,0.1", "peers=3"])
    assert [name for name, _ in runs] == [
        "protocol.name=tally__bridge.density=0.01", "protocol.name=tally__bridge.density=0.1",
        "protocol.name=softlabel__bridge.density=0.01", "protocol.name=softlabel__bridge.density=0.1"]
    # single-valued keys are plain overrides: in every run, never in the name
    assert runs[1][1] == ["protocol.name=tally", "bridge.density=0.1", "peers=3"]
    assert sweep.expand({}, ["peers=3"]) == [("base", ["peers=3"])]
    assert sweep.expand({}, []) == [("base", [])]
    # deterministic, a repeated value refused (it was one run, silently: test_leftovers_dec22m), '/' is
    # filesystem-safe
    assert runs == sweep.expand({}, ["protocol.name=tally,softlabel", "bridge.density=0.01,0.1", "peers=3"])
    with pytest.raises(ConfigError, match="lists 1 twice"):
        sweep.expand({}, ["seed=1,2,1"])
    names = [n for n, _ in sweep.expand({}, ["data.path=/a/b,c"])]
    assert names == ["data.path=-a-b", "data.path=c"] and all("/" not in n for n in names)
    # tuple-valued keys separate values with ';'
    runs = sweep.expand({}, ["data.input_shape=28x28x1;16x16x3"])
    assert [ov for _, ov in runs] == [["data.input_shape=28x28x1"], ["data.input_shape=16x16x3"]]


def test_expand_errors():
    with pytest.raises(ConfigError, match="unknown config key 'protocl.name'"):
        sweep.expand({}, ["protocl.name=tally,softlabel"])
    with pytest.raises(ConfigError, match="empty value"):
        sweep.expand({}, ["seed=1,,2"])
    with pytest.raises(ConfigError, match="malformed"):
        sweep.expand({}, ["seed"])
    with pytest.raises(ConfigError, match="unknown config key 'nope'"):
        sweep.expand({"nope": [1, 2]}, [])
    with pytest.raises(ConfigError, match="must be an object"):
        sweep.expand([1, 2], [])


def test_file_axes_merge_with_cli_axes():
    file_axes = {"protocol.name": ["tally", "fedavg"], "seed": [0, 1], "comm.param_bits": 16,
                 "probe.resample": [True, False], "data.input_shape": [28, 28, 1]}
    runs = sweep.expand(file_axes, ["seed=5,6,7", "peers=4"])
    assert len(runs) == 2 * 2 * 3
    name, overrides = runs[0]
    assert name == "protocol.name=tally__probe.resample=true__seed=5"
    assert overrides == ["protocol.name=tally", "comm.param_bits=16", "probe.resample=true",
                         "data.input_shape=28x28x1", "seed=5", "peers=4"]
    assert {ov[4] for _, ov in runs} == {"seed=5", "seed=6", "seed=7"}     # the CLI axis replaced [0, 1]
    # a CLI axis with one value pins a file axis (and drops it from the names)
    runs = sweep.expand(file_axes, ["protocol.name=tally"])
    assert [n for n, _ in runs][0] == "seed=0__probe.resample=true"
    assert all("protocol.name=tally" in ov for _, ov in runs)
    # the typed values apply cleanly
    cfgs = sweep.configs(config.Config(), runs)
    assert cfgs[0].comm.param_bits == 16 and cfgs[0].data.input_shape == (28, 28, 1)
    assert cfgs[1].probe.resample is False


def test_config_file_sweep_section_via_cli(tmp_path, capsys):
    cfg_file = tmp_path / "exp.json"
    cfg_file.write_text(json.dumps({"description": "x", "peers": 7, "sweep": {"seed": [0, 1]},
                                    "smoke": {"peers": 3}}))
    assert main(["sweep", "--config", str(cfg_file), "--smoke", "protocol.name=tally,local",
                 "--out", str(tmp_path / "sw"), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["[1/4] seed=0__protocol.name=tally: seed=0 protocol.name=tally",
                   "[2/4] seed=0__protocol.name=local: seed=0 protocol.name=local",
                   "[3/4] seed=1__protocol.name=tally: seed=1 protocol.name=tally",
                   "[4/4] seed=1__protocol.name=local: seed=1 protocol.name=local",
                   "4 runs; 2 compiled programs"]          # seeds share a program; protocols do not
    assert not (tmp_path / "sw").exists()


def test_invalid_value_fails_before_any_run(tmp_path, capsys):
    out = tmp_path / "sw"
    runs = sweep.expand({}, ["protocol.name=tally,nope"])
    with pytest.raises(ConfigError, match="sweep run protocol.name=nope: protocol.name='nope' is not known"):
        sweep.run_sweep(small_cfg(), runs, out, progress=False)
    assert not out.exists()
    assert main(["sweep", *SMALL, "protocol.name=tally,nope", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tallysim: error: sweep run protocol.name=nope")
    assert not out.exists()


# ----------------------------------------------------------------------------- running

def _mtimes(d):
    return {p.parent.name: p.stat().st_mtime_ns for p in d.glob("*/metrics.jsonl")}


def test_run_skip_and_resume(tmp_path):
    out = tmp_path / "sw"
    runs = sweep.expand({}, ["protocol.name=local,fedavg"])
    lines = []
    recs = sweep.run_sweep(small_cfg(), runs, out, progress=False, log=lines.append)
    names = ["protocol.name=local", "protocol.name=fedavg"]
    assert [r["status"] for r in recs] == ["done", "done"]
    assert lines[0] == "[1/2] protocol.name=local" and "local: 1 round, 3 peers on synthetic" in lines[1]
    for name in names:
        d = out / name
        assert {"config.json", "partition.json", "metrics.jsonl", "done.json"} <= {p.name for p in d.iterdir()}
        done = json.loads((d / "done.json").read_text())
        assert done["name"] == name and done["last"]["round"] == 1 and "acc_mean" in done["last"]
    assert json.loads((out / "protocol.name=local" / "config.json").read_text())["protocol"]["name"] == "local"
    index = json.loads((out / "sweep.json").read_text())
    assert [(r["name"], r["overrides"], r["status"]) for r in index["runs"]] == [
        ("protocol.name=local", ["protocol.name=local"], "done"),
        ("protocol.name=fedavg", ["protocol.name=fedavg"], "done")]

    # rerunning skips both (nothing rewritten)
    before = _mtimes(out)
    lines.clear()
    recs = sweep.run_sweep(small_cfg(), runs, out, progress=False, log=lines.append)
    assert [r["status"] for r in recs] == ["done_before", "done_before"]
    assert lines == ["[1/2] skip protocol.name=local (done)", "[2/2] skip protocol.name=fedavg (done)"]
    assert _mtimes(out) == before

    # an interrupted run (no done.json, partial directory) is rerun; the other is kept
    (out / "protocol.name=local" / "done.json").unlink()
    (out / "protocol.name=local" / "error.txt").write_text("from the interrupted run")
    recs = sweep.run_sweep(small_cfg(), runs, out, progress=False, log=lambda s: None)
    assert [r["status"] for r in recs] == ["done", "done_before"]
    after = _mtimes(out)
    assert after["protocol.name=fedavg"] == before["protocol.name=fedavg"]
    assert after["protocol.name=local"] != before["protocol.name=local"]
    assert (out / "protocol.name=local" / "done.json").exists()
    assert not (out / "protocol.name=local" / "error.txt").exists()


def _fake_run(cfg, out=None, overwrite=False, progress=True, built=None, checkpoint_every=None):
    """Stands in for run.run: protocol softlabel 'diverges', others write one metrics row."""
    outdir.claim(Path(out), overwrite)
    if cfg.protocol.name == "softlabel":
        (Path(out) / "error.txt").write_text("round 1: the training loss is nan\n")
        raise runmod.NonFiniteLoss("round 1: the training loss is nan; the run stopped")
    row = {"round": cfg.rounds, "bits_per_peer": 8e6, "acc_mean": 0.5, "acc_global": None,
           "acc_ensemble": 0.6, "wall_s": 0.1}
    (Path(out) / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    return {**row, "out": out}


def test_failed_run_is_recorded_and_sweep_continues(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runmod, "run", _fake_run)
    out = tmp_path / "sw"
    # the per-run lines are progress (--quiet leaves them out: tests/test_leftovers_dec13.py)
    argv = ["sweep", *SMALL, "protocol.name=local,softlabel,tally", "--out", str(out), "--progress", "lines"]
    assert main(argv) == 1
    cap = capsys.readouterr()
    assert "[3/3] protocol.name=tally" in cap.out and "FAILED: round 1" in cap.out
    assert "failed: protocol.name=softlabel" in cap.err
    assert (out / "protocol.name=softlabel" / "error.txt").exists()
    assert not (out / "protocol.name=softlabel" / "done.json").exists()
    assert (out / "protocol.name=tally" / "done.json").exists()
    index = json.loads((out / "sweep.json").read_text())
    assert [r["status"] for r in index["runs"]] == ["done", "failed", "done"]
    assert index["runs"][1]["error"].startswith("round 1")
    # a rerun retries only the failed run
    assert main(argv) == 1
    assert "skip protocol.name=local (done)" in capsys.readouterr().out
    assert [r["status"] for r in json.loads((out / "sweep.json").read_text())["runs"]] == \
        ["done_before", "failed", "done_before"]


def test_unexpected_exception_is_recorded(tmp_path, monkeypatch):
    def boom(cfg, out=None, **kw):
        if cfg.seed == 1:
            raise ValueError("a bug")
        return _fake_run(cfg, out, **kw)
    monkeypatch.setattr(runmod, "run", boom)
    recs = sweep.run_sweep(small_cfg(), sweep.expand({}, ["seed=1,2"]), tmp_path, progress=False,
                           log=lambda s: None, grouped=False)
    assert [r["status"] for r in recs] == ["failed", "done"]
    assert "ValueError: a bug" in (tmp_path / "seed=1" / "error.txt").read_text()


def test_interrupt_marks_index(tmp_path, monkeypatch):
    def interrupted(cfg, out=None, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(runmod, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(small_cfg(), sweep.expand({}, ["seed=1,2"]), tmp_path, progress=False,
                        log=lambda s: None, grouped=False)
    assert [r["status"] for r in json.loads((tmp_path / "sweep.json").read_text())["runs"]] == \
        ["interrupted", "pending"]


def test_interrupt_marks_a_whole_group(tmp_path, monkeypatch):
    def interrupted(cfgs, outs, progress=True, built=None, warn=True, checkpoint_every=None, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(runmod, "run_group", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(small_cfg(), sweep.expand({}, ["seed=1,2"]), tmp_path, progress=False,
                        log=lambda s: None)
    assert [r["status"] for r in json.loads((tmp_path / "sweep.json").read_text())["runs"]] == \
        ["interrupted", "interrupted"]


@pytest.mark.parametrize("grouped", [True, False], ids=["grouped", "one_at_a_time"])
def test_a_diverged_run_is_flagged_in_the_index(grouped, tmp_path):
    """sweep.json marks a run whose loss went non-finite `"diverged": true` (bench --sweep reads the
    flag); a run that finished has no such key. Both paths: one program for the group, and alone."""
    base = config.apply_overrides(small_cfg(), ["protocol.name=local", "rounds=2"])
    runs = sweep.expand({}, ["optim.lr=0.05,1e30"])
    recs = sweep.run_sweep(base, runs, tmp_path / "sw", progress=False, log=lambda s: None, grouped=grouped)
    index = {r["name"]: r for r in json.loads((tmp_path / "sw" / "sweep.json").read_text())["runs"]}
    assert [r["status"] for r in recs] == ["done", "failed"]
    assert index["optim.lr=1e30"]["diverged"] is True and "training loss" in index["optim.lr=1e30"]["error"]
    assert "diverged" not in index["optim.lr=0.05"]
