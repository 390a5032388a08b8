"""selective_fd on words (docs/protocols.md, `selective_fd`): at C = 10,004 its absolute thresholds
(`client_threshold` 0.5) let a peer share a token only when one word holds half its probability mass,
so a barely trained peer shares nothing and a round costs the 1-bit masks alone (M*T bits up a peer).

    PYTHONPATH=. python experiments/selective_fd_words.py default
    PYTHONPATH=. python experiments/selective_fd_words.py trained

`default`: 4 random roles of `shakespeare_words`, 2,000 training windows, a 64-unit one-layer LSTM, 16
probe windows of 20 words a round, the default SGD, 4 rounds. `trained`: the same with a 128-unit LSTM,
Adam 0.01 and 4 local epochs (so a 4-epoch warm-up too). The run is driven a round at a time
(`tallysim.drive`); after the warm-up and after each round it reports, per peer, over every position of
the whole probe pool (not only the round's 16 windows): the largest probability a peer gives any word
(max over positions of max_c p), its mean, the share of positions where it is >= the client threshold,
and the share of those whose word is the training split's most frequent (the comma); per round, from
the round's info, the probes each peer shared on, the probes the server kept, and the bits up per peer.
One line of JSON per setting on stdout. Nothing in tallysim changes.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import tallysim
from tallysim import config
from tallysim.protocols.base import predict_probes
from tallysim.sim import tasks
from tallysim.sim.fed import pool_examples

BASE = ["data.name=shakespeare_words", "protocol.name=selective_fd", "partition.kind=natural", "peers=4",
        "data.max_train=2000", "data.max_test=500", "model.name=lstm", "model.hidden=64", "model.layers=1",
        "probe.per_round=16", "rounds=4", "eval_every=4", "seeds=1"]
SETTINGS = {"default": [],
            "trained": ["model.hidden=128", "optim.name=adam", "optim.lr=0.01", "local_epochs=4"]}


def confidence(d, major: int, threshold: float) -> list:
    """Per peer, over every position of the probe pool: max and mean of max_c p, the share >= threshold,
    and the share of those whose argmax is `major`."""
    data, ctx = d.built.one, d.built.ctx
    x, _ = pool_examples(data, jnp.arange(ctx.spec.pool))
    p = jax.nn.softmax(predict_probes(ctx, d.state.params, x).astype(jnp.float32), axis=-1)   # [P, Q, T, C]
    top, arg = np.asarray(jnp.max(p, -1)), np.asarray(jnp.argmax(p, -1))
    out = []
    for i in range(top.shape[0]):
        sure = top[i] >= threshold
        out.append({"max_p": float(top[i].max()), "mean_p": round(float(top[i].mean()), 6),
                    "share_ge_threshold": round(float(sure.mean()), 4),
                    "major_of_those": None if not sure.any() else round(float((arg[i][sure] == major).mean()), 4)})
    return out


def main(setting: str) -> None:
    over = SETTINGS[setting]
    cfg = config.apply_overrides(config.Config(), [*BASE, *over])
    t0 = time.time()
    d = tallysim.drive(cfg)
    y = np.asarray(d.built.one.y_train).ravel()
    major = int(np.bincount(y[y != tasks.PAD]).argmax())
    thr = cfg.selective_fd.client_threshold
    rounds = [{"round": 0, "peers": confidence(d, major, thr)}]          # after the warm-up
    for r in range(1, cfg.rounds + 1):
        info = d.run(1)[0]
        bits = d.bits()
        rounds.append({"round": r, "shared": info["sfd_shared_A"], "kept": info["sfd_kept"],
                       "bits_up": bits.up, "bits_down": bits.down, "peers": confidence(d, major, thr)})
    print(json.dumps({"setting": setting, "over": over, "base": BASE, "messages": d.built.ctx.spec.messages,
                      "classes": d.built.ctx.spec.classes, "major": major, "wall_s": round(time.time() - t0, 1),
                      "rounds": rounds}), flush=True)


def parse(argv: list) -> str:
    """The setting named on the command line; none, or another, is argparse's usage line naming them
    (it was an IndexError traceback)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("setting", choices=list(SETTINGS), help="which run: " + ", ".join(SETTINGS))
    return ap.parse_args(argv).setting


if __name__ == "__main__":
    main(parse(sys.argv[1:]))
