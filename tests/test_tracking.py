"""Experiment tracking (tallysim/tracking.py): `--tensorboard DIR` writes every metrics row as
TensorBoard scalars, the config as hparams and the final figure as an image; a sweep writes one
TensorBoard run per configuration. The event files are read back with TensorBoard's own reader."""
import json
import sys
import types
from pathlib import Path

import pytest

from tallysim import cli, config, tracking
from tallysim.config import ConfigError
# what these tests read is what a run logs, not the training: TINY without the warm-up epoch
from conftest import TINY_NO_WARMUP as TINY, tiny_no_warmup as tiny

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _events(logdir: Path):
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0,
                                                                         "tensors": 0})
    acc.Reload()
    return acc


def _hparams(acc) -> dict:
    from tensorboard.plugins.hparams import plugin_data_pb2
    content = acc.PluginTagToContent("hparams")
    data = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    return {k: v.string_value or v.number_value or v.bool_value
            for k, v in data.session_start_info.hparams.items()}


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_run_writes_every_metrics_column_the_config_and_the_figure(tmp_path, capsys):
    out, tb = tmp_path / "fedavg_run", tmp_path / "tb"
    code = cli.main(["run", *TINY, "protocol.name=fedavg", "rounds=3", "--out", str(out), "--quiet",
                     "--tensorboard", str(tb)])
    assert code == 0, capsys.readouterr().err
    rows = _rows(out)
    acc = _events(tb / tracking.run_name(out))           # one TensorBoard run, named after --out
    assert tracking.run_name(out).startswith("fedavg_run-")
    tags = set(acc.Tags()["scalars"])
    expected = tracking.scalars(rows[0]).keys() | tracking.scalars(rows[-1]).keys()
    assert {"acc_mean", "acc_global", "bits_per_peer", "train_loss", "wall_s"} <= expected
    assert expected <= tags, f"columns missing from TensorBoard: {sorted(expected - tags)}"
    for key in expected:                                 # every row's value at its round
        got = {e.step: e.value for e in acc.Scalars(key)}
        want = {r["round"]: r[key] for r in rows if r.get(key) is not None}
        assert got.keys() == want.keys(), key
        assert all(got[s] == pytest.approx(want[s], rel=1e-6) for s in want), key
    hp = _hparams(acc)
    assert hp["protocol.name"] == "fedavg" and hp["peers"] == 4 and hp["rounds"] == 3
    assert hp["data.input_shape"] == "28x28x1" and not any(k.startswith("log.") for k in hp)
    assert "accuracy_vs_bits" in acc.Tags()["images"]
    assert sorted(p.name for p in out.iterdir()) == sorted(                   # the run directory is unchanged
        [".tallysim-lock", ".tallysim-run", "config.json", "metrics.jsonl", "partition.json"])
    assert json.loads((out / "config.json").read_text())["log"]["tensorboard"] == str(tb)


def test_sweep_logs_each_configuration_as_its_own_run(tmp_path, capsys):
    out, tb = tmp_path / "sw", tmp_path / "tb"
    code = cli.main(["sweep", *TINY, "optim.lr=0.05,0.1", "--out", str(out), "--quiet", "--tensorboard", str(tb)])
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in tb.iterdir())
    assert names == sorted(tracking.run_name(out / n) for n in ["optim.lr=0.05", "optim.lr=0.1"])
    for run in ["optim.lr=0.05", "optim.lr=0.1"]:
        acc = _events(tb / tracking.run_name(out / run))
        assert _hparams(acc)["optim.lr"] == pytest.approx(float(run.split("=")[1]))
        last = _rows(out / run)[-1]
        assert acc.Scalars("acc_mean")[-1].value == pytest.approx(last["acc_mean"], rel=1e-6)


def test_a_rerun_replaces_the_earlier_events_and_log_is_not_part_of_the_experiment(tmp_path):
    a = config.validate(tiny("log.tensorboard=/somewhere"))
    b = config.validate(tiny())
    assert config.diff(config.to_dict(a), config.to_dict(b)) == []          # resume / sweep comparisons
    from tallysim.sim import lanes
    assert lanes.signature(a) == lanes.signature(b)                           # grouping in a sweep
    tb = config.with_values(b, {"log.tensorboard": str(tmp_path / "tb")})
    logdir = tmp_path / "tb" / tracking.run_name(tmp_path / "r")
    for _ in range(2):                                   # the second run replaces the first's events
        for w in tracking.writers(tb, tmp_path / "r", fresh=True):
            w.close()
    assert len(list(logdir.glob(tracking.EVENTS_GLOB))) == 1


