"""A new user's journey (2026-12-06): a researcher extending the bridge-vs-FedAvg-family comparison from a
notebook through the Python API, a sweep of the bridge's knobs, then a results folder copied and cleaned.

- docs/api.md calls `tallysim.startup.compile_cache()`, `tallysim.config.load_file(...)` and
  `tallysim.results.metrics.accuracy(row)` after `import tallysim`; each was an AttributeError (the
  submodules were never imported). `tallysim` and `tallysim.results` now import a submodule on first use,
  still without JAX at `import tallysim`.
- A grouped sweep's log line named its runs `[1..7/8] 4 runs as one program` for runs 1, 3, 5 and 7; it
  now lists them, `[1,3,5,7/8]` (`1..4` where they follow one another).
- `tallysim clean DIR` did not exist (only `make clean`, which also removes .venv and the figures); it is
  now clean.py's check and removal for one results directory anywhere.
Nothing here compiles.
"""
import subprocess
import sys
from pathlib import Path

import pytest

from tallysim import cli
from tallysim.sweep import run_numbers

ROOT = Path(__file__).resolve().parent.parent


def test_documented_submodules_work_after_a_plain_import():
    # a fresh interpreter: in pytest's the submodules are imported already, which hid the bug
    code = ("import sys, tallysim\n"
            "print(callable(tallysim.startup.compile_cache), callable(tallysim.config.load_file),\n"
            "      callable(tallysim.results.metrics.accuracy), callable(tallysim.results.pareto.overall))\n"
            "print('jax' in sys.modules, 'tallysim.results.plot' in sys.modules)\n"
            "for bad in ('tallysim.nosuch', 'tallysim.results.nosuch', 'tallysim._private'):\n"
            "    try:\n"
            "        eval(bad)\n"
            "    except AttributeError as e:\n"
            "        print(e)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "True True True True"
    assert lines[1] == "False False"               # no JAX, and only the modules named were imported
    assert lines[2:] == ["module 'tallysim' has no attribute 'nosuch'",
                         "module 'tallysim.results' has no attribute 'nosuch'",
                         "module 'tallysim' has no attribute '_private'"]


@pytest.mark.parametrize("batch, shown", [([0, 1, 2, 3], "1..4"), ([0, 2, 4, 6], "1,3,5,7"),
                                          ([1, 3], "2,4"), (list(range(0, 30, 3)), "1,4,7,...,28"),
                                          ([5], "6..6")])
def test_a_groups_run_numbers_say_which_runs(batch, shown):
    assert run_numbers(batch) == shown


def _results(root: Path) -> Path:
    """A results folder as tallysim writes it, without running anything: one run (its marker and
    files) inside a sweep directory (its sweep.json)."""
    from tallysim import outdir
    sweep = root / "sweep"
    run = sweep / "protocol.name=tally"
    run.mkdir(parents=True)
    (run / outdir.MARKER).write_text('{"written_by": "tallysim"}\n')
    for name in ("config.json", "metrics.jsonl", "partition.json", "done.json"):
        (run / name).write_text("{}\n")
    (sweep / "sweep.json").write_text('{"runs": []}\n')
    return root


def test_tallysim_clean_removes_only_a_folder_of_tallysims_own(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    copy = _results(tmp_path / "copy")
    mine = tmp_path / "mine"
    _results(mine)
    (mine / "sweep" / "notes.txt").write_text("my notes")
    assert cli.main(["clean", "mine"]) == 2
    err = capsys.readouterr().err
    assert "refusing to remove mine" in err and "notes.txt" in err, err
    assert (mine / "sweep" / "notes.txt").read_text() == "my notes"
    assert (mine / "sweep" / "protocol.name=tally" / "metrics.jsonl").exists()   # nothing removed
    assert cli.main(["clean", "."]) == 2                                           # the working directory
    assert "working directory" in capsys.readouterr().err
    assert cli.main(["clean", "copy"]) == 0
    assert "removed copy" in capsys.readouterr().out
    assert not copy.exists() and mine.exists()


def test_pareto_prints_the_frontier_over_all_protocols(tmp_path, capsys):
    # "is bridge on the frontier?": per protocol every protocol has one; across protocols the bridge
    # here is beaten by tally (fewer bits, higher accuracy), and FedAvg's costlier point stays on it
    import json
    for run, proto, bits, acc in [("t", "tally", 400, 0.57), ("b", "bridge", 3e5, 0.50),
                                  ("f", "fedavg", 3e6, 0.62)]:
        d = tmp_path / "res" / run
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"protocol": {"name": proto}, "rounds": 1}))
        (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": bits, "acc_mean": acc,
                                                     "acc_global": None}) + "\n")
    assert cli.main(["pareto", str(tmp_path / "res"), "--out", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "bridge: b 0.5000 @ 0.0375 MB" in out                 # its own frontier, as before
    assert "all protocols: tally t 0.5700 @ 5e-05 MB, fedavg f 0.6200 @ 0.375 MB" in out, out


def test_read_rows_leaves_a_field_the_protocol_never_reads_empty_as_table_does(tmp_path):
    # FedAvg's distill.weight read 1.0 in pandas beside the bridge's 0 and 1 (table showed it empty)
    import json

    import tallysim
    from tallysim.results.table import table_rows
    for run, proto, weight in [("fa", "fedavg", 1.0), ("b0", "bridge", 0.0), ("b1", "bridge", 1.0)]:
        d = tmp_path / "res" / run
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"protocol": {"name": proto}, "rounds": 1,
                                                   "distill": {"weight": weight}}))
        (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "bits_per_peer": 8, "acc_mean": 0.5,
                                                     "acc_global": 0.5}) + "\n")
    got = {r["run"]: r["distill.weight"] for r in tallysim.read_rows(tmp_path / "res")}
    assert got == {"fa": None, "b0": 0.0, "b1": 1.0}
    cols, rows = table_rows([tmp_path / "res"])
    assert {r["run"]: r["distill.weight"] for r in rows} == {"fa": None, "b0": 0.0, "b1": 1.0}   # the same


def test_results_repr_is_one_line_not_every_row(tmp_path):
    # a notebook cell ending in `res` printed every metrics row and the whole config (kilobytes)
    import json

    import tallysim
    d = tmp_path / "run"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"protocol": {"name": "bridge"}, "rounds": 5, "peers": 4}))
    rows = [{"round": r, "bits_per_peer": 800.0 * r, "acc_mean": 0.5, "acc_global": 0.096} for r in (1, 2)]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = tallysim.Results.read(d)
    assert repr(res) == (f"Results({str(d)!r}: bridge, incomplete, 2 rows; round 2: acc_global 0.0960 @ 1600 "
                         "bits per peer)")
    assert repr(tallysim.Results(tmp_path)).endswith(": ?, unknown, 0 rows)")


def test_a_sweep_names_its_bridge_runs_that_never_merge(capsys, tmp_path):
    # bridge.period=5,10 at rounds=4: tally runs whose headline is the shared init (0.096 here), drawn on
    # the Pareto plot as bridge points at chance; a single run warned, a sweep said nothing
    argv = ["sweep", "--config", str(ROOT / "experiments" / "quick.json"), "protocol.name=bridge", "rounds=4",
            "bridge.period=2,5,10", "--out", str(tmp_path / "s"), "--dry-run"]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert ("tallysim: warning: sweep run bridge.period=5 and 1 more: bridge.period > rounds, so no merge "
            "happens") in err, err
    assert cli.main([*argv[:-4], "bridge.period=2,4", *argv[-3:]]) == 0      # every run merges: no word
    assert "no merge" not in capsys.readouterr().err
