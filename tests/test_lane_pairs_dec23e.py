"""Every (protocol, per-lane field) pair on its own (review27): a grouped sweep whose lanes differ in ONE
field gives each lane the rows it gets alone, and the lanes really differ.

tests/test_trust_groups.py varies every per-lane field of a protocol at once in its second lane: a field
whose lane-0 value leaked into lane 1 could hide there behind the others' (much larger) effects, and
its tolerance (6e-3 on accuracies) lets a small field's effect through. Here each field is its own lane:
one compiled program per protocol holds the base configuration as lane 0 and one lane per field, each
differing from lane 0 in that field alone (a second program for the NONZERO fields the case leaves
at zero, all switched on in its lane 0: lanes_of); every lane's rows are compared with the same
configuration run alone (bits and schedule exactly, values to float summation order), and a lane that
equals its lane 0 is named (the pair checks nothing: INERT lists the measured ones with why).

The fields are not listed by hand: the traced ones each protocol declares it reads (protocols.reads),
and the host-side and schedule ones (lanes.HOST, SCHEDULE) that every protocol's group carries. Every
other field splits a group (test_trust_groups.test_every_other_field_splits_a_group)."""
from __future__ import annotations

import functools
import json
import warnings

import numpy as np
import pytest
from conftest import crash_after_row

import trust_cases as tc
from tallysim import config, protocols, run
from tallysim.config import ConfigError
from tallysim.sim import faults, lanes
from test_lane_reads import REFUSED, _two_values

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

EXACT = ("round", "bits_up", "bits_down", "bits_per_peer", "steps_real", "steps_computed", "epsilon", "faulty",
         "merged", "nnz", "tied")
# Host-side and schedule fields, each as a lane of its own (their second value; partition.alpha is read by
# the dirichlet partition only, so its lane sets it too). partition.k/scheme/pick/min_size/cap and seed_chunk:
# test_trust_groups (its pair and label_quantity test) and test_text_lanes (pick).
HOST = {"seed": ["seed=1"], "seeds": ["seeds=2"], "partition.kind": ["partition.kind=dirichlet"],
        "partition.alpha": ["partition.kind=dirichlet", "partition.alpha=0.3"],
        "rounds": ["rounds=1"], "eval_every": ["eval_every=2"]}
# A pair whose lane cannot differ from lane 0 in these two rounds, and why (the comparison with the
# run alone still holds for it).
INERT = {("fedavg-straggler", "faults.fraction"):
         "faulty sets {1, 3} and {1}; the 2-peer cohorts of rounds 1-2 hold peer 1 and not 3: the same straggler"}


# Settings that make a case's fields act within two rounds: selective_fd's default thresholds (0.5) keep no
# probe there (kept 0.0, measured), so its distillation fields changed nothing;
# fedct's case exchanges every 2 rounds (fedct.period=2), so its targets are first distilled in round 3: period 1.
ACT = {"selective_fd": ["selective_fd.client_threshold=0.1", "selective_fd.server_threshold=0.1"],
       "fedct": ["fedct.period=1"]}


# Values that act within two rounds: distill.ramp_rounds 1 and 2 (_two_values) both give factor 1 in round 2,
# and round 1 has no targets yet (softlabel's pair was inert, measured); 2 and 4 give 1 and 0.5 there.
# distill.gate 0.3 and 0.1 both let topk_soft's agreement through (inert, measured); 0.9 shuts it.
VALUES = {"distill.ramp_rounds": (2, 4), "distill.gate": (0.1, 0.9)}


def _base(case: str) -> config.Config:
    name = config.apply_overrides(config.Config(), list(tc.items(case))).protocol.name
    return tc.cfg(case, "rounds=2", "eval_every=1", *ACT.get(name, []))


