"""Hostile review of 2026-12-06 (round 7), weighted to what the earlier six attacked least: the results
readers on hand-edited metrics.jsonl (repeated, reordered or round-0 rows, bits that go down, a byte-order
mark, a run whose config.json was deleted), plugins whose Protocol names tallysim's own columns or puts
what JAX cannot carry in its info, user data with string labels, TALLYSIM_DATA naming a file, a `~` that
reached tallysim unexpanded (quoted, from a config or Python), and `make clean VENV=...`. Each test names
what the input did before; nothing here compiles.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tallysim
from tallysim import cli, config, outdir  # noqa: F401  (imported before jit is patched)
from tallysim.config import ConfigError
from tallysim.data.base import DataError, checked
from tallysim.results import metrics, table
from tallysim.results.runs import Results
from conftest import one_line, tiny

ROOT = Path(__file__).resolve().parent.parent


def _run(d: Path, rounds=(1, 2), bits=None, cfg: bool = True) -> Path:
    """A finished run written by hand: rows at `rounds`, bits_per_peer 512 * round unless `bits`."""
    d = outdir.claim(d, False)
    if cfg:
        (d / "config.json").write_text(json.dumps(config.to_dict(config.validate(tiny()).resolved())))
    bits = bits or [512.0 * r for r in rounds]
    (d / "metrics.jsonl").write_text("".join(json.dumps({"round": r, "acc_mean": 0.5 + r / 100, "acc_global": None,
                                                         "bits_per_peer": b}) + "\n" for r, b in zip(rounds, bits)))
    return d


# ----------------------------------------------------------------------------- metrics.jsonl edited by hand

@pytest.mark.parametrize("rounds, bits, expected", [
    # a pasted row: `final` was the later copy's accuracy, `best` counted the round twice
    ((1, 2, 2), None, r"line 3: round 2 after round 2 \(line 2\); a run writes its rows once each, in increasing "
                      r"rounds from 1: remove the repeated or misplaced line"),
    # reordered: `final` was round 1's, and the table called the finished run incomplete
    ((2, 1), None, r"line 2: round 1 after round 2 \(line 1\)"),
    ((0, 1), None, r"line 1: round 0; a run writes its rows once each"),
    ((-3,), None, r"line 1: round -3;"),
    # cumulative bits that go down: drawn and tabled as a run that un-sent its messages
    ((1, 2), [8000.0, 100.0], r"line 2: bits_per_peer=100.0 is below round 1's 8000.0; it counts every bit sent so "
                              r"far, so it never decreases"),
])
def test_rows_out_of_order_repeated_or_with_falling_bits_are_refused(rounds, bits, expected, tmp_path, capsys):
    d = _run(tmp_path / "run", rounds, bits)
    with pytest.raises(ConfigError, match=expected):
        metrics.read_rows(d)
    with pytest.raises(ConfigError, match=expected):
        Results.read(d)
    assert cli.main(["table", str(d)]) == 2
    err = capsys.readouterr().err
    assert "no readable run" in err and __import__("re").search(expected, err), err


def test_rows_as_a_run_writes_them_still_read(tmp_path):                                          # ok
    """Gaps (eval_every), equal bits from round to round (a round that sent nothing) and a blank line."""
    d = _run(tmp_path / "run", (2, 4, 5), [100.0, 100.0, 300.0])
    with open(d / "metrics.jsonl", "a") as f:
        f.write("\n")
    assert [r["round"] for r in metrics.read_rows(d)] == [2, 4, 5]


def test_a_metrics_file_saved_with_a_byte_order_mark_reads(tmp_path):
    """A Windows editor's BOM: "line 1 is not valid JSON (corrupt or torn by a crash)", the run skipped."""
    d = _run(tmp_path / "run")
    for name in ("metrics.jsonl", "config.json"):
        (d / name).write_bytes(b"\xef\xbb\xbf" + (d / name).read_bytes())
    res = Results.read(d)
    assert [r["round"] for r in res.rows] == [1, 2] and res.config["peers"] == 4 and res.status == "done"


