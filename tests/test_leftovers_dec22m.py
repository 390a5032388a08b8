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


# ----------------------------------------------------------------------------- 2. a text fault target never scored

TEXT_FAULT = ["model.name=lstm", "faults.kind=confident_wrong", "faults.fraction=0.25"]


@pytest.mark.parametrize("name, target, says", [
    ("shakespeare", 0, "faults.target=0 is PAD on text (shakespeare), never a scored target; allowed: -1 "
                       "(a random wrong token) or 2..79"),
    ("shakespeare_words", 1, "faults.target=1 is BOS on text (shakespeare_words), never a scored target; "
                             "allowed: -1 (a random wrong token) or 2..10003"),
])
def test_a_text_fault_target_of_pad_or_bos_is_refused(name, target, says):
    from tallysim import config
    cfg = config.apply_overrides(config.Config(), [f"data.name={name}", *TEXT_FAULT, f"faults.target={target}"])
    with pytest.raises(ConfigError) as e:
        config.validate(cfg)
    assert says in str(e.value)
    config.validate(config.apply_overrides(cfg, ["faults.target=2"]))      # EOS is a real answer: kept


def test_a_text_fault_target_is_refused_in_one_line_before_loading(capsys, tmp_path, no_compile):
    line = one_line(capsys, ["run", "--out", str(tmp_path / "r"), "data.name=shakespeare", *TEXT_FAULT,
                             "faults.target=0"])
    assert "faults.target=0 is PAD" in line
