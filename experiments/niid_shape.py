"""NIID-Bench's shape (issue 35), shared by experiments/time_compile.py and time_small_rounds.py: 10
peers, one class each, LeNet, batch 64, 10 local epochs, FedAvg (fedprox mu 0), 4 runs grouped (4 seeds).
data.max_train keeps a round seconds long on a CPU: 300 examples a peer, 5 steps an epoch, 50 steps a
peer a round.

    PYTHONPATH=. python experiments/niid_shape.py            # the shape as a `tallysim run` command line
    PYTHONPATH=. python experiments/niid_shape.py rounds=1   # with overrides (key=value) after NIID's
"""
import argparse
import shlex

import jax.numpy as jnp

from tallysim.build import build
from tallysim.programs import chunk_inputs, initial_state, round_programs
from tallysim.sim import mesh

NIID = ["protocol.name=fedprox", "fedprox.mu=0", "peers=10", "local_epochs=10", "batch_size=64",
        "partition.kind=label_quantity", "partition.k=1", "model.name=lenet", "optim.lr=0.01",
        "optim.momentum=0.9", "data.name=fashion_mnist", "data.max_train=3010", "data.max_test=2000",
        "probe.pool_size=10", "probe.per_round=10", "seeds=4", "rounds=3"]


def single_round(cfg):
    """(the built run, its jitted single-round program, that program's round-1 arguments: state, data,
    round keys, round numbers, traced values) for every lane of `cfg` as one chunk."""
    b = build(cfg)
    placement = mesh.plan(cfg.devices, len(b.seeds), cfg.peers)
    data_c, values, _, k_rounds, _, _ = chunk_inputs(b, 0, len(b.seeds), placement)
    single, _ = round_programs(b)
    return b, single, (initial_state(b, placement), data_c, k_rounds, jnp.arange(1, 2, dtype=jnp.int32), values)


def main(argv=None) -> str:
    """Prints (and returns) the `tallysim run` command line of NIID's shape, `overrides` after it (it did
    nothing when run: the module is the timing scripts' library)."""
    ap = argparse.ArgumentParser(prog="python experiments/niid_shape.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", default=[], help="key=value config overrides, after NIID's")
    # an override replaces NIID's value of its key (the key given twice would be refused)
    merged = dict(o.split("=", 1) for o in NIID)
    for o in ap.parse_args(argv).overrides:
        if "=" not in o:
            ap.error(f"{o!r} is not key=value; allowed: config overrides such as rounds=1")
        k, v = o.split("=", 1)
        merged[k] = v
    line = shlex.join(["tallysim", "run", *(f"{k}={v}" for k, v in merged.items())])
    print(line)
    return line


if __name__ == "__main__":
    main()
