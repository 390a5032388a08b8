"""Results you can trust: a grouped sweep equals its single runs, for every registered protocol and every
field a group lets vary (tests/trust_cases.py's cases).

The fields are not listed by hand: they are lanes.py's per-lane sets (traced, host-side, schedule, the
fixed faulty fraction), the traced ones restricted to those the protocol declares it reads
(protocols.reads), so a new lane field, or a protocol that starts reading one, is varied here at once.
For each case one group of two configurations, the second differing from the first in every such field
at once, is run with run_group and compared row for row with the two configurations run alone: bits
and schedule exactly, values to float summation order (a varying value is a traced argument where alone
it is a folded constant: tests/test_lanes.py's tolerance). Every other field splits a group
(lanes.signature), checked field by field without compiling."""
import functools
import json

import numpy as np
import pytest

import trust_cases as tc
from tallysim import config, protocols, run, sizing
from tallysim.config import ConfigError
from tallysim.sim import faults, lanes
from test_lane_reads import REFUSED, _two_values

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CASES = tc.every_case()
# exact: what the host computes (bits, privacy ledgers, the schedule); the rest to float summation order
EXACT = ("round", "bits_up", "bits_down", "bits_per_peer", "steps_real", "steps_computed", "epsilon", "faulty")


def _host_values(a: config.Config) -> dict:
    """The second lane's value of every host-side and schedule field (lanes.HOST, SCHEDULE,
    HOST_FIXED_FAULTS), chosen from the first lane's so that it differs and stays valid."""
    p = a.partition
    # seed_chunk 3: every lane of the pair (1 + 2) in one batch. It was 1, and the smallest a group's
    # configurations ask for wins (build.auto_chunk), so the pair ran one lane at a time and never put two
    # configurations in one vmapped program (review27).
    out = {"seed": a.seed + 1, "seeds": 2, "seed_chunk": 3,
           "partition.kind": "dirichlet", "partition.alpha": 0.3 if p.alpha != 0.3 else 0.7,
           "partition.min_size": 1 if p.min_size != 1 else 2, "partition.cap": not p.cap,
           "rounds": a.rounds - 1, "eval_every": a.eval_every + 1}
    if faults.enabled(a, a.peers) and not a.faults.redraw:
        out["faults.fraction"] = 0.5 if a.faults.fraction != 0.5 else 0.25
    return out


# Host-side fields the all-at-once pair cannot vary together with partition.kind=dirichlet (they are
# read by label_quantity only, or natural only): varied by test_label_quantity_fields_in_one_group and
# test_text_lanes.test_partition_pick_is_host_side_one_program_each_lane_its_own_clients instead.
HOST_ELSEWHERE = {"partition.k": "label_quantity only", "partition.scheme": "label_quantity only",
                  # natural only, on a dataset with clients: tests/test_text_lanes.py's pick test
                  "partition.pick": "natural only"}


@functools.cache
def _pair(case: str):
    """(first config, second config, {field: (first value, second value)}, {field: why not varied})."""
    a0 = config.apply_overrides(config.Config(), list(tc.items(case)))     # parsed once: parsing is slow
    name = a0.protocol.name
    traced = [k for k in lanes.traced() if protocols.reads(name, k)]
    a_vals, b_vals, skipped = {}, {}, {}
    for k in traced:
        v0, v1 = _two_values(config.declared()[k])
        cur = config.get_field(a0, k)
        if cur and cur != v1:
            v0 = cur                      # keep the case's own setting (it switches its state on)
        elif cur and cur == v1:
            v0, v1 = v1, v0
        try:
            config.validate(config.apply_overrides(a0, [f"{k}={v1}"]))
            config.validate(config.apply_overrides(a0, [f"{k}={v0}"]))
        except ConfigError as e:
            skipped[k] = REFUSED.get((name, k), f"refused in this case: {str(e)[:80]}")
            continue
        a_vals[k], b_vals[k] = v0, v1
    a = config.validate(config.apply_overrides(a0, [f"{k}={v}" for k, v in a_vals.items()]))
    host = _host_values(a)
    b = config.validate(config.apply_overrides(a, [f"{k}={v}" for k, v in {**b_vals, **host}.items()]))
    varied = {k: (a_vals[k], b_vals[k]) for k in a_vals}
    varied.update({k: (config.get_field(a, k), v) for k, v in host.items()})
    skipped.update(HOST_ELSEWHERE)
    return a, b, varied, skipped


def _compare(grouped: list, alone: list, what: str) -> None:
    assert len(grouped) == len(alone), (what, [r["round"] for r in grouped], [r["round"] for r in alone])
    for g, s in zip(grouped, alone):
        assert set(g) == set(s), (what, set(g) ^ set(s))
        for k in s:
            if k == "per_seed":
                _compare_values(g[k], s[k], what, g["round"], exact_only=False)
                continue
            _compare_values({k: g[k]}, {k: s[k]}, what, g["round"], exact_only=False)


def _compare_values(g: dict, s: dict, what, r, exact_only):
    for k, v in s.items():
        base = k[:-4] if k.endswith("_std") else k
        if base in EXACT or base.startswith("bits") or not isinstance(v, (int, float, list)) or v is None:
            assert g[k] == v, (what, r, k, g[k], v)
        else:
            np.testing.assert_allclose(np.asarray(g[k], float), np.asarray(v, float), rtol=1e-4, atol=6e-3,
                                       err_msg=f"{what} round {r} {k}")


def _run_group(a, b, tmp_path) -> list:
    assert len(lanes.group([a, b])) == 1, "the pair must be one program"
    assert sizing.asked_chunk([a, b], a.seeds + b.seeds) in (None, a.seeds + b.seeds), "one batch of every lane"
    outs = [str(tmp_path / "ga"), str(tmp_path / "gb")]
    res = run.run_group([a, b], outs, progress=False)
    for r in res:
        assert not isinstance(r, Exception), r
    return [tc.read_rows(o) for o in outs]


