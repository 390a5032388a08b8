"""leftovers32: refusals before anything builds (a sweep axis's repeated value, a text fault target that
is never scored, a misspelt metric key, a data cache inside a run, a results folder misspelt)."""
from __future__ import annotations

import pytest

from conftest import one_line
from tallysim import sweep
from tallysim.config import ConfigError


# ----------------------------------------------------------------------------- 1. a sweep value listed twice

@pytest.mark.parametrize("axis, named", [
    ("seed=0,0", "sweep axis seed lists 0 twice"),              # was quietly one run
    ("peers=4,04", "sweep axis peers lists 4 twice ('4' and '04' are the same value)"),
    ("optim.lr=0.1,0.2,0.10", "sweep axis optim.lr lists 0.1 twice"),
    ("data.input_shape=28x28x1;(28,28,1)", "sweep axis data.input_shape lists 28x28x1 twice"),
])
def test_a_sweep_axis_value_listed_twice_is_refused(axis, named):
    with pytest.raises(ConfigError, match="allowed: each value once") as e:
        sweep.expand({}, [axis])
    assert named in str(e.value)


def test_a_config_file_axis_value_listed_twice_is_refused():
    with pytest.raises(ConfigError, match=r"sweep axis optim.lr lists 0.1 twice \('0.1' and '0.10'"):
        sweep.expand({"optim.lr": [0.1, "0.10", 0.2]}, [])


def test_the_sweep_command_refuses_a_repeated_seed_in_one_line(capsys, tmp_path, no_compile):
    line = one_line(capsys, ["sweep", "--out", str(tmp_path / "s"), "seed=0,0"])
    assert "sweep axis seed lists 0 twice" in line and "seed=0,1,2" in line
    assert not (tmp_path / "s").exists()
