"""Per-lane hyperparameters reach a protocol as explicit arrays (ctx.hp), never as tracers inside its
Config: in a grouped sweep, the Config a protocol is built from holds plain Python values, so a plain
`if cfg.x > 0` in a protocol is safe. Builds data, compiles nothing (make_jaxpr only traces)."""
import jax
import jax.numpy as jnp
from conftest import tiny

from tallysim import build, config
from tallysim.protocols import make as make_protocol


def test_a_grouped_sweep_builds_protocols_from_plain_configs(monkeypatch):
    cfgs = [tiny("protocol.name=fedavgm", f"fedavgm.beta={b}", f"optim.lr={lr}") for b, lr in ((0.5, 0.1), (0.9, 0.2))]
    b = build.build_group(cfgs)
    assert set(b.values) == {"fedavgm.beta", "optim.lr"}
    seen = []

    def spy(ctx):
        seen.append(ctx)
        if ctx.cfg.fedavgm.beta > 0 and ctx.cfg.optim.lr > 0:     # plain Python tests: the group's values
            pass
        return make_protocol(ctx)
    monkeypatch.setattr(build, "make_protocol", spy)

    def one_lane(values):
        b.lane_protocol(values)
        return jnp.float32(0)
    jax.make_jaxpr(jax.vmap(one_lane))({k: jnp.asarray(v) for k, v in b.values.items()})
    ctx = seen[-1]
    flat = config.to_dict(ctx.cfg)
    leaves = jax.tree.leaves(flat)
    assert leaves and not any(isinstance(x, jax.core.Tracer) for x in leaves)
    assert ctx.cfg == b.cfg                                                   # the group's own config
    assert isinstance(ctx.hp("fedavgm.beta"), jax.core.Tracer) and isinstance(ctx.hp("optim.lr"), jax.core.Tracer)
    assert ctx.hp("fedavgm.server_lr") == 1.0                                # not varying: the constant
