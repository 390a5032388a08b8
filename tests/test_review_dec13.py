"""review12: the review of 2026-12-06's change to main (userjourney2 and leftovers11 merged, make's
figure targets' `--progress lines`, run_sweep's repeated-runs warning). Each test fails without its fix.

1. A checkpoint whose metadata array has a damaged header (a shape of petabytes) escaped `read_meta` as
   numpy's MemoryError (a traceback; leftovers11 lets out-of-memory through as itself) instead of "corrupt;
   run again with --overwrite": the CRCs are now checked before any header is parsed.
2. leftovers11's "did you mean" cutoff (0.7, dashes stripped) offered nothing for one slip in a
   three-letter option (`--uot`, `--oyt`: 0.67; `bench --est`), which the old rule suggested: one edit away
   now counts for names of up to four letters (`--bogus` still gets nothing).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from tallysim.fields import ConfigError
from conftest import one_line


# ----------------------------------------------------------------------------- 1. a damaged header is not out of memory

def _damage_meta_header(path) -> None:
    """The metadata array's header rewritten in place (same length) to declare 4e15 elements."""
    raw = path.read_bytes()
    huge = b"(4000000000000000,), }"

    def grow(m):
        return m.group(1) + huge + m.group(3)[len(huge) - len(m.group(2)):]
    new = re.sub(rb"('shape': )(\(\d+,\), \})( +)", grow, raw, count=1)
    assert len(new) == len(raw) and new != raw
    path.write_bytes(new)


def test_a_damaged_metadata_header_is_corrupt_not_out_of_memory(tmp_path):
    from tallysim import checkpoint
    # a metadata array over zipfile's 4 KiB first read (a many-peer run's `last` row and evals): reading
    # its header does not reach the member's end, so zipfile had not checked its CRC yet
    checkpoint.save(tmp_path, {"w": np.zeros((3, 2), np.float32)}, {"version": 1, "pad": "x" * 20000})
    _damage_meta_header(tmp_path / checkpoint.FILE)
    with pytest.raises(ConfigError, match="corrupt.*--overwrite"):
        checkpoint.read_meta(tmp_path)


# ----------------------------------------------------------------------------- 2. one slip in a short option

@pytest.mark.parametrize("argv, typo, option", [
    (["run"], "--uot", "--out"), (["run"], "--oyt", "--out"), (["table", "d"], "--otu", "--out"),
    (["bench"], "--est", "--set")])
def test_one_slip_in_a_three_letter_option_is_still_offered(argv, typo, option, capsys):
    line = one_line(capsys, [*argv, typo])
    assert f"did you mean {option}" in line, line


def test_a_far_option_still_gets_nothing(capsys):
    assert "did you mean" not in one_line(capsys, ["run", "--bogus"])


# ----------------------------------------------------------------------------- hostile8's rules, written once

def test_the_delta_warning_and_the_unread_delta_use_one_rule_of_when_epsilon_is_computed(monkeypatch):
    """validation's delta warning decided "an epsilon is computed" by protocol name (fedct), config_reads by
    the protocol's declared XOR mechanism: a plugin with XOR privacy fell between them. One rule now,
    config_reads.accounted, read by both."""
    from tallysim import config_reads, protocols, validation
    from tallysim.config import Config
    cfg = Config().replace(protocol={"name": "tally"}, peers=4, fedct={"xor_epsilon": 1.0},
                           privacy={"delta": 0.5})
    assert not config_reads.accounted(cfg)
    assert not any("privacy.delta" in w for w in validation.warnings(cfg))
    real = protocols.traits

    def xor_traits(name):      # tally declared as an XOR mechanism, as a plugin may declare itself
        import dataclasses
        return dataclasses.replace(real(name), privacy="xor") if name == "tally" else real(name)
    monkeypatch.setattr(protocols, "traits", xor_traits)
    assert config_reads.accounted(cfg)
    assert any("privacy.delta=0.5 is not below 1/peers" in w for w in validation.warnings(cfg))


def test_a_figure_takes_numpy_s_true_as_load_file_does(tmp_path):
    import numpy as np
    from tallysim import figures
    # np.True_ was refused by the figure ("expected True or False") and taken by config.load_file
    assert figures.dry_run("fig1", smoke=np.True_, results=str(tmp_path / "r"), out=str(tmp_path / "f"),
                           log=lambda line: None) > 0