def test_a_run_whose_config_json_was_deleted_is_not_called_done(tmp_path, capsys):
    """Said "done" for any rows: the round count is in config.json."""
    d = _run(tmp_path / "run", cfg=False)
    assert Results.read(d).status == "unknown"
    _, rows = table.table_rows([d])
    assert rows[0]["status"] == "unknown"
    from tallysim.results import pareto
    said = []
    assert [p["protocol"] for p in pareto.collect([d], log=said.append)] == ["unknown"]     # kept, and said
    assert said == [f"pareto: {d} has no config.json: drawn as protocol 'unknown', whether it finished unknown"]
    assert Results.read(_run(tmp_path / "with", (1,))).status == "incomplete"           # ok: TINY has 2 rounds


# ----------------------------------------------------------------------------- a `~` tallysim had to expand

def test_a_quoted_tilde_is_the_home_not_a_directory_named_tilde(tmp_path, monkeypatch, capsys):
    """`--out "~/runs/a"` (quoted, from make or a config) and out="~/..." in Python made ./~/runs/a: the
    `rm -rf ~` that removes it takes the home. The readers then could not find the run they were given."""
    home, here = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    assert outdir.destination("~/runs/a") == home / "runs" / "a"
    _run(home / "runs" / "a")
    assert Results.read("~/runs/a").out == home / "runs" / "a"
    assert [r["round"] for r in tallysim.read_rows("~/runs")] == [1, 2]
    assert table.table_rows("~/runs")[1][0]["run"] == "a"
    table.table("~/runs", out="~/t.md")
    assert cli.main(["table", "~/runs", "--out", "~/t.csv"]) == 0
    assert (home / "t.md").is_file() and (home / "t.csv").is_file() and not (here / "~").exists()


# ----------------------------------------------------------------------------- plugins

@pytest.mark.parametrize("row_keys, expected", [
    # its info value replaced the evaluated headline accuracy in every row, silently
    ({"acc_mean": float}, r"protocol 'fedct': Protocol.row_keys names 'acc_mean', a column tallysim writes itself"),
    ({"bits_per_peer": int}, "names 'bits_per_peer'"),
    ({"round": int}, "names 'round'"),
    ({"kept@a": float}, r"names 'kept@a'.*nor with '@'"),
    ({"mine_std": float}, "names 'mine_std'"),
    ({"mine": str}, r"row_keys\['mine'\] is <class 'str'>; allowed: int or float"),
    (["mine"], "Protocol.row_keys is list; expected a dict"),
])
def test_a_plugins_row_keys_may_not_replace_tallysims_columns(row_keys, expected):
    from tallysim.results.rows import check_own_keys
    with pytest.raises(ConfigError, match=expected):
        check_own_keys("fedct", row_keys)
    check_own_keys("fedct", {"exchanged": int, "kept": float})     # ok: fedct's, ROUND_KEYS


def _info(**extra):
    return {"train_loss": np.float32(1.0), "steps_real": np.int32(3), "steps_computed": np.int32(3), **extra}


@pytest.mark.parametrize("info, row_keys, expected", [
    # a str: JAX's "Output from batched function 'hello' ... is not a valid JAX type" traceback
    (_info(note="hello"), {}, r"round's info\['note'\] is str \('hello'\); expected JAX arrays or numbers"),
    (_info(deep={"a": [1, "x"]}), {}, r"info\['deep'\]\['a'\]\[1\] is str"),
    # a row key's vector: "only 0-dimensional arrays can be converted" after the whole round ran
    (_info(mine=np.zeros(3)), {"mine": float}, "round's info has non-scalar mine"),
])
def test_a_plugins_round_info_is_checked_as_it_is_traced(info, row_keys, expected):
    from tallysim.protocols import contract
    state = {"w": np.zeros(2, np.float32)}
    checked_round = contract._checked_round("protocol 'p' (plugin 'm')", lambda s, d, k, r: (s, info), row_keys)
    with pytest.raises(ConfigError, match=expected):
        checked_round(state, None, None, 1)
    ok = contract._checked_round("p", lambda s, d, k, r: (s, _info(mine=np.float32(2))), {"mine": float})
    assert ok(state, None, None, 1)[1]["mine"] == 2                                       # ok


