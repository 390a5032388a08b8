"""Where two of today's changes meet (merge mends), and the read-through's finds: the dead-peer line's
group names (userjourney8) and its evaluated-peer count (leftovers24) in one run; `sweep --dry-run`'s
folders not part of the sweep (leftovers24) whose config.json cannot be read."""
from tallysim import sweep_plan
from tallysim.results import dead_peers
from conftest import tiny
from test_deadpeer_dec19a import _rows


def test_a_sampled_peer_is_not_named_with_the_group_of_its_position():
    # eval_sample=random: acc_peers' position 1 is some drawn peer, not peer 1, so "of group phone" (the
    # group owning index 1) would name the wrong architecture; a plain evaluation still names it
    rows = _rows([[0.5, 0.1, 0.6], [0.6, 0.1, 0.7], [0.7, 0.1, 0.8]])
    groups = (("phone", 2), ("server", 4))
    assert dead_peers.find(rows, 0.1, groups=groups).names == ["peer 1 of group phone"]
    sampled = dead_peers.find(rows, 0.1, sampled=True, total=6, groups=groups)
    assert sampled.names == ["evaluated peer #1"], sampled.names
    assert "(1 of 3 evaluated peers: eval_peers=3 of 6)" in dead_peers.warning(sampled)


def test_a_folder_whose_config_cannot_be_read_is_not_said_to_hold_a_runs_config(tmp_path):
    # config_diff says [] (no difference) of a config.json it cannot read, so a stranger with a torn
    # config.json was said to hold the config of every run still to do ("rename it back to ...")
    from tallysim import outdir
    cfg = tiny()
    out = tmp_path / "sweep"
    outdir.claim(out / "other", False)
    (out / "other" / "config.json").write_text('{"peers": 4, "rou')
    lines = sweep_plan.strangers(out, [("seed=0", ["seed=0"])], [cfg])
    assert lines == ["not part of this sweep: other (renamed or from another sweep?)"], lines
