"""The compiled round holds ONE copy of the local step body, however many peer groups
(`ragged_groups`) and local epochs it runs: groups are a lax.scan over one vmapped while_loop and
epochs are rows of that loop's schedule, never unrolled copies (issue 35, section 3: compile time
grows with the copies of the step in the HLO; docs/performance.md). Counted as matmuls in the lowered
StableHLO of an MLP, whose step is the only place a matmul occurs."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tallysim.config import ModelConfig
from tallysim.sim import local
from tallysim.sim.fed import FedData
from tallysim.sim.models import make_model

COUNTS = [37, 0, 5, 12, 40, 1, 23]     # ragged, one empty shard, S_max = 40
KEY = jax.random.PRNGKey(0)


def _setup(**kw):
    model = make_model(ModelConfig(name="mlp", width=8), 3)
    spec = local.LocalSpec(**dict(dict(apply_fn=model.apply, tx=optax.sgd(0.1, momentum=0.9), batch_size=4,
                                       shard_max=40, epochs=1), **kw))
    x = jax.random.normal(KEY, (200, 3, 3, 1))
    y = jnp.arange(200) % 3
    data = FedData(x, y, None, None, jnp.arange(8), x[:8], y[:8])
    shard = np.zeros((len(COUNTS), 40), np.int32)
    for i, c in enumerate(COUNTS):
        shard[i, :c] = np.arange(c) + 40 * i
    params = jax.vmap(lambda k: model.init(k, x[:1]))(jax.random.split(KEY, len(COUNTS)))
    args = (params, jax.vmap(spec.tx.init)(params), jax.random.split(KEY, len(COUNTS)), jnp.asarray(shard),
            jnp.asarray(COUNTS, jnp.int32))
    return spec, data, args, model


def _matmuls(fn, *args) -> int:
    return jax.jit(fn).lower(*args).as_text().count("stablehlo.dot_general")


def _one_step_matmuls(spec, data, args, model):
    """Matmuls of one step of one peer, lowered on its own: the size of one copy of the body."""
    step = local._step_fn(spec, data, None, None)
    p = jax.tree.map(lambda a: a[0], args[0])
    o = jax.tree.map(lambda a: a[0], args[1])
    return _matmuls(lambda p, o, i, m: step((p, o), (i, m, None)), p, o, jnp.zeros(4, jnp.int32),
                    jnp.ones(4, bool))


@pytest.mark.parametrize("groups,epochs", [(1, 1), (4, 3), (7, 10)])
def test_train_peers_lowers_one_copy_of_the_step(groups, epochs):
    spec, data, args, model = _setup(groups=groups, epochs=epochs)
    one = _one_step_matmuls(spec, data, args, model)
    assert one >= 3                          # the MLP's forward and backward matmuls are there
    assert _matmuls(lambda a: local.train_peers(spec, *a, data), args) == one


def test_a_second_copy_would_be_seen():
    # The count can fail: two calls of train_peers (two copies of the body) count twice.
    spec, data, args, model = _setup(groups=2, epochs=2)
    one = _one_step_matmuls(spec, data, args, model)

    def twice(a):
        p, o, _, _ = local.train_peers(spec, *a, data)
        return local.train_peers(spec, p, o, *a[2:], data)
    assert _matmuls(twice, args) == 2 * one
