"""The training steps a run would take one after another (rounds x each round's local, distillation and
server steps), estimated from its config before anything loads, and the warning when they are more than
any run here has needed: `local_steps=10000000` was accepted in silence, a run of days.

A warning, not a refusal: the fields' own bounds (sizing.LIMITS) already refuse what cannot finish, and
a long run on a fast accelerator may be meant. Pure Python, no JAX (validation.warnings reads it).
"""
from __future__ import annotations

import math

from tallysim import protocols
from tallysim.file_shapes import KNOWN_CLIENTS, KNOWN_TRAIN

# Steps one after another past which a run is warned about: over 200x the most estimated for the configs
# under experiments/ (4,150 for pareto/feddf.json's longest run, 3,760 for a figure's base; measured over
# the pareto sweeps and every figure's base, 2026-12-05), over a quarter of an hour even at a millisecond
# a step (a small model on a GPU; a CPU, or a large model, takes several times that).
WARN_STEPS = 1_000_000
SECONDS_PER_STEP = 1e-3

# Training examples of the image datasets users most often name (their tfds train split), for the
# estimate of local_epochs' steps; an unknown dataset counts one step per epoch (a lower bound).
TRAIN_EXAMPLES = {"mnist": 60_000, "fashion_mnist": 60_000, "kmnist": 60_000, "cifar10": 50_000,
                  "cifar100": 50_000, "svhn_cropped": 73_257, "emnist/balanced": 112_800,
                  "emnist/byclass": 697_932, "emnist/letters": 88_800, "emnist/digits": 240_000}


def train_examples(cfg) -> int | None:
    """The training examples the run's peers share, where the config alone says (None otherwise)."""
    d = cfg.data
    # the text datasets' windows too: `data.max_train=100000000` on shakespeare counted 10^8 examples (the
    # split holds 43,041) and warned of 6,250,000 steps, "about 1.7 h"
    n = d.train_size if d.name == "synthetic" else (TRAIN_EXAMPLES.get(d.name) or KNOWN_TRAIN.get(d.name)) \
        if d.path is None else None
    if d.max_train is not None:
        n = d.max_train if n is None else min(n, d.max_train)
    return n


def round_steps(cfg) -> list[tuple[str, int]]:
    """(field, steps one peer or the server takes in one round because of it), for each kind of step
    the protocol takes: local training, training on the probes (distillation), the server's own."""
    out = []
    if cfg.local_steps is not None:
        out.append(("local_steps", cfg.local_steps))
    else:
        n = train_examples(cfg)
        # a peer's share, on average; partition.kind=natural: one client's, the split over its clients
        clients = KNOWN_CLIENTS.get(cfg.data.name) if cfg.partition.kind == "natural" else None
        per_epoch = math.ceil(n / (clients or cfg.peers) / cfg.batch_size) if n else 1
        out.append(("local_epochs", cfg.local_epochs * max(1, per_epoch)))
    # distill.order=sequential: distill.epochs passes over the round's probes before local training
    # (protocols/distill.py); otherwise the probe batches ride along the local steps
    if protocols.traits(cfg.protocol.name).distill and cfg.distill.order == "sequential":
        batch = cfg.distill.batch_size or cfg.batch_size
        out.append(("distill.epochs", cfg.distill.epochs * math.ceil(cfg.probe.per_round / batch)))
    if protocols.reads(cfg.protocol.name, "feddf.steps"):
        out.append(("feddf.steps", cfg.feddf.steps))
    return out


def warning(cfg) -> str | None:
    """One line when rounds x the steps of a round exceed WARN_STEPS, naming the field that dominates
    and the count; None otherwise."""
    parts = round_steps(cfg)
    total = cfg.rounds * sum(s for _, s in parts)
    if total <= WARN_STEPS:
        return None
    field, steps = max(parts, key=lambda p: p[1])
    value = getattr(cfg, field) if "." not in field else getattr(getattr(cfg, field.split(".")[0]),
                                                                   field.split(".")[1])
    hours = total * SECONDS_PER_STEP / 3600
    return (f"rounds={cfg.rounds} x {field}={value} ({steps:,} steps a round) is {total:,} training steps one "
            f"after another, about {hours:,.1f} h even at a millisecond a step (a CPU or a large model is "
            f"slower): more than {WARN_STEPS:,}, far beyond any run configured here; lower {field} or rounds "
            "if that was not meant")
