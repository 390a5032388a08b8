"""Hostile inputs, round 24 (hostile24): `tallysim compare` (A B, and --by FIELD=VA,VB over a sweep) on hand-edited
run folders, `python -m tallysim.results.verdicts` on edited per-seed CSVs, experiments/per_seed_csv.py's
arguments and runs, hand-edited sweep.json records under table/pareto/plot, an empty --out, TALLYSIM_DATA.
About 400 inputs were tried; those that misbehaved are here, each test naming what the input did before its
fix. Nothing compiles: the runs are written by hand. Milliseconds each.
"""
from __future__ import annotations

import csv
import io
import json
import math
import runpy
import shutil
from pathlib import Path

import pytest
from conftest import one_line

from tallysim import cli
from tallysim.config import ConfigError
from tallysim.results import compare as cmp
from tallysim.results import metrics, sweep_gaps
from tallysim.results import verdicts as V

ROOT = Path(__file__).resolve().parent.parent


def _run(d: Path, proto: str = "tally", acc=None, *, cfg=None, key: str = "acc_mean", config: bool = True) -> Path:
    """A finished run folder: config.json and metrics.jsonl with rows 1..2; `acc` {seed: [round 1, round 2]}
    (several seeds: the mean row with `seeds` and `per_seed`, as seed_mean.aggregate writes it)."""
    acc = acc or {0: [0.5, 0.8], 1: [0.6, 0.82], 2: [0.9, 0.84]}
    d.mkdir(parents=True)
    seeds = sorted(acc)
    if config:
        (d / "config.json").write_text(json.dumps({"protocol": {"name": proto}, "rounds": 2, "seed": seeds[0],
                                                   "seeds": len(seeds), "peers": 4, **(cfg or {})}))
    rows = []
    for r in (1, 2):
        vals = [acc[s][r - 1] for s in seeds]
        good = [v for v in vals if isinstance(v, float) and math.isfinite(v)]
        row = {"round": r, "bits_per_peer": 1024 * r, key: sum(good) / len(good), "acc_global": None}
        if len(seeds) > 1:
            row.update({"seeds": seeds, "per_seed": {key: vals, "bits_per_peer": [1024 * r] * len(seeds)}})
        rows.append(json.dumps(row))
    (d / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    return d


def _edit_last(d: Path, **fields) -> Path:
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    rows[-1].update(fields)
    (d / "metrics.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
    return d


# ----------------------------------------------------------------------------- 1. compare on edited rows

@pytest.mark.parametrize("fields, said", [
    ({"seeds": ["0", "1", "2"]}, r"seeds=\['0', '1', '2'\] is not a list of distinct integers"),
    ({"seeds": [None, 1, 2]}, r"seeds=\[None, 1, 2\] is not a list of distinct integers"),
    ({"seeds": [[0], [1], [2]]}, r"is not a list of distinct integers"),
    ({"seeds": {"0": 1}}, r"is not a list of distinct integers"),
    ({"seeds": 3}, r"seeds=3 is not a list of distinct integers"),
    ({"per_seed": [0.7, 0.71, 0.75]}, r"per_seed is not an object of per-seed lists"),
    ({"per_seed": "x"}, r"per_seed is not an object of per-seed lists"),
    ({"per_seed": {"acc_mean": [0.7, 0.71]}}, r"per_seed\['acc_mean'\] is not a list of 3 values, one per seed"),
    ({"per_seed": {"acc_mean": [0.7, "0.71", 0.75]}}, r"per_seed\['acc_mean'\] is not a list of 3 values"),
], ids=["str", "null", "nested", "dict", "int", "per_list", "per_str", "per_short", "per_str_value"])
def test_a_rows_seeds_or_per_seed_edited_by_hand_is_refused_naming_the_line(tmp_path, capsys, fields, said):
    # a TypeError's traceback from compare (sorted() of "0" against 0, dict(zip()) of [[0]], len() of 3,
    # .get of a list); a list one short, or a value "0.71", was "no seed has a finite value ... (diverged)"
    a, b = _run(tmp_path / "a"), _edit_last(_run(tmp_path / "b", "local"), **fields)
    line = one_line(capsys, ["compare", str(a), str(b)])
    assert "b/metrics.jsonl line 2" in line
    with pytest.raises(ConfigError, match=said):
        metrics.read_rows(b)


def test_a_seed_listed_twice_in_a_row_is_refused_not_paired_with_another_seeds_value(tmp_path, capsys):
    # seeds [0, 0, 2]: zip paired seed 0 with seed 1's value (0.71) and printed "A above B" over 2 seeds
    a = _run(tmp_path / "a")
    b = _edit_last(_run(tmp_path / "b", "local", {0: [0.4, 0.7], 1: [0.5, 0.71], 2: [0.6, 0.75]}), seeds=[0, 0, 2])
    assert "seeds=[0, 0, 2] is not a list of distinct integers" in one_line(capsys, ["compare", str(a), str(b)])


@pytest.mark.parametrize("seed", ["0", None, True, 0.5])
def test_a_config_seed_that_is_no_integer_is_refused_naming_config_json(tmp_path, capsys, seed):
    # "0" and null: TypeError from sorted(); True and 0.5 were "none in common" with seed 0
    a = _run(tmp_path / "a", acc={0: [0.5, 0.6]})
    b = _run(tmp_path / "b", "local", {0: [0.4, 0.5]}, cfg={"seed": seed})
    line = one_line(capsys, ["compare", str(a), str(b)])
    assert f"b/config.json: seed={seed!r} must be an integer" in line


def test_a_run_without_config_json_is_named_not_left_out_in_silence(tmp_path, capsys):
    # --by: a run folder with no config.json was not in any side and named in no note; A B said "is not
    # finished (unknown: round 2 of None)", of a run every round of which had run
    sweep = tmp_path / "sw"
    for lr in (0.1, 0.01):
        _run(sweep / f"tally_{lr}", "tally", cfg={"lr": lr})
        _run(sweep / f"local_{lr}", "local", cfg={"lr": lr}, config=lr == 0.1)
    line = one_line(capsys, ["compare", str(sweep), "--by", "protocol.name=tally,local"])
    assert "local_0.01: no config.json to pair by" in line
    line = one_line(capsys, ["compare", str(sweep / "tally_0.01"), str(sweep / "local_0.01")])
    assert "it has no config.json, so its round count is unknown" in line


# ----------------------------------------------------------------------------- 2. verdicts on edited CSVs

MLP = "fig2_small_mlp_paired_seeds.csv"
LINE = "tally,alpha=0.1,0,10,0.459633"


@pytest.fixture
def figs(tmp_path, monkeypatch):
    """docs/figures' MLP control files copied where verdicts.FIG points: edit them freely."""
    for name in (MLP, "fig2_small_mlp_seeds2to4.csv"):
        shutil.copy(V.FIG / name, tmp_path / name)
    monkeypatch.setattr(V, "FIG", tmp_path)
    return tmp_path


SRC = ((MLP, "fig2_small_mlp_seeds2to4.csv"), "tally", "alpha=0.1", None, None)


@pytest.mark.parametrize("new, said", [
    ("tally,alpha=0.1,0,10,nan", r": group=tally:panel=alpha=0.1, seed 0, round 10: acc_mean='nan' is not an accuracy"),
    ("tally,alpha=0.1,0,10,45.9633", r": group=tally:panel=alpha=0.1, seed 0, round 10: acc_mean='45.9633' is not an accuracy"),
    ("tally,alpha=0.1,0,10,-0.4", r": group=tally:panel=alpha=0.1, seed 0, round 10: acc_mean='-0.4' is not an accuracy"),
    ("tally,alpha=0.1,0,10,", r": group=tally:panel=alpha=0.1, seed 0, round 10: acc_mean='' is not an accuracy"),
    ("tally,alpha=0.1,,10,0.459633", r": a row's seed is '', not a whole number"),
    ("tally,alpha=0.1,0,ten,0.459633", r": a row's round is 'ten', not a whole number"),
], ids=["nan", "percent", "negative", "empty", "empty_seed", "word_round"])
def test_an_edited_verdict_csv_row_is_refused_naming_the_file(figs, new, said):
    # nan and a blank were a TypeError from the difference (None - float); 45.96 (a percent) and -0.4 went
    # into the interval; an empty seed or round cell said "a row's seed is ''", naming no file
    p = figs / MLP
    p.write_text(p.read_text().replace(LINE, new))
    with pytest.raises((ValueError, ConfigError), match=rf"{MLP}{said}"):
        V._values(SRC)


@pytest.mark.parametrize("text, said", [
    ("group,panel,seed,round,acc_mean\n", "holds no rows under its header"),
    (None, "its header 'panel,group,seed,round,acc_mean' is not per_seed_csv.py's"),
    ("renamed", "its header 'group,panel,seed,round,acc' is not per_seed_csv.py's"),
], ids=["header_only", "swapped", "renamed"])
def test_an_emptied_or_reheaded_verdict_csv_is_refused_not_dropped(figs, text, said):
    # the paired file emptied to its header (or its first columns swapped) matched no group and was skipped
    # as a file "beside the paired one" that need not hold every group: verdict #1 went on the other file's
    # 3 seeds, "+0.0881, 3 / 0", where it had 5, in silence; acc_mean renamed was KeyError: 'acc_mean'
    p = figs / MLP
    old = p.read_text()
    p.write_text(old.replace("group,panel,", "panel,group,") if text is None else
                 old.replace(",acc_mean\n", ",acc\n", 1) if text == "renamed" else text)
    with pytest.raises(ValueError, match=said):
        V._values(SRC)


def test_a_verdict_csv_that_is_no_utf8_is_one_line(figs):
    p = figs / MLP                  # UnicodeDecodeError's traceback
    p.write_bytes(p.read_bytes() + b"tally,\xff,0,10,0.5\n")
    with pytest.raises(ConfigError, match=rf"{MLP} is not UTF-8 text"):
        V._values(SRC)


@pytest.mark.filterwarnings("ignore:'tallysim.results.verdicts' found in sys.modules:RuntimeWarning")
def test_python_m_verdicts_prints_one_line_for_an_edited_csv(monkeypatch, capsys):
    from tallysim.results import seed_csv

    def bad(path):
        raise ConfigError(f"{path}: a row's seed is '', not a whole number")
    monkeypatch.setattr(seed_csv, "read", bad)      # a ConfigError's (or ValueError's) traceback
    with pytest.raises(SystemExit) as e:
        runpy.run_module("tallysim.results.verdicts", run_name="__main__")
    assert str(e.value.code).startswith("error: ") and "not a whole number" in str(e.value.code)
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------------- 3. experiments/per_seed_csv.py

def _figure(tmp_path, acc=None, group="tally", config=True) -> Path:
    fig = tmp_path / "fig"
    run = _run(fig / group / "partition.alpha=0.1", group, acc, config=config)
    (run / metrics.DONE).write_text("{}")
    return fig


def _per_seed(capsys, argv) -> tuple:
    from experiments import per_seed_csv
    code = per_seed_csv.main(argv)
    got = capsys.readouterr()
    return code, got.out, got.err.strip().splitlines()


@pytest.mark.parametrize("make, args, said", [
    (None, [], "nope does not exist"),
    ("fig", ["--seeds", "a"], "--seeds 'a': allowed comma-separated integers"),
    ("fig", ["--seeds", "1,"], "--seeds '1,': allowed comma-separated integers"),
    ("fig", ["--seeds", "9"], "1 finished run(s) hold none of --seeds 9"),
    ("fig", ["--panel", "partition.alpha"], "--panel 'partition.alpha': allowed FIELD=NAME"),
    ("fig", ["--panel", ""], "--panel '': allowed FIELD=NAME"),
    ("fig", ["--header", "made\nby hand"], "--header holds a line break"),
    ("nan", [], "seed 0 has no finite acc_mean in its last row"),
    ("null", [], "seed 0 has no finite acc_mean in its last row"),
    ("empty", [], "finished (done.json) with no row in its metrics.jsonl"),
    ("global", [], "seed 0 has no finite acc_mean in its last row"),
], ids=["missing", "seeds_word", "seeds_comma", "seeds_none", "panel_no_name", "panel_empty", "header_break",
        "nan", "null", "empty_rows", "no_acc_mean"])
def test_per_seed_csv_refuses_in_one_line_before_writing_anything(tmp_path, capsys, make, args, said):
    # tracebacks (FileNotFoundError, int('a'), TypeError of None's format, IndexError, ConfigError) after the
    # header was on stdout (the CSV it is redirected to); a --header line break put a row "by hand" into the
    # CSV; --panel partition.alpha wrote panels `partition.alpha=0.1` (verdicts look up alpha=0.1); a nan went
    # into the file; --seeds 9 said "no finished run folder"
    fig = {"fig": lambda: _figure(tmp_path), "nan": lambda: _figure(tmp_path, {0: [0.5, float("nan")], 1: [0.5, 0.6]}),
           "null": lambda: _figure(tmp_path, {0: [0.5, None], 1: [0.5, 0.6]}), None: lambda: tmp_path / "nope",
           "empty": lambda: _figure(tmp_path), "global": lambda: _figure(tmp_path)}[make]()
    run = fig / "tally" / "partition.alpha=0.1"
    if make == "empty":
        (run / "metrics.jsonl").write_text("")
    if make == "global":
        (run / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 1, "acc_global": 0.5}) + "\n")
    code, out, err = _per_seed(capsys, [str(fig), *args])
    assert (code, out) == (2, "") and len(err) == 1 and err[0].startswith("per_seed_csv.py: error: "), (code, out, err)
    assert said in err[0]


