"""A federated-learning researcher's first day with their own data (userjourney3, 2026-12-06): a 20-class
`.npz` of their own, tally, softlabel and FedAvg at matched bits as a figure of groups, the table and the
Pareto plot read by hand. Each test names what the user met before its fix. One small compile (a
run of 1 round with the user's own model); the rest is host-side."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tallysim import cli
from tallysim.results import pareto
from conftest import tiny_for

CLASSES = 20


@pytest.fixture(scope="module")
def npz20(tmp_path_factory):
    """A user's own 20-class dataset of 8x8 images (no channel axis), as numpy arrays in an .npz."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("own") / "own20.npz"
    y_tr, y_te = np.arange(1600) % CLASSES, np.arange(300) % CLASSES
    protos = rng.normal(size=(CLASSES, 8, 8)).astype(np.float32)
    np.savez(path, x_train=protos[y_tr] + 0.5 * rng.normal(size=(1600, 8, 8)).astype(np.float32),
             y_train=y_tr, x_test=protos[y_te] + 0.5 * rng.normal(size=(300, 8, 8)).astype(np.float32), y_test=y_te)
    return path


PLUGIN = '''
import flax.linen as nn


class Small(nn.Module):                  # a user's own model: LayerNorm, no mutable state
    num_classes: int

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(16)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(nn.LayerNorm()(x))


class WithBatchNorm(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, x):
        x = nn.BatchNorm(use_running_average=True)(x.reshape(x.shape[0], -1))
        return nn.Dense(self.num_classes)(x)


class OneLogit(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(x.reshape(x.shape[0], -1))


def small(num_classes):
    return Small(num_classes)


def batchnorm(num_classes):
    return WithBatchNorm(num_classes)


def one_logit(num_classes):
    return OneLogit(num_classes)


def not_a_module(num_classes):
    return "mlp"


MODELS = {"uj3_small": "small", "uj3_bn": "batchnorm", "uj3_one": "one_logit", "uj3_str": "not_a_module"}
'''


