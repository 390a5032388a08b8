"""Issue 30, sections 4 and 5: sizes that used to hang, the typed API's wrong types, and config typos,
repeats and JSON strings, each refused in one line before anything is built or compiled."""
import dataclasses
import json
import subprocess
import sys

import jax
import pytest

from tallysim import cli, config, run, sizing  # noqa: F401 (run: imported before jit is patched)
from tallysim.config import Config, ConfigError


@pytest.fixture
def no_compile(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("compiled before rejecting bad input")
    monkeypatch.setattr(jax, "jit", boom)


# ----------------------------------------------------------------------------- sizes that hung

LIMITED = [(key, [f"{key}={hi + 1}"]) for key, (hi, _) in sizing.LIMITS.items()] + [
    ("seeds", ["seeds=100000"]), ("data.num_classes", [f"data.num_classes={10**6}"]),
    ("rounds", [f"rounds={2**31 - 1}", f"eval_every={2**31 - 1}"])]


@pytest.mark.parametrize("key,items", LIMITED, ids=[" ".join(i) for _, i in LIMITED])
def test_sizes_that_hang_are_refused_with_the_limit_and_why(key, items, tmp_path, capsys, no_compile):
    assert cli.main(["run", "data.name=synthetic", *items, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    hi, why = sizing.LIMITS[key]
    assert err.count("\n") == 0 and f"{key}=" in err and f"more than {hi:,}" in err and why in err, err
    assert not (tmp_path / "r").exists()


def test_every_limit_is_the_declared_bound():
    for key, (hi, _) in sizing.LIMITS.items():
        assert config.declared()[key].range[1] == hi, key
        config.validate(config.apply_overrides(Config(), ["data.name=synthetic", f"{key}={hi}"])
                        if key not in ("seeds", "data.num_classes") else Config())   # the limit itself is allowed


# ----------------------------------------------------------------------------- the typed API

SECTIONS = [f.name for f in dataclasses.fields(Config) if dataclasses.is_dataclass(f.default_factory
                                                                                     if callable(f.default_factory) else None)]


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("value", ["fedavg", 3, None, ["a"]], ids=["str", "int", "none", "list"])
def test_a_section_given_a_scalar_is_refused_at_construction(section, value):
    want = rf"Config\({section}=.*\): {section} is a section, not \w+; expected \w+Config\(\.\.\.\) or a dict"
    with pytest.raises(ConfigError, match=want):
        Config(**{section: value})
    with pytest.raises(ConfigError, match=want):
        dataclasses.replace(Config(), **{section: value})
    with pytest.raises(ConfigError, match=rf"'nope' is not a {section}\.\* field; allowed: "):
        Config(**{section: {"nope": 1}})


def test_a_section_given_as_a_dict_or_itself_still_works():
    cfg = Config(protocol={"name": "fedavg"}, optim=config.OptimConfig(lr=0.1))
    assert cfg.protocol.name == "fedavg" and cfg.optim.lr == 0.1
    assert dataclasses.replace(cfg, optim={"name": "adam"}).optim.name == "adam"


@pytest.mark.parametrize("seed", [-1, 2**31, True, 1.0, "0"])
def test_drive_refuses_a_seed_the_seed_field_would(seed, no_compile):
    import tallysim
    with pytest.raises(ConfigError, match=rf"drive\(seed={seed!r}\): expected an integer in 0\.\.2147483647"):
        tallysim.drive(Config(), seed=seed)