def test_per_seed_csv_writes_a_one_seed_run_and_a_group_with_a_comma(tmp_path, capsys):
    # a one-seed run (its row names no seeds) was KeyError: 'seeds'; a group `ta,lly` split into two columns
    fig = _figure(tmp_path, {3: [0.5, 0.625]}, group="ta,lly")
    code, out, err = _per_seed(capsys, [str(fig), "--header", "by hand"])
    assert code == 0 and out.startswith("# by hand\n")
    rows = list(csv.DictReader(io.StringIO(out.split("\n", 1)[1])))
    assert rows == [{"group": "ta,lly", "panel": "alpha=0.1", "seed": "3", "round": "2", "acc_mean": "0.625000"}]


# ----------------------------------------------------------------------------- 4. sweep.json edited by hand

def _sweep(tmp_path, records) -> Path:
    sw = tmp_path / "sw"
    _run(sw / "lr=0.1", cfg={"lr": 0.1})
    _run(sw / "lr=0.01", cfg={"lr": 0.01})
    (sw / "sweep.json").write_text(records if isinstance(records, str) else json.dumps({"runs": records}))
    return sw


@pytest.mark.parametrize("status", [["not_run"], {"a": 1}])
def test_an_unhashable_status_in_sweep_json_is_no_traceback(tmp_path, capsys, status):
    # TypeError: unhashable type (WHY.get) from table, pareto and plot of a run
    sw = _sweep(tmp_path, [{"name": "lr=0.1", "status": "done"}, {"name": "lr=1", "status": status}])
    assert cli.main(["table", str(sw)]) == 0
    assert "1 of 2 runs its sweep.json lists have no rows" in capsys.readouterr().err
    assert sweep_gaps.notes([sw], "plot", parents=True) == sweep_gaps.notes([sw / "lr=0.1"], "plot", parents=True)