@pytest.fixture
def own_models(tmp_path, monkeypatch, registry_restored):
    (tmp_path / "uj3_models.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "uj3_models"


def test_own_flax_model_and_data_from_the_cli(npz20, own_models, tmp_path, capsys):
    """A researcher's own flax model could not be used at all: model.name took the six built-ins only and
    no page said how to bring one. A plugin's MODELS = {"name": "factory"} now adds it (--plugin on the
    command line, tallysim.load_plugin in Python). And config.json of a run on a 20-class .npz says
    `data.num_classes: 10` (synthetic's unread default): nothing in the run directory said C = 20 (which
    sets tally's bits per probe) or how many parameters FedAvg's message carried; partition.json now does."""
    items = ["data.name=files", f"data.path={npz20}", "protocol.name=fedavg", "rounds=1", "model.name=uj3_small"]
    out = tmp_path / "r"
    argv = ["run", "--plugin", own_models, *tiny_for(items), *items, "--out", str(out), "--quiet"]
    assert cli.main([a for a in argv if a != "model.width=32"]) == 0
    capsys.readouterr()
    part = json.loads((out / "partition.json").read_text())
    assert part["classes"] == CLASSES and part["example_shape"] == [8, 8, 1]   # as the models see it
    assert part["model_params"] == 64 * 16 + 16 + 2 * 16 + 16 * CLASSES + CLASSES
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    cfg = json.loads((out / "config.json").read_text())
    # the recorded count is the one the ledger charged: one float32 model per peer each way
    assert row["bits_up"] == part["model_params"] * 32 * cfg["peers"]
    assert cfg["plugins"] == [own_models] and cfg["model"]["name"] == "uj3_small"   # --resume finds it again
    assert cfg["data"]["num_classes"] == 10          # still synthetic's unread default: the docs say so


@pytest.mark.parametrize("items, expected", [
    (["model.name=uj3_bn"], r"keeps state besides its parameters \(batch_stats"),
    (["model.name=uj3_one"], r"returns \(1, 1\) for 1 example\(s\); allowed: logits of shape \[B, 20\]"),
    (["model.name=uj3_str"], "returned str; allowed: a flax.linen Module"),
    (["model.name=uj3_small", "model.dtype=bfloat16"], "its factory takes no dtype argument"),
    (["model.name=uj3_small", "model.width=64"], "model.width=64 is not read by model.name=uj3_small"),
    (["model.groups=a:2:mlp;b:2:uj3_bn"], r"keeps state besides its parameters \(batch_stats"),   # a group's
])
def test_own_model_mistakes_are_one_line_before_compiling(npz20, own_models, no_compile, items, expected):
    import tallysim
    from tallysim.config import ConfigError
    assert tallysim.load_plugin(own_models) == ["uj3_small", "uj3_bn", "uj3_one", "uj3_str"]
    cfg = tallysim.config.apply_overrides(tallysim.Config(), [*tiny_for(["data.name=files"]), "data.name=files",
                                                              f"data.path={npz20}", "model.width=200", *items])
    with pytest.raises(ConfigError, match=expected):
        tallysim.drive(cfg)


def test_a_plugin_model_may_not_take_a_built_in_name(tmp_path, monkeypatch, registry_restored):
    from tallysim import protocols
    from tallysim.config import ConfigError
    (tmp_path / "uj3_clash.py").write_text("def f(k):\n    return None\n\nMODELS = {'lenet': 'f'}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="model.name='lenet' is already taken"):
        protocols.load_plugin("uj3_clash")
    assert "lenet" not in protocols.plugin_models()


GROUPS = ["tally_1600b", "softlabel_8bit_1600b", "softlabel_8bit_320p", "fedavg"]


def test_a_figures_groups_get_distinct_colours_and_markers():
    """A matched-bits figure of groups (tally_1600b, softlabel_8bit_1600b, softlabel_8bit_320p, fedavg)
    drew the three non-protocol names as the same blue triangle: their style was a hash of the name
    into three free slots, so the two points at 19,200 bits could not be told apart."""
    st = pareto.styles(GROUPS)
    assert len({colour for colour, _ in st.values()}) == len(GROUPS)      # four names: four colours
    many = [f"group_{i}" for i in range(40)] + ["tally", "softlabel", "fedavg"]
    assert len(set(pareto.styles(many).values())) == len(many)
    # a protocol's look does not depend on what else is drawn beside it
    assert pareto.styles(["tally"])["tally"] == pareto.styles(many)["tally"]
    assert len(pareto.styles(f"g{i}" for i in range(150))) == 150        # past 100 looks repeat, no hang


def test_the_pareto_tables_say_the_accuracy_is_a_mean_over_seeds(tmp_path):
    """`tallysim pareto` of a two-seed sweep printed accuracy 0.3865 in its frontier table with no word
    that it is the mean of 2 seeds whose std is 0.051 (the table of the same runs shows final_std): the
    points CSV now carries `seeds` and `accuracy_final_std`, and the table's header line says it."""
    pts = [{"protocol": "tally", "run": "a", "dir": "a", "bits_per_peer": 64000.0, "MB_per_peer": 0.008,
            "accuracy": 0.3865, "accuracy_final": 0.3865, "accuracy_best": 0.3867, "seeds": 2,
            "accuracy_final_std": 0.0511}]
    paths = pareto.write_tables(pts, pareto.frontier(pts), str(tmp_path / "p.png"), "final", "auto")
    assert "Accuracy is the mean of 2 seeds" in open(paths[1]).read()
    assert open(paths[2]).read().splitlines()[1].endswith(",2,0.0511,,")      # then seeds_counted, seeds_nonfinite: ""
    one = [dict(pts[0], seeds=1, accuracy_final_std=None)]
    paths = pareto.write_tables(one, one, str(tmp_path / "q.png"), "final", "auto")
    assert "seeds" not in open(paths[1]).read().splitlines()[0]


def test_the_pareto_plot_draws_each_group_in_its_own_style(tmp_path):
    """The same, on the drawn figure: every legend entry differs in colour or marker."""
    from tallysim.results import metrics
    plt = metrics.pyplot()
    pts = [{"protocol": g, "run": "base", "dir": g, "bits_per_peer": b, "MB_per_peer": b / 8e6, "accuracy": a}
           for g, b, a in zip(GROUPS, (19200.0, 19200.0, 614400.0, 3.5e7), (0.36, 0.395, 0.498, 0.57))]
    fig, ax = plt.subplots()
    pareto.draw(ax, pts, pareto.frontier(pts))
    looks = set()
    for h in ax.get_legend().legend_handles:
        colour = tuple(np.round(h.get_facecolor()[0], 3))
        looks.add((colour, h.get_paths()[0].vertices.tobytes()))
    plt.close(fig)
    assert len(looks) == len(GROUPS)


def test_the_table_leaves_empty_a_swept_field_the_run_does_not_read(tmp_path):
    """`tallysim table` of the matched-bits groups showed `comm.soft_bits` 32 beside tally and FedAvg,
    which send no soft value: read as a setting of theirs beside softlabel's 8. Now an empty cell."""
    from tallysim import config
    from tallysim.results.table import table_rows
    for name, items in (("tally", []), ("softlabel", ["comm.soft_bits=8"]), ("fedavg", [])):
        d = tmp_path / name
        d.mkdir()
        cfg = config.apply_overrides(config.Config(), [f"protocol.name={name}", "rounds=1", *items])
        (d / "config.json").write_text(json.dumps(config.to_dict(cfg)))
        (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "acc_mean": 0.5, "bits_per_peer": 8.0}) + "\n")
    columns, rows = table_rows([tmp_path])
    assert "comm.soft_bits" in columns
    assert {r["protocol.name"]: r["comm.soft_bits"] for r in rows} == {"tally": None, "softlabel": 8, "fedavg": None}


def test_a_stopped_figure_says_how_to_go_on(capsys):
    """`kill` of `tallysim figure mb20.json` printed only "stopped by SIGTERM; metrics written so far are
    kept" (a sweep's line says to run it again): the user was left to guess whether rerunning redoes it."""
    import argparse
    args = argparse.Namespace(fn=cli.cmd_figure, out="figs")
    assert cli.interrupted(KeyboardInterrupt(), args) == 130
    assert "the same figure command, run again, continues it (finished runs are skipped" in capsys.readouterr().err


def test_config_json_names_the_plugin_of_a_groups_model(own_models):
    """A model group of the plugin's model (`b:2:uj3_small`) must find it again on --resume too."""
    import tallysim
    from tallysim import config
    tallysim.load_plugin(own_models)
    cfg = config.apply_overrides(config.Config(), ["peers=4", "model.groups=a:2:mlp;b:2:uj3_small"])
    assert config.to_dict(cfg)["plugins"] == [own_models]
    assert "plugins" not in config.to_dict(config.Config())
