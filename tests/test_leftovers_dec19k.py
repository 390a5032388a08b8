"""Leftovers of 2026-12-06 (leftovers24): a config file's sweep axis checks a quoted value's type, a sweep
refuses eval_peers above a run's peers as a single run does, an `extends` error names both files, a dead
peer's line says which peers were evaluated, and `sweep --dry-run` says per run what would happen.
Nothing here trains or compiles a model."""
import json

import pytest

from tallysim import config, sweep
from tallysim.config import ConfigError


# ----------------------------------------------------------------------------- 1. quoted numbers in a sweep axis

@pytest.mark.parametrize("axis, said", [
    ({"optim.lr": ["0.1", "abc"]}, "sweep axis optim.lr in the config file: optim.lr='abc' is a string that is not "
                                   "a number; allowed: a number, written without quotes"),
    ({"seed": ["0", "1.5"]}, "sweep axis seed in the config file: seed='1.5' is a string that is not an integer"),
    ({"data.input_shape": ["2x"]}, "data.input_shape='2x' is a string that is not a list of positive integers"),
])
def test_a_quoted_value_that_is_not_the_fields_type_is_refused_naming_the_axis(axis, said):
    # it was refused only when its run was built ("sweep run optim.lr=abc: ..."), the file's axis unnamed
    with pytest.raises(ConfigError) as e:
        sweep.expand(axis, [])
    assert said in str(e.value)


def test_a_quoted_number_keeps_its_text_as_the_run_name():
    # why a string stays allowed: the directory keeps the value as typed (tests/test_hostile_dec05.py
    # deduplicates "0.10" against 0.1)
    assert [n for n, _ in sweep.expand({"optim.lr": ["0.10", 0.2]}, [])] == ["optim.lr=0.10", "optim.lr=0.2"]
    assert [n for n, _ in sweep.expand({"seed": ["0", "1"]}, [])] == ["seed=0", "seed=1"]
