"""Hostile inputs, round 18 (hostile18): privacy, faults and robust aggregation, participation and dropout,
the compressed protocols and `tallysim bench`. Each test names what the input did before its fix;
refusals come before anything compiles (`no_compile`) or is measured (`no_measure`). Pure validation:
milliseconds each.
"""
from __future__ import annotations

import pytest
from conftest import one_line, tiny

from tallysim import cli, validation  # noqa: F401  (before jit is patched)
from tallysim.fields import ConfigError


# ----------------------------------------------------------------------------- privacy

@pytest.mark.parametrize("items, knob", [
    (["privacy.noise=1"], "privacy.noise=1"),
    (["protocol.name=softlabel", "privacy.noise=1"], "privacy.noise=1"),
    (["protocol.name=fedct", "fedct.xor_epsilon=1"], "fedct.xor_epsilon=1"),
], ids=["tally", "softlabel", "fedct"])
def test_privacy_with_nothing_sent_is_refused(items, knob, capsys, no_compile):
    # distill.weight=0 sends no message (0 bits up and down), but the ledger charged every round: a
    # 2-round tally run at privacy.noise=1 reported epsilon 202 beside bits_per_peer 0.0
    line = one_line(capsys, ["run", "--out", "o", "data.name=synthetic", "distill.weight=0", *items])
    assert f"{knob} with distill.weight=0" in line and "sends no message" in line, line
    assert "allowed: distill.weight > 0" in line, line
    # what is still allowed: the same protocol at weight 0 without privacy, and private runs that send
    validation.validate(tiny("distill.weight=0", *[i for i in items if "noise" not in i and "xor" not in i]))
    validation.validate(tiny("distill.weight=0.5", *items))


# ----------------------------------------------------------------------------- participation

def test_groups_whose_share_rounds_to_no_peer_are_warned():
    # participation=0.25 of groups a:2;b:2: each group draws max(1, round(0.25 * 2)) = 1 peer a round, so 2
    # of 4 peers took part (0.5, twice what was asked), in silence: the "rounds to no peer" warning skips
    # groups
    cfg = tiny("participation=0.25", "model.groups=a:2:mlp;b:2:mlp,width=16")
    ws = [w for w in validation.warnings(cfg) if "rounds to no peer of group" in w]
    assert ws == ["participation=0.25 rounds to no peer of group a (2 peers), b (2 peers): every group draws "
                  "max(1, round(participation * its peers)) a round, so 2 of the 4 peers take part "
                  "(participation 0.5, not 0.25)"], validation.warnings(cfg)
    one = tiny("participation=0.5", "model.groups=a:1:mlp;b:3:mlp,width=16")
    assert any("group a (1 peer):" in w and "3 of the 4 peers" in w for w in validation.warnings(one))
    # every group's share rounds to at least one peer: nothing to say
    fine = tiny("participation=0.5", "model.groups=a:2:mlp;b:2:mlp,width=16")
    assert not [w for w in validation.warnings(fine) if "rounds to no peer" in w]


# ----------------------------------------------------------------------------- bench

@pytest.mark.parametrize("peers", ["50", "10000,99"])
def test_bench_population_smaller_than_its_cohort_is_refused_before_measuring(peers, capsys, no_measure):
    # --peers 50 passed the check (it read a cohort of min(10, P)), measured the 10-client yardstick and the
    # 10-client points, then failed every 100-client point in its subprocess: "participation=2.0 must be in
    # (0, 1]", a field the user never set
    line = one_line(capsys, ["bench", "--population", "--peers", peers])
    assert "timed with 10 and 100 clients a round" in line and "allowed: populations of at least 100" in line, line


# ----------------------------------------------------------------------------- robust aggregation

