"""Hostile review of 2026-12-06: inputs that misbehaved (ran while silently ignoring a field or a flag,
measured or labelled the wrong thing, a traceback, a dry run that passed what the real run refuses, a
resumed run missing a file) and are now one line, exit 2, before anything compiles or measures, or a
warning where the run is allowed. Each case here failed before its fix; the controls (`ok`) pass both.

Nothing here compiles: `no_compile` makes jax.jit fail, and the bench's measurements fail the test."""
import json
import shutil

import numpy as np
import pytest

from tallysim import cli, config, run, sweep  # noqa: F401  (imported before jit is patched)
from tallysim.config import ConfigError
from conftest import TINY, one_line


TEXT = ["data.name=shakespeare", "partition.kind=natural", "model.name=lstm", "model.width=200", "peers=3"]

# ----------------------------------------------------------------------------- run: fields nothing reads

RUN = [
    # model.* fields the run's model does not read: the model ran unchanged
    ([*TEXT, "model.width=64"], "model.width=64 is not read by model.name=lstm (only by mlp)"),
    ([*TEXT, "model.conv=xla"], "model.conv='xla' is not read by model.name=lstm (only by lenet, cnn, resnet8)"),
    ([*TEXT, "model.name=transformer", "model.embed=16", "model.hidden=16", "model.heads=2"],
     "model.embed=16 is not read by model.name=transformer (only by lstm)"),
    (["model.hidden=64"], "model.hidden=64 is not read by model.name=mlp (only by lstm, transformer)"),
    (["model.heads=3"], "model.heads=3 is not read by model.name=mlp (only by transformer)"),
    (["model.conv=xla"], "model.conv='xla' is not read by model.name=mlp"),
    (["model.name=lenet", "model.width=64"], "model.width=64 is not read by model.name=lenet"),
    # ... with model.groups: the run's field no group takes, a group's own field its model ignores
    (["model.groups=a:2:lenet;b:2:cnn"], "model.width=32 is not read by the models of the groups that take it "
                                         "from the run (cnn, lenet)"),
    (["model.groups=a:2:mlp,width=8;b:2:mlp,width=9"], "model.width=32 is not read by any group (every group "
                                                       "sets width itself)"),
    (["model.groups=a:2:lenet,width=64;b:2:mlp"], "group a: model.width=64 is not read by model.name=lenet"),
    ([*TEXT, "model.groups=a:2:lstm;b:1:transformer,hidden=8,heads=2,embed=4"],
     "group b: model.embed=4 is not read by model.name=transformer"),
    (["model.groups=a:2:mlp,optim.name=adam,optim.momentum=0.5;b:2"],
     "group a: optim.momentum=0.5 is not read with optim.name=adam"),
    # model.groups' syntax: '²' passed str.isdigit() (a ValueError traceback), '٣' read as 3
    (["model.groups=a:\u00b2;b:2"], "group 'a:\u00b2' is not NAME:PEERS"),
    (["model.groups=a:\u0663;b:1"], "group 'a:\u0663' is not NAME:PEERS"),
    (["model.groups=" + "a" * 41 + ":2;b:2"], "is 41 characters; allowed: at most 40"),
    # a shape mixing 'x' and ',': two shapes read as one 4-D shape
    (["data.input_shape=28x1,8x1"], "data.input_shape='28x1,8x1' mixes 'x' and ','"),
    # privacy fields nothing reads
    (["privacy.noise=1", "privacy.clip=3"], "privacy.clip=3.0 is not read by protocol.name=tally"),   # GNMax
    (["protocol.name=fedavg", "privacy.clip=3"], "privacy.clip=3.0 is not read by this run"),
    (["privacy.delta=0.001"], "privacy.delta=0.001 is not read by this run (no epsilon is computed"),
    (["privacy.accountant=pld"], "privacy.accountant='pld' is not read by this run"),
    # evaluation fields nothing reads
    (["protocol.name=fedavg", "client_storage=auto", "eval_peers=2"], "eval_peers=2 is not read with "
                                                                       "client_storage=auto and protocol.name=fedavg"),
    (["eval_sample=random"], "eval_sample=random picks which eval_peers peers are evaluated"),
    # fields read only under another aggregate, optimizer or weighting
    (["optim.name=adam", "optim.momentum=0.5"], "optim.momentum=0.5 is not read with optim.name='adam'"),
    (["protocol.name=softlabel", "softlabel.era_temperature=0.5"], "softlabel.era_temperature=0.5 is not read "
                                                                    "with softlabel.aggregate='mean'"),
    (["protocol.name=softlabel", "softlabel.trim=0.2"], "softlabel.trim=0.2 is not read with softlabel.aggregate"),
    (["protocol.name=fedavg", "fedavg.trim=0.2"], "fedavg.trim=0.2 is not read with fedavg.aggregate='mean'"),
    (["protocol.name=fedavg", "fedavg.aggregate=median", "fedavg.tau=2"], "fedavg.tau=2.0 is not read with "
                                                                           "fedavg.aggregate='median'"),
    (["protocol.name=fedavg", "fedavg.bucket=3"], "fedavg.bucket=3 is not read with fedavg.pre='none'"),
    (["protocol.name=fedavg", "fedavg.aggregate=krum", "fedavg.m=1", "peers=6"], "fedavg.m=1 is not read with "
                                                                                  "fedavg.aggregate='krum'"),
    (["vote.history=0.5"], "vote.history=0.5 is not read with vote.weighting='none'"),
    # a warm-up for a protocol without one
    (["protocol.name=fedavg", "warmup_epochs=3"], "warmup_epochs=3 is not read by protocol.name=fedavg"),
    (["protocol.name=local", "warmup_epochs=2"], "warmup_epochs=2 is not read by protocol.name=local"),
]


