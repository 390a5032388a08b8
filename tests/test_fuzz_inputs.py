"""Fuzz (seeded, fast): random JSON values in every config field, random bytes as --config and as cache
.npz files. Every outcome is either accepted or a ConfigError (exit 2, one line "tallysim: error: ...");
never another exception type. Only validation and file reading run here: nothing compiles, no data
beyond a few bytes is loaded.
"""
import json
import random
import string

import jax
import numpy as np
import pytest

from tallysim import cli, config, run  # noqa: F401  (imported before jit is patched)
from tallysim.config import ConfigError, DataConfig
from tallysim.data import load

KEYS = sorted(config.field_keys())


def rand_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(12 if depth < 2 else 9)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, 1, -1, 2, 3, 7, 10, 32, 2**31, 2**31 - 1, 10**12, -(10**20), 10**30])
    if kind == 3:
        return rng.randint(-5, 5000)
    if kind == 4:
        return rng.choice([0.0, -0.0, 0.5, 1.0, 1.5, -1e-9, 1e300, -1e300, float("nan"), float("inf"),
                           float("-inf"), 2.5, 1e-320])
    if kind == 5:
        return rng.uniform(-10, 10)
    if kind == 6:
        return rng.choice(["", "nan", "inf", "none", "null", "true", "28x28x1", "0x3", "-1", "1e9", "tally",
                           "fedavg", "mlp", "synthetic", "files", "x" * 300, "\x00", "iid", "../..", "0.1"])
    if kind == 7:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(8)))
    if kind == 8:
        return rng.choice([[], [28, 28, 1], [0], [1, 2, 3, 4, 5], [True, 2], [1.5, 2]])
    if kind == 9:
        return [rand_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["peers", "name", "lr", "x"]): rand_json(rng, depth + 1) for _ in range(rng.randrange(3))}


def declared_value(rng: random.Random, key: str):
    """A random value that the field's declaration (config.py) allows on its own; other fields' rules
    may still refuse it (e.g. faults.kind=under_trained needs faults.examples)."""
    spec = config.declared()[key]
    if spec.choices:
        return rng.choice(spec.choices)
    if spec.type is bool:
        return rng.random() < 0.5
    if spec.type is int and spec.range:
        return rng.randint(spec.range[0], spec.range[0] + 20)
    if spec.type is float:
        lo, hi, _, _ = spec.range
        return rng.uniform(lo, min(hi, lo + 1)) or min(hi, lo + 0.5)
    return spec.default


def nest(flat: dict) -> dict:
    out: dict = {}
    for key, v in flat.items():
        *heads, last = key.split(".")
        d = out
        for h in heads:
            d = d.setdefault(h, {})
        d[last] = v
    return out


def test_random_json_values_in_every_field():
    rng = random.Random(7)
    outcomes = {"ok": 0, "error": 0}
    cases = [{key: rand_json(rng)} for key in KEYS for _ in range(3)]          # every field, 3 times
    cases += [{k: rand_json(rng) for k in rng.sample(KEYS, rng.randint(2, 5))} for _ in range(300)]
    cases += [{key: declared_value(rng, key)} for key in KEYS]     # in its declared range or choices
    for flat in cases:
        try:
            cfg = config.validate(config.from_dict(nest(flat)))
        except ConfigError as e:
            assert "\n" not in str(e) and str(e), (flat, e)
            outcomes["error"] += 1
            continue
        except Exception as e:       # noqa: BLE001 - the assertion this test exists for
            pytest.fail(f"{flat!r} raised {type(e).__name__}: {e}")
        outcomes["ok"] += 1
        again = config.from_dict(json.loads(json.dumps(config.to_dict(cfg))))
        assert config.validate(again) == cfg, flat                          # accepted values round-trip
    assert outcomes["ok"] > 20 and outcomes["error"] > 200, outcomes


def test_random_top_level_json_documents():
    rng = random.Random(11)
    for _ in range(200):
        doc = rand_json(rng)
        if isinstance(doc, dict) and rng.random() < 0.7:
            doc.update({rng.choice(KEYS).split(".")[0]: rand_json(rng)})
        try:
            config.validate(config.from_dict(doc))
        except ConfigError:
            pass


def _bytes_cases(rng: random.Random, good: bytes):
    yield b""
    for _ in range(40):
        yield rng.randbytes(rng.randrange(1, 200))
    for _ in range(40):
        raw = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(raw))
            raw[i] = rng.randrange(256)
        yield bytes(raw[: rng.randrange(1, len(raw) + 1)] if rng.random() < 0.3 else raw)


def test_random_bytes_as_config_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("compiled"))

    class Reached(Exception):
        pass

    def reached(*a, **k):
        raise Reached
    monkeypatch.setattr(run, "build", reached)          # a file that validates goes no further
    rng = random.Random(3)
    good = json.dumps({"peers": 4, "data": {"name": "synthetic", "input_shape": [8, 8, 1]},
                       "optim": {"lr": 0.1}, "smoke": {"rounds": 1}}).encode()
    f = tmp_path / "c.json"
    n = 0
    for raw in _bytes_cases(rng, good):
        f.write_bytes(raw)
        try:
            code = cli.main(["run", "--config", str(f), "--smoke", "--out", str(tmp_path / "o"), "--quiet"])
        except Reached:
            continue
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith("tallysim: error: "), (raw, err)
        n += 1
    assert n > 60


def test_random_bytes_as_cache_npz(tmp_path, monkeypatch):
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path))
    f = tmp_path / "mnist.npz"
    np.savez_compressed(f, x_train=np.zeros((6, 4, 4), np.uint8), y_train=np.arange(6) % 2,
                        x_test=np.zeros((2, 4, 4), np.uint8), y_test=np.arange(2) % 2)
    good = f.read_bytes()
    rng = random.Random(5)
    errors = 0
    for raw in _bytes_cases(rng, good):
        f.write_bytes(raw)
        try:
            load(DataConfig(name="mnist"), 0)          # a harmless flip (e.g. a timestamp) may still load
        except ConfigError as e:
            assert str(f) in str(e) and "\n" not in str(e), e
            errors += 1
    assert errors > 60
