"""userjourney10: a researcher extends tallysim with a plugin vote (a confidence-weighted vote), sweeps it
beside tally, bridge and the FedAvg family, stops the sweep and resumes it, and writes a figure config.
What a user hit, each checked without compiling:
- Ctrl-C of a sweep run with `--checkpoint-every K` said its unfinished runs "have no checkpoint ...: runs
  that share a program save none", as if K had been ignored (they had stopped before their first K rounds);
- a resumable run was "will resume from round 1" (--dry-run) and "resuming from round 1" (the sweep), then
  the run itself "resuming ... from round 2 of 4 (checkpoint after round 1)": the same checkpoint, two rounds
  (the rounds' wording is checked in test_resume.py and test_leftovers_dec19k.py);
- `sweep --help` said partial runs "rerun", where they continue from their checkpoint;
- docs/figures.md named a figure config's keys nowhere (the user copied experiments/*.json): its new
  example block is checked here as a config a figure runs, full and smoke."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pytest

from tallysim import cli, cli_parser, outdir

ROOT = Path(__file__).resolve().parents[1]


def _stopped_run(d: Path) -> None:
    """A run stopped before its first checkpoint: config.json and a row, no checkpoint.npz, no done.json."""
    outdir.claim(d, False)
    (d / "config.json").write_text("{}")
    (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "acc_mean": 0.5, "bits_per_peer": 1.0}) + "\n")


@pytest.mark.parametrize("every, why", [
    (None, "runs that share a program save none without --checkpoint-every K; --one-at-a-time runs save one "
           "every 5 minutes"),
    (2, "they stopped before their first checkpoint (every 2 round(s))"),
    (0, "--checkpoint-every 0 saves none"),
])
def test_an_interrupted_sweep_says_why_its_runs_start_again_under_its_own_checkpoint_every(tmp_path, every, why):
    _stopped_run(tmp_path / "s" / "seed=0")
    args = argparse.Namespace(fn=cli.cmd_sweep, out=str(tmp_path / "s"), checkpoint_every=every)
    assert cli._how_to_continue(args) == ("; the same sweep command, run again, continues it (1 unfinished run(s) "
                                          f"have no checkpoint and start again from round 1: {why})")


def test_sweep_help_says_partial_runs_continue_from_their_checkpoint():
    sub = next(a for a in cli_parser.parser()._actions if isinstance(a, argparse._SubParsersAction))
    text = sub.choices["sweep"].format_help()
    text = " ".join(text.split())
    assert "partial ones rerun" not in text
    assert "partial ones continue from their checkpoint.npz" in text


def _figure_block() -> dict:
    page = (ROOT / "docs" / "figures.md").read_text()
    section = page.split("### Your own figure config", 1)[1].split("\n### ", 1)[0]
    block, = re.findall(r"```json\n(.*?)```", section, re.S)
    return json.loads(block)


@pytest.mark.parametrize("smoke", [False, True])
def test_the_figure_config_docs_figures_md_shows_is_one_a_figure_runs(tmp_path, monkeypatch, capsys, smoke,
                                                                      registry_restored):
    # (not no_compile: importing the plugin's building blocks reaches jax.jit at import; --dry-run compiles
    # nothing, and writes no results, checked below)
    spec = _figure_block()
    assert spec["kind"] == "pareto" and spec["smoke"]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(spec))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT / "examples"))       # PYTHONPATH=examples, as the page says
    argv = ["figure", str(path), "--dry-run", "--results", "res", "--out", "figs"] + (["--smoke"] if smoke else [])
    assert cli.main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "mine" + ("-smoke" if smoke else "") + ": 7 runs" in out, out
    assert not (tmp_path / "res").exists()


def test_a_pareto_figure_names_every_file_it_writes(tmp_path):
    """`tallysim figure mine.json` said "wrote mine.png, mine.pdf, mine_points.csv, mine_frontier.md" and wrote
    mine_frontier.csv too (its OUT/mine.json, "the files it wrote", missed it as well); with `panels`, each
    panel's three tables were named nowhere. Drawn from runs written by hand (no training)."""
    from tallysim.figures import plots
    runs = {}
    for name, bits, acc in (("tally", 800, 0.3), ("fedavg", 10 ** 6, 0.5)):
        d = tmp_path / "res" / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"protocol": {"name": name}, "rounds": 1,
                                                   "partition": {"kind": "iid"}}))
        (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "acc_mean": acc, "acc_global": None,
                                                     "bits_per_peer": bits}) + "\n")
        runs[name] = [(name, d)]
    for panels in ({}, {"a": {}}):
        fig = tmp_path / f"fig{len(panels)}"
        fig.mkdir()
        if panels:                     # a panel's runs are those under a directory named `<panel>__...`
            for name in list(runs):
                d = runs[name][0][1]
                runs[name] = [(name, d.rename(d.parent / f"a__{name}"))]
        out = plots.pareto_fig({"kind": "pareto", "panels": panels}, runs, fig / "mine", "t")
        assert sorted(str(p) for p in fig.iterdir()) == sorted(str(p) for p in out.values()), out


def test_a_finished_run_of_an_edited_plugin_is_named_when_the_sweep_skips_it(tmp_path, monkeypatch):
    """The researcher edits the plugin and runs the same sweep again: every finished run was skipped in
    silence ("0 ran, 6 skipped"), its rows the old code's. config.json now records the plugin's source digest
    (tests/test_plugins.py checks it is written), and the dry run and the sweep name the edited plugin.
    Written by hand (no training): a finished run's directory and an imported plugin module."""
    import importlib.util
    from conftest import tiny
    from tallysim import config, sweep, sweep_plan
    from tallysim.protocols import plugin_import
    mod = tmp_path / "uj10plug.py"
    mod.write_text("PROTOCOLS = {}\n")
    spec = importlib.util.spec_from_file_location("uj10plug", mod)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "uj10plug", module)     # imported for this test only, gone after it
    cfg = config.validate(tiny())
    run_dir = tmp_path / "s" / "base"
    outdir.claim(run_dir, False)
    doc = {**config.to_dict(cfg.resolved()), "code": {"plugins": {"uj10plug": plugin_import.source_digest("uj10plug")}}}
    (run_dir / "config.json").write_text(json.dumps(doc))
    (run_dir / "metrics.jsonl").write_text(json.dumps({"round": cfg.rounds, "acc_mean": 0.5, "bits_per_peer": 1.0}) + "\n")
    (run_dir / "done.json").write_text("{}")
    assert sweep_plan.plugin_edits(run_dir) == [] and sweep_plan.state(run_dir, cfg) == "done"
    mod.write_text("PROTOCOLS = {}  # edited\n")
    assert sweep_plan.plugin_edits(run_dir) == ["uj10plug"]
    assert sweep_plan.state(run_dir, cfg) == "done; skipped, though plugin uj10plug has changed since it ran"
    said = []
    recs = sweep.run_sweep(cfg, [("base", [])], tmp_path / "s", progress=False, log=said.append)
    assert recs[0]["status"] == "done_before"
    assert any("note: plugin uj10plug has changed since this run finished" in s for s in said), said