@pytest.mark.parametrize("items, expected", RUN, ids=[" ".join(i)[-60:] for i, _ in RUN])
def test_run_inputs_are_one_line_before_compiling(items, expected, tmp_path, capsys, no_compile):
    line = one_line(capsys, ["run", *TINY, *items, "--out", str(tmp_path / "o"), "--quiet"])
    assert expected in line, line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("items", [
    ["model.name=lenet", "model.width=200", "model.conv=xla"],            # each read by its model
    ["model.groups=a:2:lenet;b:2:mlp"],                                   # b takes the run's width
    ["optim.name=adam"], ["protocol.name=softlabel", "softlabel.aggregate=era", "softlabel.era_temperature=0.5"],
    ["protocol.name=fedct", "fedct.xor_epsilon=1", "privacy.delta=0.001"],
    ["protocol.name=softlabel", "privacy.noise=1", "privacy.clip=3"], ["eval_sample=random", "eval_peers=2"],
    ["client_storage=auto", "eval_peers=2"],                              # tally keeps its clients: read
    ["protocol.name=fedavg", "warmup_epochs=0"], ["warmup_epochs=3"],
], ids=lambda i: " ".join(i)[-50:])
def test_fields_that_are_read_still_run(items):
    from tallysim import validation
    validation.check_read(config.validate(config.apply_overrides(config.Config(), TINY + items)))


def test_a_sweep_still_shares_one_base_across_models_and_protocols():
    """check_read is a single run's: a sweep's base serves several models and protocols."""
    runs = sweep.expand({}, ["model.name=mlp,lenet", "model.width=16"])
    sweep.configs(config.apply_overrides(config.Config(), TINY), runs)


def test_a_privacy_threshold_no_probe_can_reach_is_warned():
    from tallysim import validation
    cfg = config.validate(config.apply_overrides(config.Config(), TINY + [
        "privacy.noise=1", "privacy.threshold=100", "privacy.threshold_noise=1"]))
    assert any("privacy.threshold=100 is above the 4 votes a probe can get" in w for w in validation.warnings(cfg))
    cfg = config.validate(config.apply_overrides(config.Config(), TINY + [
        "privacy.noise=1", "privacy.threshold=3", "privacy.threshold_noise=1"]))
    assert not any("privacy.threshold" in w for w in validation.warnings(cfg))


# ----------------------------------------------------------------------------- sweeps

@pytest.mark.parametrize("axis, runs", [
    # one value with a group's own fields was split at its commas into three, each refused for its peers
    ("model.groups=a:2:mlp,width=8;b:2:mlp,width=16", ["base"]),
    ("model.groups=a:2:mlp,width=8;b:2:mlp,a:3;b:1", ["model.groups=a-2-mlp,width=8;b-2-mlp", "model.groups=a-3;b-1"]),
    ("model.groups=a:2;b:2,a:3;b:1", ["model.groups=a-2;b-2", "model.groups=a-3;b-1"]),            # ok
])
def test_a_model_groups_axis_splits_where_a_group_value_starts(axis, runs):
    assert [n for n, _ in sweep.expand({}, [axis])] == runs


