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