@functools.cache
def lanes_of(case: str, only: tuple = ()) -> tuple:
    """The groups to run, each ((field, config), ...): lane 0 its base, then one lane per field, differing
    from the base in that field alone. The first group's base is the case itself, its lanes the traced
    fields the protocol reads that the case sets nonzero, and the host-side and schedule fields. A NONZERO
    field the case leaves at zero would compile apart from its base (lanes.signature), so those fields
    form a second group whose base switches them all on: kept apart, because switching them on may take
    the others' effect away (softlabel's distillation did nothing in two rounds under distill.gate=0.3 and
    distill.ramp_rounds=1, measured)."""
    case_cfg = _base(case)
    name = case_cfg.protocol.name
    first, on, switched = [], case_cfg, {}
    for k in (k for k in lanes.traced() if protocols.reads(name, k) and (not only or k in only)):
        v0, v1 = VALUES.get(k) or _two_values(config.declared()[k])
        cur = config.get_field(case_cfg, k)
        try:
            if cur:
                lane = config.validate(config.apply_overrides(case_cfg, [f"{k}={v1 if cur != v1 else v0}"]))
                first.append((k, lane))
                continue
            moved = config.validate(config.apply_overrides(on, [f"{k}={v0}"]))
            config.validate(config.apply_overrides(moved, [f"{k}={v1}"]))
        except ConfigError:
            assert (name, k) in REFUSED or k == "privacy.noise" and case_cfg.vote.weighting == "history", (case, k)
            continue
        on, switched[k] = moved, v1
    for k, items in HOST.items():
        if only and k not in only:
            continue
        if k.startswith("partition.") and case_cfg.partition.kind == "population":
            continue      # 30 peers of >= 10 examples from 600: no dirichlet draw (RunRefused, measured)
        if k == "partition.kind" and case_cfg.partition.kind == "dirichlet":      # fednova's case
            items = ["partition.kind=iid"]
        first.append((k, config.validate(config.apply_overrides(case_cfg, items))))
    # host-side with a fixed faulty set
    fixed = faults.enabled(case_cfg, case_cfg.peers) and not case_cfg.faults.redraw
    if fixed and (not only or "faults.fraction" in only):
        f = 0.5 if case_cfg.faults.fraction != 0.5 else 0.25
        first.append(("faults.fraction", config.validate(config.apply_overrides(case_cfg, [f"faults.fraction={f}"]))))
    second = [(k, config.validate(config.apply_overrides(on, [f"{k}={v}"]))) for k, v in switched.items()]
    return tuple(tuple([("base", b)] + lanes_) for b, lanes_ in ((case_cfg, first), (on, second)) if lanes_)


def _compare(grouped: list, alone: list, what: str) -> None:
    assert len(grouped) == len(alone), (what, [r["round"] for r in grouped], [r["round"] for r in alone])
    for g, s in zip(grouped, alone):
        assert set(g) == set(s), (what, set(g) ^ set(s))
        for k, v in s.items():
            base = k[:-4] if k.endswith("_std") else k
            if k == "per_seed":
                _compare([{**v, "round": g["round"]}], [{**g[k], "round": g["round"]}], what)
            elif base in EXACT or base.startswith("bits") or not isinstance(v, (int, float, list)) or v is None:
                assert g[k] == v, (what, g["round"], k, g[k], v)
            else:     # a traced value vs a folded constant: float rounding only (tests/test_lanes.py)
                np.testing.assert_allclose(np.asarray(g[k], float), np.asarray(v, float), rtol=1e-4, atol=2e-3,
                                           err_msg=f"{what} round {g['round']} {k}")


def _differs(a: list, b: list) -> bool:
    """Do two lanes' rows differ beyond float rounding (so that a lane given lane 0's value would show)?"""
    # acc_global: the server's model, where fedavgm.beta first acts (round 2's server step)
    keys = ("train_loss", "acc_mean", "acc_global", "bits_up", "bits_down", "agreement", "vote_acc", "epsilon")
    num = lambda r, k: np.asarray(r.get(k) or 0, float)      # noqa: E731
    return len(a) != len(b) or any(not np.allclose(num(x, k), num(y, k), rtol=1e-4, atol=1e-5)
                                   for x, y in zip(a, b) for k in keys)


def check(name: str, tmp_path, only: tuple = ()) -> list:
    """Every lane of `name`'s groups against its run alone: the pairs whose rows differ ([] expected),
    and the inert ones (the lane equals its group's lane 0: the pair checks nothing), by field."""
    wrong, inert = [], []
    for g, pairs in enumerate(lanes_of(name, only)):
        cfgs = [c for _, c in pairs]
        assert len(lanes.group(cfgs)) == 1, f"{name}: every lane must share lane 0's program"
        outs = [tmp_path / f"g{g}-{i}" for i in range(len(cfgs))]
        for r in run.run_group(cfgs, outs, progress=False, warn=False):
            assert not isinstance(r, Exception), r
        grouped = [tc.read_rows(o) for o in outs]
        for i, ((field, cfg), rows) in enumerate(zip(pairs, grouped)):
            alone_dir = tmp_path / f"a{g}-{i}"
            alone = tc.read_rows(run.run(cfg, str(alone_dir), progress=False)["out"])
            try:
                _compare(rows, alone, f"{name} lane {i} ({field})")
                assert json.loads((outs[i] / "config.json").read_text()) == \
                    json.loads((alone_dir / "config.json").read_text()), f"{field}: config.json"
            except AssertionError as e:
                wrong.append(f"{field}: {' '.join(x.strip() for x in str(e).splitlines() if x.strip())[:300]}")
            if i and not _differs(rows, grouped[0]):
                inert.append(field)
    return wrong, inert


