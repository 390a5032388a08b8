"""Which evaluation batches (sim/evaluate.py) and probe-exchange chunks (sim/exchange.py) counting the
forward pass moves: the demo's and every shipped figure's compiled groups, the batch (the peers per
chunk) with the logits alone (before) and with the model's traced forward pass (sizing.eval_hidden_bytes,
sizing.exchange_hidden_bytes: now), for one lane a program and for all of a group's lanes in one.
Nothing is loaded or compiled: the models are traced with abstract parameters.

    PYTHONPATH=$PWD python experiments/eval_batch_changes.py [fig1 fig2 ...]
"""
from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp

from tallysim import config, model_groups, protocols, sizing
from tallysim.figures import programs
from tallysim.sim import activations
from tallysim.sim.models import make_model


def forwards(cfg) -> tuple[list, int]:
    """([(peers, peak), ...] one per model of `cfg` (model.groups: each group's), the input's bytes)."""
    dim, classes, _ = sizing.data_shape(cfg)
    if cfg.data.name in sizing.KNOWN_TEXT:
        shape = (sizing.KNOWN_TEXT[cfg.data.name][0],)
    else:
        shape = {784: (28, 28, 1), 3072: (32, 32, 3)}.get(dim) or tuple(cfg.data.input_shape)
    groups = model_groups.parse(cfg.model.groups)
    own = [(model_groups.group_config(cfg, g).model, g.peers) for g in groups] or [(cfg.model, cfg.peers)]
    models, example = [], 0
    for model_cfg, peers in own:
        m = make_model(model_cfg, classes)
        params = jax.eval_shape(m.init, jax.random.PRNGKey(0), jnp.zeros((1,) + shape, jnp.float32))
        fact = activations.per_example(m.apply, params, shape)
        models.append((peers, fact.peak))
        example = fact.input
    return models, example


def batches(cfg, lanes: int = 1) -> tuple[int, int]:
    """(before, now) of one evaluation of `cfg`'s held peers, `lanes` lanes a program."""
    _, classes, _ = sizing.data_shape(cfg)
    positions = sizing.positions(cfg)
    models, example = forwards(cfg)
    held = cfg.peers if cfg.client_storage == "stacked" else sizing.active_peers(cfg)
    hidden = sizing.eval_hidden_bytes(models, example, 4 * classes * positions)
    return (sizing.eval_batch(held, classes * positions, lanes=lanes),
            sizing.eval_batch(held, classes * positions, lanes=lanes, hidden=hidden))


def chunks(cfg, lanes: int = 1) -> list[tuple[int, int]]:
    """[(before, now), ...] the peers per exchange chunk of each model (group) of `cfg`, `lanes` lanes a
    program; [] where the protocol exchanges no probes or takes every message at once (softlabel's
    median and trimmed means: not streamed)."""
    robust = cfg.protocol.name == "softlabel" and cfg.softlabel.aggregate in ("median", "trimmed")
    if not protocols.traits(cfg.protocol.name).distill or robust:
        return []
    _, classes, _ = sizing.data_shape(cfg)
    positions, probes = sizing.positions(cfg), cfg.probe.per_round
    models, example = forwards(cfg)
    out = []
    for peers, peak in models:
        active = max(1, int(round(cfg.participation * peers)))
        hidden = sizing.exchange_hidden_bytes(peak, example, 4 * classes * positions, probes)
        out.append((sizing.peer_chunk(active, probes * positions, classes, lanes=lanes),
                    sizing.peer_chunk(active, probes * positions, classes, lanes=lanes, hidden=hidden)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("figures", nargs="*", default=[], help="figure names (default: every shipped one)")
    figures = ap.parse_args(sys.argv[1:]).figures
    demo = config.load_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo.json"))   # from any folder
    for name in ("tally", "softlabel"):
        d = config.apply_overrides(demo, [f"protocol.name={name}"])
        print(f"demo {name}: eval batch {batches(d)}, exchange chunk {chunks(d)}", flush=True)

    def unplanned(name, e):         # a benchmark figure, or one this machine cannot plan
        print(f"{name}: {type(e).__name__}: {str(e)[:80]}", flush=True)

    names = figures or [f"fig{i}" for i in range(1, 13)] + ["robustness"]
    for name, gname, k, group in programs(names, unplanned):
        c = group[0]
        n = len(group) * c.seeds
        one, every = batches(c), batches(c, n)
        moved = "" if one[0] == one[1] and every[0] == every[1] else "  <- moved"
        print(f"{name} {gname}#{k}: eval batch one lane {one[0]} -> {one[1]}, {n} lanes "
              f"{every[0]} -> {every[1]}{moved}", flush=True)
        one, every = chunks(c), chunks(c, n)
        if one:
            moved = "" if all(a == b for a, b in one + every) else "  <- moved"
            print(f"{name} {gname}#{k}: exchange chunk ({c.protocol.name}) one lane "
                  f"{', '.join(f'{a} -> {b}' for a, b in one)}, {n} lanes "
                  f"{', '.join(f'{a} -> {b}' for a, b in every)}{moved}", flush=True)


if __name__ == "__main__":
    main()
