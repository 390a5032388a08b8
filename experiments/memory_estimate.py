"""The seeds-per-program memory estimate (sizing.lanes_bytes, what build.auto_chunk sizes by) against
XLA's own account of the compiled programs (`compiled.memory_analysis()` on this backend): the round
program's temporaries + arguments + outputs, plus the evaluation program's temporaries. One line per
(model, batch size, peers trained at once); the ratio estimate / measured should stay >= 1 (an upper
bound) and small where activations dominate (few probes, a small model state).

    PYTHONPATH=$PWD python experiments/memory_estimate.py [--models mlp,cnn] [--batches 8,64,256]

Text models read Shakespeare (characters) from the tallysim data cache (`tallysim prepare shakespeare`).
"""
from __future__ import annotations

import argparse

IMAGE = ["data.name=synthetic", "data.input_shape=28x28x1", "data.num_classes=10", "data.train_size=4000",
         "data.test_size=200", "partition.kind=iid"]
TEXT = ["data.name=shakespeare", "data.max_train=3000", "data.max_test=200", "partition.kind=iid"]
MODELS = {"mlp": IMAGE + ["model.name=mlp", "model.width=200"], "lenet": IMAGE + ["model.name=lenet"],
          "cnn": IMAGE + ["model.name=cnn"], "resnet8": IMAGE + ["model.name=resnet8"],
          "lstm": TEXT + ["model.name=lstm"], "transformer": TEXT + ["model.name=transformer"]}


def case(model: str, batch: int, together: int, protocol: str = "tally", probes: int = 8, peers: int = 4,
         extra=()) -> list[str]:
    return MODELS[model] + [f"protocol.name={protocol}", f"peers={peers}", f"probe.per_round={probes}",
                            f"probe.pool_size={max(64, probes + 32)}", f"batch_size={batch}", "local_steps=1", "rounds=1",
                            "warmup_epochs=0", f"ragged_groups={peers // together}", *extra]


def measure(items: list[str]) -> dict:
    """Build the configuration, compile one round and one evaluation, and return the measured bytes
    and the estimate (tallysim.bench.memory)."""
    from tallysim import build, config
    from tallysim.bench.memory import measured_bytes
    return measured_bytes(build.build(config.validate(config.apply_overrides(config.Config(), items))))


def estimate(items: list[str]) -> int:
    """The estimate alone (a build, no compiling)."""
    from tallysim import build, config, sizing
    b = build.build(config.validate(config.apply_overrides(config.Config(), items)))
    return sizing.lanes_bytes(len(b.seeds), **build.lane_shapes(b))


def again(path: str, error) -> None:
    """The estimate of every case of an earlier output (its measurements kept, nothing compiled)."""
    import csv
    try:
        with open(path, newline="") as f:     # closed before the estimates build (and on a bad file)
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError) as e:
        error(f"--again {path}: cannot read it ({getattr(e, 'strerror', None) or e})")
    need = ("model", "batch", "together", "protocol", "probes", "measured")
    lost = [k for k in need if not rows or k not in rows[0]]
    if lost:        # an empty file was an IndexError, another CSV a KeyError, after nothing had run
        error(f"--again {path}: " + ("no rows" if not rows else f"no column {', '.join(lost)}") + "; allowed: a CSV "
              f"this script wrote (columns {', '.join(need)}, ...)")
    try:
        cases = [case(r["model"], int(r["batch"]), int(r["together"]), r["protocol"], int(r["probes"])) for r in rows]
        if min(int(r["measured"]) for r in rows) < 1:
            raise ValueError("measured below 1 byte")
    except (KeyError, ValueError) as e:
        error(f"--again {path}: a row this script did not write ({type(e).__name__}: {e}); allowed: a CSV it wrote")
    print(",".join(rows[0]), flush=True)
    for r, items in zip(rows, cases):
        est = estimate(items)
        r.update(estimate=est, ratio=f"{est / int(r['measured']):.2f}")
        print(",".join(str(v) for v in r.values()), flush=True)


def numbers(p, flag: str, text: str) -> list[int]:
    """A comma-separated option of positive whole numbers, or argparse's one usage line (was int()'s traceback)."""
    try:
        out = [int(x) for x in text.split(",")]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        p.error(f"{flag} {text}: allowed: positive whole numbers separated by commas, e.g. 1,4")
    return out


def cases(p, a) -> list[tuple]:
    """(model, batch, together, items) of every case the options name, each config checked before the first is
    compiled: an unknown model was a KeyError, --together 0 a ZeroDivisionError, --together 3 measured all 4
    peers at once under the name 3 (ragged_groups = 4 // 3 = 1), and a bad --protocol a traceback."""
    from tallysim import config
    models = a.models.split(",")
    if unknown := [m for m in models if m not in MODELS]:
        p.error(f"--models: no model {', '.join(unknown)}; allowed: {', '.join(MODELS)}")
    batches, together = numbers(p, "--batches", a.batches), numbers(p, "--together", a.together)
    if bad := [t for t in together if 4 % t]:     # case()'s 4 peers in 4 // t groups
        p.error(f"--together {a.together}: {bad[0]} does not divide the 4 peers; allowed: 1, 2 or 4")
    out = [(m, b, t, case(m, b, t, a.protocol, a.probes)) for m in models for b in batches for t in together]
    for *_, items in out:
        try:
            config.validate(config.apply_overrides(config.Config(), items))
        except config.ConfigError as e:
            p.error(str(e))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batches", default="8,64,256")
    p.add_argument("--together", default="1,4", help="peers trained at once (peers / ragged_groups)")
    p.add_argument("--protocol", default="tally")
    p.add_argument("--probes", type=int, default=8)
    p.add_argument("--again", metavar="CSV", help="recompute the estimates of an earlier output's cases")
    a = p.parse_args()
    if a.again:
        return again(a.again, p.error)
    todo = cases(p, a)
    print("model,batch,together,protocol,probes,round_temp,round_args,round_out,eval_temp,measured,estimate,ratio",
          flush=True)
    for model, batch, together, items in todo:
        r = measure(items)
        print(f"{model},{batch},{together},{a.protocol},{a.probes},{r['round_temp']},{r['round_args']},"
              f"{r['round_out']},{r['eval_temp']},{r['measured']},{r['estimate']},{r['ratio']:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
