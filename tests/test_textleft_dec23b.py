"""textleft33: text leftovers refused or warned about before anything builds (a soft label rounded to
zeros on a large vocabulary, a noisy target that is never scored, a data.path that does not exist, a
plugin group that trained nothing)."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import one_line  # noqa: F401
from tallysim import cli, run, sweep  # noqa: F401  (imported before no_compile patches jax.jit)
from tallysim import config, validation
from tallysim.config import ConfigError
from tallysim.sim import vote


# ----------------------------------------------------------------------------- 1. a soft label rounded to zeros

@pytest.mark.parametrize("bits", [8, 16])
def test_the_uniform_zero_threshold_is_quantize_probs_own(bits):
    Z = validation.UNIFORM_ZERO_FROM[bits]
    sent = np.asarray(vote.quantize_probs(jnp.asarray([1 / (Z - 1), 1 / Z], jnp.float32), bits))
    assert sent[0] > 0 and sent[1] == 0, sent          # 1/(Z-1) survives, 1/Z is sent as 0


WORDS_SOFT = ["data.name=shakespeare_words", "model.name=lstm", "protocol.name=softlabel"]


def _warned(items) -> list[str]:
    cfg = config.apply_overrides(config.Config(), items)
    return [w for w in validation.warnings(config.validate(cfg)) if w.startswith("comm.soft_bits")]


def test_softlabel_at_8_bits_on_words_warns_that_a_uniform_target_is_sent_as_zeros():
    (line,) = _warned(WORDS_SOFT + ["comm.soft_bits=8"])
    assert line.startswith("comm.soft_bits=8 with the 10,004 classes of shakespeare_words")
    assert "at or below 1/510 arrives as 0" in line and "only below C = 510" in line
    assert "comm.soft_bits=16" in line and "or 32 keeps it" in line
    assert _warned(WORDS_SOFT + ["comm.soft_bits=16"]) == []        # float16 keeps 1/10,004
    assert _warned(WORDS_SOFT + ["comm.soft_bits=32"]) == []
    assert _warned(["data.name=shakespeare", "model.name=lstm", "protocol.name=softlabel",
                    "comm.soft_bits=8"]) == []                       # 80 characters: 1/80 survives
    assert len(_warned(["data.name=synthetic", "data.num_classes=1000", "protocol.name=selective_fd",
                        "comm.soft_bits=8"])) == 1
    assert _warned(["data.name=synthetic", "data.num_classes=509", "protocol.name=softlabel",
                    "comm.soft_bits=8"]) == []


def test_the_soft_bits_warning_is_printed_once_before_a_single_run(capsys):
    cfg = config.apply_overrides(config.Config(), WORDS_SOFT + ["comm.soft_bits=8"])
    validation.single_run(cfg)
    err = capsys.readouterr().err
    assert err.count("tallysim: warning: comm.soft_bits=8 with the 10,004 classes") == 1
