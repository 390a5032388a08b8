"""How stale clients vote under partial participation (docs/figures.md, "Partial participation").

Drives one run of experiments/fig_participation.json's base (or fig_participation_alpha01.json's with
`--alpha 0.1`) a round at a time, and before each round re-derives, from the same keys the round uses,
the cohort and the probes, then every cohort member's argmax vote. Per vote it records the client's
staleness (rounds since it was last in a cohort; `first` = never since the warm-up), whether the vote
disagrees with the round's plurality (lowest class on ties, as tally's default), and whether it is
right. Per round it also records the accuracy, on the probes' hidden labels, of the plurality and of
the mean of the cohort's softmaxes (what softlabel would send down from the same models): "a vote
filters confidently wrong peers, an average amplifies them" predicts the first above the second.
The protocol trains as it would; nothing in tallysim changes (each round checks that the re-derived
plurality's accuracy is the round's own `vote_acc`, so the cohort and probes are the round's). One line of JSON per run on stdout.

    PYTHONPATH=. python experiments/stale_votes.py tally 0.1 --seed 0 [--alpha 0.1] [key=value ...]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import tallysim
from tallysim import config
from tallysim.protocols.base import active_logits, active_set, draw_probes, round_keys
from tallysim.sim.fed import pool_examples

HERE = Path(__file__).resolve().parent
BINS = (("first", None, None), ("1-4", 1, 4), ("5-9", 5, 9), ("10-19", 10, 19), ("20+", 20, None))


def base_config(alpha: float, protocol: str, participation: float, seed: int, extra: list) -> config.Config:
    spec = config.read_file(str(HERE / "fig_participation.json"))
    cfg = config.from_dict(spec["base"])
    items = [f"protocol.name={protocol}", f"participation={participation}", f"partition.alpha={alpha}",
             "seeds=1", f"seed={seed}", *extra]
    return config.apply_overrides(cfg, items)


def _bin(gap: int) -> str:
    for name, lo, hi in BINS:
        if lo is None and gap == 0:
            return name
        if lo is not None and gap >= lo and (hi is None or gap <= hi):
            return name
    raise AssertionError(gap)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("protocol", choices=["tally", "softlabel"])
    ap.add_argument("participation", type=float)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("overrides", nargs="*", default=[])
    a = ap.parse_args(argv)
    try:        # participation 1.5 or nan, --seed -1, a misspelt override: one line, not a ConfigError traceback
        cfg = config.validate(base_config(a.alpha, a.protocol, a.participation, a.seed, a.overrides))
    except config.ConfigError as e:
        ap.error(str(e))
    t0 = time.time()
    d = tallysim.drive(cfg)
    ctx, data, cfg = d.built.ctx, d.built.one, d.built.cfg

    @jax.jit
    def cohort_votes(state, r):
        keys = round_keys(d.root, r, cfg.probe.resample)
        idx = active_set(ctx, keys.active, data)
        x_M, y_M = pool_examples(data, draw_probes(ctx, data, keys.probe))
        z = active_logits(ctx, state, idx, x_M)                      # [A, M, C]
        votes = jnp.argmax(z, -1)
        counts = jax.nn.one_hot(votes, z.shape[-1]).sum(0)             # [M, C]
        plural = jnp.argmax(counts, -1)                                # lowest class on ties
        soft = jnp.argmax(jax.nn.softmax(z, -1).mean(0), -1)
        idx = jnp.arange(ctx.spec.peers) if idx is None else idx
        return idx, votes != plural[None], votes == y_M[None], plural == y_M, soft == y_M

    last = np.zeros(cfg.peers, int)          # round a client was last in a cohort (0: the warm-up only)
    per_bin = {name: [0, 0.0, 0.0] for name, _, _ in BINS}      # votes, disagreeing, right (sums over probes)
    plural_acc, soft_acc = [], []
    for r in range(1, cfg.rounds + 1):
        idx, disagree, right, p_ok, s_ok = jax.device_get(cohort_votes(d.state, jnp.int32(r)))
        for row, i in enumerate(idx):
            b = per_bin[_bin(0 if last[i] == 0 else r - last[i])]
            b[0] += 1
            b[1] += float(disagree[row].mean())
            b[2] += float(right[row].mean())
        last[idx] = r
        plural_acc.append(float(p_ok.mean()))
        soft_acc.append(float(s_ok.mean()))
        _, info = d.step()
        # the re-derived cohort and probes are the round's own: its plurality is the round's vote
        assert abs(float(info["vote_acc"]) - plural_acc[-1]) < 1e-6, (r, float(info["vote_acc"]), plural_acc[-1])
    out = {"protocol": a.protocol, "participation": a.participation, "alpha": a.alpha, "seed": a.seed,
           "rounds": cfg.rounds, "peers": cfg.peers,
           "staleness": {k: {"votes": n, "disagree": dis / n, "vote_acc": ok / n} for k, (n, dis, ok)
                         in per_bin.items() if n},
           "plurality_acc": float(np.mean(plural_acc)), "softavg_acc": float(np.mean(soft_acc)),
           "plurality_acc_last10": float(np.mean(plural_acc[-10:])), "softavg_acc_last10": float(np.mean(soft_acc[-10:])),
           "seconds": round(time.time() - t0, 1)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
