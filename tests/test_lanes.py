"""The run axis (lanes.py): configurations that differ only in per-lane fields run as one compiled
program and give each configuration the files and metrics it gets when run alone.

Tolerance: bits are compared exactly. Accuracies and losses are compared to 1e-4 relative / 2e-3
absolute (as seeds batched against seeds alone, test_seeds.py): in a group, a field that varies is a
traced float32 argument, where alone it is a Python constant that XLA folds (e.g. T**2 is computed in
float64 on the host, then rounded once), so a step can differ in the last bit and training carries it on.
"""
import json

import pytest

from tallysim import config, run, sweep
from tallysim.sim import lanes
from conftest import assert_rows_close, tiny, read_rows

COMPARE = ("acc_mean", "acc_min", "acc_max", "acc_ensemble", "acc_global", "train_loss", "vote_acc",
           "softavg_acc", "agreement", "tied", "wrong_confidence", "consensus_acc")
EXACT = ("round", "bits_up", "bits_down", "bits_per_peer", "steps_real", "steps_computed", "merged", "nnz")

# Every traced, host-side and schedule field of lanes.py, varied within one protocol's group.
CASES = {
    "tally": (["protocol.name=tally", "vote.min_agreement=0.3", "distill.label_smoothing=0.1",
               "optim.weight_decay=0.001", "partition.kind=dirichlet", "partition.alpha=0.5",
               "partition.min_size=5"],
              [["optim.lr=0.05", "optim.momentum=0.9", "distill.weight=1.0", "vote.min_agreement=0.3",
                "distill.label_smoothing=0.1", "optim.weight_decay=0.001", "partition.alpha=0.5", "seed=0"],
               ["optim.lr=0.02", "optim.momentum=0.5", "distill.weight=0.5", "vote.min_agreement=0.6",
                "distill.label_smoothing=0.2", "optim.weight_decay=0.01", "partition.alpha=5", "seed=1",
                "rounds=3", "eval_every=2"],
               ["optim.lr=0.1", "partition.kind=iid", "seed=2", "seeds=2", "rounds=1"]]),
    "softlabel": (["protocol.name=softlabel", "softlabel.aggregate=era"],
                  [["distill.temperature=1.0", "softlabel.era_temperature=0.1"],
                   ["distill.temperature=3.0", "softlabel.era_temperature=0.5", "partition.kind=label_quantity",
                    "partition.k=2"]]),
    # bridge.density and bridge.period: top-k to the group's largest k with a per-lane rank mask, a
    # merge every lane's own period; bits from each configuration's own k.
    "bridge": (["protocol.name=bridge", "rounds=4", "participation=0.75"],
               [["bridge.density=0.01", "bridge.period=1"], ["bridge.density=0.2", "bridge.period=2"],
                ["bridge.density=1.0", "bridge.period=3"]]),
    "bridge_per_tensor": (["protocol.name=bridge", "rounds=3", "bridge.scope=per_tensor", "bridge.reset=soft"],
                          [["bridge.density=0.05"], ["bridge.density=0.3", "bridge.period=2"]]),
    "fedprox": (["protocol.name=fedprox", "participation=0.5"],
                [["fedprox.mu=0.01"], ["fedprox.mu=1.0", "optim.lr=0.02"]]),
    "feddf": (["protocol.name=feddf", "feddf.steps=5", "feddf.batch_size=16"],
              [["feddf.lr=0.001", "feddf.temperature=1.0"], ["feddf.lr=0.01", "feddf.temperature=4.0"]]),
}


def _strip(rows):
    for r in rows:
        r.pop("wall_s")
    return rows


def _compare(grouped, alone, what):
    assert_rows_close(alone, grouped, what, EXACT, COMPARE)
    for rg, ra in zip(grouped, alone):
        if "per_seed" in ra:
            for k in EXACT[1:4]:
                assert rg["per_seed"][k] == ra["per_seed"][k]


# Every case runs in make test-all only. The tally case (every traced, host-side and schedule kind at
# once) is covered fast by tests/test_trust_groups.py::test_a_group_of_two_equals_the_two_single_runs
# [tally-dropout]: tally's group of two against the two single runs, varying a superset of this case's
# fields (every per-lane field tally reads, the host-side and schedule ones, faults.fraction; checked
# 2026-12-06), about 17 s of make test's CPU each; a group of three lanes (1 + 2 seeds) stays fast in
# test_faulty_fractions_share_one_program_and_match_each_alone below, the build's traced values in
# tests/test_lane_hparams.py. The bridge's per-lane k and period, grouped against alone, are in make test
# through tests/test_lane_reads.py (every protocol's lane fields), so its case here is slow too.
FAST = ()


