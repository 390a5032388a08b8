"""Review of 2026-12-06's merged change (userjourney3, hostile9), before release. Each test names what a
user met before its fix; all host-side, no compile."""
from __future__ import annotations

import pytest

from tallysim import config, config_reads, protocols
from tallysim.results.table import unread_blank

# The protocols that send the model (or its update) at comm.param_bits: each counts its bits with it
# (scaffold twice per message, the compressed family's downlink, signSGD's partial-participation broadcast).
PARAM_BITS_SENDERS = ("scaffold", "topk_ef", "randk", "fedpaq")


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


def _fake_run(d, name="tally", rounds=1):
    import json
    d.mkdir(parents=True)
    cfg = config.apply_overrides(config.Config(), [f"protocol.name={name}", f"rounds={rounds}"])
    (d / "config.json").write_text(json.dumps(config.to_dict(cfg)))
    (d / "metrics.jsonl").write_text(json.dumps({"round": 1, "acc_mean": 0.5, "bits_per_peer": 8.0}) + "\n")
    return d


def test_plot_replaces_the_csv_an_earlier_tallysim_wrote_beside_its_image(tmp_path):
    """hostile9's refusal of a CSV beside `plot --out` that plot did not write took the CSV plot itself wrote
    before 2026-12-04 (no `std` column) for the user's: `tallysim plot runs/* --out results.png`, run again
    after the update, was refused over its own results.csv. A file of another first line still is."""
    from tallysim.config import ConfigError
    from tallysim.results.plot import plot_curves
    run = _fake_run(tmp_path / "runs" / "a")
    out = tmp_path / "results.png"
    (tmp_path / "results.csv").write_text("label,protocol,run,round,bits_per_peer,metric,value\n"
                                          "tally,tally,a,1,8.0,acc_mean,0.5\n")
    plot_curves([run], str(out))
    assert out.is_file() and (tmp_path / "results.csv").read_text().startswith(
        "label,protocol,run,round,bits_per_peer,metric,value,std\n")
    (tmp_path / "mine.csv").write_text("x,y\n1,2\n")
    with pytest.raises(ConfigError, match="is not a file this command wrote"):
        plot_curves([run], str(tmp_path / "mine.png"))
    assert (tmp_path / "mine.csv").read_text() == "x,y\n1,2\n"


def test_sparse_label_ids_get_the_class_limit_before_any_count_per_class():
    """hostile9's gap check counts the training labels per class (np.bincount up to the largest label), and
    ran before the class limit: IDX labels read as 2,000,000,000 (a misparsed header, sparse ids) allocated
    a 16 GB count to say "a class no training example has" of the test labels, where the limit's message
    (renumber sparse class ids) is the one that fits. The limit is checked first now."""
    import numpy as np
    from tallysim.data.base import DataError, checked
    x = np.zeros((3, 2, 2), np.uint8)
    with pytest.raises(DataError, match="renumber sparse class ids"):
        checked("mine", x, np.array([0, 1, 2_000_000_000]), x[:2], np.array([0, 2]))


def test_signsgd_reads_param_bits_only_for_a_cohort():
    """signsgd charges comm.param_bits only on a partial cohort's dense downlink: with every peer active its
    downlink is 1 bit a parameter, and comm.param_bits=16 would be ignored in silence there."""
    full = config.apply_overrides(config.Config(), ["protocol.name=signsgd", "comm.param_bits=16"])
    assert [k for k, _ in config_reads.unread(full)] == ["comm.param_bits"]
    assert "participation < 1" in config_reads.unread(full)[0][1]
    cohort = config.apply_overrides(config.Config(), ["protocol.name=signsgd", "comm.param_bits=16",
                                                      "participation=0.5"])
    assert config_reads.unread(cohort) == []
