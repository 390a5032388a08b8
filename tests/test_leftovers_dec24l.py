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
