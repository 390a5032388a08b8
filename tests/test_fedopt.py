"""FedAvgM, FedAdam and FedYogi (server optimizers on FedAvg's pseudo-gradient, Reddi et al. 2021):
each update rule against a numpy derivation over three rounds, exact bits, and the degenerate case
(FedAvgM with beta=0 and server_lr=1 is FedAvg bit for bit).

The numpy side takes the aggregate from the peers' trained models (every peer takes part, so each one's
params after the round are what it sent; the aggregate is their shard-size weighted mean, in float64)
and applies the paper's rule to the server's round-start model; nothing of tallysim's aggregation or
optax is used there."""
import subprocess

import jax
import numpy as np
import pytest
from conftest import tiny

import tallysim
from tallysim.protocols import fedavg

FULL_BATCH = ["data.input_shape=8x8x1", "data.train_size=800", "batch_size=2000", "optim.name=sgd",
              "optim.momentum=0", "optim.lr=0.5", "model.width=16", "partition.kind=dirichlet",
              "partition.alpha=0.5"]


def _leaves(tree):
    return [np.asarray(a, np.float64) for a in jax.tree.leaves(tree)]


def _aggregate(d: tallysim.Driver, params):
    c = np.asarray(d.built.one.count_P, np.float64)
    w = c / c.sum()
    return [np.tensordot(w, a, axes=1) for a in _leaves(params)]


def _numpy_rule(name, c):
    """(init, step) of the server rule on flat float64 leaves: step(x, avg, state, t) -> (x', state)."""
    if name == "fedavgm":
        def step(x, avg, m, t):
            m = c.beta * m + (x - avg)                          # momentum on the pseudo-gradient
            return x - c.server_lr * m, m
        return (lambda x: np.zeros_like(x)), step

    def step(x, avg, mv, t):
        g = x - avg
        m, v = mv
        m = c.b1 * m + (1 - c.b1) * g
        if name == "fedadam":
            v = c.b2 * v + (1 - c.b2) * g * g
        else:                                                    # Yogi's additive second moment
            v = v - (1 - c.b2) * np.sign(v - g * g) * g * g
        m_hat, v_hat = m / (1 - c.b1 ** t), v / (1 - c.b2 ** t)
        return x - c.server_lr * m_hat / (np.sqrt(v_hat) + c.tau), (m, v)
    start = 0.0 if name == "fedadam" else 1e-6                  # optax.yogi's initial accumulators
    return (lambda x: (np.full_like(x, start), np.full_like(x, start))), step


# `make test` keeps FedAdam's rule (the adaptive one, shared code with the others: server_opt.py); each
# case compiles a round (about 20 s on the loaded 2-core CPU), so the others run in `make test-all`.
@pytest.mark.parametrize("name, items", [
    pytest.param("fedavgm", ["fedavgm.beta=0.8", "fedavgm.server_lr=0.7"], marks=pytest.mark.slow),
    ("fedadam", ["fedadam.server_lr=0.05", "fedadam.tau=0.01"]),
    pytest.param("fedyogi", ["fedyogi.server_lr=0.05", "fedyogi.b2=0.9"], marks=pytest.mark.slow)])
def test_server_rule_over_three_rounds_matches_numpy(name, items):
    d = tallysim.drive(tiny(*FULL_BATCH, f"protocol.name={name}", *items))
    c = getattr(d.built.cfg, name)
    init, step = _numpy_rule(name, c)
    x = _leaves(d.state.server)
    opt = [init(a) for a in x]
    for t in (1, 2, 3):
        d.step()
        avg = _aggregate(d, d.state.params)
        x, opt = map(list, zip(*[step(xi, ai, si, t) for xi, ai, si in zip(x, avg, opt)]))
        for got, want in zip(_leaves(d.state.server), x):
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
        assert max(np.abs(g - a).max() for g, a in zip(_leaves(d.state.server), avg)) > 1e-4   # not FedAvg
    assert d.bits() == fedavg.param_bits(d.built.ctx)             # the optimizer state stays on the server


@pytest.mark.slow      # two programs compiled with XLA's optimisations on: about 25 s
def test_fedavgm_without_momentum_at_server_lr_one_is_fedavg_exactly(xla_optimized):
    a = tallysim.drive(tiny(*FULL_BATCH, "protocol.name=fedavg"))
    b = tallysim.drive(tiny(*FULL_BATCH, "protocol.name=fedavgm", "fedavgm.beta=0", "fedavgm.server_lr=1"))
    for _ in range(2):
        a.step()
        b.step()
    for x, y in zip(jax.tree.leaves((a.state.server, a.state.params)), jax.tree.leaves((b.state.server, b.state.params))):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    assert a.bits() == b.bits()


@pytest.mark.parametrize("name", ["fedavgm", "fedadam", "fedyogi"])
def test_each_server_optimizer_is_one_file_and_a_registry_line(name):
    out = subprocess.run(["grep", "-rl", "--exclude-dir=__pycache__", name, "tallysim/"], capture_output=True, text=True,
                         cwd=__import__("pathlib").Path(__file__).resolve().parents[1])
    assert sorted(out.stdout.split()) == sorted([f"tallysim/protocols/{name}.py", "tallysim/protocols/__init__.py"])
