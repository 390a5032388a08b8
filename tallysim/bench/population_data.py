"""Time and peak memory to build a population's client data (partition.kind=population, ragged
storage), one fresh process per size so each peak is its own: `python -m tallysim.bench.population_data
[CLIENTS ...]` (default 10^4 10^5 10^6). docs/population-data.md gives the numbers and conditions.

Each run takes build.build_group's data path for one seed (the synthetic data, the probe pool, the
partition, its class counts, FedData on the device; no protocol, nothing compiles; the memory estimate
of the peers' models is left out: it is the stateless clients' concern, docs/population.md) for
`data.name=synthetic` with 32-feature examples, lognormal client sizes of mean 30 and sigma 1 (floor
1), the training set dealt again where the clients need more (`partition.reuse`), 10 clients a round. It reports the seconds of the build, the process's peak
resident memory (ru_maxrss) after importing JAX and after the build, the flat index array's bytes,
and the bytes a [P, S] padded matrix (the storage of earlier versions) would have needed.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

TRAIN = 100_000           # synthetic examples the clients are dealt from (32 float32 features each)


def config(clients: int):
    from tallysim.config import Config
    return Config().replace(**{
        "protocol.name": "fedavg", "peers": clients, "participation": 10 / clients, "rounds": 1,
        "data.name": "synthetic", "data.input_shape": (32,), "data.train_size": TRAIN, "data.test_size": 1000,
        "model.width": 32, "probe.per_round": 10, "probe.pool_size": 100,
        "partition.kind": "population", "partition.mean_size": 30.0, "partition.sigma": 1.0,
        "partition.min_size": 1, "partition.reuse": True})


def measure(clients: int) -> dict:
    """One size, in this process (call it in a fresh one)."""
    import resource
    import time

    import jax
    import numpy as np

    from tallysim import data
    from tallysim.sim import fed
    jax.numpy.zeros(1).block_until_ready()            # the backend up: its memory is not the data's
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    cfg = config(clients)
    t0 = time.perf_counter()
    ds = data.load(cfg.data, cfg.data.seed)
    pool, rest = data.split_probe_pool(len(ds.y_train), cfg.probe.pool_size, cfg.seed)
    parts = data.partition(ds.y_train[rest], cfg.peers, cfg.partition, ds.num_classes, cfg.seed)
    counts = data.class_counts(ds.y_train[rest], parts, ds.num_classes)
    fdata, spec = fed.build(ds.x_train, ds.y_train, [data.ragged(parts).take(rest)], [pool], ds.x_test,
                            ds.y_test, ds.num_classes, cfg)
    jax.block_until_ready(fdata)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    count = np.asarray(fdata.count_P)
    assert (count[0] == counts.sum(1)).all()
    return {"clients": clients, "build_s": round(seconds, 2), "rss_after_import_mib": round(base / 2**20),
            "rss_peak_mib": round(peak / 2**20), "rss_added_mib": round((peak - base) / 2**20),
            "examples_held": int(count.sum()), "shard_max": spec.shard_max,
            "ragged_index_mib": round((fdata.shard_H.nbytes + fdata.offset_P.nbytes + count.nbytes) / 2**20, 1),
            "padded_index_mib": round(clients * spec.shard_max * 4 / 2**20, 1),
            "backend": jax.default_backend()}


def clients_arg(text: str) -> int:
    """A population size: a whole number >= 1, written 100000 or 1e5 (int('1e5') was a traceback)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or value != value or value < 1 or value != int(value) or value > 2**31 - 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of clients; allowed: a whole number "
                                         f"1..{2**31 - 1}, e.g. 10000 or 1e6")
    return int(value)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--one"]:
        print(json.dumps(measure(int(args[1]))))
        return 0
    # --help was read as a size (a ValueError traceback), so were 1e6 and 0 (a child's traceback, exit 0)
    parser = argparse.ArgumentParser(prog="python -m tallysim.bench.population_data",
                                     description="Time and peak memory to build a population's client data, "
                                                 "one fresh process per size (docs/population-data.md).")
    parser.add_argument("clients", nargs="*", type=clients_arg, help="population sizes (default 1e4 1e5 1e6)")
    failed = 0
    for n in parser.parse_args(args).clients or [10**4, 10**5, 10**6]:
        out = subprocess.run([sys.executable, "-m", "tallysim.bench.population_data", "--one", str(n)],
                             capture_output=True, text=True)
        failed += out.returncode != 0
        print(out.stdout.strip().splitlines()[-1] if out.returncode == 0 else f"{n}: failed: {out.stderr[-500:]}",
              flush=True)
    return 1 if failed else 0      # a failed size said "failed" and still exited 0


if __name__ == "__main__":
    sys.exit(main())