# ----------------------------------------------------------------------------- user data and TALLYSIM_DATA

@pytest.mark.parametrize("labels, shown", [
    (np.array(["shirt", "shoe", "bag"]), "dtype <U5, first label 'shirt'"),     # was numpy's _UFuncNoLoopError
    (np.array([1, 2, 0], dtype=object), "dtype object, first label 1"),
    (np.array([b"a", b"b", b"c"]), "dtype |S1, first label b'a'"),
])
def test_labels_that_are_not_numbers_are_one_line(labels, shown):
    import re
    with pytest.raises(DataError, match=re.escape(f"train labels must be non-negative integers 0..C-1 (got {shown}); "
                                                  "allowed: integer class ids")):
        checked("x", np.zeros((3, 2, 2), np.float32), labels, np.zeros((1, 2, 2), np.float32), np.array([0]))


def test_tallysim_data_naming_a_file_is_refused(tmp_path, monkeypatch, capsys, no_compile):
    """The run went on from Debian's files as if TALLYSIM_DATA were unset: nothing read from it, nothing
    cached in it, no word."""
    (tmp_path / "data").write_text("not a directory")
    monkeypatch.setenv("TALLYSIM_DATA", str(tmp_path / "data"))
    line = one_line(capsys, ["run", "peers=2", "rounds=1", "data.max_train=100", "--out", str(tmp_path / "o")])
    assert f"TALLYSIM_DATA={tmp_path / 'data'} is a file, not a directory" in line, line
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- make clean's VENV