def test_a_json_sweep_axis_of_group_objects_reads_as_groups():
    one = [{"name": "a", "peers": 2, "model": {"width": 8}}, {"name": "b", "peers": 2}]
    assert sweep.expand({"model.groups": one}, []) == [("base", ["model.groups=a:2:width=8;b:2"])]
    two = sweep.expand({"model.groups": [one, "a:3;b:1"]}, [])
    assert [o for _, o in two] == [["model.groups=a:2:width=8;b:2"], ["model.groups=a:3;b:1"]]


@pytest.mark.parametrize("cli_axes, file_axes", [(["log.tensorboard=/tmp/a,/tmp/b"], {}),
                                                 ([], {"log.mlflow": ["x", "y"]})])
def test_a_log_axis_of_several_values_is_refused(cli_axes, file_axes):
    """Two directories of the same experiment: log.* is not part of it (sweep grouping ignores it)."""
    with pytest.raises(ConfigError, match="has 2 values, but log.* is where results also go"):
        sweep.expand(file_axes, cli_axes)
    assert sweep.expand({}, ["log.tensorboard=/tmp/a"]) == [("base", ["log.tensorboard=/tmp/a"])]   # ok


def test_a_shape_axis_written_with_commas_says_to_use_semicolons(tmp_path, capsys, no_compile):
    line = one_line(capsys, ["sweep", *TINY, "data.input_shape=28x28x1,8x8x1", "--out", str(tmp_path / "s"),
                             "--dry-run"])
    assert "mixes 'x' and ','" in line and "28x28x1;8x8x1" in line, line


# ----------------------------------------------------------------------------- bench

BENCH = [
    (["--sweep", "--round"], "--sweep and --round are separate benchmarks"),      # ran the 108-run sweep
    (["--round", "--population"], "--round and --population are separate benchmarks"),
    (["--population", "--devices", "1"], "--population and --devices are separate benchmarks"),
    (["--conv", "", "--peers", "2", "--model", "mlp"], "bench --conv '' is empty"),           # read as auto
    (["--round", "--protocols", ""], "bench --protocols '' is empty"),
    (["--population", "--cohort-draw", ""], "bench --cohort-draw '' is empty"),
    (["--conv", "xla,xla", "--peers", "2", "--model", "lenet"], "lists xla twice"),      # measured twice
    (["--peers", "2,2", "--model", "mlp"], "bench --peers '2,2' lists 2 twice"),
    (["--round", "--protocols", "tally,tally"], "lists tally twice"),
    (["--smoke", "--peers", "2", "--model", "mlp"], "bench --smoke is read only with --sweep"),   # ignored
    (["--sample", "3", "--peers", "2", "--model", "mlp"], "bench --sample is read only with --sweep"),
    (["--protocols", "tally", "--peers", "2", "--model", "mlp"], "bench --protocols is read only with --round"),
    (["--set", "seed=1", "--peers", "2", "--model", "mlp"], "bench --set is read only with --population"),
    (["--examples", "5", "--peers", "2", "--model", "mlp"], "bench --examples is read only with --population"),
    (["--population", "--conv", "xla"], "bench --conv is not read by bench --population"),
    (["--sweep", "--full"], "bench --full is not read by bench --sweep"),
    (["--devices", "1", "--model", "cnn"], "bench --model is not read by bench --devices"),
    (["--sweep", "--peers", "4"], "bench --peers is not read by bench --sweep"),
    # --round took the first of a list, read --steps 0 as the default, --peers abc was a traceback
    (["--round", "--peers", "2,3"], "--round times one peers"),
    (["--round", "--dtype", "float32,bfloat16"], "--round times one dtype"),
    (["--round", "--steps", "0"], "bench --round --steps 0: allowed a positive integer"),
    (["--round", "--peers", "abc"], "bench --round --peers 'abc': allowed a positive integer"),
    # --set of the population's own axes: every row labelled 10,000 and up measured 5 clients
    (["--population", "--set", "peers=5"], "--set peers=5: peers is what the benchmark varies or fixes"),
    (["--population", "--set", "faults.kind=dropout,client_storage=stacked"], "--set client_storage=stacked"),
]


@pytest.mark.parametrize("argv, expected", BENCH, ids=[" ".join(a) for a, _ in BENCH])
def test_bench_flags_are_one_line_before_measuring(argv, expected, capsys, no_compile, no_measure):
    assert expected in one_line(capsys, ["bench", *argv])


