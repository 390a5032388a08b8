"""Time and peak memory of one round at C classes x P peers x M probes (issue 9, item 3).

Each configuration runs in its own child process (build, compile, warm-up, one round, one evaluation),
so `ru_maxrss` is that run's own peak resident memory. Usage:

    .venv/bin/python experiments/scale_probe_exchange.py                    # the full-size table
    .venv/bin/python experiments/scale_probe_exchange.py --peers 200 --probes 2000 --protocols tally
    .venv/bin/python experiments/scale_probe_exchange.py --code /tmp/old    # another checkout's tallysim

Prints one JSON line per run: protocol, peers, probes, classes, wall_s (whole child), round_s
(run.run's own clock: compile + round + eval), cpu_s (user + system, all threads), peak_rss_mb.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def overrides(protocol: str, peers: int, probes: int, classes: int) -> list[str]:
    """A tiny MLP on 4x4 synthetic inputs: the probe exchange, not training, dominates memory."""
    per_peer = 20
    return [f"protocol.name={protocol}", "data.name=synthetic", f"data.num_classes={classes}",
            "data.input_shape=4x4x1", f"data.train_size={peers * per_peer + probes}",
            "data.test_size=1000", "model.width=8", "local_steps=1", "warmup_epochs=0",
            "partition.kind=iid", f"peers={peers}", f"probe.per_round={probes}",
            f"probe.pool_size={probes}", "rounds=1", "batch_size=16"]


def child(args) -> None:
    import resource
    import time
    t0 = time.perf_counter()
    from tallysim import config, run
    cfg = config.apply_overrides(config.Config(), overrides(args.protocol, args.peers, args.probes,
                                                            args.classes))
    last = run.run(cfg, progress=False)
    wall = time.perf_counter() - t0
    use = resource.getrusage(resource.RUSAGE_SELF)
    rss_mb = use.ru_maxrss / 1024                       # Linux: KiB
    cpu = use.ru_utime + use.ru_stime                   # shared machines: CPU time is steadier than wall
    print(json.dumps({"protocol": args.protocol, "peers": args.peers, "probes": args.probes,
                      "classes": args.classes, "wall_s": round(wall, 1), "round_s": last["wall_s"],
                      "cpu_s": round(cpu, 1), "peak_rss_mb": round(rss_mb), "vote_acc": last["vote_acc"],
                      "softavg_acc": last["softavg_acc"], "wrong_confidence": last["wrong_confidence"]}),
          flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocols", default="tally,softlabel")
    ap.add_argument("--peers", type=int, default=1000)
    ap.add_argument("--probes", type=int, default=10000)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--code", help="directory holding the tallysim package to measure (default: this one)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--protocol", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return 0
    if args.code and not (Path(args.code) / "tallysim" / "__init__.py").is_file():
        # PYTHONPATH=/nowhere: each child imported the installed tallysim instead, and measured it as if it were
        # the code asked for (the full-size default table, minutes, of the wrong code)
        ap.error(f"--code {args.code}: no tallysim package there (no tallysim/__init__.py); allowed: a checkout's root")
    env = dict(os.environ, PYTHONPATH=str(Path(args.code).resolve() if args.code else ROOT))
    rc = 0
    for protocol in args.protocols.split(","):
        cmd = [sys.executable, __file__, "--child", "--protocol", protocol, "--peers", str(args.peers),
               "--probes", str(args.probes), "--classes", str(args.classes)]
        proc = subprocess.run(cmd, env=env, cwd="/tmp", capture_output=True, text=True)
        if proc.returncode:
            # An out-of-memory kill shows as -9: report it as a row rather than a traceback.
            print(json.dumps({"protocol": protocol, "peers": args.peers, "probes": args.probes,
                              "classes": args.classes, "failed": proc.returncode,
                              "stderr": proc.stderr.strip().splitlines()[-1:]}), flush=True)
            rc = 1
        else:
            sys.stdout.write(proc.stdout)
    return rc


if __name__ == "__main__":
    sys.exit(main())
