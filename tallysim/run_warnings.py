"""What a finished run warns of on stderr (split from run.py, which calls these for `run` and `run_group`
and re-exports them): the collapse warning, and the peers that stayed at the floor; each named by its run's
directory, printed by process 0."""
from __future__ import annotations

import sys
from pathlib import Path

from tallysim.results import dead_peers
from tallysim.results.metrics import run_collapse_warning
from tallysim.sim import mesh


def warn_collapsed(results: list, spec) -> None:
    """The collapse warning (results/headline.collapse_warning) of each finished run on stderr, named by
    its directory: a lone run's (`run`, a sweep's or a figure's run alone) and each of a group's (`run`
    printed it and run_group did not, so a sweep's or a figure's grouped runs never warned); process 0."""
    for last in results:
        if mesh.is_writer() and not isinstance(last, Exception) and (note := run_collapse_warning(last, spec)):
            print(note, file=sys.stderr)


def warn_dead(results: list) -> None:
    """The peers that stayed at the floor at every evaluation after the first (results/dead_peers.py: the
    demo's seed 1 ran 15 rounds with peer 0 diverged at 0.1000, in nothing it printed), named once on
    stderr per finished run with a directory, read from its rows; process 0."""
    for last in results:
        if mesh.is_writer() and not isinstance(last, Exception) and last.get("out") and \
                (dead := dead_peers.of_run(last["out"])):
            print(dead_peers.warning(dead, Path(last["out"]).name), file=sys.stderr)
