"""A server optimizer on FedAvg's pseudo-gradient (FedOpt, Reddi et al. 2021): the round that the
server-optimizer protocols share; each of them is one file that only chooses the optax transformation
(FedAdam and FedYogi, which differ only in the second moment, share their whole factory: `fedopt`).

Each round runs FedAvg's broadcast, local training and aggregation (fedavg.fedavg_step: faults,
`fedavg.aggregate` and partial participation included); with x the round-start server model and
avg the aggregate, the pseudo-gradient is g = x - avg, and the server applies `tx` to it:
u, s = tx.update(g, s); x' = x + u. It is computed as avg + (g + u), equal to x + u, so that a
transformation with u = -g exactly (plain SGD, lr 1) gives FedAvg's model bit for bit. The optimizer
state s never leaves the server (State.extra["server_opt"], no peer axis): the bits are FedAvg's.
A round in which no message arrived (faults.kind=dropout) leaves avg = x, so g = 0: the server still
steps, by its momentum alone (docs/protocols.md, "Faulty peers").

`adaptive` is Reddi et al.'s Algorithm 2 for FedAdam and FedYogi as the paper writes it (no bias
correction, v starts at tau^2), which optax.adam / optax.yogi are not (issue 30: their bias correction
makes the first steps 10-18x larger at the paper's settings); those remain the `optax` option.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from tallysim.fields import floats
from tallysim.protocols import fedavg
from tallysim.protocols.base import Context, Protocol, active_set, round_keys
from tallysim.sim import faults


class AdaptiveState(NamedTuple):
    m: Any      # first moment of the pseudo-gradient, a pytree like the model
    v: Any      # second moment


def adaptive(lr, b1: float, b2: float, tau, second: str) -> optax.GradientTransformation:
    """Reddi et al. 2021, Algorithm 2 (lines 10-14), on g = x - avg = -Delta: m = b1 m + (1 - b1) g;
    second="adam": v = b2 v + (1 - b2) g^2; second="yogi": v = v - (1 - b2) g^2 sign(v - g^2);
    u = -lr m / (sqrt(v) + tau). m starts at 0 and v at tau^2 (the paper's v_{-1} >= tau^2, at its
    bound), with no bias correction. Delta^2 = g^2, so these are the paper's m, v up to m's sign.
    lr and tau may be traced per-lane values (ctx.hp)."""
    if second not in ("adam", "yogi"):
        raise ValueError(f"second={second!r}; allowed: adam, yogi")

    def init(params):
        return AdaptiveState(jax.tree.map(jnp.zeros_like, params),
                             jax.tree.map(lambda p: jnp.zeros_like(p) + jnp.asarray(tau, p.dtype) ** 2, params))

    def update(g, state, params=None):
        del params
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.m, g)
        if second == "adam":
            v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.v, g)
        else:       # Yogi: v moves toward g^2 by (1 - b2) g^2 whichever side it is on
            v = jax.tree.map(lambda v, g: v - (1 - b2) * g * g * jnp.sign(v - g * g), state.v, g)
        u = jax.tree.map(lambda m, v: -lr * m / (jnp.sqrt(v) + tau), m, v)
        return u, AdaptiveState(m, v)

    return optax.GradientTransformation(init, update)


def server_step(tx: optax.GradientTransformation, server, avg, opt_state):
    """(new server model, new optimizer state) from the round-start model and the aggregate."""
    g = jax.tree.map(lambda x, a: x - a, server, avg)
    u, opt_state = tx.update(g, opt_state, server)
    return jax.tree.map(lambda a, gi, ui: a + (gi + ui), avg, g, u), opt_state


# FedOpt's optax form of each second-moment rule (rule=optax)
OPTAX_RULES = {"adam": optax.adam, "yogi": optax.yogi}


# The config section of FedAdam and of FedYogi (each imports it under its own name): the registry reads
# it from this file's source without importing it (protocols/declaration.py), so literals only.
@dataclass(frozen=True)
class FedOptConfig:
    server_lr: float = floats(0.01, "(0, 3.4e38]", lane=True)
    b1: float = floats(0.9, "[0, 1)")
    b2: float = floats(0.99, "[0, 1)")
    tau: float = floats(1e-3, "(0, 1e6]", lane=True)
    # reddi: Algorithm 2 of Reddi et al. 2021 (no bias correction, v from tau^2); optax: optax.adam or
    # optax.yogi (bias-corrected)
    rule: Literal["reddi", "optax"] = "reddi"


def fedopt(ctx: Context, section: str, second: str) -> Protocol:
    """FedAdam (second="adam") or FedYogi ("yogi"), Reddi et al. 2021, "Adaptive Federated Optimization",
    from the protocol's config section (`server_lr`, `b1`, `b2`, `tau`, `rule`).

    The server treats g = x - avg (round-start model minus FedAvg's aggregate; the paper's Delta is -g)
    as a gradient. `rule=reddi` (the default) is the paper's Algorithm 2 (`adaptive`): m = b1 m +
    (1 - b1) g, v by the second-moment rule, x' = x - server_lr * m / (sqrt(v) + tau), with m starting at
    0 and v at tau^2 and no bias correction. `rule=optax` is optax.adam / optax.yogi(server_lr, b1, b2,
    eps=tau): the same second moment with optax's bias correction (tallysim's rule before issue 30).
    The moments stay on the server: bits as FedAvg. `server_lr` and `tau` may vary across the lanes of
    one grouped sweep (ctx.hp)."""
    c = getattr(ctx.cfg, section)
    lr, tau = ctx.hp(f"{section}.server_lr"), ctx.hp(f"{section}.tau")
    if c.rule == "optax":
        return make(ctx, OPTAX_RULES[second](lr, b1=c.b1, b2=c.b2, eps=tau))
    return make(ctx, adaptive(lr, c.b1, c.b2, tau, second))


def make(ctx: Context, tx: optax.GradientTransformation) -> Protocol:
    """FedAvg with `tx` on the server (tx's hyperparameters may be per-lane arrays, ctx.hp)."""
    lspec = ctx.local_spec()

    def init(key, data):
        return ctx.init_state(key, data, True, server=True, extra=lambda server: {"server_opt": tx.init(server)})

    def round_fn(state, data, root, r):
        keys = round_keys(root, r)
        fr = faults.for_round(ctx, data, root, r, active_set(ctx, keys.active, data))
        start = state.server
        state, _, _, info = fedavg.fedavg_step(ctx, lspec, state, data, keys, False, fr)
        server, opt = server_step(tx, start, state.server, state.extra["server_opt"])
        return state._replace(server=server, extra={**state.extra, "server_opt": opt}), info

    return Protocol(init=init, round=round_fn, cost=fedavg.param_cost(ctx), has_server=True)