@pytest.mark.parametrize("name", ["/etc", "../sw", "", ".", "a/b", "x" * 5000])
def test_a_listed_name_that_is_no_run_folder_is_not_called_a_run_not_run_yet(tmp_path, capsys, name):
    # '/etc', '../sw', '' were "not run yet, left out by a `figure --only/--panel` selection: /etc"; a
    # name past the file system's length refused the whole table ("File name too long")
    sw = _sweep(tmp_path, [{"name": "lr=0.1", "status": "done"}, {"name": name, "status": "not_run"}])
    assert cli.main(["table", str(sw)]) == 0
    assert "sweep.json lists" not in capsys.readouterr().err


def test_a_name_listed_twice_counts_once_and_a_deep_sweep_json_is_corrupt_not_a_recursion(tmp_path, capsys):
    sw = _sweep(tmp_path, [{"name": "lr=1", "status": "not_run"}] * 2)
    note, = sweep_gaps.notes([sw], "table")
    assert "1 of 1 runs" in note and "lr=1, lr=1" not in note      # "2 of 2 runs ...: lr=1, lr=1"
    deep = _sweep(tmp_path / "d", '{"runs": ' + "[" * 5000 + "]" * 5000 + "}")
    assert sweep_gaps.notes([deep], "table") == []
    with pytest.raises(ConfigError, match=r"sweep.json is not valid JSON"):      # RecursionError's traceback
        metrics.read_sweep(deep)
    assert cli.main(["table", str(deep)]) == 0           # its runs tabled, in their folders' order
    assert "| lr=0.01 |" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 5. --out '' and TALLYSIM_DATA

