"""Leftovers of 2026-12-07 (leftovers25): `sweep --dry-run`'s closing line counts what the sweep would run
and compile, not every run; ..."""
import json  # noqa: F401

import pytest  # noqa: F401

from tallysim import cli, sweep  # noqa: F401 (imported before jit is patched)
from conftest import TINY
from test_hostile_dec07 import _finished_sweep


# ----------------------------------------------------------------------------- 1. sweep --dry-run's closing line

@pytest.mark.parametrize("axes, extra, said", [
    (["seed=0,1,2,3"], [], "4 runs (2 done, 2 to run); 1 compiled programs"),
    # one at a time, seed=3 reuses seed=2's program from the compile cache (sweep_plan.compiles)
    (["seed=0,1,2,3"], ["--one-at-a-time"], "4 runs (2 done, 2 to run); 1 compiled programs"),
    (["seed=0,1"], [], "2 runs (2 done, 0 to run); 0 compiled programs"),
])
def test_a_dry_run_into_a_sweep_directory_counts_only_the_runs_it_would_run(axes, extra, said, tmp_path, capsys,
                                                                             no_compile):
    # it said "4 runs; 1 compiled programs" (and "2 runs; 1 compiled programs" with both done): the runs
    # the real sweep skips were counted as if they would run
    out = _finished_sweep(tmp_path)                      # seed=0 and seed=1 done (written by hand)
    assert cli.main(["sweep", *TINY, *axes, "--out", str(out), "--dry-run", *extra]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == said
