"""Same seed, paired start (pairing, 2026-12-07): a protocol with a warm-up (tally, bridge, every distillation
protocol's default `warmup_epochs = local_epochs`) starts from the parameters local / FedAvg start from with the
same seed, warms up from them, and trains round 1 on the same private batches. Before, the warm-up split the
starting key (distill.warmup_init), so tally drew another init than local from the same seed and
seed-paired differences mixed the protocol with the draw.

Local training is replaced by a recorder (it returns what it is given): the checks read what each protocol
hands local training, eagerly, with nothing compiled but the models' init and the vote's forward passes."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

from tallysim import run
from tallysim.sim import local


@pytest.fixture
def recorded(monkeypatch):
    """Every call of local.train_peers as (params_A, keys_A, shard_AxS, count_A); training returns its inputs."""
    calls = []

    def recorder(spec, params_A, opt_A, keys_A, shard_AxS, count_A, data, *args, **kw):
        calls.append((params_A, keys_A, shard_AxS, count_A))
        A = count_A.shape[0]
        return params_A, opt_A, jnp.zeros((A,), jnp.float32), {"steps_real": jnp.int32(0),
                                                               "steps_computed": jnp.int32(0)}
    monkeypatch.setattr(local, "train_peers", recorder)
    return calls


def _keys(seed):
    """(init key, round root) of a lone run, as programs.chunk_inputs derives them from the seed."""
    return jax.random.split(jax.random.PRNGKey(seed))


def _same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("warm,plain", [("tally", "local"), ("bridge", "fedavg")])
def test_warm_up_starts_from_the_init_of_the_protocol_without_one(recorded, warm, plain):
    """tally's warm-up trains the peers local starts with (per-peer init); bridge's (shared init) FedAvg's
    server model. Fails on the split key: the first warm-up call's params differ from the plain init."""
    k_init, _ = _keys(3)
    bw = run.build(tiny(f"protocol.name={warm}", "seed=3"))
    bp = run.build(tiny(f"protocol.name={plain}", "seed=3"))
    assert bw.cfg.warmup_epochs == 1 and bp.cfg.warmup_epochs == 0        # the defaults under test
    start = bp.protocol.init(k_init, bp.one)
    bw.protocol.init(k_init, bw.one)
    warm_params, warm_keys = recorded[0][0], recorded[0][1]
    _same(warm_params, start.params)
    # the warm-up's own stream: not the init's per-peer keys, nor round 1's training keys
    init_keys = jax.random.split(k_init, bw.ctx.spec.peers)
    assert not np.any(np.all(np.asarray(warm_keys) == np.asarray(init_keys), axis=-1))


def test_first_round_trains_the_same_batches_as_local(recorded):
    """Round 1 after tally's warm-up hands local training the keys, shards and counts local's round 1 does,
    so the private batches (local.private_schedule of them) are the same, batch for batch."""
    k_init, root = _keys(5)
    cfgs = {n: tiny(f"protocol.name={n}", "seed=5", "participation=0.5") for n in ("tally", "local")}
    got = {}
    for name, cfg in cfgs.items():
        b = run.build(cfg)
        state = b.protocol.init(k_init, b.one)
        recorded.clear()
        b.protocol.round(state, b.one, root, jnp.int32(1))
        (params_A, keys_A, shard_AxS, count_A), = recorded
        spec = b.ctx.local_spec()
        got[name] = (params_A, [local.private_schedule(spec, jax.random.split(k)[0], s, c)
                                for k, s, c in zip(keys_A, shard_AxS, count_A)])
    assert len(got["tally"][1]) == 2                           # half of the 4 peers: the cohort is drawn too
    _same(got["tally"][1], got["local"][1])
    # the warm-up is a no-op here (the recorder), so round 1 starts from local's very parameters
    _same(got["tally"][0], got["local"][0])