@pytest.mark.parametrize("command", ["compare", "table", "pareto", "plot"])
@pytest.mark.parametrize("out", ["", " "])
def test_an_empty_out_is_refused_as_empty(tmp_path, capsys, monkeypatch, command, out):
    # '' said "--out  is a directory" (Path('') is '.'); table and compare --out ' ' wrote a file named ' '
    monkeypatch.chdir(tmp_path)
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b", "local")
    runs = [str(a), str(b)] if command == "compare" else [str(a)]
    line = one_line(capsys, [command, *runs, "--out", out])
    assert f"--out {out!r} is an empty path" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_a_tallysim_data_past_the_name_length_is_refused_naming_the_variable(monkeypatch):
    from tallysim.data import cache
    from tallysim.data.base import DataError
    monkeypatch.setenv("TALLYSIM_DATA", str(Path("/tmp") / ("b" * 300) / "c"))
    # OSError: [Errno 36] File name too long: '/tmp/bbb...', naming no variable
    with pytest.raises(DataError, match=r"TALLYSIM_DATA=/tmp/b{75}\.\.\. cannot be a directory here \(File name too long"):
        cache.cache_dir()


def test_compare_by_values_read_as_the_command_line_writes_them(tmp_path):
    # not misbehaving (tried): 1e-1 and .1 match 0.1, the field's values are listed for an unknown one
    sw = tmp_path / "sw"
    for lr in (0.1, 0.01):
        _run(sw / f"t{lr}", cfg={"lr": lr})
        _run(sw / f"l{lr}", "local", cfg={"lr": lr})
    assert [p["pair"] for p in cmp.compare(sw, by="lr=1e-1,.01")] == ["protocol.name=local", "protocol.name=tally"]
    with pytest.raises(ConfigError, match=r"no run has lr=0.5; the runs' values: 0.01, 0.1"):
        cmp.compare(sw, by="lr=0.5,0.1")