# Every case of trust_cases (a protocol each, then population, faults, privacy, model.groups) in make
# test-all: one or two groups, then each lane alone (2 to 10 minutes a case on the shared 2-core machine at
# load 9-15, 2026-12-07). review27 ran the cases named in its report: every pair matched its run alone.
@pytest.mark.slow
@pytest.mark.parametrize("case", tc.every_case())
def test_each_lane_field_alone_in_a_group_gives_the_run_alone(case, tmp_path):
    wrong, inert = check(case, tmp_path)
    assert not wrong, (case, wrong)
    unknown = sorted(set(inert) - {k for (n, k) in INERT if n == case})
    if unknown:     # not every case was measured with these values: said, not failed
        warnings.warn(f"{case}: the lanes varying {unknown} equal lane 0 in two rounds (those pairs check "
                      "nothing; list them in INERT with why, or choose values that act)", RuntimeWarning)


# make test's subset: cfd (issue 30 read its distill.temperature from lane 0) with that traced field and
# a schedule field (rounds), three lanes in one program; alone, the rounds lane reuses the base's compiled
# program (the persistent cache). The host-side fields (seed, seeds, seed_chunk, partition.*, faults.fraction)
# are in make test through test_trust_groups' tally-dropout pair, all in one batch.
FAST = ("distill.temperature", "rounds")


def test_a_traced_and_a_schedule_field_each_alone_in_a_group_give_the_runs_alone(tmp_path):
    wrong, inert = check("cfd", tmp_path, FAST)
    assert [sorted(f for f, _ in g[1:]) for g in lanes_of("cfd", FAST)] == [sorted(FAST)]
    assert not wrong and not inert, (wrong, inert)


class Crash(Exception):
    pass


def _sweep_rows(out, runs) -> dict:
    return {name: tc.read_rows(out / name) for name, _ in runs}


@pytest.mark.slow     # fast, the same code with one seed a lane and no host field varied:
# tests/test_checkpoint_dec20d.py::test_a_group_killed_after_round_1_resumes_each_run_alone_from_round_1
def test_a_grouped_sweep_of_seeds_resumes_per_lane_and_equals_each_seed_alone(tmp_path, monkeypatch):
    """fedavgm (server momentum: state a resume must restore) as a grouped sweep of two runs with seeds=2
    each (4 lanes), differing in a traced field, the seed, the partition and the rounds. (1) Every lane
    (run, seed) equals that seed run alone (seeds=1, seed=s); (2) stopped while round 2's rows are written
    with a checkpoint every round, the sweep run again resumes each run alone and ends with the rows of
    the uninterrupted grouped sweep."""
    from tallysim import sweep
    base = tc.cfg("fedavgm", "rounds=3", "eval_every=1", "seeds=2")
    runs = [("a", ["optim.lr=0.05"]),
            ("b", ["optim.lr=0.1", "seed=5", "rounds=2", "partition.kind=dirichlet", "partition.alpha=0.5"])]
    cfgs = sweep.configs(base, runs)
    assert len(lanes.group(cfgs)) == 1
    sweep.run_sweep(base, runs, tmp_path / "whole", progress=False, log=lambda s: None)
    whole = _sweep_rows(tmp_path / "whole", runs)
    for (name, _), cfg in zip(runs, cfgs):
        for s in range(2):
            one = config.validate(config.apply_overrides(cfg, [f"seed={cfg.seed + s}", "seeds=1"]))
            alone = tc.read_rows(run.run(one, str(tmp_path / f"{name}{s}"), progress=False)["out"])
            lane = [{k: v[s] for k, v in r["per_seed"].items()} | {"round": r["round"]} for r in whole[name]]
            _compare(lane, [{k: v for k, v in r.items() if k in lane[0]} for r in alone], f"{name} seed {s}")
    with monkeypatch.context() as m:
        crash_after_row(m, 2, Crash)
        recs = sweep.run_sweep(base, runs, tmp_path / "sw", progress=False, log=lambda s: None, checkpoint_every=1)
    assert [r["status"] for r in recs] == ["failed", "failed"]
    logs = []
    recs = sweep.run_sweep(base, runs, tmp_path / "sw", progress=False, log=logs.append)
    assert [r["status"] for r in recs] == ["done", "done"], logs
    assert sum("resuming from round 2" in s for s in logs) == 2, logs
    got = _sweep_rows(tmp_path / "sw", runs)
    for name, _ in runs:
        _compare(got[name], whole[name], f"{name} resumed")
