"""The collapse warning (results/headline.collapse_warning, printed by run.py after a run): tally's
peers collapsed onto one shared wrong answer (docs/protocols.md, "Long runs"). The rows are the last
metrics rows of measured runs (synthetic data, 3 or 5 peers, 60 rounds, docs/protocols.md's numbers)."""
from __future__ import annotations

import inspect
import types

import pytest

from tallysim import run as runmod
from tallysim.results import metrics

# last rows, rounded: tally on synthetic, 3 peers, 60 rounds at the defaults (collapsed), and the same
# with optim.lr=0.01 and with distill.weight=0.3 (healthy, unanimous but well above chance)
COLLAPSED = {"round": 60, "agreement": 1.0, "vote_acc": 0.106, "acc_mean": 0.1002, "acc_min": 0.0995}
FIVE_PEERS = {"round": 60, "agreement": 0.9986, "vote_acc": 0.106, "acc_mean": 0.1646, "acc_min": 0.1000}
LR_001 = {"round": 60, "agreement": 1.0, "vote_acc": 0.586, "acc_mean": 0.7038, "acc_min": 0.65}
WEIGHT_03 = {"round": 60, "agreement": 1.0, "vote_acc": 0.651, "acc_mean": 0.7682, "acc_min": 0.74}
NO_VOTE = {"round": 60, "agreement": 0.511, "vote_acc": 0.673, "acc_mean": 0.4832, "acc_min": 0.40}   # distill.weight=0


@pytest.mark.parametrize("row", [COLLAPSED, FIVE_PEERS])
def test_collapsed_rows_warn(row):
    note = metrics.collapse_warning(row, classes=10, voters=3)
    assert note is not None and "collapsed" in note and "Long runs" in note


@pytest.mark.parametrize("row", [LR_001, WEIGHT_03, NO_VOTE])
def test_healthy_rows_do_not_warn(row):
    assert metrics.collapse_warning(row, classes=10, voters=3) is None


def test_no_warning_where_chance_is_not_one_over_c_or_a_peer_votes_alone():
    assert metrics.collapse_warning(COLLAPSED, classes=0, voters=3) is None     # next-token runs
    assert metrics.collapse_warning(COLLAPSED, classes=10, voters=1) is None    # one voter agrees with itself
    # an untrained shared init votes unanimously at chance; its peers then train above it
    assert metrics.collapse_warning({**COLLAPSED, "acc_min": 0.45, "acc_mean": 0.5}, 10, 3) is None
    # a healthy binary run, unanimous at 0.7: 1.5/C would have called it chance
    assert metrics.collapse_warning({"round": 60, "agreement": 1.0, "vote_acc": 0.7, "acc_min": 0.7}, 2, 3) is None
    # a smoke run of a few rounds that has not learnt yet
    assert metrics.collapse_warning({**COLLAPSED, "round": 2}, 10, 3) is None
    # protocols without a vote leave the columns null
    assert metrics.collapse_warning({"agreement": None, "vote_acc": None, "acc_mean": 0.1}, 10, 3) is None


def test_the_run_prints_the_warning():
    spec = types.SimpleNamespace(classes=10, active=3, input_shape=(4,), task="classification")
    assert "collapsed onto one shared answer" in metrics.run_collapse_warning(COLLAPSED, spec)
    assert metrics.run_collapse_warning(LR_001, spec) is None
    text = types.SimpleNamespace(**{**vars(spec), "task": "next_token"})
    assert metrics.run_collapse_warning(COLLAPSED, text) is None
    src = inspect.getsource(runmod._run)            # run.py prints it on stderr, from process 0 only
    assert "warn_collapsed([last], b.ctx.spec)" in src      # (run_group too: tests/test_leftovers_dec13.py)
    src = inspect.getsource(runmod.warn_collapsed)
    assert "mesh.is_writer()" in src and "(note := run_collapse_warning(last, spec))" in src
    assert "print(note, file=sys.stderr)" in src