# ----------------------------------------------------------------------------- 6. tallysim.compare's arguments

def test_compare_from_python_refuses_an_unknown_fmt_and_an_out_that_is_no_path(tmp_path):
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b", "local")
    with pytest.raises(ConfigError, match=r"compare\(fmt='html'\) is not known; allowed: markdown, csv"):
        cmp.compare(a, b, fmt="html")           # taken in silence without an out
    for out in (5, b"x.md"):                    # TypeError from inside pathlib
        with pytest.raises(ConfigError, match=r"compare\(out=.*\): expected a file path"):
            cmp.compare(a, b, out=out)


def test_a_column_the_mean_rows_do_not_split_by_seed_is_named_not_called_diverged(tmp_path, capsys):
    # wall_s (the slowest seed's, no per-seed list): every seed was None, "no seed has a finite value in both
    # A and B", the words of diverged seeds
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b", "local")
    for d in (a, b):
        _edit_last(d, wall_s=12.5)
    line = one_line(capsys, ["compare", str(a), str(b), "--metric", "wall_s"])
    assert "'wall_s' has one value per row for all its seeds" in line and "(acc_mean, bits_per_peer)" in line


@pytest.mark.parametrize("value", [" ", "\t"])
def test_a_blank_tallysim_data_is_refused_not_a_folder_named_blank(monkeypatch, value):
    from tallysim.data import cache
    from tallysim.data.base import DataError
    monkeypatch.setenv("TALLYSIM_DATA", value)
    with pytest.raises(DataError, match=r"TALLYSIM_DATA=.* is blank"):      # was Path(' '): a folder ' ' here
        cache.cache_dir()