@pytest.mark.parametrize("case", tc.marked("groups", CASES))
def test_a_group_of_two_equals_the_two_single_runs(case, tmp_path):
    a, b, varied, _ = _pair(case)
    ga, gb = _run_group(a, b, tmp_path)
    alone_b = tc.read_rows(run.run(b, str(tmp_path / "b"), progress=False)["out"])
    alone_a = tc.read_rows(run.run(a, str(tmp_path / "a"), progress=False)["out"])
    _compare(ga, alone_a, f"{case} lane 0")
    _compare(gb, alone_b, f"{case} lane 1 {sorted(varied)}")
    for f in ("partition.json",):
        assert (tmp_path / "gb" / f).read_text() == (tmp_path / "b" / f).read_text(), f
    assert json.loads((tmp_path / "gb" / "config.json").read_text()) == \
        json.loads((tmp_path / "b" / "config.json").read_text())


def test_every_lane_field_is_varied_for_every_protocol_or_skipped_with_a_reason():
    per_lane = set(lanes.traced()) | set(lanes.HOST) | set(lanes.SCHEDULE)
    for name in protocols.REGISTRY:
        mine = [c for c in CASES if c == name or c.startswith(name + "-")]
        varied, skipped = set(), {}
        for c in mine:
            _, _, v, s = _pair(c)
            varied |= set(v)
            skipped.update(s)
        need = {k for k in per_lane if k not in lanes.traced() or protocols.reads(name, k)}
        for k in need - varied:
            assert k in skipped, (name, k)
            assert k in HOST_ELSEWHERE or (name, k) in REFUSED, (name, k, skipped[k])
    assert "faults.fraction" in _pair("tally-dropout")[2]


@pytest.mark.slow          # 3 runs; the pair above varies every other host-side field in make test
def test_label_quantity_fields_in_one_group(tmp_path):
    """partition.k and partition.scheme (read by label_quantity only) vary between two lanes."""
    a = tc.cfg("tally", "partition.kind=label_quantity", "partition.k=1")
    b = tc.cfg("tally", "partition.kind=label_quantity", "partition.k=3", "partition.scheme=balanced", "seed=2")
    ga, gb = _run_group(a, b, tmp_path)
    _compare(ga, tc.read_rows(run.run(a, str(tmp_path / "a"), progress=False)["out"]), "k=1 niid_bench")
    _compare(gb, tc.read_rows(run.run(b, str(tmp_path / "b"), progress=False)["out"]), "k=3 balanced")


def _other_value(f, v):
    """A value of field spec `f` other than `v` (validity aside: the signature is pure bookkeeping)."""
    if getattr(f, "choices", None):
        return next(c for c in f.choices if c != v)
    if f.type is bool or isinstance(v, bool):
        return not v
    if isinstance(v, int) and not isinstance(v, bool):
        return v + 1
    if isinstance(v, float):
        return v / 2 + 0.125
    if isinstance(v, tuple):
        return tuple(x + 1 for x in v)
    if v is None:
        return {int: 1, float: 0.5, tuple: (8, 8, 1)}.get(f.type, "x")
    return v + "x"


def test_every_other_field_splits_a_group():
    """A field that is not per-lane never joins two configurations into one program (so no lane can run
    on another's value): changing it changes lanes.signature. log.* (not the experiment) and, without
    a faulty peer, faults.* (the fault-free program reads none of them) are the exceptions."""
    per_lane = set(lanes.traced()) | set(lanes.HOST) | set(lanes.SCHEDULE) | set(lanes.HOST_FIXED_FAULTS)
    base = tc.cfg("tally")
    faulty = tc.cfg("tally", "faults.kind=label_flip", "faults.fraction=0.25")
    checked = 0
    for k, f in config.declared().items():
        if k in per_lane or k.split(".")[0] in config.NOT_THE_EXPERIMENT:
            continue
        for start in (faulty,) if k.startswith("faults.") else (base,):
            v = config.get_field(start, k)
            other = _other_value(f, v)
            moved = config.apply_overrides(start, [f"{k}={_text(other)}"])
            assert config.get_field(moved, k) != v, k
            assert lanes.signature(moved) != lanes.signature(start), f"{k}={v!r} -> {other!r} shares a program"
            checked += 1
    assert checked > 80
    # without faulty peers the faults.* fields join (the fault-free program), and so do log.*
    assert lanes.signature(tc.cfg("tally", "faults.scale=2")) == lanes.signature(base)
    assert lanes.signature(tc.cfg("tally", "log.tensorboard=x")) == lanes.signature(base)


def _text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "x".join(map(str, v))
    return str(v)


def test_a_groups_lane_batch_honours_every_configurations_seed_chunk():
    """seed_chunk is per-lane (lanes.HOST: it joins a group), so the group's batch must not be the first
    configuration's alone: a configuration that asks for 1 seed per batch (to fit memory) in a group led
    by one that leaves it to auto_chunk ran all lanes in one batch. The smallest one set wins, in either
    order (its numbers are the same either way: test_trust_resume's lane tests)."""
    from tallysim import build
    free, one = tc.cfg("tally", "seeds=2"), tc.cfg("tally", "seeds=2", "seed_chunk=1", "optim.lr=0.1")
    assert len(lanes.group([free, one])) == 1
    for cfgs in ([free, one], [one, free]):
        assert build.auto_chunk(build.build_group(cfgs)) == 1
    three = tc.cfg("tally", "seeds=2", "seed_chunk=3", "optim.lr=0.2")
    assert build.auto_chunk(build.build_group([free, three])) == 3      # at most every lane of the group
