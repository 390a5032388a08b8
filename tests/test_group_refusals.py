"""A data-dependent refusal inside a grouped sweep names the configuration it is about: the lanes of
one group may differ in their partition (lanes.HOST), so `participation_rule=size` with too few
non-empty shards is checked lane by lane while the group is built, before anything compiles, and the
message gives that lane's seed and partition values. Before, the check ran once over all lanes after
they were partitioned and named lane 0's `partition.kind`. The sweep fails that run alone
(build.RunRefused) and runs the others."""
import pytest
from conftest import tiny

from tallysim import run, sweep
from tallysim.config import ConfigError
from tallysim.sim import lanes

# 20 peers, 18 a round drawn by shard size; Dirichlet 0.01 without a minimum leaves 4 of them empty
BASE = ["protocol.name=fedavg", "peers=20", "participation=0.9", "participation_rule=size"]
EMPTY = ["partition.kind=dirichlet", "partition.alpha=0.01", "partition.min_size=0"]
NAMED = ("only 16 peers hold any examples (seed 0: partition.kind=dirichlet, partition.alpha=0.01, "
         "partition.min_size=0)")


def test_the_size_rule_refusal_in_a_group_names_the_offending_lane_before_compiling(tmp_path, no_compile):
    ok, bad = tiny(*BASE, "partition.kind=iid"), tiny(*BASE, *EMPTY)
    assert len(lanes.group([ok, bad])) == 1, "the two must be one compiled group"
    with pytest.raises(ConfigError) as e:
        run.run_group([ok, bad], [tmp_path / "ok", tmp_path / "bad"], progress=False)
    msg = str(e.value)
    assert NAMED in msg and "iid" not in msg and "\n" not in msg


def test_a_run_alone_keeps_its_message(no_compile):
    with pytest.raises(ConfigError, match=r"only 16 peers hold any examples \(partition.kind=dirichlet\);"):
        run.build(tiny(*BASE, *EMPTY))


def test_a_grouped_sweep_logs_the_offending_configuration_and_runs_the_other(tmp_path):
    """Through the sweep: the Dirichlet run fails with the lane's message, logged once under its name,
    and the iid run completes (alone: the group's only other run), not built twice."""
    lines = []
    runs = [("iid", ["partition.kind=iid"]), ("dirichlet", EMPTY)]
    recs = sweep.run_sweep(tiny(*BASE), runs, tmp_path / "sw", progress=False, log=lines.append)
    failed = [ln for ln in lines if "FAILED" in ln]
    assert len(failed) == 1 and NAMED in failed[0] and "partition.kind=iid" not in failed[0], lines
    assert lines[lines.index(failed[0]) - 1] == "[2/2] dirichlet", lines
    status = {r["name"]: r["status"] for r in recs}
    assert status == {"iid": "done", "dirichlet": "failed"}
    assert NAMED in next(r["error"] for r in recs if r["name"] == "dirichlet")