def test_a_sweep_over_a_sweep_json_nested_thousands_deep_refuses_it_as_damaged(tmp_path, capsys, no_compile):
    # RecursionError's traceback from atomic.is_sweep_index (outdir.check_sweep_dir), before the plan was said
    from conftest import TINY
    out = tmp_path / "sw"
    out.mkdir()
    (out / "sweep.json").write_text('{"runs": ' + "[" * 5000 + "]" * 5000 + "}")
    line = one_line(capsys, ["sweep", "--dry-run", "--out", str(out), *TINY, "optim.lr=0.1,0.2"])
    assert "its sweep.json is not a sweep index (damaged, or not tallysim's)" in line
    from tallysim import sweep_resume
    sweep_resume.refuse_smoke_mix(out, [("optim.lr=0.1", None)], True, "done.json")   # says nothing: no traceback


def test_a_copy_of_a_run_beside_it_is_named_with_the_run_it_repeats(tmp_path, capsys):
    # `cp -r sw/l0.1 sw/l0.1.bak`: "seed 0 is in two runs of one setting (sw/l0.1.bak and another)"
    sw = tmp_path / "sw"
    for lr in (0.1, 0.01):
        _run(sw / f"t{lr}", cfg={"lr": lr})
        _run(sw / f"l{lr}", "local", cfg={"lr": lr})
    shutil.copytree(sw / "l0.1", sw / "l0.1.bak")
    line = one_line(capsys, ["compare", str(sw), "--by", "protocol.name=tally,local"])
    assert f"seed 0 is in two runs of one setting ({sw / 'l0.1'} and {sw / 'l0.1.bak'})" in line


@pytest.mark.parametrize("folder", ["started", "empty"])
def test_plot_of_a_sweeps_runs_mid_sweep_names_a_run_not_evaluated_yet(tmp_path, capsys, folder):
    # `plot sw/*` while the sweep runs: "sw/lr=0.2 has no metrics.jsonl; pass directories written by
    # `tallysim run --out`", of a folder tallysim wrote (its config.json) or made for a run to come
    sw = _sweep(tmp_path, [{"name": "lr=0.1", "status": "done"}, {"name": "lr=0.2", "status": "running"}])
    (sw / "lr=0.2").mkdir()
    if folder == "started":
        (sw / "lr=0.2" / "config.json").write_text(json.dumps({"protocol": {"name": "tally"}, "rounds": 2}))
    for argv in (["plot", str(sw / "lr=0.1"), str(sw / "lr=0.2"), "--out", str(tmp_path / "p.png")],
                 ["compare", str(sw / "lr=0.1"), str(sw / "lr=0.2")]):
        line = one_line(capsys, argv)
        assert "lr=0.2 has no metrics.jsonl yet: a run not evaluated yet" in line, line
        assert "written by `tallysim run --out`" not in line


def test_a_verdict_csv_saved_by_a_windows_editor_reads_the_same(figs):
    # a byte-order mark before `group` was KeyError: 'group', a traceback
    want = V._values(SRC)
    p = figs / MLP
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes().replace(b"\n", b"\r\n"))
    assert V._values(SRC) == want
