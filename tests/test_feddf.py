"""`feddf`: the teacher/student loss, steps=0 is FedAvg, server distillation moves the global model,
and runs end to end through run.run and the CLI (CPU, tiny synthetic runs)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY, read_rows, run_rows, tiny

from tallysim import cli, run
from tallysim.sim.fed import to_input
from tallysim.protocols import fedavg
from tallysim.protocols.feddf import distill_server, student_loss, teacher_probs


def test_teacher_and_loss():
    logits = jnp.array([[[2.0, 0.0, 0.0]], [[0.0, 0.0, 4.0]]])          # A=2 peers, B=1, C=3
    np.testing.assert_allclose(teacher_probs(logits, "logits", 1.0), jax.nn.softmax(jnp.array([[1.0, 0, 2]])),
                               rtol=1e-6)
    probs = (jax.nn.softmax(logits[0] / 2) + jax.nn.softmax(logits[1] / 2)) / 2
    np.testing.assert_allclose(teacher_probs(logits, "probs", 2.0), probs, rtol=1e-6)
    s = jnp.array([[0.3, -1.0, 2.0], [1.0, 1.0, 1.0]])
    for T in (1.0, 3.0):
        t = jax.nn.softmax(s / T)
        assert float(student_loss(s, t, T)) == pytest.approx(0.0, abs=1e-6)    # KL(p || p) = 0
        other = jax.nn.softmax(jnp.zeros_like(s))
        kl = jnp.mean(jnp.sum(other * (jnp.log(other) - jax.nn.log_softmax(s / T)), axis=-1))
        assert float(student_loss(s, other, T)) == pytest.approx(float(kl), rel=1e-5)
    # no gradient flows into the teacher
    g = jax.grad(lambda l: jnp.sum(teacher_probs(l, "logits", 1.0)[0, 0]))(logits)
    np.testing.assert_array_equal(g, 0.0)


def test_steps_zero_is_fedavg(tmp_path):
    rows_d = run_rows(tiny("protocol.name=feddf", "feddf.steps=0"), tmp_path / "d")
    rows_f = run_rows(tiny("protocol.name=fedavg"), tmp_path / "f")
    assert rows_d == rows_f and len(rows_d) == 2


def test_server_distillation_moves_toward_ensemble():
    b = run.build(tiny("protocol.name=feddf", "feddf.steps=30", "feddf.batch_size=32", "feddf.lr=0.01",
                       "feddf.temperature=2"))
    ctx = b.ctx
    state = jax.jit(b.protocol.init)(jax.random.PRNGKey(0), b.one)     # eager flax init is slow
    # an ensemble of perturbed copies of the init, and the student at their (plain) mean
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    params_A = jax.vmap(lambda p, k: jax.tree.map(
        lambda a: a + 0.3 * jax.random.normal(k, a.shape), p))(state.params, keys)
    student = fedavg.peers.weighted_mean(params_A, jnp.full((4,), 0.25))
    fn = jax.jit(lambda s, p, x, k: distill_server(ctx, s, p, x, k))
    new, last = fn(student, params_A, b.one, jax.random.PRNGKey(2))
    assert np.isfinite(float(last))
    moved = sum(float(jnp.sum(jnp.abs(a - c))) for a, c in zip(jax.tree.leaves(new), jax.tree.leaves(student)))
    assert moved > 0

    @jax.jit
    def pool_loss(p):
        x = to_input(b.one.x_train[b.one.pool_Q])
        teacher = teacher_probs(jax.vmap(ctx.model.apply, in_axes=(0, None))(params_A, x), "logits", 2.0)
        return student_loss(ctx.model.apply(p, x), teacher, 2.0)
    assert float(pool_loss(new)) < float(pool_loss(student))
    # deterministic: same key, same student
    again, _ = fn(student, params_A, b.one, jax.random.PRNGKey(2))
    jax.tree.map(np.testing.assert_array_equal, again, new)


def test_end_to_end_run(tmp_path):
    cfg = tiny("protocol.name=feddf", "feddf.steps=5", "feddf.batch_size=16", "feddf.target=probs")
    last = run.run(cfg, str(tmp_path / "run"), progress=False)
    rows = read_rows(tmp_path / "run")
    assert [r["round"] for r in rows] == [1, 2] and all(r["acc_global"] is not None for r in rows)
    b = run.build(cfg)
    W = b.ctx.num_params
    assert last["bits_up"] == last["bits_down"] == 2 * 4 * 32 * W       # as FedAvg


def test_cli(tmp_path):
    out = tmp_path / "cli"
    assert cli.main(["run", *TINY, "protocol.name=feddf", "feddf.steps=3", "feddf.batch_size=16", "rounds=1",
                     "--out", str(out), "--quiet"]) == 0
    assert read_rows(out)[-1]["acc_global"] is not None
