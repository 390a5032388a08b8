"""Hostile inputs, round 11 (hostile11): the newest features (plugin sequence models, installed plugins,
resume's data digest, file_shapes' header estimates) and the population / groups / text configs. Each test
names what the input did before its fix. None compiles: every input here must be refused before that.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import one_line, tiny, tiny_for

import tallysim
import tallysim.build  # noqa: F401 - its modules jit at import: imported before no_compile patches jax.jit
from tallysim.config import ConfigError

# ----------------------------------------------------------------------------- plugin models' outputs

PLUGIN = '''
import sys
import flax.linen as nn
import jax.numpy as jnp


class Out(nn.Module):
    classes: int
    mode: str

    @nn.compact
    def __call__(self, x):
        out = nn.Dense(self.classes)(x.reshape(x.shape[0], -1))
        return {"int": lambda: out.astype(jnp.int32), "bool": lambda: out > 0,
                "complex": lambda: out.astype(jnp.complex64), "first": lambda: out[:1],
                "fixed": lambda: out.reshape(1, -1)[:, :self.classes], "mean": lambda: out.mean(0, keepdims=True),
                "bf16": lambda: out.astype(jnp.bfloat16), "nan": lambda: out * jnp.nan, "ok": lambda: out}[self.mode]()


def _maker(mode):
    return lambda num_classes: Out(num_classes, mode)


MODES = ("int", "bool", "complex", "first", "fixed", "mean", "bf16", "nan", "ok")
for _m in MODES:
    globals()["h11_" + _m] = _maker(_m)


class Huge(nn.Module):
    classes: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.classes)(nn.Dense(10**6)(nn.Dense(10**6)(x.reshape(x.shape[0], -1))))


def h11_huge(num_classes):
    return Huge(num_classes)


def h11_exits(num_classes):
    sys.exit(3)


def h11_lines(num_classes):
    raise RuntimeError("first line\\nsecond line")


MODELS = {**{"h11" + m: "h11_" + m for m in MODES}, "h11exits": "h11_exits", "h11lines": "h11_lines",
          "h11huge": "h11_huge"}
'''


@pytest.fixture
def h11_models(tmp_path, monkeypatch, registry_restored):
    (tmp_path / "h11_models.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    tallysim.load_plugin("h11_models")
    return "h11_models"


@pytest.mark.parametrize("model, expected", [
    # were optax's TypeError from inside the jitted loss, after the shape check had passed
    ("h11int", "returns logits of dtype int32; allowed: floating-point logits"),
    ("h11bool", "returns logits of dtype bool; allowed: floating-point logits"),
    ("h11complex", "returns logits of dtype complex64; allowed: floating-point logits"),
    # right for init's one example, a traceback inside the jitted step for a batch (shapes [4, 80] vs [1, 640])
    ("h11first", r"returns \(1, 10\) for 1 example but \(1, 10\) for 2; allowed: \(2, 10\) for 2"),
    ("h11fixed", r"returns \(1, 10\) for 1 example but \(1, 10\) for 2"),
    ("h11mean", r"returns \(1, 10\) for 1 example but \(1, 10\) for 2"),
    # a factory's sys.exit() ended tallysim with status 3 and not a word; a message of two lines printed both
    ("h11exits", r"model.name=h11exits \(plugin h11_models:h11_exits\): h11_exits\(10\) raised SystemExit: 3$"),
    ("h11lines", r"h11_lines\(10\) raised RuntimeError: first line$"),
])
def test_a_plugin_models_wrong_output_is_one_line_before_compiling(h11_models, no_compile, model, expected):
    with pytest.raises(ConfigError, match=expected):
        tallysim.drive(tiny(f"model.name={model}", "model.width=200"))


def test_a_groups_plugin_model_is_checked_as_the_runs_own(h11_models, no_compile):
    # the same checks for a group's model in model.groups (build._model_groups -> init_shapes)
    with pytest.raises(ConfigError, match="returns logits of dtype int32"):
        tallysim.drive(tiny("model.groups=a:2:mlp;b:2:h11int"))


@pytest.mark.parametrize("model", ["h11ok", "h11bf16"])
def test_float_logits_that_follow_the_batch_pass_the_check(h11_models, model):
    # bfloat16 logits train as they are (the loss takes them): not refused by the dtype check
    import jax
    import jax.numpy as jnp

    from tallysim.sim import models
    cfg = tiny(f"model.name={model}")
    model_ = models.make_model(cfg.model, 10)
    dummy = jnp.zeros((1, 28, 28, 1), jnp.float32)
    assert jax.tree_util.tree_leaves(models.init_shapes(cfg.model, model_, dummy, 10))


def test_a_factory_that_exits_leaves_the_estimate_its_guess(h11_models, capsys):
    # --print-config's estimate traces the factory (plugin_params): its sys.exit(3) ended the command there
    from tallysim import cli
    assert cli.main(["run", *tiny_for([]), "model.name=h11exits", "model.width=200", "--print-config"]) == 0
    assert "memory estimate" in capsys.readouterr().err


def test_a_plugin_model_of_nan_logits_is_named_beside_the_learning_rate(h11_models, tmp_path, capsys):
    # was: "the training loss is nan; the run stopped (try a smaller optim.lr, now 0.05)" for a model whose
    # first forward pass is NaN, which no learning rate mends (one small compile: FedAvg, 1 round)
    from tallysim import cli
    items = ["model.name=h11nan", "model.width=200", "protocol.name=fedavg", "rounds=1"]
    assert cli.main(["run", *tiny_for(items), *items, "--out", str(tmp_path / "r"), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "the training loss is nan" in err and "optim.lr" in err
    assert "or model.name=h11nan, a plugin's model, returns non-finite logits" in err


def test_a_plugin_model_too_big_for_one_copy_names_its_size_not_only_peers(h11_models):
    # was: "needs at least 48 TB ... (the clients' models ...); lower peers": one copy of it is 4 TB, which
    # no number of peers mends (traced with eval_shape: nothing allocated)
    from tallysim import validation
    with pytest.raises(ConfigError, match=r"48 TB .*; lower the size of model.name=h11huge \(1,000,796,000,010 "
                                          r"parameters a copy\), peers$"):
        validation.check_memory(tiny("model.name=h11huge", "model.width=200"))


PROTOCOL = '''
import sys
from tallysim.protocols import Traits

PROTOCOLS = {"h11exit": "make"}
TRAITS = Traits(fedavg_family=True, shared_init="from the server model",
                defaults={"optim.reset_each_round": True, "init.shared": True}, reads=("fedavg",))


def make(ctx):
    sys.exit(4)
'''


def test_a_protocol_factory_that_exits_is_one_line(tmp_path, monkeypatch, registry_restored, no_compile):
    # was: tallysim ended with the plugin's status 4 and no message (contract.py caught Exception only)
    (tmp_path / "h11_proto.py").write_text(PROTOCOL)
    monkeypatch.syspath_prepend(str(tmp_path))
    tallysim.load_plugin("h11_proto")
    with pytest.raises(ConfigError, match=r"protocol.* raised SystemExit: 4"):
        tallysim.drive(tiny("protocol.name=h11exit"))


# ----------------------------------------------------------------------------- files: the class count

def _npz(path, **changes):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (120, 6, 6), dtype=np.uint8), np.arange(120) % 5
    arrays = dict(x_train=x[:100], y_train=y[:100], x_test=x[100:], y_test=y[100:])
    np.savez(path, **{**arrays, **changes})
    return path


@pytest.mark.parametrize("changes, classes", [
    ({"num_classes": np.int64(10**9)}, "1,000,000,000"),                 # declared
    ({"y_test": np.array([0, 1] * 9 + [3, 10**9 - 1])}, "1,000,000,000"),   # a label reaching it
])
def test_a_files_dataset_of_too_many_classes_is_refused_for_its_classes(tmp_path, capsys, no_compile,
                                                                        changes, classes):
    # was: the memory estimate read the header's class count and refused "24.1 TB of memory (the clients'
    # models ...); lower model.width, peers" before the load could say the file has too many classes
    from tallysim import file_shapes
    path = _npz(tmp_path / "many.npz", **changes)
    assert file_shapes.peek(str(path)) is None            # no estimate from it: the load's refusal comes first
    items = ["data.name=files", f"data.path={path}"]
    line = one_line(capsys, ["run", *tiny_for(items), *items, "--out", str(tmp_path / "r")])
    assert f"has {classes} classes" in line and "allowed: at most 100,000 classes" in line
    assert "memory" not in line


def test_a_files_dataset_within_the_class_limit_is_still_estimated_from_its_header(tmp_path):
    from tallysim import file_shapes
    assert file_shapes.peek(str(_npz(tmp_path / "ok.npz", num_classes=np.int64(100_000)))) == ((6, 6, 1), 100_000)


# ----------------------------------------------------------------------------- population

def test_a_population_whose_clients_all_draw_nothing_is_refused(capsys, no_compile, tmp_path):
    # was: an IndexError ("index is out of bounds for axis 0 with size 0") inside the first round's compile:
    # sigma=10 puts the lognormal's median at 30 * exp(-50), and min_size=0 lets every client hold 0 examples
    from tallysim.data import DataError, population
    with pytest.raises(DataError, match=r"drew 0 examples for every one of its 100 clients .*min_size >= 1"):
        population.population(1900, 100, 30.0, 10.0, 0, False, 0)
    assert population.population(1900, 100, 30.0, 10.0, 1, False, 0).sizes.sum() == 100   # min_size 1: one each
    items = ["partition.kind=population", "partition.sigma=10", "partition.min_size=0", "protocol.name=fedavg"]
    line = one_line(capsys, ["run", *tiny_for(items), *items, "--out", str(tmp_path / "r")])
    assert "drew 0 examples for every one of its 4 clients" in line


# ----------------------------------------------------------------------------- text

def test_label_quantity_on_text_is_not_sent_to_a_k_no_text_run_accepts():
    # was: "partition.k=100 exceeds the 80 classes of shakespeare; allowed: 1..80", and every k in 1..80 is
    # then refused by the partition (a text window holds a label per position: no label split)
    from tallysim import validation
    cfg = tiny("partition.kind=label_quantity", "partition.k=100").replace(data={"name": "shakespeare"})
    validation.validate_with_data(cfg, 80, 40_000, 4_000)          # no k refusal: the partition's comes
    with pytest.raises(ConfigError, match="exceeds the 80 classes"):      # images keep theirs
        validation.validate_with_data(tiny("partition.kind=label_quantity", "partition.k=100"), 80, 40_000, 4_000)


# ----------------------------------------------------------------------------- a finished sweep run again

def test_a_finished_sweep_run_again_on_a_replaced_data_file_says_so(tmp_path, capsys):
    # was: every run skipped (done before), no run ran now to compare digests with, and nothing said that the
    # table still came from the file's old contents; the one compile here is a 1-round FedAvg run
    from tallysim import cli
    path = _npz(tmp_path / "d.npz")
    items = ["data.name=files", f"data.path={path}", "protocol.name=fedavg", "rounds=1", "probe.pool_size=20"]
    argv = ["sweep", *tiny_for(items), *items, "--out", str(tmp_path / "sw"), "--quiet"]
    assert cli.main(argv) == 0
    assert cli.main(argv) == 0                              # the same data: skipped, nothing to say
    assert "other data" not in "".join(capsys.readouterr())
    _npz(path, y_test=np.array([1, 0] * 10))               # the file replaced, same name
    assert cli.main(argv) == 0
    out = "".join(capsys.readouterr())      # --quiet: the note on stderr
    assert "was skipped (done before) but trained on other data than the runs this sweep ran now or the data " \
           "as it is now" in out and "done.json to rerun it" in out


# ----------------------------------------------------------------------------- interrupted commands

@pytest.mark.parametrize("command, metrics", [("cmd_prepare", False), ("cmd_plot", False), ("cmd_run", True),
                                              ("cmd_sweep", True)])
def test_an_interrupted_command_speaks_of_metrics_only_where_it_writes_them(command, metrics, capsys, tmp_path):
    # was: Ctrl-C during `tallysim prepare shakespeare` said "interrupted; metrics written so far are kept"
    # (exit 130 either way), as did a full disk while it wrote the cache
    import argparse

    from tallysim import cli
    args = argparse.Namespace(fn=getattr(cli, command), out=str(tmp_path / "none"))
    assert cli.interrupted(KeyboardInterrupt(), args) == 130
    assert ("metrics written so far are kept" in capsys.readouterr().err) == metrics


def test_a_full_disk_while_preparing_speaks_of_no_metrics(monkeypatch, capsys):
    import errno

    from tallysim import cli, data

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(data, "prepare", full)
    assert cli.main(["prepare", "shakespeare"]) == 2
    line = capsys.readouterr().err.strip()
    assert line == "tallysim: error: the disk is full (No space left on device): free some space, then rerun"


def test_a_file_that_cannot_be_created_is_named_as_asked_not_by_its_temporary_name(monkeypatch, tmp_path, capsys,
                                                                                   checkpointed):
    # was: `table runs --out /ro/t.md` on a read-only mount: "tallysim: error: /ro/.t.md.czctir7q.tmp:
    # Read-only file system", a name the user never gave
    import errno
    import tempfile

    from tallysim import atomic, cli

    def read_only(prefix="", suffix="", dir=None):
        raise OSError(errno.EROFS, "Read-only file system", f"{dir}/{prefix}abcdefgh{suffix}")
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OSError) as e:
        atomic.write_text(tmp_path / "t.md", "x")
    assert e.value.filename == str(tmp_path / "t.md") and e.value.errno == errno.EROFS
    assert cli.main(["table", str(checkpointed), "--out", str(tmp_path / "t.md")]) == 2
    assert capsys.readouterr().err.strip() == f"tallysim: error: {tmp_path / 't.md'}: Read-only file system"


def test_a_text_cache_whose_vocabulary_is_only_the_specials_says_so(tmp_path, monkeypatch):
    # was: "num_classes=3 is not the vocabulary's size (3, more than the 4 specials)": it was its size
    from tallysim.data import DataError, text
    from tallysim.data.cache import cache_file, write_arrays
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path / "cache"))
    play = "**ANNA**\n" + "to be or not to be, that is it. " * 40
    arrays = text.build(text.VARIANTS["shakespeare"], [("p/one", play)], min_chars=100)
    arrays.update(num_classes=np.int64(3), vocab=arrays["vocab"][:3])
    write_arrays(arrays, cache_file("shakespeare"))
    with pytest.raises(DataError, match=r"a vocabulary of 3 token\(s\) holds no token beside the 4 specials "
                                        r"\(<pad>, <bos>, <eos>, <oov>\); allowed: more than 4; delete it"):
        text.load("shakespeare")
