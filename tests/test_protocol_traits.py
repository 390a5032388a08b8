"""Protocol traits live in each protocol's module (TRAITS) and the registry (tallysim/protocols/__init__):
config's derived defaults and validation read them there, without importing JAX, and a new protocol
is one file plus one registry line. Nothing here trains a model."""
import dataclasses
import importlib
import subprocess
import sys
import textwrap

import pytest

from tallysim import config, protocols
from tallysim.config import Config, ConfigError

# The derived defaults before traits moved into the modules (config.resolved()'s name tuples), with
# local_epochs=3: (optim.reset_each_round, init.shared, warmup_epochs).
BEFORE = {"local": (False, False, 0), "fedavg": (True, True, 0), "fedprox": (True, True, 0),
          "feddf": (True, True, 0), "softlabel": (False, False, 3), "tally": (False, False, 3),
          "bridge": (False, True, 3), "fedavgm": (True, True, 0), "fedadam": (True, True, 0),
          "fedyogi": (True, True, 0), "topk_ef": (True, True, 0), "randk": (True, True, 0),
          "fedpaq": (True, True, 0), "signsgd": (True, True, 0), "scaffold": (True, True, 0), "fednova": (True, True, 0),
          "cfd": (False, False, 3), "selective_fd": (False, False, 3)}


@pytest.mark.parametrize("name", list(protocols.REGISTRY))
def test_traits_read_from_source_equal_the_imported_module(name):
    module = importlib.import_module(f"tallysim.protocols.{protocols.REGISTRY[name].split(':')[0]}")
    assert protocols.traits(name) == module.TRAITS
    assert protocols.factory(name) is getattr(module, protocols.REGISTRY[name].split(":")[1])
    # its own config section, read from the source, declares what the imported class does
    for section, cls in module.TRAITS.sections.items():
        read, real = protocols.sections()[section], getattr(module, cls)
        assert [(f.name, f.default, dict(f.metadata)) for f in dataclasses.fields(read)] == \
            [(f.name, f.default, dict(f.metadata)) for f in dataclasses.fields(real)], section


@pytest.mark.parametrize("name", list(protocols.REGISTRY))
def test_derived_defaults_unchanged(name):
    cfg = config.validate(config.apply_overrides(Config(), [f"protocol.name={name}", "local_epochs=3"]))
    assert (cfg.optim.reset_each_round, cfg.init.shared, cfg.warmup_epochs) == BEFORE[name]
    assert cfg.derived == ("init.shared", "optim.reset_each_round", "warmup_epochs")
    explicit = config.validate(config.apply_overrides(Config(), [f"protocol.name={name}", "warmup_epochs=2"]))
    assert explicit.warmup_epochs == 2 and "warmup_epochs" not in explicit.derived


def test_trait_names_and_rules():
    assert config.PROTOCOLS == tuple(protocols.REGISTRY)
    assert config.FEDAVG_FAMILY == ("fedavg", "fedprox", "feddf", "fedavgm", "fedadam", "fedyogi", "topk_ef",
                                    "randk", "fedpaq", "signsgd", "scaffold", "fednova")
    assert config.DISTILL_PROTOCOLS == ("softlabel", "tally", "bridge", "cfd", "selective_fd")
    for name, why in (("fedavg", "starts every peer from the server model"), ("bridge", "deltas from one")):
        with pytest.raises(ConfigError, match=f"{name} needs a shared init .*{why}.*only for local/softlabel/tally"):
            config.validate(config.apply_overrides(Config(), [f"protocol.name={name}", "init.shared=false"]))
    with pytest.raises(ConfigError, match="straggler is not implemented for protocol.name=softlabel"):
        config.validate(config.apply_overrides(Config(), ["protocol.name=softlabel", "faults.kind=straggler",
                                                          "faults.fraction=0.5"]))
    with pytest.raises(ValueError, match="protocol.name='nope' is not known; allowed: local, fedavg"):
        protocols.traits("nope")


NEW_PROTOCOL = '''
from tallysim.protocols import Traits, local_only

TRAITS = Traits(distill=True, shared_init="a test says so", defaults={"init.shared": True,
                "optim.reset_each_round": True, "warmup_epochs": "batch_size"})


def make(ctx):
    return local_only.make(ctx)
'''


def test_a_new_protocol_is_one_file_and_one_registry_line(tmp_path):
    # The file sits in another directory on the package's path; the registry line is added before
    # config is imported. Validation and derived defaults follow its TRAITS, and no JAX is imported.
    (tmp_path / "echo.py").write_text(NEW_PROTOCOL)
    script = textwrap.dedent(f"""
        import sys
        import tallysim.protocols as P
        P.__path__.append({str(tmp_path)!r})
        P.REGISTRY["echo"] = "echo:make"
        from tallysim import config
        cfg = config.validate(config.apply_overrides(config.Config(), ["protocol.name=echo", "batch_size=7"]))
        assert (cfg.optim.reset_each_round, cfg.init.shared, cfg.warmup_epochs) == (True, True, 7), cfg
        assert "echo" in config.DISTILL_PROTOCOLS and "echo" not in config.FEDAVG_FAMILY
        try:
            config.validate(config.apply_overrides(config.Config(), ["protocol.name=echo", "init.shared=false"]))
            raise SystemExit("init.shared=false was accepted")
        except config.ConfigError as e:
            assert "a test says so" in str(e), e
        assert "jax" not in sys.modules, "validation imported JAX"
        assert P.factory("echo").__module__ == "tallysim.protocols.echo"
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_traits_must_be_literal(tmp_path, monkeypatch):
    (tmp_path / "computed.py").write_text("from tallysim.protocols import Traits\nX = True\n"
                                          "TRAITS = Traits(distill=X)\n")
    monkeypatch.setattr(protocols, "__path__", [*protocols.__path__, str(tmp_path)])
    monkeypatch.setitem(protocols.REGISTRY, "computed", "computed:make")
    with pytest.raises(TypeError, match="TRAITS = Traits\\(keyword=literal"):
        protocols.traits("computed")
