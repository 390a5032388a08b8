"""Leftovers of 2026-12-05, third batch: `tallysim run --config FILE` refused a FILE with a `sweep` section,
but from Python `config.load_file(FILE)` (the documented way to run a config file: tallysim.run(cfg)) still
dropped the section in silence and ran the base alone. One rule now (tallysim/sweep_section.py) for both;
`tallysim sweep`, figures and experiment dumps read the base with sweep_base=True. Nothing compiles."""
from __future__ import annotations

import json

import pytest

from tallysim import cli, config, sweep_section
from tallysim.config import ConfigError

SWEEP_FILE = {"peers": 4, "sweep": {"bridge.density": [0.01, 0.05], "bridge.period": [1, 2],
                                    "data.input_shape": [28, 28, 1]},
              "protocol": {"name": "bridge"}}


def _file(tmp_path, name, body) -> str:
    p = tmp_path / name
    p.write_text(json.dumps(body))
    return str(p)


@pytest.mark.parametrize("via_extends", [False, True])
def test_load_file_of_a_file_with_a_sweep_section_says_to_sweep_it(via_extends, tmp_path):
    path = _file(tmp_path, "s.json", SWEEP_FILE)
    if via_extends:
        path = _file(tmp_path, "child.json", {"extends": "s.json", "rounds": 2})
    with pytest.raises(ConfigError) as e:
        config.load_file(path)
    msg = str(e.value)
    # one shape of a tuple field is one value: 4 runs, not 12
    assert msg.startswith(f"{path} has a `sweep` section (4 runs over bridge.density, bridge.period, "
                          "data.input_shape), which config.load_file does not read; allowed: "
                          f"`tallysim sweep --config {path} --out DIR` for its runs, or "
                          f"config.load_file({path!r}, sweep_base=True)"), msg
    assert "'bridge.density=0.01', 'bridge.period=1', 'data.input_shape=[28, 28, 1]'" in msg, msg


def test_sweep_base_reads_the_base_and_sweep_still_runs_the_file(tmp_path, capsys):               # ok
    path = _file(tmp_path, "s.json", SWEEP_FILE)
    cfg = config.load_file(path, sweep_base=True)
    assert cfg.peers == 4 and cfg.protocol.name == "bridge"
    assert config.load_file(_file(tmp_path, "plain.json", {"peers": 3})).peers == 3      # no section: as before
    assert cli.main(["sweep", "--config", path, "--dry-run", "--out", str(tmp_path / "sw")]) == 0
    assert "4 runs" in capsys.readouterr().out
    assert cli.main(["run", "--config", path, "--print-config", "bridge.density=0.05", "bridge.period=2",
                     "data.input_shape=28x28x1"]) == 0                   # each axis given: the run's base
    assert json.loads(capsys.readouterr().out)["bridge"]["density"] == 0.05


def test_one_rule_for_run_and_load_file():
    """The CLI passes sweep_axes' parsed axes and the keys its items set; load_file the file's own."""
    axes = {"a.b": ["1", "2"], "c": ["x"]}
    assert sweep_section.refusal("f.json", axes, given={"a.b", "c"}) is None
    assert "one run with each axis given one value (c=x)" in sweep_section.refusal("f.json", axes, given={"a.b"})
    assert sweep_section.refusal("f.json", sweep_section.raw_axes({"optim.lr": 0.1})) .startswith(
        "f.json has a `sweep` section (1 run over optim.lr)")