@pytest.mark.parametrize("make_venv, kept", [(False, True), (True, False)])
def test_make_clean_removes_venv_only_when_it_is_a_virtual_environment(make_venv, kept, tmp_path):
    """`make clean VENV=/usr` (a system Python used in place of the venv) or VENV=$HOME/work ran `rm -rf` on
    it. Run in a copy of the Makefile, so the checkout's own files are not cleaned."""
    (tmp_path / "Makefile").write_text((ROOT / "Makefile").read_text())
    venv = tmp_path / "env"
    venv.mkdir()
    (venv / "mine.txt").write_text("keep")
    if make_venv:
        (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    got = subprocess.run(["make", "--no-print-directory", "clean", f"VENV={venv}", f"PY={sys.executable}"],
                         cwd=tmp_path, capture_output=True, text=True, env=env)
    assert got.returncode == 0, got.stderr
    assert venv.exists() == kept, (got.stdout, got.stderr)
    assert ("is not a virtual environment (no pyvenv.cfg); left as it is" in got.stderr) == kept


def test_make_clean_refuses_a_venv_with_a_space():
    got = subprocess.run(["make", "-n", "clean", "VENV=my env"], cwd=ROOT, capture_output=True, text=True)
    assert got.returncode != 0 and "VENV='my env' holds a space" in got.stderr and "rm -rf" not in got.stdout


# ----------------------------------------------------------------------------- XLA_FLAGS

@pytest.mark.parametrize("value", ["abc", "0", "-2", "", "2.0"])
def test_a_virtual_device_count_xla_cannot_read_is_one_line(value, tmp_path, monkeypatch, capsys, no_compile):
    """`=abc`: XLA printed its 90-line flag list and aborted the process; `=0`: "check JAX_PLATFORMS"."""
    monkeypatch.setenv("XLA_FLAGS", f"--xla_cpu_enable_fast_math=false --xla_force_host_platform_device_count={value}")
    line = one_line(capsys, ["run", "data.name=synthetic", "peers=2", "rounds=1", "--out", str(tmp_path / "o")])
    assert (f"XLA_FLAGS holds --xla_force_host_platform_device_count={value}; allowed: "
            "--xla_force_host_platform_device_count=N with N a whole number >= 1") in line, line
    assert not (tmp_path / "o").exists()
    from tallysim import jax_check
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    jax_check._device_count_flag()                                                          # ok


# ----------------------------------------------------------------------------- figure configs

FIGURE = {"title": "t", "kind": "curves", "groups": {"a": {"protocol": {"name": "tally"}}},
          "base": {"rounds": 2, "peers": 4, "data": {"name": "synthetic", "train_size": 1600, "test_size": 300},
                   "partition": {"kind": "iid"}, "probe": {"per_round": 64, "pool_size": 200}}}


def _dry_run(capsys, tmp_path, body) -> str:
    (tmp_path / "f.json").write_text(json.dumps(body))
    return one_line(capsys, ["figure", str(tmp_path / "f.json"), "--dry-run", "--results", str(tmp_path / "r"),
                             "--out", str(tmp_path / "o")])


@pytest.mark.parametrize("change, expected", [
    # a percentage: never reached, so "bits to reach the target" was empty in every row, no word said
    ({"target": 60}, "`target`=60 (int); allowed: an accuracy in (0, 1], e.g. 0.6"),
    ({"target": "0.6"}, "`target`='0.6' (str); allowed: an accuracy in (0, 1]"),
    ({"target": True}, "`target`=True (bool)"),
    ({"within": -0.1}, "`within`=-0.1 (float); allowed: an accuracy difference in [0, 1]"),
    # a list: falsy, so the figure ran its base alone as a group named "all"
    ({"groups": []}, 'a figure config\'s `groups` (and `smoke.groups`) must be an object {"group name": {config fields}}'),
    ({"logx": "no"}, "`logx`='no' (str); allowed: true or false"),       # a non-empty string is true
    ({"every_round": "a"}, "`every_round`='a' (str); allowed: a list of group names"),
    ({"title": 3}, "`title`=3 (int); allowed: a string"),
])
def test_a_figure_configs_own_values_are_checked(change, expected, tmp_path, capsys, no_compile):
    assert expected in _dry_run(capsys, tmp_path, {**FIGURE, **change})


def test_a_run_config_given_to_figure_says_to_run_it(tmp_path, capsys, no_compile):
    """`tallysim figure experiments/demo.json` said "kind=None is not known; allowed: curves, ...\""""
    line = _dry_run(capsys, tmp_path, {"peers": 4, "protocol": {"name": "tally"}})
    assert "is a run's config (it has no `kind`, `base` or `groups`), not a figure's; run it with `tallysim run " \
           "--config" in line, line


@pytest.mark.parametrize("good", [
    # each on a kind that reads it (a key its kind does not read is refused: test_hostile_dec22g.py)
    {"target": 1},
    {"kind": "pareto", "every_round": ["a"]},
    {"kind": "final_vs", "x": "seed", "sweep": {"seed": [0, 1]}, "logx": False},
    {"kind": "faults", "within": 0, "sweep": {"faults.fraction": [0.0, 0.5]}, "facets": ["partition.kind"],
     "base": {**FIGURE["base"], "faults": {"kind": "label_flip"}}},
], ids=["target", "every_round", "logx", "within"])
def test_a_figure_config_with_good_values_still_dry_runs(good, tmp_path, capsys, no_compile):             # ok
    (tmp_path / "f.json").write_text(json.dumps({**FIGURE, "groups": {"a": {}}, **good}))
    assert cli.main(["figure", str(tmp_path / "f.json"), "--dry-run", "--results", str(tmp_path / "r"),
                     "--out", str(tmp_path / "o")]) == 0, capsys.readouterr()


# ----------------------------------------------------------------------------- the notebooks' smoke switch

def _smoke_cell(name: str) -> str:
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code" and "SMOKE =" in "".join(c["source"])]
    assert len(code) == 1
    lines = code[0].splitlines()
    return "import os\n" + next(x for x in lines if x.startswith("SMOKE ="))


@pytest.mark.parametrize("value, quickstart, figures", [
    (None, False, True), ("1", True, True), ("0", False, False),
    # quickstart read anything but "1" as full size (20 peers, 15 rounds on the whole dataset: minutes on a
    # CPU) and figures anything but "0" as smoke: `true` meant full size in one, `false` smoke in the other
    ("true", True, True), ("yes", True, True), ("false", False, False), ("off", False, False), (" 1 ", True, True),
])
def test_the_notebooks_read_their_smoke_switch_alike(value, quickstart, figures, monkeypatch):
    if value is None:
        monkeypatch.delenv("TALLYSIM_SMOKE", raising=False)
    else:
        monkeypatch.setenv("TALLYSIM_SMOKE", value)
    for name, smoke in (("quickstart", quickstart), ("figures", figures)):
        ns = {}
        exec(_smoke_cell(name), ns)
        assert ns["SMOKE"] is smoke, (name, value)


@pytest.mark.parametrize("read, name", [(metrics.read_partition, "partition.json"), (metrics.read_sweep, "sweep.json")])
def test_a_missing_run_file_is_not_called_corrupt(read, name, tmp_path):
    """Said "DIR/partition.json is not valid JSON (cannot read ...: No such file or directory); it is corrupt
    or truncated": a ConfigError (a ValueError) from the read, taken for JSON's own. read_sweep is given a
    folder that is no run (a run's own folder names itself: test_leftovers_dec24l)."""
    d = _run(tmp_path / "run") if name == "partition.json" else outdir.claim(tmp_path / "empty", False)
    with pytest.raises(ConfigError, match=rf"^cannot read {d}/{name}: No such file or directory$"):
        read(d)


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_figure_config_given_to_run_says_to_draw_it(command, tmp_path, capsys, no_compile):
    """`tallysim run --config experiments/fig1.json` said "unknown config key 'title'"."""
    (tmp_path / "f.json").write_text(json.dumps(FIGURE))
    line = one_line(capsys, [command, "--config", str(tmp_path / "f.json"), "--out", str(tmp_path / "o")])
    assert f"{tmp_path / 'f.json'} is a figure config (it has `kind`, `base`, `groups`), not a run's; " \
           f"draw it with `tallysim figure {tmp_path / 'f.json'}`" in line, line
    with pytest.raises(ConfigError, match="is a figure config"):
        config.load_file(str(tmp_path / "f.json"))


# ----------------------------------------------------------------------------- a misspelt option

@pytest.mark.parametrize("argv, expected", [
    # was "unrecognized arguments: --ovewrite (see `tallysim --help`)": a help that lists none of run's options
    (["run", "--ovewrite", "--out", "x"], "run: unrecognized arguments: --ovewrite; did you mean --overwrite? "
                                          "(see `tallysim run --help`)"),
    (["run", "--checkpoint_every", "2", "--out", "x"], "did you mean --checkpoint-every?"),
    (["sweep", "--dryrun", "seed=0,1", "--out", "x"], "sweep: unrecognized arguments: --dryrun; did you mean --dry-run?"),
    (["table", "x", "--formt", "csv"], "table: unrecognized arguments: --formt csv; did you mean --format"),
    (["run", "--zzzzzz", "--out", "x"], "run: unrecognized arguments: --zzzzzz (see `tallysim run --help`)"),
])
def test_a_misspelt_option_names_its_command_and_the_near_one(argv, expected, tmp_path, capsys, no_compile,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert expected in one_line(capsys, argv)
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- an interrupted sweep

def test_an_interrupted_sweep_says_which_runs_start_again(tmp_path):
    """Ctrl-C in a sweep's first minutes said "the same sweep command, run again, continues it"; its runs had
    saved no checkpoint (every 5 minutes by default), so they start again from round 1."""
    import argparse
    _run(tmp_path / "s" / "seed=0", (1,))                              # stopped at round 1 of 2, no checkpoint
    (_run(tmp_path / "s" / "seed=1", (1,)) / outdir.CHECKPOINT).write_bytes(b"")     # resumes
    _run(tmp_path / "s" / "seed=2", (1, 2))                           # finished
    args = argparse.Namespace(fn=cli.cmd_sweep, out=str(tmp_path / "s"))
    assert cli._how_to_continue(args) == ("; the same sweep command, run again, continues it (1 unfinished run(s) "
                                          "have no checkpoint and start again from round 1: runs that share a "
                                          "program save none without --checkpoint-every K; --one-at-a-time runs "
                                          "save one every 5 minutes)")
    args.out = str(tmp_path / "nothing")
    assert cli._how_to_continue(args) == "; the same sweep command, run again, continues it"          # ok
