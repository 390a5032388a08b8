"""Leftovers of userjourney13 (2026-12-07): the results readers given the other kind of folder (a run's to
read_sweep, a sweep's to the one-run readers) say which it is and what reads it. Nothing here compiles."""
from __future__ import annotations

import json

import pytest

import tallysim
from tallysim import config
from tallysim.config import ConfigError
from tallysim.results import metrics
from conftest import tiny


def _run(d):
    """A finished run of two rows written by hand (config.json, metrics.jsonl), as tallysim lays it out."""
    d.mkdir(parents=True)
    (d / metrics.CONFIG).write_text(json.dumps(config.to_dict(config.validate(tiny()).resolved())))
    (d / metrics.METRICS).write_text("".join(json.dumps({"round": r, "acc_mean": 0.5, "acc_global": None,
                                                         "bits_per_peer": 512.0 * r}) + "\n" for r in (1, 2)))
    return d


@pytest.mark.parametrize("in_sweep", [False, True])
def test_read_sweep_of_a_run_folder_says_it_is_a_run(tmp_path, in_sweep):
    """Said only "cannot read RUN/sweep.json: No such file or directory", as if the sweep's index were lost."""
    if in_sweep:
        (tmp_path / metrics.SWEEP).write_text(json.dumps({"runs": []}))
    run = _run(tmp_path / "optim.lr=0.05")
    with pytest.raises(ConfigError) as e:
        metrics.read_sweep(run)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{run} is a run directory (it holds config.json / metrics.jsonl), not a sweep's: "
                          "it has no sweep.json"), msg
    assert f"tallysim.read_rows({str(run)!r}) or tallysim.Results.read({str(run)!r})" in msg
    assert (f"its sweep is {tmp_path}" in msg) is in_sweep, msg
    # what it names reads the run, and the parent it names (a sweep) reads as one
    assert [r["round"] for r in tallysim.read_rows(run)] == [1, 2]
    assert len(tallysim.Results.read(run).rows) == 2
    if in_sweep:
        assert metrics.read_sweep(tmp_path) == {"runs": []}


def test_the_one_run_readers_of_a_sweep_folder_name_what_reads_it(tmp_path):
    """The reverse: a sweep's --out given where one run is read says it is a sweep and what reads it whole."""
    (tmp_path / metrics.SWEEP).write_text(json.dumps({"runs": []}))
    for read in (metrics.read_rows, metrics.read_run, tallysim.Results.read):
        with pytest.raises(ConfigError) as e:
            read(tmp_path)
        msg = str(e.value)
        assert "\n" not in msg
        assert msg.startswith(f"{tmp_path} is a sweep directory, not a run; pass its runs ({tmp_path}/*/)"), msg
        assert "tallysim.read_rows" in msg, msg


def _headings(text: str) -> list[str]:
    """A page's markdown headings, outside fenced code blocks (a shell comment is no heading)."""
    heads, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#") and line.lstrip("#").startswith(" "):
            heads.append(line)
    return heads


def test_no_page_repeats_its_title_as_a_section():
    """docs/notebooks.md ("# Notebooks" then "## Notebooks") and docs/sweeps.md did: the title twice on
    the page and in the site's table of contents."""
    from pathlib import Path
    docs = Path(__file__).resolve().parent.parent / "docs"
    pages = sorted(docs.rglob("*.md"))
    assert len(pages) > 20
    repeated = []
    for page in pages:
        heads = _headings(page.read_text(encoding="utf-8"))
        titles = [h.lstrip("#").strip().lower() for h in heads if h.startswith("# ")]
        repeated += [f"{page.name}: {h}" for h in heads if not h.startswith("# ")
                     and h.lstrip("#").strip().lower() in titles]
    assert not repeated, repeated


class _Built(Exception):
    """Raised where a run would load its data and compile: every check a run makes before is passed."""