@pytest.mark.parametrize("case", [c if c in FAST else pytest.param(c, marks=pytest.mark.slow) for c in CASES])
def test_a_group_gives_each_configuration_its_own_metrics(case, tmp_path):
    base, variants = CASES[case]
    cfgs = [config.validate(tiny(*base, *v)) for v in variants]
    assert len(lanes.group(cfgs)) == 1, "the case must be one group"
    b = run.build_group(cfgs)
    assert set(b.values) >= {k for k in lanes.TRACED
                             if len({config.get_field(c, k) for c in cfgs}) > 1}
    results = run.run_group(cfgs, [tmp_path / f"g{i}" for i in range(len(cfgs))], progress=False, built=b)
    for i, (cfg, res) in enumerate(zip(cfgs, results)):
        assert not isinstance(res, Exception), res
        run.run(cfg, str(tmp_path / f"a{i}"), progress=False)
        grouped, alone = _strip(read_rows(tmp_path / f"g{i}")), _strip(read_rows(tmp_path / f"a{i}"))
        _compare(grouped, alone, f"{case} config {i}")
        for name in ("config.json", "partition.json"):
            assert (json.loads((tmp_path / f"g{i}" / name).read_text())
                    == json.loads((tmp_path / f"a{i}" / name).read_text())), name


def test_signature_splits_on_static_fields_and_on_zero_switches():
    a = config.validate(tiny("protocol.name=tally"))
    assert lanes.signature(a) == lanes.signature(config.validate(tiny("protocol.name=tally", "optim.lr=0.3",
                                                                      "seed=4", "rounds=7")))
    for other in ("protocol.name=softlabel", "peers=5", "model.width=16", "optim.momentum=0",
                  "distill.weight=0", "vote.min_agreement=0.5", "batch_size=16"):
        assert lanes.signature(a) != lanes.signature(config.validate(tiny("protocol.name=tally", other))), other
    bridge = [lanes.signature(config.validate(tiny("protocol.name=bridge", f"bridge.density={d}", f"bridge.period={p}")))
              for d, p in ((0.01, 1), (0.5, 3), (0, 1))]
    assert bridge[0] == bridge[1] != bridge[2], "density 0 is tally statically: a group of its own"
    cfgs = [config.validate(tiny(*o)) for o in (["optim.lr=0.1"], ["protocol.name=fedavg"], ["optim.lr=0.2"])]
    assert lanes.group(cfgs) == [[0, 2], [1]]


def test_a_lane_that_diverges_fails_only_its_configuration(tmp_path):
    cfgs = [config.validate(tiny("protocol.name=fedavg", f"optim.lr={lr}")) for lr in (0.05, 1e30)]
    good, bad = run.run_group(cfgs, [tmp_path / "good", tmp_path / "bad"], progress=False)
    assert isinstance(bad, run.NonFiniteLoss) and "round 1" in str(bad)
    assert "training loss" in (tmp_path / "bad" / "error.txt").read_text()
    assert good["round"] == 2 and len(read_rows(tmp_path / "good")) == 2


def test_sweep_groups_by_default_and_matches_one_at_a_time(tmp_path):
    base = tiny("protocol.name=tally", "rounds=1")
    runs = sweep.expand({}, ["optim.lr=0.02,0.05", "peers=4,5"])
    assert sweep._plan(sweep.configs(base, runs), [tmp_path / "g" / n for n, _ in runs], True) == [[0, 2], [1, 3]]
    assert sweep._plan(sweep.configs(base, runs), [tmp_path / "g" / n for n, _ in runs], False) == [[0], [1], [2], [3]]
    runs = [r for r in runs if "peers=4" in r[0]]                           # peers is static: one group
    logs = []
    recs = sweep.run_sweep(base, runs, tmp_path / "grouped", progress=False, log=logs.append)
    assert [r["status"] for r in recs] == ["done"] * 2
    assert sum("2 runs as one program" in line for line in logs) == 1
    sweep.run_sweep(base, runs, tmp_path / "alone", progress=False, log=lambda _: None, grouped=False)
    for name, _ in runs:
        _compare(_strip(read_rows(tmp_path / "grouped" / name)), _strip(read_rows(tmp_path / "alone" / name)),
                 name)
        assert (tmp_path / "grouped" / name / sweep.DONE).exists()
    again = sweep.run_sweep(base, runs, tmp_path / "grouped", progress=False, log=lambda _: None)
    assert [r["status"] for r in again] == ["done_before"] * 2


def test_a_group_with_an_impossible_configuration_runs_the_others(tmp_path):
    base = tiny("protocol.name=tally", "partition.kind=dirichlet", "partition.min_size=5")
    runs = sweep.expand({}, ["partition.min_size=5,1500"])          # 1500 of 1400 examples: impossible
    logs = []
    recs = sweep.run_sweep(base, runs, tmp_path, progress=False, log=logs.append)
    assert [r["status"] for r in recs] == ["done", "failed"]
    assert sum("FAILED" in line for line in logs) == 1          # tests/test_sweep_group_errors.py: the rest


def test_scan_over_rounds_matches_round_by_round(tmp_path):
    # eval_every=3: rounds 1..3 run as one lax.scan on the device; eval_every=1: one call per round.
    scanned = _strip(run.run(tiny("protocol.name=tally", "rounds=3", "eval_every=3"), str(tmp_path / "s"),
                             progress=False) and read_rows(tmp_path / "s"))
    stepped = _strip(read_rows(run.run(tiny("protocol.name=tally", "rounds=3", "eval_every=1"),
                                       str(tmp_path / "e"), progress=False)["out"]))
    _compare(scanned, stepped[-1:], "scan")