@pytest.mark.parametrize("items, said", [
    (["protocol.name=softlabel", "softlabel.aggregate=median", "peers=2"], "softlabel.aggregate=median of 2 peers' messages"),
    (["protocol.name=softlabel", "softlabel.aggregate=median", "peers=10", "participation=0.2"],
     "softlabel.aggregate=median of 2 peers' messages"),
    (["protocol.name=fedavg", "fedavg.aggregate=median", "peers=2"], "fedavg.aggregate=median of 2 models"),
    (["protocol.name=fedavg", "fedavg.aggregate=median", "fedavg.pre=bucketing", "fedavg.bucket=2"],
     "fedavg.aggregate=median of 2 buckets"),
    (["protocol.name=softlabel", "softlabel.aggregate=median", "peers=3"], None),
], ids=["softlabel", "cohort", "fedavg", "buckets", "three"])
def test_a_median_of_two_is_said_to_be_their_mean(items, said):
    # the coordinate-wise median of 2 rows averages its two middle values: a robust aggregate that was the
    # plain mean in silence, while a trimmed mean that trims nothing said so (trim_warnings)
    hits = [w for w in validation.warnings(tiny(*items)) if "aggregate=median of" in w]
    if said is None:
        assert not hits, hits
    else:
        assert len(hits) == 1 and said in hits[0] and "is their unweighted mean" in hits[0], hits


# ----------------------------------------------------------------------------- refused with the config alone

@pytest.mark.parametrize("items, said", [
    (["protocol.name=topk_soft", "topk_soft.k=5,11"], "sweep run topk_soft.k=11: topk_soft.k=11 is more than the 10 classes"),
    (["protocol.name=topk_soft", "topk_soft.value_bits=8,17"], "topk_soft.value_bits=17; allowed: 0..16"),
    (["protocol.name=cfd", "cfd.delta=false,true"], "sweep run cfd.delta=true: cfd.delta=true codes each message"),
    (["faults.kind=confident_wrong", "faults.fraction=0.5", "faults.target=3,10"],
     "sweep run faults.target=10: faults.target=10 is not a class of synthetic (10 classes)"),
], ids=["topk_k", "topk_bits", "cfd_delta", "target"])
def test_a_sweep_dry_run_refuses_what_the_build_would(items, said, tmp_path, capsys, no_compile):
    # these were refused only as the protocol or the data was built: `tallysim sweep --dry-run` listed
    # every run as fine, and the sweep ran its good runs whole (topk_soft.k=5) before failing the bad one
    # (probe.per_round=64: the default 1000 is past the default pool of 1,600 examples, 160, which the dry
    # run now refuses first, as every run of it would have been at build: test_hostile_dec22g.py)
    line = one_line(capsys, ["sweep", "--dry-run", "--out", str(tmp_path / "s"), "data.name=synthetic",
                             "data.train_size=1600", "data.test_size=300", "peers=4", "rounds=1",
                             "probe.per_round=64", *items])
    assert said in line, line


def test_class_rules_wait_for_the_data_where_the_config_cannot_tell():
    # a files dataset's classes are its files': only validate_with_data can say
    from tallysim import config_rules
    assert config_rules.known_classes(tiny()) == 10
    assert config_rules.known_classes(tiny("data.name=cifar100")) == 100
    files = tiny("data.name=files", "data.path=/nonexistent")
    assert config_rules.known_classes(files) is None


# ----------------------------------------------------------------------------- sparse protocols

@pytest.mark.parametrize("item", ["bridge.period=1", "bridge.scope=per_tensor", "bridge.reset=soft",
                                  "comm.param_bits=16"])
def test_a_merge_knob_of_a_bridge_that_never_merges_is_refused(item, capsys, no_compile):
    # bridge.density=0 sends no parameter (k = 0: tally exactly), so its merge knobs ran as if unset
    line = one_line(capsys, ["run", "--out", "o", "data.name=synthetic", "protocol.name=bridge",
                             "bridge.density=0", item])
    assert f"{item.split('=')[0]}=" in line and "is not read with bridge.density=0" in line, line
    # still read: the same knob with a density, and vote_at (the vote's models) at density 0
    validation.check_read(validation.validate(tiny("protocol.name=bridge", "bridge.density=0.01", item)))
    validation.check_read(validation.validate(tiny("protocol.name=bridge", "bridge.density=0", "bridge.vote_at=merge")))
