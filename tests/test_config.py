"""Config parsing, JSON round-trip, and every bad-input case: one line, exit code 2, nothing compiled."""
import json

import jax
import pytest

from tallysim import cli, config, run  # noqa: F401  (imported before jit is patched)
from tallysim.config import Config, ConfigError
from conftest import TINY, tiny_for


def test_overrides_types_and_roundtrip():
    cfg = config.apply_overrides(Config(), ["peers=7", "partition.alpha=0.3", "probe.resample=false",
                                            "data.input_shape=32x32x3", "local_steps=none"])
    assert (cfg.peers, cfg.partition.alpha, cfg.probe.resample) == (7, 0.3, False)
    assert cfg.data.input_shape == (32, 32, 3) and cfg.local_steps is None
    again = config.from_dict(json.loads(json.dumps(config.to_dict(cfg))))
    assert again == cfg


def test_resolved_defaults_depend_on_protocol():
    fedavg = config.validate(config.apply_overrides(Config(), ["protocol.name=fedavg"]))
    tally = config.validate(config.apply_overrides(Config(), ["protocol.name=tally", "local_epochs=3"]))
    assert fedavg.optim.reset_each_round is True and fedavg.init.shared is True and fedavg.warmup_epochs == 0
    assert tally.optim.reset_each_round is False and tally.init.shared is False and tally.warmup_epochs == 3


def test_config_file_smoke_section(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"peers": 30, "data": {"name": "synthetic"}, "smoke": {"peers": 3},
                             "sweep": {"seed": [0, 1]}}))
    assert config.load_file(str(f), sweep_base=True).peers == 30         # the base of its sweep, as `sweep` reads it
    assert config.load_file(str(f), smoke=True, sweep_base=True).peers == 3


BAD = [
    (["data.name=not_a_dataset"], "not_a_dataset"),
    (["model.name=vgg"], "allowed: mlp, lenet, cnn, resnet8"),
    (["protocol.name=fedsgd"], "allowed: local, fedavg"),
    (["partition.kind=shards"], "allowed: iid, dirichlet"),
    (["partition.kind=dirichlet", "partition.alpha=0"], "partition.alpha=0.0 must be > 0"),
    (["partition.kind=dirichlet", "partition.alpha=-1"], "must be > 0"),
    (["partition.kind=label_quantity", "partition.k=11"], "partition.k=11 exceeds the 10 classes"),
    (["partition.scheme=even"], "partition.scheme='even' is not known; allowed: niid_bench, balanced"),
    (["partition.cap=maybe"], "partition.cap='maybe': expected true/false"),
    (["partition.kind=dirichlet_mix", "partition.alpha=0"], "partition.alpha=0.0 must be > 0"),
    (["peers=5000"], "peers=5000 needs at least"),
    (["probe.per_round=500"], "probe.per_round=500 is larger than the probe pool (200"),
    (["data.name=files", "data.path=/nonexistent/dir"], "/nonexistent/dir"),
    (["peers"], "malformed override 'peers'"),
    (["=3"], "malformed override"),
    (["peer=3"], "unknown config key 'peer'"),
    (["alpha=0.1"], "did you mean partition.alpha"),
    (["peers=many"], "expected an integer"),
    (["comm.soft_bits=4"], "allowed: 32, 16, 8"),
    (["participation=0"], "participation=0.0 must be in (0, 1]"),
]


@pytest.mark.parametrize("items,expected", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_input_one_line_exit_2_before_compiling(items, expected, tmp_path, capsys, monkeypatch):
    def no_compile(*a, **k):
        raise AssertionError("compiled before rejecting bad input")
    monkeypatch.setattr(jax, "jit", no_compile)
    code = cli.main(["run", *tiny_for(items), *items, "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("tallysim: error:"), err
    assert expected in err, err
    assert not (tmp_path / "out" / "metrics.jsonl").exists()


def test_missing_config_file(capsys, tmp_path):
    assert cli.main(["run", "--config", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_field_keys_is_read_once_per_plugin_generation():
    """Every key=value override asks field_keys; typing.get_type_hints over every section took about 24 ms a
    call, so it is cached, and a registered plugin (a new generation) is seen."""
    from tallysim import protocols, schema
    first = schema.field_keys()
    assert schema.field_keys() is first
    protocols._generation[0] += 1          # what registering a plugin does; a later call only reads again
    assert schema.field_keys() is not first and schema.field_keys() == first
