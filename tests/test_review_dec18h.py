"""Review of 2026-12-06's merges (review19): each test names what the merged code did before its fix."""
from __future__ import annotations

import pytest
from conftest import tiny

from tallysim import config
from tallysim.config import ConfigError


@pytest.mark.parametrize("value", ["1.1754943508222875e-38",    # 2^-126: float32's smallest normal itself
                                   "1.1754943e-38"])           # rounds up to it in float32
def test_float32s_smallest_normal_is_allowed(value):
    # was refused as "below float32's smallest normal number, 1.18e-38": the bound was the literal
    # 1.1754944e-38, a hair above 2^-126
    config.validate(tiny(f"optim.lr={value}"))


def test_a_float32_denormal_is_still_refused():
    with pytest.raises(ConfigError, match="below float32's smallest normal number"):
        config.validate(tiny("optim.lr=1.1754942e-38"))


@pytest.mark.parametrize("items", [("protocol.name=topk_ef", "topk_ef.density=1e-40"),   # k = ceil(d |W|) = 1
                                   ("protocol.name=randk", "randk.density=1e-40"),
                                   ("data.difficulty=1e-40",)])                         # numpy's noise scale
def test_tiny_floats_the_host_reads_stay_allowed(items):
    # were refused as "the device computes with it as 0": each is read in float64 on the host, where a
    # density of 1e-40 is one coordinate sent (sim/sparse.py's static k), not none
    config.validate(tiny(*items))


def test_privacy_clip_below_float32_normal_is_refused_and_delta_is_not():
    # privacy.clip scales each message on the device: 1e-40 clipped every message to zero in silence, while
    # privacy.delta is only the accountant's (float64 on the host) and stays free
    from tallysim.config import Config, ConfigError, validate
    with pytest.raises(ConfigError, match=r"privacy.clip=1e-40 is below float32's smallest normal"):
        validate(Config().replace(protocol={"name": "softlabel"}, privacy={"noise": 1.0, "clip": 1e-40}))
    validate(Config().replace(protocol={"name": "softlabel"}, privacy={"noise": 1.0, "delta": 1e-40}))
