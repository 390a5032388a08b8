"""What a built group's lanes need of the device's memory: the shapes sizing.per_seed_bytes counts
(`lane_shapes`: the model's traced forward pass, the optimizer's state, the data's arrays) and the
seeds per compiled batch that fit (`auto_chunk`). Traces, compiles nothing. Split from build.py
(which re-exports both: build.auto_chunk, build.lane_shapes, as before).
"""
from __future__ import annotations

import os
from dataclasses import replace

import jax
import jax.numpy as jnp

from tallysim import protocols, sizing
from tallysim.config import Config
from tallysim.sim import activations, fed, peers, tasks
from tallysim.sim.models import param_count


def auto_chunk(b) -> int:
    """Seeds per compiled batch of the built group `b` (build.Built): all of them unless a rough footprint
    says they would not fit."""
    # seed_chunk is per lane (lanes.HOST): the smallest a group's configurations set wins (config_shapes.
    # asked_chunk, which sweep_plan.widths reads too); the numbers are the same at any batch size
    asked = sizing.asked_chunk(b.cfgs, len(b.seeds))
    if asked is not None:
        return asked
    stats = jax.local_devices()[0].memory_stats() or {}
    limit = stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    return sizing.lanes_that_fit(len(b.seeds), int(0.5 * limit), **lane_shapes(b))


def _group_optim(cfg: Config, g):
    """The optimizer config of model group g's peers (its own optim.name, which sets the moments), or the run's."""
    name = dict(g.values).get("optim.name") if g is not None else None
    return cfg.optim if name is None else replace(cfg.optim, name=name)


def lane_shapes(b) -> dict:
    """What sizing.per_seed_bytes needs to know of the built group `b` (build.Built; its arguments by
    name), the model's own facts included: its forward pass's bytes per example (sim/activations.py,
    traced, not compiled), the optimizer's state per parameter, the peers trained at once and the data's
    arrays."""
    cfg, spec = b.cfg, b.ctx.spec
    held = spec.active if b.ctx.cohort else spec.peers      # client_storage=auto: the cohort's models only
    # probes only where peers train on them: the FedAvg family ignores probe.per_round (as validation)
    distill = protocols.traits(cfg.protocol.name).distill
    dummy = jnp.zeros((1,) + spec.input_shape, jnp.float32)
    together = lambda a: -(-a // max(1, min(spec.groups, a)))     # noqa: E731  local.train_peers' groups
    own = []            # model.groups: each group's own model, peers and facts (sizing.per_seed_bytes)
    for g in b.ctx.model_groups or (None,):
        m = g.model if g else b.ctx.model
        params = jax.eval_shape(m.init, jax.random.PRNGKey(0), dummy)
        fact = activations.per_example(m.apply, params, spec.input_shape)
        opt = jax.eval_shape(peers.make_optimizer(_group_optim(cfg, g)).init, params)
        active = g.a_hi - g.a_lo if g else spec.active
        own.append(dict(num_params=param_count(params), peers=active if b.ctx.cohort else (g.hi - g.lo if g else held),
                        active=active, together=together(active), saved=fact.saved, peak=fact.peak,
                        moments=param_count(opt) / max(1, param_count(params)), example=fact.input))
    per_lane = shared = 0
    for leaf, axis in zip(b.fed, fed.SEED_AXES):
        if leaf is not None:
            if axis is None:
                shared += leaf.nbytes
            else:
                per_lane += leaf.nbytes // leaf.shape[0]
    return dict(num_params=b.ctx.num_params, peers=held, active=spec.active, input_shape=spec.input_shape,
                batch_size=cfg.batch_size, probe_batch=(cfg.distill.batch_size or cfg.batch_size) if distill else 0,
                probes=spec.probes if distill else 0, classes=spec.classes,
                soft=protocols.traits(cfg.protocol.name).soft or sizing.counts_target(cfg), positions=tasks.of(spec).positions,
                blocked=not protocols.traits(cfg.protocol.name).soft and sizing.blocks_votes(cfg),
                votes=cfg.vote.weighting == "history", kept=sizing.kept_bytes(cfg),
                together=together(spec.active), saved=max(m["saved"] for m in own), peak=max(m["peak"] for m in own),
                example=own[0]["example"], moments=max(m["moments"] for m in own),
                groups=tuple({k: v for k, v in m.items() if k != "example"} for m in own) if b.ctx.model_groups else (),
                test_examples=int(b.fed.x_test.shape[0]), data=per_lane, shared=shared)