def test_tensorboard_deletes_only_the_event_files_it_wrote_and_names_never_collide(tmp_path):
    """A user's own events file in the run's TensorBoard directory survives a rerun; two run
    directories ending in the same name (exp1/r, exp2/r) are two TensorBoard runs, and neither's
    rerun touches the other's events (before: both were DIR/r, and each deleted the other's)."""
    import time
    cfg = config.with_values(config.validate(tiny()), {"log.tensorboard": str(tmp_path / "tb")})
    one, two = tmp_path / "exp1" / "r", tmp_path / "exp2" / "r"
    assert tracking.run_name(one) != tracking.run_name(two)
    assert tracking.run_name(one) == tracking.run_name(tmp_path / "exp1" / ".." / "exp1" / "r")
    mine = tmp_path / "tb" / tracking.run_name(one) / "events.out.tfevents.1.users-own"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"mine")
    for out in (one, two, one):                          # one, the other, then the first again
        for w in tracking.writers(cfg, out, fresh=True):
            w.close()
        time.sleep(1.1)                                  # tensorboardX names its files by the second
    assert mine.read_bytes() == b"mine"
    assert len(list(mine.parent.glob(tracking.EVENTS_GLOB))) == 2                 # the user's and the rerun's
    assert len(list((tmp_path / "tb" / tracking.run_name(two)).glob(tracking.EVENTS_GLOB))) == 1
    for w in tracking.writers(cfg, one, fresh=False):    # a resume keeps the earlier curves
        w.close()
    assert len(list(mine.parent.glob(tracking.EVENTS_GLOB))) == 3


def test_bad_log_settings_are_one_line_errors(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"log.tensorboard=.*is a file; allowed: a directory"):
        config.validate(tiny(f"log.tensorboard={tmp_path / 'file' / 'tb'}"))
    with pytest.raises(ConfigError, match="log.tensorboard='' is empty"):
        config.validate(tiny("log.tensorboard="))
    from tallysim import validation                       # the check runs in validation, before a run
    real = validation.importlib.util.find_spec
    monkeypatch.setattr(validation.importlib.util, "find_spec", lambda m: None if m == "mlflow" else real(m))
    with pytest.raises(ConfigError, match=r"log.mlflow needs the mlflow package.*tallysim\[mlflow\]"):
        config.validate(tiny("log.mlflow=exp"))


class FakeWriter:
    def __init__(self):
        self.calls = []

    def start(self, name, hparams):
        self.calls.append(("start", name, hparams))

    def row(self, step, scalars):
        self.calls.append(("row", step, scalars))

    def image(self, tag, png):
        self.calls.append(("image", tag, Path(png).read_bytes()[:8]))

    def close(self):
        self.calls.append(("close",))


def test_the_writer_interface_with_a_fake_backend(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    # a two-seed run's rows as aggregate writes them (seeds a list, per_seed an object of lists: run_dir refuses
    # any other shape as a damaged row, and the closing figure reads these rows)
    rows = [{"round": 1, "acc_mean": 0.5, "acc_global": None, "bits_per_peer": 10, "seeds": [0, 1],
             "per_seed": {"acc_mean": [0.4, 0.6]}, "merged": True},
            {"round": 2, "acc_mean": 0.75, "acc_global": None, "bits_per_peer": 20, "seeds": [0, 1],
             "per_seed": {"acc_mean": [0.7, 0.8]}}]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(tiny())))
    w = FakeWriter()
    t = tracking.RunTracker(tiny(), run_dir, [w])
    for r in rows:
        t.row(r)
    t.close()
    kinds = [c[0] for c in w.calls]
    assert kinds == ["start", "row", "row", "image", "close"]
    assert w.calls[0][1] == tracking.run_name(run_dir) and w.calls[0][2]["peers"] == 4
    assert w.calls[1] == ("row", 1, {"acc_mean": 0.5, "bits_per_peer": 10.0})   # no nulls, lists, booleans
    assert w.calls[3][2] == b"\x89PNG\r\n\x1a\n"


def test_mlflow_writer_speaks_mlflow(monkeypatch, tmp_path):
    calls = []
    fake = types.SimpleNamespace(**{name: (lambda name: lambda *a, **k: calls.append((name, a, k)))(name)
                                    for name in ("set_experiment", "start_run", "log_params", "log_metrics",
                                                 "log_artifact", "end_run")})
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    w = tracking.MLflowWriter("exp")
    w.start("r", {"peers": 4})
    w.row(3, {"acc_mean": 0.5})
    w.close()
    assert [c[0] for c in calls] == ["set_experiment", "start_run", "log_params", "log_metrics", "end_run"]
    assert calls[3] == ("log_metrics", ({"acc_mean": 0.5},), {"step": 3})