def test_sweep_benchmark_plan_is_one_program():
    from tallysim.bench import sweep as bench_sweep
    for smoke, n in ((False, 108), (True, 8)):
        base, runs = bench_sweep.plan(smoke)
        cfgs = sweep.configs(base, runs)
        assert len(runs) == n and len(lanes.group(cfgs)) == 1
    text = bench_sweep.table({"device": "cpu: cpu", "runs": 8, "smoke": True, "data": "synthetic",
                              "programs_grouped": 1, "programs_one_at_a_time": 8, "grouped_s": 10.0,
                              "one_at_a_time_s": 25.0, "grouped_runs_per_hour": 2880.0,
                              "one_at_a_time_runs_per_hour": 1152.0, "ratio": 2.5})
    assert "2.50x" in text and "2,880" in text


# faults.fraction is host-side with a fixed faulty set: it only sets each lane's mask FedData.faulty_P
# (and, for under_trained, which shards are cut). Whether any peer is faulty stays static.
FAULT_COMPARE = COMPARE + ("acc_mean_honest", "vote_acc_honest", "softavg_acc_honest")
FAULT_CASES = {
    "tally under_trained": ["protocol.name=tally", "faults.kind=under_trained", "faults.examples=12",
                            "faults.steps=1", "peers=5"],
    "softlabel median confident_wrong": ["protocol.name=softlabel", "softlabel.aggregate=median",
                                         "faults.kind=confident_wrong", "faults.target=1", "peers=5"],
    "fedavg median confident_wrong": ["protocol.name=fedavg", "fedavg.aggregate=median",
                                      "faults.kind=confident_wrong", "peers=5"],
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=() if i == 0 else pytest.mark.slow)
                                  for i, c in enumerate(FAULT_CASES)])     # about 3 runs' compile time each
def test_faulty_fractions_share_one_program_and_match_each_alone(case, tmp_path):
    base = FAULT_CASES[case]
    variants = [["faults.fraction=0.2", "seed=0"],
                ["faults.fraction=0.4", "seed=3", "seeds=2", "partition.kind=dirichlet", "partition.alpha=0.5"]]
    cfgs = [config.validate(tiny(*base, *v)) for v in variants]
    assert len(lanes.group(cfgs)) == 1, "fractions with faulty peers must be one group"
    results = run.run_group(cfgs, [tmp_path / f"g{i}" for i in range(len(cfgs))], progress=False)
    for i, (cfg, res) in enumerate(zip(cfgs, results)):
        assert not isinstance(res, Exception), res
        run.run(cfg, str(tmp_path / f"a{i}"), progress=False)
        grouped, alone = _strip(read_rows(tmp_path / f"g{i}")), _strip(read_rows(tmp_path / f"a{i}"))
        assert_rows_close(alone, grouped, f"{case} config {i}", EXACT + ("faulty",), FAULT_COMPARE)
        assert [r["faulty"] for r in grouped] == [1 if i == 0 else 2] * len(grouped)     # floor(f * 5)
        for name in ("config.json", "partition.json"):
            assert (json.loads((tmp_path / f"g{i}" / name).read_text())
                    == json.loads((tmp_path / f"a{i}" / name).read_text())), name
    # the lanes really differ: more faulty peers, other rows
    assert read_rows(tmp_path / "g0")[-1]["acc_mean"] != read_rows(tmp_path / "g1")[-1]["acc_mean"]


def test_fault_signature_zero_versus_nonzero_and_redraw():
    sig = lambda *o: lanes.signature(config.validate(tiny("protocol.name=tally", "peers=5", *o)))
    cw = ("faults.kind=confident_wrong",)
    assert sig(*cw, "faults.fraction=0.2") == sig(*cw, "faults.fraction=0.4") == sig(*cw, "faults.fraction=0.6")
    # no faulty peer (fraction 0, or floor(fraction * P) = 0) is the fault-free program: its own group,
    # whatever the kind and the other faults.* fields say
    assert sig(*cw, "faults.fraction=0.2") != sig(*cw, "faults.fraction=0")
    assert sig(*cw, "faults.fraction=0") == sig(*cw, "faults.fraction=0.1") == sig() \
        == sig("faults.kind=under_trained", "faults.fraction=0", "faults.examples=3")
    # the kind and its fields stay static when peers are faulty
    assert sig(*cw, "faults.fraction=0.2") != sig("faults.kind=under_trained", "faults.fraction=0.2",
                                                  "faults.examples=3")
    assert sig(*cw, "faults.fraction=0.2") != sig(*cw, "faults.fraction=0.2", "faults.target=2")
    # redraw=true draws floor(fraction * P) peers inside the round: a static count
    rd = cw + ("faults.redraw=true",)
    assert sig(*rd, "faults.fraction=0.2") != sig(*rd, "faults.fraction=0.4")
