"""Per-lane hyperparameters reach a protocol as explicit arrays (ctx.hp), never as tracers inside its
Config, and the Config a protocol is built from holds no value for them (issue 30: scaffold read lane 0's
optim.lr from it): a lanes.LaneField that raises on use and names ctx.hp, in every build. A NONZERO field's
zero-or-not is static (lanes.signature), so `if cfg.x > 0` stays a plain Python test. Builds data,
compiles nothing (make_jaxpr only traces)."""
import jax
import jax.numpy as jnp
import pytest
from conftest import tiny

from tallysim import build, config
from tallysim.protocols import make as make_protocol
from tallysim.sim import lanes


def test_a_grouped_sweep_builds_protocols_from_plain_configs(monkeypatch):
    cfgs = [tiny("protocol.name=fedavgm", f"fedavgm.beta={b}", f"optim.lr={lr}") for b, lr in ((0.5, 0.1), (0.9, 0.2))]
    b = build.build_group(cfgs)
    assert set(b.values) == {"fedavgm.beta", "optim.lr"}
    seen = []

    def spy(ctx):
        seen.append(ctx)
        assert ctx.cfg.fedavgm.beta > 0 and ctx.cfg.optim.weight_decay == 0     # NONZERO: static tests
        return make_protocol(ctx)
    monkeypatch.setattr(build, "make_protocol", spy)

    def one_lane(values):
        b.lane_protocol(values)
        return jnp.float32(0)
    jax.make_jaxpr(jax.vmap(one_lane))({k: jnp.asarray(v) for k, v in b.values.items()})
    ctx = seen[-1]
    leaves = jax.tree.leaves(config.to_dict(ctx.cfg))
    assert leaves and not any(isinstance(x, jax.core.Tracer) for x in leaves)
    assert ctx.cfg.protocol == b.cfg.protocol and ctx.cfg.peers == b.cfg.peers    # static fields: the group's
    assert isinstance(ctx.hp("fedavgm.beta"), jax.core.Tracer) and isinstance(ctx.hp("optim.lr"), jax.core.Tracer)
    assert ctx.hp("fedavgm.server_lr") == 1.0                                # not varying: the constant
    assert ctx.hp("optim.momentum") == b.cfg.optim.momentum


@pytest.mark.parametrize("use", [float, lambda v: v * 2, lambda v: 1.0 / v, jnp.asarray, lambda v: v < 0.1,
                                 lambda v: v == 0.1, lambda v: f"{v:.3f}", bool])
def test_reading_a_lane_field_from_the_static_config_fails_and_names_ctx_hp(use):
    b = build.build(tiny("protocol.name=scaffold", "optim.momentum=0"))      # a run of its own too
    assert isinstance(b.ctx.cfg.optim.lr, lanes.LaneField)
    with pytest.raises(lanes.LaneFieldRead, match=r"optim\.lr is a lane field.*ctx\.hp\('optim\.lr'\)"):
        use(b.ctx.cfg.optim.lr)
    assert b.ctx.hp("optim.lr") == 0.05 and b.cfg.optim.lr == 0.05           # Built.cfg: the full config
    assert not b.ctx.cfg.optim.momentum and b.ctx.cfg.optim.momentum == 0     # NONZERO: zero-or-not only
    with pytest.raises(lanes.LaneFieldRead):
        b.ctx.cfg.optim.momentum > 0.5
    assert lanes.nonzero(b.ctx.cfg.optim.momentum) is False
