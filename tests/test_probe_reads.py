"""probe.per_round against the probe pool is checked only where a protocol trains on this round's
probes (TRAITS.distill): a FedAvg-family run draws none, and was refused when probe.per_round exceeded
the pool (or when the memory estimate counted outputs of probe.per_round probes) although it never
reads it.

probe.* is not protocol-specific (no protocol lists it in TRAITS.reads: the pool is carved out of every
protocol's training data, and shared configs such as experiments/quick.json and the tests' TINY set
per_round for every protocol), so the fields-read rule reads it as "read by every protocol" and never
refuses it as unread: a protocol that does not use it ignores it, so the pool check must ignore it too."""
from __future__ import annotations

import math

import pytest

from tallysim import config, protocols, run, sizing, validation
from tallysim.config import ConfigError

from conftest import tiny

NAMES = sorted(protocols.REGISTRY)


@pytest.mark.parametrize("name", NAMES)
def test_the_pool_check_applies_where_the_probes_are_read(name):
    base = [f"protocol.name={name}"] + (["optim.momentum=0"] if protocols.traits(name).sgd_only else [])
    # the data's pool (200) smaller than per_round, with no probe.pool_size set (a set one is refused
    # before the data: test_floor_dec18e.py; so is the default pool of synthetic's train_size, 10% of it:
    # test_hostile_dec22g.py, hence 6,000 examples here, whose default pool of 600 the config allows)
    cfg = config.validate(tiny(*base, "probe.per_round=500", "probe.pool_size=none", "data.train_size=6000"))
    if protocols.traits(name).distill:
        with pytest.raises(ConfigError, match=r"probe.per_round=500 is larger than the probe pool \(200 examples"):
            validation.validate_with_data(cfg, 10, 1400, 200)
    else:
        validation.validate_with_data(cfg, 10, 1400, 200)
    validation.validate_with_data(config.validate(tiny(*base, "probe.per_round=200")), 10, 1400, 200)


def test_which_protocols_skip_it():
    skipped = {n for n in NAMES if not protocols.traits(n).distill}
    assert {"fedavg", "fedprox", "fedavgm", "scaffold", "feddf", "local"} <= skipped
    assert not {"tally", "softlabel", "bridge", "cfd", "fedct"} & skipped


def test_probe_fields_are_shared_not_protocol_specific():
    # the fields-read rule: not listed by any protocol, so read by all and never refused as unread
    for key in ("probe.per_round", "probe.resample", "probe.pool_size"):
        assert not protocols.specific(key), key
    validation.check_read(config.validate(tiny("protocol.name=fedavg", "probe.per_round=500")))


def test_the_memory_estimate_counts_probe_outputs_where_probes_are_exchanged():
    # 10^9 probes' soft outputs: 400 GB, no machine's; refused for softlabel, nothing for FedAvg to hold
    with pytest.raises(ConfigError, match="the probe outputs alone"):
        config.validate(tiny("protocol.name=softlabel", "probe.per_round=1000000000"))
    # tally's plain vote walks its probes in blocks (sim/exchange.blocked_tally): each message's winner,
    # share, keep and soft-average hit (16 bytes) besides one block's sums, still counted
    tally = dict((w, b) for w, b, _ in sizing.estimate_bytes(tiny("protocol.name=tally", "probe.per_round=1000000000")))
    assert 16e9 <= tally["the probe outputs"] < 17e9
    config.validate(tiny("protocol.name=fedavg", "probe.per_round=1000000000"))
    for name in NAMES:
        counted = "the probe outputs" in [what for what, _, _ in sizing.estimate_bytes(tiny(f"protocol.name={name}"))]
        assert counted == protocols.traits(name).distill, name


def test_a_fedavg_run_ignores_a_per_round_past_the_pool():
    # end to end (build loads the data and checks the pool): the rows equal those of a per_round that fits
    rows = [run.run(tiny("protocol.name=fedavg", f"probe.per_round={m}"), progress=False) for m in (64, 10**9)]
    for row in rows:
        row.pop("wall_s", None)
        row.pop("out", None)
    assert math.isfinite(rows[0]["acc_mean"]) and rows[0] == rows[1]
    with pytest.raises(ConfigError, match="probe.per_round=500 is larger than the probe pool"):
        run.run(tiny("protocol.name=tally", "probe.per_round=500"), progress=False)
