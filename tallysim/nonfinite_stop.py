"""What the line of a run stopped by a non-finite loss says beyond the loss: the learning rates to lower
(each model group's), a plugin model's first forward pass as a suspect, and which peers' parameters are not
finite (or why none can be named). Split from run.py by job; run.py's round loop calls it once, at the stop.
"""
from __future__ import annotations

import jax

from tallysim import protocols
from tallysim.fields import first_few
from tallysim.sim import peers


def lr_now(cfg) -> str:
    """The learning rates to lower when a lane's loss is not finite: the run's, or with model.groups each
    group's (a group's own optim.lr=1000 diverged while the line named the run's 0.05)."""
    from tallysim import model_groups
    groups = model_groups.parse(cfg.model.groups)
    if not groups:
        return f"optim.lr, now {cfg.optim.lr}"
    lrs = [(g.name, model_groups.group_config(cfg, g).optim.lr) for g in groups]
    if all(lr == cfg.optim.lr for _, lr in lrs):
        return f"optim.lr, now {cfg.optim.lr} in every group"
    return "optim.lr; by group now " + ", ".join(f"{name} {lr}" for name, lr in lrs)


def own_model(cfg, r: int) -> str:
    """In round 1, with a plugin's model: its logits may be what is not finite (NaN from its first forward
    pass), which no learning rate mends; the line named only optim.lr."""
    if r != 1 or not protocols.model_target(cfg.model.name):
        return ""
    return (f"; or model.name={cfg.model.name}, a plugin's model, returns non-finite logits (check its "
            "output at initialisation)")


def _unnamed(state, ctx) -> str:
    """Why no peer can be named at a non-finite stop (peers.nonfinite_peers returned None): the line said
    "client_storage=auto keeps no client's model" of every such run, a plugin's that never set it too."""
    if ctx.cohort:              # the server model and each round's cohort, materialised and dropped
        return "client_storage=auto keeps no client's model"
    name = ctx.cfg.protocol.name
    if getattr(state, "params", None) is None or not jax.tree_util.tree_leaves(state.params):
        return f"protocol {name}'s state holds no parameters per peer"
    return (f"protocol {name}'s state.params is not stacked one model per peer ([seeds, {ctx.spec.peers}, ...] "
            "each, or one such tree per model group)")


def diverged_peers(state, j: int, ctx) -> str:
    """Which peers' parameters are not finite when lane j's loss is not (read once, at the stop): one
    peer of 20 diverging stopped the demo's seed 1 with no word of which. With model.groups each peer's
    group too; where no model is held per peer (client_storage=auto, a plugin's own state: _unnamed says
    which) or none of theirs is the culprit, whether the server's model is finite."""
    n, groups = ctx.spec.peers, ctx.model_groups
    bad = peers.nonfinite_peers(getattr(state, "params", None), j, n, tuple((g.lo, g.hi) for g in groups))
    if not bad:
        server = peers.nonfinite_model(getattr(state, "server", None), j)
        if bad is None:         # no client model to read: the server's is all there is
            why = _unnamed(state, ctx)
            if server is None:
                return f"; no model can be named: {why}, and it holds no server model"
            return (f"; not finite: the server model's parameters ({why})" if server else
                    f"; the server model's parameters are finite ({why} to name the one that diverged)")
        if server is None:
            return ""
        return "; not finite: the server model's parameters (every peer's are finite)" if server else ""
    by_group = "".join(f"; group {g.name}: {k} of {g.hi - g.lo}" for g in groups
                       if (k := sum(g.lo <= p < g.hi for p in bad)))
    if len(bad) == n:
        return f"; every peer's parameters are not finite ({n})"
    return f"; not finite: the parameters of peer{'s' if len(bad) > 1 else ''} {first_few(bad, 6)} ({len(bad)} of {n}{by_group})"
