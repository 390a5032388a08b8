"""`tallysim bench --sweep`: one fixed sweep, grouped (one compiled program per static signature) and
one configuration at a time, in the same process; runs per hour for both and their ratio.

The sweep: TallyTrain on Fashion-MNIST (20,000 training examples), 20 peers, MLP width 100, 500
probes, 10 rounds; optim.lr x 4, distill.weight x 3, partition.alpha x 3, seeds x 3 = 108 runs.
`--smoke` (CI): 2 x 2 x 2 x 1 = 8 runs of 3 rounds on 4,000 examples, 200 probes. `--data synthetic` needs no
prepared dataset. `--sample N` times one at a time only N runs spread evenly over the sweep (runs per hour is a rate:
each run compiles and runs on its own, so a sample measures it; the table says it was sampled), which
keeps the full benchmark to minutes on a CPU where 108 runs one at a time take about half an hour.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import jax

from tallysim import config, sweep, sweep_checks
from tallysim.results import metrics
from tallysim.sim import lanes

FULL = {"axes": ["optim.lr=0.01,0.02,0.05,0.1", "distill.weight=0.5,1,2", "partition.alpha=0.1,0.5,1",
                 "seed=0,1,2"],
        "base": ["data.max_train=20000", "rounds=10", "eval_every=10"]}
SMOKE = {"axes": ["optim.lr=0.02,0.05", "distill.weight=0.5,1", "partition.alpha=0.5,1", "seed=0"],
         "base": ["data.max_train=4000", "data.max_test=1000", "rounds=3", "eval_every=3",
                  "probe.per_round=200"]}
COMMON = ["protocol.name=tally", "peers=20", "model.name=mlp", "model.width=100", "probe.per_round=500",
          "partition.kind=dirichlet", "partition.min_size=5", "batch_size=32"]
SYNTHETIC = ["data.name=synthetic", "data.train_size=20000", "data.test_size=2000", "data.difficulty=0.5"]


def plan(smoke: bool, data: str = "fashion_mnist"):
    """(base config, [(name, overrides)]) of the benchmark sweep."""
    spec = SMOKE if smoke else FULL
    items = COMMON + spec["base"] + (SYNTHETIC if data == "synthetic" else [f"data.name={data}"])
    base = config.apply_overrides(config.Config(), items)
    return base, sweep.expand({}, spec["axes"])


def run(smoke: bool = False, data: str = "fashion_mnist", log=print, keep: str = None,
        sample: int = 0) -> dict:
    """Time the sweep both ways; returns the numbers (also printed as a short table). `sample` > 0:
    one at a time runs only `sample` evenly spaced runs of the sweep. `keep`: the folder to sweep into and
    keep (default a temporary one): runs an earlier call finished there are left as they were, counted as
    `{mode}_done_before` and not timed (`{mode}_timed` runs are)."""
    base, runs = plan(smoke, data)
    cfgs = sweep_checks.configs(base, runs)
    programs = len(lanes.group(cfgs))
    alone = sampled(runs, sample)
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="tallysim-bench-sweep-"))
    out = {"device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}", "runs": len(runs),
           "programs_grouped": programs, "programs_one_at_a_time": len(runs), "smoke": smoke, "data": data,
           "one_at_a_time_timed": len(alone)}
    try:
        for mode, grouped, todo in (("grouped", True, runs), ("one_at_a_time", False, alone)):
            log(f"bench --sweep: {len(todo)} runs {mode.replace('_', ' ')} ...")
            t0 = time.perf_counter()
            recs = sweep.run_sweep(base, todo, root / mode, progress=False, log=lambda _: None, grouped=grouped)
            seconds = time.perf_counter() - t0
            # A run whose loss went NaN (too large a learning rate) is a result, not a broken benchmark:
            # count it. One at a time it stops at the NaN; grouped, its lane runs on (so this can only
            # understate the grouped speed-up).
            diverged = [r for r in recs if r.get("diverged")]
            # A run finished before (a `keep` folder that held it: sweep.json's done_before) was left as it
            # was, neither run nor failed: it was counted a failure. Counted apart, and not timed.
            before = [r for r in recs if metrics.done_before(r)]
            failed = [r for r in recs if r["status"] != "done" and r not in diverged and r not in before]
            out[f"{mode}_diverged"], out[f"{mode}_done_before"] = len(diverged), len(before)
            if failed:
                raise RuntimeError(f"bench --sweep: {len(failed)} runs failed, the first: {failed[0]['name']}: "
                                   f"{failed[0].get('error')}")
            ran = len(todo) - len(before)
            if not ran:
                raise RuntimeError(f"bench --sweep: all {len(todo)} runs {mode.replace('_', ' ')} were finished "
                                   f"before in {root / mode}, so none was timed; allowed: an empty keep folder")
            # the whole sweep's time from the rate of the runs it ran (a sample's, or those not done before)
            out[f"{mode}_s"] = round(seconds * len(runs) / ran, 2)
            out[f"{mode}_runs_per_hour"] = round(ran * 3600 / seconds, 1)
            out[f"{mode}_timed"] = ran
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)      # our own temporary directory only
    out["ratio"] = round(out["one_at_a_time_s"] / out["grouped_s"], 2)
    log(table(out))
    return out


def sampled(runs: list, n: int) -> list:
    """`n` runs spread evenly over `runs` (run i * len(runs) // n for i < n), all of them where n is 0 or not
    fewer. A fixed stride of ceil(len / n) timed fewer than asked: --sample 50 of 108 runs timed 36."""
    if not n or n >= len(runs):
        return list(runs)
    return [runs[i * len(runs) // n] for i in range(n)]


def _timed_note(r: dict, mode: str) -> str:
    """Where a mode's seconds come from fewer runs than the sweep's: a sample, runs finished before."""
    timed = r.get(f"{mode}_timed", r["runs"])
    if timed >= r["runs"]:
        return ""
    before = r.get(f"{mode}_done_before", 0)
    return f"  (seconds from {timed} {'sampled ' if timed + before < r['runs'] else ''}runs)"


def table(r: dict) -> str:
    lines = [f"sweep benchmark on {r['device']} ({r['runs']} runs, {'smoke' if r['smoke'] else 'full'}, "
             f"data {r['data']})",
             f"{'mode':<16}{'programs':>10}{'seconds':>10}{'runs/hour':>12}",
             f"{'grouped':<16}{r['programs_grouped']:>10}{r['grouped_s']:>10.1f}{r['grouped_runs_per_hour']:>12,.0f}"
             + _timed_note(r, "grouped"),
             f"{'one at a time':<16}{r['programs_one_at_a_time']:>10}{r['one_at_a_time_s']:>10.1f}"
             f"{r['one_at_a_time_runs_per_hour']:>12,.0f}" + _timed_note(r, "one_at_a_time"),
             f"grouped is {r['ratio']:.2f}x faster"]
    if r.get("grouped_done_before") or r.get("one_at_a_time_done_before"):
        lines.append(f"finished before (left as they were, not timed): grouped {r.get('grouped_done_before', 0)}, "
                     f"one at a time {r.get('one_at_a_time_done_before', 0)}")
    if r.get("grouped_diverged") or r.get("one_at_a_time_diverged"):
        lines.append(f"diverged (NaN loss, counted as run): grouped {r.get('grouped_diverged', 0)}, "
                     f"one at a time {r.get('one_at_a_time_diverged', 0)}")
    return "\n".join(lines)


def main(args) -> int:
    r = run(smoke=bool(getattr(args, "smoke", False)), data=getattr(args, "data", None) or "fashion_mnist",
            log=lambda s: print(s, file=sys.stderr, flush=True), sample=getattr(args, "sample", 0) or 0)
    from tallysim.bench import write_json
    write_json(r, getattr(args, "json", None))
    return 0
