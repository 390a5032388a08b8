"""Review of 2026-12-14's merged change (userjourney3, hostile9), before release. Each test names what a
user met before its fix; all host-side, no compile."""
from __future__ import annotations

import pytest

from tallysim import config, config_reads, protocols
from tallysim.results.table import unread_blank

# The protocols that send the model (or its update) at comm.param_bits: each counts its bits with it
# (scaffold twice per message, the compressed family's downlink, signSGD's partial-participation broadcast).
PARAM_BITS_SENDERS = ("scaffold", "topk_ef", "randk", "fedpaq", "signsgd")


@pytest.mark.parametrize("name", PARAM_BITS_SENDERS)
def test_comm_param_bits_is_read_by_every_protocol_that_charges_it(name):
    """comm.param_bits sets these protocols' bits (a sweep of scaffold at 16 and 32 bits recorded 832,128 and
    1,664,256 bits per peer), but their TRAITS did not list it: `tallysim table` of a fedavg + scaffold
    sweep over comm.param_bits left scaffold's cell empty (both scaffold rows looked the same setting),
    and `tallysim run protocol.name=scaffold comm.param_bits=16` was refused as "not read"."""
    assert protocols.reads(name, "comm.param_bits")
    cfg = config.apply_overrides(config.Config(), [f"protocol.name={name}", "comm.param_bits=16"])
    assert [k for k, _ in config_reads.unread(cfg)] == []
    flat = {"protocol.name": name, "comm.param_bits": 16, "comm.soft_bits": 32}
    assert unread_blank(flat, ["protocol.name", "comm.param_bits", "comm.soft_bits"]) == \
        {"protocol.name": name, "comm.param_bits": 16, "comm.soft_bits": None}
