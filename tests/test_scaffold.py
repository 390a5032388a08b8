"""SCAFFOLD (Karimireddy et al., ICML 2020; protocols/scaffold.py): the update rule against a derivation
written here over two rounds of full-batch plain SGD (gradients by jax.grad of the model's loss on each
peer's whole shard; the steps, the option II control update and the server rule in float64 numpy,
nothing of tallysim's training loop used), exact bits, and the degenerate case (zero control variates:
round 1 is FedAvg's first round bit for bit)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import tiny

import tallysim
from tallysim import sweep
from tallysim.sim import comm
from tallysim.sim.fed import to_input

FULL_BATCH = ["data.input_shape=8x8x1", "data.train_size=800", "batch_size=2000", "optim.name=sgd",
              "optim.momentum=0", "optim.lr=0.5", "model.width=16", "partition.kind=dirichlet",
              "partition.alpha=0.5"]


def _leaves(tree):
    return [np.asarray(a, np.float64) for a in jax.tree.leaves(tree)]


def test_scaffold_matches_a_derivation_over_two_rounds():
    lr, eta_g, K = 0.5, 0.8, 2
    d = tallysim.drive(tiny(*FULL_BATCH, "protocol.name=scaffold", f"scaffold.server_lr={eta_g}",
                            f"local_epochs={K}"))
    one, model = d.built.one, d.built.ctx.model
    P = d.built.ctx.spec.peers
    treedef = jax.tree.structure(d.state.server)
    count = np.asarray(one.count_P)
    w = count / count.sum()

    def grad(i, y):                         # full-batch gradient of peer i's mean cross-entropy at y
        rows = np.asarray(one.shard_PxS)[i, :count[i]]
        x, lab = to_input(jnp.asarray(one.x_train)[rows]), jnp.asarray(one.y_train)[rows]
        params = jax.tree.unflatten(treedef, [jnp.asarray(a, jnp.float32) for a in y])
        g = jax.grad(lambda p: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
            model.apply(p, x), lab)))(params)
        return _leaves(g)

    x = _leaves(d.state.server)
    c = [np.zeros_like(a) for a in x]
    c_P = [[np.zeros_like(a) for a in x] for _ in range(P)]
    for _ in range(2):
        d.step()
        ys, new_c_P = [], []
        for i in range(P):
            y = [a.copy() for a in x]
            for _ in range(K):
                y = [yj - lr * (gj + cj - cij) for yj, gj, cj, cij in zip(y, grad(i, y), c, c_P[i])]
            ys.append(y)
            new_c_P.append([cij - cj + (xj - yj) / (K * lr) for cij, cj, xj, yj in zip(c_P[i], c, x, y)])
        x = [xj + eta_g * sum(w[i] * (ys[i][j] - xj) for i in range(P)) for j, xj in enumerate(x)]
        c = [cj + sum(new_c_P[i][j] - c_P[i][j] for i in range(P)) / P for j, cj in enumerate(c)]
        c_P = new_c_P
        for got, want in zip(_leaves(d.state.server), x):
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
        for got, want in zip(_leaves(d.state.extra["c"]), c):
            np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-5)
        for got, want in zip(_leaves(d.state.extra["c_P"]), zip(*c_P)):
            np.testing.assert_allclose(got, np.stack(want), rtol=2e-3, atol=2e-5)
    assert max(np.abs(a).max() for a in c) > 1e-3                 # the control variates did act
    W = d.built.ctx.num_params
    assert d.bits() == comm.RoundBits(2 * 32 * W, 2 * 32 * W, P)    # dy and dc up, x and c down


def test_scaffold_round_one_is_fedavg_exactly(xla_optimized):
    a = tallysim.drive(tiny(*FULL_BATCH, "protocol.name=fedavg", "local_epochs=2", "participation=0.5"))
    b = tallysim.drive(tiny(*FULL_BATCH, "protocol.name=scaffold", "local_epochs=2", "participation=0.5"))
    a.step()
    b.step()
    for x, y in zip(jax.tree.leaves((a.state.server, a.state.params)),
                    jax.tree.leaves((b.state.server, b.state.params))):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    a.step()
    b.step()                                                        # round 2 corrects: no longer FedAvg
    assert not all(np.array_equal(np.asarray(x), np.asarray(y))
                   for x, y in zip(jax.tree.leaves(a.state.server), jax.tree.leaves(b.state.server)))
    W = b.built.ctx.num_params
    assert b.bits() == comm.RoundBits(64 * W, 64 * W, 2) and a.bits() == comm.RoundBits(32 * W, 32 * W, 2)


@pytest.mark.slow
def test_scaffold_sweeps_its_server_lr_as_one_program(tmp_path):
    logs = []
    runs = [(f"lr={v}", [f"scaffold.server_lr={v}"]) for v in (0.5, 1.0)]
    recs = sweep.run_sweep(tiny("protocol.name=scaffold", "rounds=1"), runs, tmp_path / "sw", progress=False,
                           log=logs.append)
    assert [r["status"] for r in recs] == ["done", "done"]
    assert any("2 runs as one program" in m for m in logs), logs
