"""Leftovers noticed by earlier reviews (Dec 5, fifth pass): the distillation gate's agreement on text
counts only real probe positions, the exchange splits a peer's probes when its forward pass over all of
them exceeds the chunk budget, perplexity overflow is strict JSON in metrics.jsonl, only a command-line
ARGS reaches make's figure targets, pareto skips corrupt runs through read_runs, and the traced
per-example peak is positive for conv models."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------- make's ARGS: the command line only

def _make_n(target: str, *words: str, env_args: str | None = None) -> str:
    if shutil.which("make") is None:
        pytest.skip("no make here")
    env = {k: v for k, v in os.environ.items() if k not in ("ARGS", "MAKEFLAGS", "MFLAGS")}
    if env_args is not None:
        env["ARGS"] = env_args
    out = subprocess.run(["make", "-n", target, *words], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return next(ln for ln in out.splitlines() if " figure " in ln)


@pytest.mark.parametrize("target", ["fig1", "robustness", "matched-bits"])
def test_an_args_exported_in_the_shell_does_not_reach_a_figure_target(target):
    """`export ARGS=--foo; make fig1` passed --foo to `tallysim figure` (make reads the environment)."""
    line = _make_n(target, env_args="--foo")
    assert "--foo" not in line and line.rstrip().endswith("--quiet"), line


def test_a_command_line_args_still_reaches_it_and_wins_over_the_shells():
    assert _make_n("fig1", "ARGS=--dry-run").rstrip().endswith("--quiet --dry-run")
    line = _make_n("fig1", "ARGS=--dry-run", env_args="--foo")
    assert "--foo" not in line and line.rstrip().endswith("--dry-run"), line
    # the shell's ARGS cannot drop --quiet either (FIG_QUIET reads the same ARGS)
    assert _make_n("fig8", env_args="--progress lines").rstrip().endswith("--quiet")
