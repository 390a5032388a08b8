"""FedNova (Wang et al., NeurIPS 2020; protocols/fednova.py): the normalised server step against numpy
from the peers' trained models and their step counts (ragged shards: unequal steps), with and without
momentum, the degenerate case (equal steps everywhere is FedAvg), and exact bits."""
import math

import jax
import numpy as np
import pytest
from conftest import tiny

import tallysim
from tallysim.sim import comm

RAGGED = ["data.input_shape=8x8x1", "data.train_size=800", "batch_size=32", "model.width=16",
          "partition.kind=dirichlet", "partition.alpha=0.5", "optim.name=sgd", "optim.lr=0.1"]


def flat(tree):
    return np.concatenate([np.asarray(a, np.float64).reshape(-1) for a in jax.tree.leaves(tree)])


def flat_P(tree):
    return np.concatenate([np.asarray(a, np.float64).reshape(a.shape[0], -1) for a in jax.tree.leaves(tree)], 1)


def test_effective_steps_with_momentum_are_the_papers_sum():
    # Wang et al. 2020 (momentum SGD, buffer zero at the round's start): a_i = [1 - rho^tau, ...,
    # 1 - rho] / (1 - rho), so ||a_i||_1 = sum_{k=1..tau} (1 - rho^k) / (1 - rho); plain SGD: tau
    from tallysim.protocols.fednova import effort
    tau = np.array([1, 2, 5, 13])
    for rho in (0.5, 0.9):
        want = np.array([sum((1 - rho ** k) / (1 - rho) for k in range(1, t + 1)) for t in tau])
        np.testing.assert_allclose(np.asarray(effort(jax.numpy.asarray(tau), rho)), want, rtol=1e-5)
        assert np.all(want[1:] > tau[1:])    # momentum lengthens every step after the first: ignoring it is wrong
    np.testing.assert_array_equal(np.asarray(effort(jax.numpy.asarray(tau), None)), tau)


# Both in make test: rho=0.9 is the only run of the momentum path (a_i != tau_i), rho=0 the only one of
# plain SGD's (equal steps everywhere reduce any a_i to FedAvg, so that test cannot see it).
@pytest.mark.parametrize("rho", [0.0, 0.9])
def test_fednova_step_matches_numpy(rho):
    d = tallysim.drive(tiny(*RAGGED, "protocol.name=fednova", f"optim.momentum={rho}"))
    count = np.asarray(d.built.one.count_P, np.float64)
    w = count / count.sum()
    tau = np.array([math.ceil(c / 32) for c in count])                 # one epoch of batches of 32
    a = tau if rho == 0 else (tau - rho * (1 - rho ** tau) / (1 - rho)) / (1 - rho)
    assert len(set(tau)) > 1                                            # unequal effort: not FedAvg
    for _ in range(2):
        x = flat(d.state.server)
        d.step()
        y = flat_P(d.state.params)
        want = x - (w @ a) * ((w / a) @ (x[None] - y))
        np.testing.assert_allclose(flat(d.state.server), want, rtol=1e-4, atol=1e-6)
        assert np.abs(want - w @ y).max() > 1e-4                       # ... and it differs from the average
    W = d.built.ctx.num_params
    assert d.bits() == comm.RoundBits(32 * W + 32, 32 * W, 4)


def test_fednova_with_equal_steps_is_fedavg():
    a = tallysim.drive(tiny(*RAGGED, "protocol.name=fedavg", "local_steps=3"))
    b = tallysim.drive(tiny(*RAGGED, "protocol.name=fednova", "local_steps=3"))
    for _ in range(2):
        a.step()
        b.step()
    np.testing.assert_allclose(flat(b.state.server), flat(a.state.server), rtol=1e-5, atol=1e-6)
