"""headline33: headline.py split by job (no_learning.py), run_accuracy refusing a misspelt metric name,
a diverged seed's NaN accuracy read and marked, the seeds_nonfinite tracker scalar. All pure Python on
hand-made rows: no model, nothing compiled."""
import pytest

from tallysim.config import ConfigError
from tallysim.results import headline, metrics, no_learning

ROWS = [{"round": 1, "acc_mean": 0.5, "acc_global": 0.6, "bits_per_peer": 3.0},
        {"round": 2, "acc_mean": 0.7, "acc_global": 0.65, "bits_per_peer": 6.0}]


# ----------------------------------------------------------------------------- 1. the split

def test_the_no_learning_warnings_stay_importable_where_they_were():
    # run.py, table, the CLI and the tests import them from headline (and metrics): the same objects
    for name in ("collapse_warning", "at_floor", "floor_note", "FLOOR_MARGIN", "MIN_COLLAPSE_ROUNDS"):
        assert getattr(headline, name) is getattr(no_learning, name), name
    assert metrics.collapse_warning is no_learning.collapse_warning
    from tallysim.fields import is_number
    assert headline.is_number is metrics.is_number is is_number
    assert not is_number(True) and is_number(0.5) and is_number(3)


# ----------------------------------------------------------------------------- 2. run_accuracy's name

def test_run_accuracy_refuses_a_misspelt_metric_naming_close_keys():
    with pytest.raises(ConfigError, match=r"metric 'acc_globl' is no key of these rows nor one a run writes; "
                                          r"allowed: auto, ppl or a key of the rows .*did you mean acc_global"):
        headline.run_accuracy(ROWS, "final", "acc_globl")           # was None
    with pytest.raises(ConfigError, match="did you mean auto"):
        metrics.run_accuracy(ROWS, "best", "accuracy")             # the alias, as final_best offers it
    with pytest.raises(ConfigError, match=r"run_accuracy\(name=3\): expected a column name"):
        headline.run_accuracy(ROWS, "final", 3)
    assert headline.run_accuracy(ROWS, "final", "acc_global") == 0.65
    # keys a run writes, though these rows lack them: still None, as table's runs without the column
    assert headline.run_accuracy(ROWS, "best", "vote_acc") is None
    assert headline.run_accuracy(ROWS, "best", "acc_mean@phone") is None
    # the internal path (table, pareto) still reads a column only some runs have, unchecked
    assert headline.column_final_best(ROWS, "my_score") == (None, None)
