"""Ragged-aware local training: peers grouped by shard size walk only their real steps, with exactly
the per-peer semantics of the masked reference (`train_peer`: every step of the padded schedule,
masked), and the rows report the real and computed step counts."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tallysim import run
from tallysim.sim import local, step_groups
from tallysim.config import ModelConfig
from tallysim.sim.fed import FedData
from tallysim.sim.models import make_model
from conftest import tiny, run_rows

KEY = jax.random.PRNGKey(3)
COUNTS = [37, 0, 5, 12, 40, 1, 23]            # ragged, one empty shard, S_max = 40


def _setup(**kw):
    model = make_model(ModelConfig(name="mlp", width=8), 3)
    base = dict(apply_fn=model.apply, tx=optax.sgd(0.1, momentum=0.9), batch_size=4, shard_max=40, epochs=2)
    base.update(kw)
    spec = local.LocalSpec(**base)
    n = 200
    x = jax.random.normal(KEY, (n, 3, 3, 1))
    y = jnp.arange(n) % 3
    data = FedData(x, y, None, None, jnp.arange(8), x[:8], y[:8])
    rng = np.random.default_rng(0)
    shard = np.zeros((len(COUNTS), 40), np.int32)
    for i, c in enumerate(COUNTS):
        shard[i, :c] = rng.choice(n, c, replace=False)
    p0 = model.init(KEY, x[:1])
    P = len(COUNTS)
    params = jax.vmap(lambda k: model.init(k, x[:1]))(jax.random.split(KEY, P))
    opt = jax.vmap(spec.tx.init)(params)
    keys = jax.random.split(jax.random.fold_in(KEY, 1), P)
    probes = local.Probes(x[100:130], jnp.arange(30) % 3, (jnp.arange(30) % 4 != 0).astype(jnp.float32))
    return spec, data, (params, opt, keys, jnp.asarray(shard), jnp.asarray(COUNTS, jnp.int32)), probes


def _reference(spec, data, args, probes, sequential_epochs=0):
    """The masked per-peer scan over the whole padded schedule, vmapped: the previous train_peers. A peer
    without steps (no examples, no digest) reports the mean loss of those with (local.stepped_mean_fill)."""
    def one(p, o, k, s, c):
        return local.train_peer(spec, p, o, k, s, c, data, probes, None, sequential_epochs)
    params, opt, loss = jax.jit(jax.vmap(one))(*args)
    stepped = (np.asarray(args[-1]) > 0) | (probes is not None and sequential_epochs > 0)
    loss = np.where(stepped, np.asarray(loss), np.asarray(loss)[stepped].mean())
    return params, opt, loss


@pytest.mark.parametrize("groups", [1, 3, 10])
@pytest.mark.parametrize("with_probes", [False, True])
def test_grouped_training_equals_the_masked_reference(groups, with_probes):
    spec, data, args, probes = _setup(groups=groups, distill_loss=local.hard_label_loss(3, 0.1),
                                      distill_weight=0.5, probe_batch=6)
    probes = probes if with_probes else None
    p, o, loss, steps = jax.jit(lambda a: local.train_peers(spec, *a, data, probes))(args)
    rp, ro, rloss = _reference(spec, data, args, probes)
    for a, b in zip(jax.tree.leaves((p, o, loss)), jax.tree.leaves((rp, ro, rloss))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    real = sum(2 * -(-c // 4) for c in COUNTS)                       # epochs * ceil(count / B)
    assert int(steps["steps_real"]) == real
    lanes = -(-len(COUNTS) // min(groups, len(COUNTS)))
    sorted_steps = sorted((2 * -(-c // 4) for c in COUNTS), reverse=True) + [0] * 7
    assert int(steps["steps_computed"]) == lanes * sum(sorted_steps[::lanes][:min(groups, len(COUNTS))])


def test_sequential_digest_then_ragged_private_steps():
    spec, data, args, probes = _setup(groups=3, distill_loss=local.hard_label_loss(3, 0.0),
                                      distill_weight=1.0, probe_batch=8)
    p, o, loss, _ = local.train_peers(spec, *args, data, probes, None, 2)
    rp, ro, rloss = _reference(spec, data, args, probes, 2)
    for a, b in zip(jax.tree.leaves((p, loss)), jax.tree.leaves((rp, rloss))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_waste_prediction_and_auto_groups():
    steps = np.array([[10, 1, 1, 1]])
    assert step_groups.waste(steps, 4, 1) == pytest.approx(40 / 13)
    assert step_groups.waste(steps, 4, 4) == pytest.approx(1.0)
    assert step_groups.waste(steps, 4, 2) == pytest.approx((2 * 10 + 2 * 1) / 13)
    assert step_groups.auto_groups(steps, 4) == 4
    assert step_groups.auto_groups(np.full((2, 6), 5), 6) == 1           # equal shards: one vmapped loop
    assert step_groups.auto_groups(steps, 4, backend="cpu") == 4           # the CPU runs peers one by one


@pytest.mark.parametrize("protocol", [pytest.param("tally", marks=pytest.mark.slow), "fedavg"])
def test_rows_report_steps_and_grouping_does_not_change_results(protocol, tmp_path):
    base = ["partition.kind=dirichlet", "partition.alpha=0.1", "partition.min_size=1", "peers=6",
            f"protocol.name={protocol}", "participation=0.5"]
    one = run_rows(tiny(*base, "ragged_groups=1"), tmp_path / "one")
    many = run_rows(tiny(*base, "ragged_groups=3"), tmp_path / "three")
    for a, b in zip(one, many):
        assert a["steps_real"] == b["steps_real"] > 0
        assert b["steps_computed"] <= a["steps_computed"]
        for k in ("acc_mean", "acc_ensemble", "bits_up", "train_loss"):
            assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6), k
    assert one[-1]["steps_real"] > one[0]["steps_real"]               # cumulative


def test_local_steps_in_groups_equal_the_reference():
    spec, data, args, probes = _setup(groups=3, local_steps=5, distill_loss=local.hard_label_loss(3, 0.0),
                                      distill_weight=1.0, probe_batch=6)
    p, o, loss, steps = local.train_peers(spec, *args, data, probes)
    rp, ro, rloss = _reference(spec, data, args, probes)
    for a, b in zip(jax.tree.leaves((p, loss)), jax.tree.leaves((rp, rloss))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert int(steps["steps_real"]) == 5 * sum(c > 0 for c in COUNTS)