# ----------------------------------------------------------------------------- figure: dry run = real checks

def _figure(tmp_path, doc) -> str:
    (tmp_path / "x.json").write_text(json.dumps(doc))
    return str(tmp_path / "x.json")


@pytest.mark.parametrize("what, expected", [
    ("kind", "kind='bogus' is not known"),
    ("smoke", "--smoke draws the `smoke` section of"),       # the full-size figure ran under the -smoke name
    ("out file", "--out {tmp}/f is a file"),
    ("results file", "--results {tmp}/r is a file"),         # real run: named --out, after the runs' mkdir
    ("link", "it is a symbolic link"),
])
def test_figure_dry_run_refuses_what_the_run_refuses(what, expected, tmp_path, capsys, no_compile):
    doc = {"kind": "bogus" if what == "kind" else "curves", "base": {}, "groups": {"a": {}}}
    fig = _figure(tmp_path, doc)
    if what == "out file":
        (tmp_path / "f").write_text("")
    if what == "results file":
        (tmp_path / "r").write_text("")
    if what == "link":
        (tmp_path / "f").mkdir()
        (tmp_path / "f" / "x.png").symlink_to(tmp_path / "elsewhere.png")
    argv = ["figure", fig, "--results", str(tmp_path / "r"), "--out", str(tmp_path / "f"), "--dry-run"]
    line = one_line(capsys, argv + (["--smoke"] if what == "smoke" else []))
    assert expected.replace("{tmp}", str(tmp_path)) in line, line


# ----------------------------------------------------------------------------- --resume

def _copy(checkpointed, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(checkpointed, d)
    return d


def test_resume_with_items_applies_them_to_the_runs_own_config(checkpointed, tmp_path, capsys, no_compile):
    """`--resume rounds=5` was checked against the defaults ("protocol 'local' but the config now names
    'tally' (config.json edited?)"); now on top of the run's config.json, so the change is named."""
    d = _copy(checkpointed, tmp_path)
    line = one_line(capsys, ["run", "--out", str(d), "--resume", "--quiet", "rounds=5"])
    assert "(rounds=3->5)" in line, line
    # another --config: the message blamed an edit of config.json
    (tmp_path / "c.json").write_text('{"peers": 4}')
    line = one_line(capsys, ["run", "--config", str(tmp_path / "c.json"), "--out", str(d), "--resume", "--quiet"])
    assert "(another --config or protocol.name, or" in line, line
    # log.*, which may differ on resume, now resumes (it got to compiling)
    with pytest.raises(AssertionError, match="compiled before refusing"):
        cli.main(["run", "--out", str(d), "--resume", "--quiet", f"log.tensorboard={tmp_path / 'tb'}"])


def test_resume_rewrites_a_deleted_or_damaged_partition_file(checkpointed, tmp_path, no_compile):
    d = _copy(checkpointed, tmp_path)
    want = (d / "partition.json").read_text()
    for damage in ("deleted", "garbage"):
        if damage == "deleted":
            (d / "partition.json").unlink()
        else:
            (d / "partition.json").write_text("garbage")
        with pytest.raises(AssertionError, match="compiled before refusing"):
            cli.main(["run", "--out", str(d), "--resume", "--quiet"])
        assert (d / "partition.json").read_text() == want, damage


# ----------------------------------------------------------------------------- the Python API

@pytest.mark.parametrize("kwargs, expected", [
    (dict(out=123), "tallysim.run(out=123): expected a directory path"),        # a TypeError in outdir
    (dict(checkpoint_every=-1), "checkpoint_every=-1"),                        # the CLI refuses -1
    (dict(checkpoint_every="5"), "checkpoint_every='5'"),
    (dict(overwrite="no"), "tallysim.run(overwrite='no'): expected True or False"),   # truthy: replaced
    (dict(resume="yes"), "tallysim.run(resume='yes'): expected True or False"),
    (dict(progress="x"), "tallysim.run(progress='x'): expected True or False"),
    (dict(resume=True, overwrite=True), "resume=True, overwrite=True"),        # said "not a run directory"
])
def test_the_apis_own_arguments_are_checked(kwargs, expected, tmp_path, no_compile):
    import tallysim
    kwargs.setdefault("out", str(tmp_path / "o"))
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        tallysim.run(config.apply_overrides(config.Config(), TINY), **kwargs)


def test_a_plugin_protocol_name_must_be_plain(tmp_path, monkeypatch, capsys):
    (tmp_path / "oddnames.py").write_text("def make(ctx): pass\nPROTOCOLS = {'My Proto!': 'make'}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    line = one_line(capsys, ["run", *TINY, "--plugin", "oddnames", "--print-config"])
    assert "protocol name 'My Proto!' is not a plain name" in line, line
    from tallysim import protocols
    assert "My Proto!" not in protocols.names()


# ----------------------------------------------------------------------------- text

def test_text_helpers_refuse_a_bool_length_and_unknown_tokens():
    from tallysim.data import text
    with pytest.raises(ValueError, match="seq_len=True"):               # True gave windows of one token
        text.windows(np.array([1, 5, 6, 2], np.int32), True)
    for call in (lambda: text.build_vocab([["a"]], "chars", None),     # built a word vocabulary
                 lambda: text.units("ab", "Char"), lambda: text.decode([4], list("abcde"), "words")):
        with pytest.raises(ValueError, match="allowed: char, word"):
            call()
    assert text.build_vocab([["b", "a"]], "char", None)[-2:] == ["a", "b"]                         # ok


@pytest.fixture
def text_cache(tmp_path, monkeypatch):
    """A tiny Shakespeare cache built from two made-up roles (text.build), in this test's TALLYSIM_DATA."""
    from tallysim.data import text
    from tallysim.data.cache import cache_file, write_arrays
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path / "cache"))
    play = "**ANNA**\n" + "to be or not to be, that is it. " * 20 + "\n\n**BEN**\n" + "all the world is a stage. " * 20
    arrays = text.build(text.VARIANTS["shakespeare"], [("p/one", play)], min_chars=100)
    write_arrays(arrays, cache_file("shakespeare"))
    assert len(text.load("shakespeare").client_names) == 2          # the undamaged cache loads
    return arrays, cache_file("shakespeare")


