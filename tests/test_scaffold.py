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
from tallysim.sim.fed import cohort_shards

FULL_BATCH = ["data.input_shape=8x8x1", "data.train_size=800", "batch_size=2000", "optim.name=sgd",
              "optim.momentum=0", "optim.lr=0.5", "model.width=16", "partition.kind=dirichlet",
              "partition.alpha=0.5"]


def _leaves(tree):
    return [np.asarray(a, np.float64) for a in jax.tree.leaves(tree)]


# participation=0.5: 2 of 4 peers a round; the server's control variate still divides by all P peers
# (c += |S|/N * mean dc, Karimireddy et al. 2020 eq. 5), which averaging over the active ones would double.
@pytest.mark.parametrize("participation", [1.0, 0.5])
def test_scaffold_matches_a_derivation_over_two_rounds(participation):
    lr, eta_g, K = 0.5, 0.8, 2
    d = tallysim.drive(tiny(*FULL_BATCH, "protocol.name=scaffold", f"scaffold.server_lr={eta_g}",
                            f"local_epochs={K}", f"participation={participation}"))
    one, model = d.built.one, d.built.ctx.model
    P, A = d.built.ctx.spec.peers, d.built.ctx.spec.active
    treedef = jax.tree.structure(d.state.server)
    count = np.asarray(one.count_P)

    # jitted: run op by op, each peer's own shard size compiled every primitive of the model's forward
    # and backward pass anew; one program per shard size instead (the file: 29.6 -> 21.7 s of CPU with
    # conftest.SINGLE_CODEGEN, cold compile cache, loaded 2-core CPU)
    loss_grad = jax.jit(jax.grad(lambda p, x, lab: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
        model.apply(p, x), lab))))

    def grad(i, y):                         # full-batch gradient of peer i's mean cross-entropy at y
        rows = np.asarray(cohort_shards(one, None))[i, :count[i]]
        x, lab = to_input(jnp.asarray(one.x_train)[rows]), jnp.asarray(one.y_train)[rows]
        params = jax.tree.unflatten(treedef, [jnp.asarray(a, jnp.float32) for a in y])
        return _leaves(loss_grad(params, x, lab))

    x = _leaves(d.state.server)
    c = [np.zeros_like(a) for a in x]
    c_P = [[np.zeros_like(a) for a in x] for _ in range(P)]
    for r in range(1, 3):
        before = _leaves(d.state.params)
        d.step()
        # the active set: the peers whose model this round wrote (the draw itself is the round key's)
        S = [i for i in range(P) if any(not np.array_equal(b[i], a[i]) for b, a in zip(before, _leaves(d.state.params)))]
        assert len(S) == A, S
        w = {i: count[i] / sum(count[j] for j in S) for i in S}
        ys, new_c_P = {}, [list(ci) for ci in c_P]
        for i in S:
            y = [a.copy() for a in x]
            for _ in range(K):
                y = [yj - lr * (gj + cj - cij) for yj, gj, cj, cij in zip(y, grad(i, y), c, c_P[i])]
            ys[i] = y
            new_c_P[i] = [cij - cj + (xj - yj) / (K * lr) for cij, cj, xj, yj in zip(c_P[i], c, x, y)]
        x = [xj + eta_g * sum(w[i] * (ys[i][j] - xj) for i in S) for j, xj in enumerate(x)]
        c = [cj + sum(new_c_P[i][j] - c_P[i][j] for i in S) / P for j, cj in enumerate(c)]
        c_P = new_c_P
        for got, want in zip(_leaves(d.state.server), x):
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
        for got, want in zip(_leaves(d.state.extra["c"]), c):
            np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-5, err_msg=f"round {r}: c")
        for got, want in zip(_leaves(d.state.extra["c_P"]), zip(*c_P)):
            np.testing.assert_allclose(got, np.stack(want), rtol=2e-3, atol=2e-5)
    assert max(np.abs(a).max() for a in c) > 1e-3                 # the control variates did act
    W = d.built.ctx.num_params
    assert d.bits() == comm.RoundBits(2 * 32 * W, 2 * 32 * W, A)    # dy and dc up, x and c down


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
    recs = sweep.run_sweep(tiny("protocol.name=scaffold", "optim.momentum=0", "rounds=1"), runs, tmp_path / "sw", progress=False,
                           log=logs.append)
    assert [r["status"] for r in recs] == ["done", "done"]
    assert any("2 runs as one program" in m for m in logs), logs


def test_scaffold_alie_uses_baruch_z_with_the_faulty_count():
    # Baruch et al. 2019: n = 10 active peers, f = 3 faulty: s = floor(n/2 + 1) - f = 3,
    # z = Phi^-1((n - s) / n) = Phi^-1(0.7) = 0.524 (without f: Phi^-1(0.4) = -0.253, the sign flipped)
    from statistics import NormalDist
    n, f = 10, 3
    z = NormalDist().inv_cdf((n - (n // 2 + 1 - f)) / n)
    assert z == pytest.approx(0.5244, abs=1e-4)
    iid = [a for a in FULL_BATCH if not a.startswith("partition.")] + ["partition.kind=iid"]   # alpha: unread
    d = tallysim.drive(tiny(*iid, "protocol.name=scaffold", "peers=10",
                            "faults.kind=alie", "faults.fraction=0.3", "local_epochs=1"))
    faulty = np.asarray(d.built.one.faulty_P)
    assert faulty.sum() == f
    count = np.asarray(d.built.one.count_P).astype(np.float64)
    x0 = _leaves(d.state.server)
    d.step()
    for xs, ys, got in zip(x0, _leaves(d.state.params), _leaves(d.state.server)):
        u = ys - xs[None]                                   # every peer's honest update (what it trained)
        h = u[~faulty]
        mu, sd = h.mean(0), h.std(0)                        # the honest updates' moments (population sd)
        sent = np.where(faulty.reshape((-1,) + (1,) * (u.ndim - 1)), (mu - z * sd)[None], u)
        want = xs + np.tensordot(count / count.sum(), sent, axes=1)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("opt", [["optim.momentum=0.9"], ["optim.name=adam", "optim.momentum=0"]])
def test_scaffold_refuses_momentum_and_adam_before_anything_loads(opt):
    from tallysim import config
    with pytest.raises(config.ConfigError) as e:
        config.validate(tiny("protocol.name=scaffold", *opt))
    text = str(e.value)
    assert "\n" not in text and "allowed: optim.name=sgd with optim.momentum=0" in text, text
    config.validate(tiny("protocol.name=scaffold", "optim.momentum=0"))