def _cells(name: str) -> list[str]:
    from pathlib import Path
    nb = json.loads((Path(__file__).resolve().parent.parent / "notebooks" / f"{name}.ipynb").read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _cell(name: str, needle: str) -> str:
    hits = [c for c in _cells(name) if needle in c]
    assert len(hits) == 1, (name, needle)
    return hits[0]


def test_every_notebook_has_a_fast_preflight():
    """`make test` executes no notebook (test_notebooks' executions are slow, `make test-all`): each one's
    run cell has a fast test here or there that passes its own arguments through the checks its runs make
    first. A new notebook must get one (the figures notebook: test_notebooks'
    test_figures_notebook_make_figure_call_passes_the_figures_checks; the quickstart: the test below)."""
    from pathlib import Path
    names = {p.stem for p in (Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb")}
    assert names == {"quickstart", "figures"}, f"{sorted(names)}: give a new notebook a fast preflight test"


@pytest.mark.parametrize("smoke", ["1", "0"])
def test_quickstart_notebook_runs_pass_the_checks_a_run_makes_first(smoke, tmp_path, monkeypatch):
    """The quickstart notebook's run cell, executed as written at smoke and full size from a fresh working
    directory, with `tallysim.run` stopped where a run would load its data (run.build): every run's config
    (validation, single-run field checks) and out (outdir, tracking) pass what tallysim.run checks before;
    the plot cell's out is a figure file. Nothing loads, compiles or runs (test_notebooks' slow
    test_quickstart_notebook executes it whole)."""
    import ast
    import importlib
    import types
    from tallysim import startup
    from tallysim.results.figure_files import check_figure_out
    built = []

    def stop(cfg, *args, **kwargs):
        built.append(cfg.protocol.name)
        raise _Built

    monkeypatch.setattr(importlib.import_module("tallysim.run"), "build", stop)
    monkeypatch.setattr(startup, "compile_cache", lambda: None)     # the suite's JAX cache left as it is
    monkeypatch.setenv("TALLYSIM_SMOKE", smoke)
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(_cell("quickstart", "SMOKE ="), ns)
    outs = []

    def checked_run(cfg, out=None, **kwargs):
        with pytest.raises(_Built):
            tallysim.run(cfg, out=out, **kwargs)
        outs.append(out)
        return types.SimpleNamespace(last={})

    ns["tallysim"] = types.SimpleNamespace(run=checked_run)
    ns["metrics"] = types.SimpleNamespace(summary_line=lambda cfg, row: "")
    exec(_cell("quickstart", "tallysim.run("), ns)
    assert built == ns["PROTOCOLS"] == ["tally", "softlabel", "fedavg"], built
    assert len(set(outs)) == 3 and ns["dirs"] == outs
    plot = _cell("quickstart", "plot_curves(")
    call, = [n for n in ast.walk(ast.parse(plot)) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr == "plot_curves"]
    png, = [ast.literal_eval(k.value) for k in call.keywords if k.arg == "out"]
    check_figure_out(png)
    assert not any(p in outs for p in map(str, __import__("pathlib").Path(png).parents)), png   # beside the runs


def _quick_tally_final() -> str:
    """The quick start's tally accuracy after its last round, as 0.xxxx, from docs/quick.csv (its runs)."""
    import csv
    from pathlib import Path
    with open(Path(__file__).resolve().parent.parent / "docs" / "quick.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] == "tally" and r["metric"] == "acc_mean"]
    assert [int(r["round"]) for r in rows] == list(range(1, 11)), rows
    return f"{float(rows[-1]['value']):.4f}"


def test_the_sweeps_drift_example_is_the_quick_starts_tally():
    """docs/sweeps.md's drift example (a lone run against the same run grouped) quoted 0.6306 for the lone
    quick.json tally run after the seeds were paired and the quick start re-measured it (0.6236): its lone
    number is the quick start's own, so re-measuring one flags the other; write-a-protocol.md's too."""
    from pathlib import Path
    text = " ".join((Path(__file__).resolve().parent.parent / "docs" / "sweeps.md").read_text().split())
    lone = _quick_tally_final()
    assert f"round 10 {lone} alone and in `--one-at-a-time`" in text, lone
    # write-a-protocol's comparison runs the same tally run beside its fedmix sweep (it said 0.6306 too)
    text = " ".join((Path(__file__).resolve().parent.parent / "docs" / "write-a-protocol.md").read_text().split())
    assert f"tally {lone} at 0.002 MB per peer" in text, lone