@pytest.mark.parametrize("damage, expected", [
    ("token_oob", "the train token ids lie in 0..500"),                # indexed past the embedding: clamped
    ("target_oob", "the train token ids lie in -3"),
    ("num_classes", "num_classes=7 is not the vocabulary's size"),
    ("y_shape", "are not one non-empty [N, T] shape"),                 # a traceback in the jitted step
    ("clients_len", "train client ids for"),
    ("clients_oob", "the train client ids lie in 0..99"),
    ("float_tokens", "the train inputs have dtype float32"),           # truncated to ints
    ("x_1d", "are not one non-empty [N, T] shape"),                    # an IndexError
    ("empty_test", "the test inputs (0, 80)"),
])
def test_a_damaged_text_cache_is_one_line_naming_it(damage, expected, text_cache):
    from tallysim.data import text
    from tallysim.data.cache import write_arrays
    z, path = dict(text_cache[0]), text_cache[1]
    if damage == "token_oob":
        z["x_train"] = z["x_train"].copy()
        z["x_train"][0, 0] = 500
    elif damage == "target_oob":
        z["y_train"] = z["y_train"].copy()
        z["y_train"][0, 0] = -3
    elif damage == "num_classes":
        z["num_classes"] = np.int64(7)
    elif damage == "y_shape":
        z["y_train"] = z["y_train"][:, :40]
    elif damage == "clients_len":
        z["clients_train"] = z["clients_train"][:-1]
    elif damage == "clients_oob":
        z["clients_train"] = z["clients_train"].copy()
        z["clients_train"][0] = 99
    elif damage == "float_tokens":
        z["x_train"] = z["x_train"].astype(np.float32) + 0.5
    elif damage == "x_1d":
        z["x_train"] = z["x_train"][:, 0]
    else:
        z["x_test"], z["y_test"], z["clients_test"] = z["x_test"][:0], z["y_test"][:0], z["clients_test"][:0]
    write_arrays(z, path)
    with pytest.raises(ConfigError) as e:
        text.load("shakespeare")
    assert expected in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_dataset_of_one_training_example_says_so():
    """The advice read "allowed: 1..0"."""
    from tallysim.build_data import pool_and_rest
    cfg = config.apply_overrides(config.Config(), ["data.name=shakespeare", "data.max_train=1"])
    with pytest.raises(ConfigError, match=r"shakespeare has 1 training example \(data.max_train=1\): too few"):
        pool_and_rest(cfg, 1, 0, 0)
