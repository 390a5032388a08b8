"""wordsoft36: cfd's soft labels at cfd.bits round a uniform 1/C to level 0 as softlabel's comm.soft_bits
do (levels round(p (2^b - 1))): on shakespeare_words (C = 10,004) at the default 8 bits an untrained
peer's near-uniform distribution is sent as all zeros, and the peers train on cfd's uniform fallback, in
silence. A single run and a sweep now warn, naming cfd.bits. Nothing here compiles."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from tallysim import cli, run, sweep  # noqa: F401  (imported before no_compile patches jax.jit)
from tallysim import config, validation
from tallysim.protocols import cfd


@pytest.mark.parametrize("bits", range(1, 17))
def test_the_cfd_uniform_zero_threshold_is_cfd_quantise_own(bits):
    Z = validation.cfd_uniform_zero_from(bits)
    sent = np.asarray(cfd.quantise(jnp.asarray([1 / (Z - 1), 1 / Z], jnp.float32), bits))
    assert sent[0] > 0 and sent[1] == 0, sent          # 1/(Z-1) survives, 1/Z is sent as level 0


WORDS_CFD = ["data.name=shakespeare_words", "model.name=lstm", "partition.kind=natural", "protocol.name=cfd"]


def _warned(items) -> list[str]:
    cfg = config.apply_overrides(config.Config(), items)
    return [w for w in validation.warnings(config.validate(cfg)) if w.startswith("cfd.bits")]


def test_cfd_at_8_bits_on_words_warns_that_a_uniform_target_is_sent_as_zeros():
    (line,) = _warned(WORDS_CFD)                                      # cfd.bits defaults to 8
    assert line.startswith("cfd.bits=8 with the 10,004 classes of shakespeare_words: each probability is sent "
                           "rounded to multiples of 1/255")
    assert "at or below 1/510 arrives as 0" in line and "only below C = 510" in line
    assert line.endswith("cfd.bits=13 or more keeps it (cfd.bits is 1..16)")
    (twelve,) = _warned(WORDS_CFD + ["cfd.bits=12"])                  # 2 x 4,095 = 8,190 <= 10,004
    assert "only below C = 8,190" in twelve
    assert _warned(WORDS_CFD + ["cfd.bits=13"]) == []                 # 2 x 8,191 = 16,382 > 10,004
    assert _warned(WORDS_CFD + ["cfd.labels=hard"]) == []             # a vote average: never below 1/A
    assert _warned(["data.name=shakespeare", "model.name=lstm", "partition.kind=natural", "protocol.name=cfd"]) == []  # C = 80
    assert _warned(["data.name=synthetic", "data.num_classes=509", "protocol.name=cfd"]) == []
    (big,) = _warned(["data.name=synthetic", "data.num_classes=100000", "protocol.name=cfd", "cfd.bits=13"])
    assert big.endswith("cfd.bits=16 or more keeps it (cfd.bits is 1..16)")     # 131,070 > 100,000
    # cfd reads cfd.bits, not comm.soft_bits: no comm.soft_bits line for it
    cfg = config.apply_overrides(config.Config(), WORDS_CFD + ["cfd.bits=16"])
    assert not [w for w in validation.warnings(config.validate(cfg)) if "soft_bits" in w.split(":")[0]]


def test_a_sweep_warns_once_naming_its_cfd_runs_whose_soft_labels_round_to_zeros(capsys, tmp_path, no_compile):
    assert cli.main(["sweep", "--dry-run", "--out", str(tmp_path / "s"), *WORDS_CFD, "cfd.bits=16,8"]) == 0
    err = capsys.readouterr().err
    assert err.count("tallysim: warning: sweep run cfd.bits=8: cfd.bits=8 with the 10,004 classes") == 1
    assert "cfd.bits=16:" not in err
