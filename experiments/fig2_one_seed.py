"""One seed of one group at one alpha of a Fig. 2 figure config (experiments/fig2_lenet.json, fig2_cnn.json), as
its own run: a third seed for a verdict the figure's two seeds left within the noise (docs/figures.md,
"Fig. 2 with LeNet"; paired45).

    PYTHONPATH=. python experiments/fig2_one_seed.py experiments/fig2_lenet.json tally 0.1 2

The figure's config for that group and sweep point with `seed=S seeds=1`: a program's lanes run seeds
seed..seed+seeds-1 (build.py), so this is the lane seed S of the figure's own program. It runs as a sweep's
run does (tallysim.run.run, no single-run check_read: the figures' shared base sets fields, such as the
MLP's model.width, that LeNet and the CNN do not read). One JSON line on stdout: the final round's peer mean.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

from tallysim import config, figures


def plan(spec_path: str, group: str, alpha: str, seed: int) -> config.Config:
    """The figure's Config for `group` at partition.alpha=`alpha`, seed `seed` alone."""
    spec = config.read_file(spec_path)
    plans = figures.group_plans(spec, False, pathlib.Path(spec_path).parent)
    if group not in plans:
        raise SystemExit(f"fig2_one_seed.py: no group {group!r} in {spec_path}; allowed: {', '.join(plans)}")
    cfg, runs = plans[group]
    chosen = [over for _, over in runs if f"partition.alpha={alpha}" in over]
    if len(chosen) != 1:
        raise SystemExit(f"fig2_one_seed.py: alpha {alpha} is not one of {spec_path}'s points; allowed: "
                         f"{', '.join(o for _, over in runs for o in over if o.startswith('partition.alpha='))}")
    return config.apply_overrides(cfg, [*chosen[0], f"seed={seed}", "seeds=1"])


def _seed(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def main(argv: list[str]) -> dict:
    # argparse: --help answers with the usage and exit 0, no argument with exit 2 (every experiments script)
    p = argparse.ArgumentParser(prog="fig2_one_seed.py", description=__doc__.split("\n\n")[0])
    p.add_argument("figure", metavar="FIGURE.json", help="a Fig. 2 figure config (experiments/fig2_lenet.json)")
    p.add_argument("group", metavar="GROUP", help="one of its groups (tally, softlabel, local, ...)")
    p.add_argument("alpha", metavar="ALPHA", help="one of its partition.alpha points (0.1, 0.5, 100)")
    p.add_argument("seed", metavar="SEED", type=_seed, help="the seed, a whole number (2 for a third seed)")
    a = p.parse_args(argv)
    spec_path, group, alpha, seed = a.figure, a.group, a.alpha, a.seed
    cfg = plan(spec_path, group, alpha, seed)
    from tallysim import run as runmod
    t0 = time.time()
    last = runmod.run(cfg, out=tempfile.mkdtemp(prefix="fig2-one-seed-"), progress=False)
    out = {"spec": spec_path, "group": group, "alpha": alpha, "seed": seed, "wall_s": round(time.time() - t0, 1),
           "round": last["round"], "acc_mean": last["acc_mean"]}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
