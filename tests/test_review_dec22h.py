"""review26: checks of the paper's regime that no test made before (each broken once in the code it guards,
and seen to fail: the report of 2026-12-07 names the mutation).

- The text models are causal: a position's logits never read a later token (the transformer's causal mask
  removed, every earlier test passed: an LSTM-only regime would not notice a model that sees the target).
- Model groups: each group trains with its own optimizer and keeps its own optimizer state (the grouped
  local round handed the run's optimizer to every group, every earlier test passed).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tallysim
from conftest import tiny
from tallysim import config
from tallysim.sim.models import make_model


@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_text_models_never_read_a_later_token(name):
    # next_token targets are the inputs shifted by one (data/text.windows): a model that reads position
    # t + 1 at position t sees its own target. Changing (padding) every token after t must leave the logits
    # at 0..t exactly as they were, and change some later one (the tokens are read at all).
    m = make_model(config.ModelConfig(name=name, hidden=8, layers=2, heads=2), 13)
    x = np.random.default_rng(0).integers(4, 13, (2, 7)).astype(np.float32)
    p = m.init(jax.random.PRNGKey(0), jnp.asarray(x))
    apply = jax.jit(m.apply)                     # one compile for the four calls
    z = np.asarray(apply(p, jnp.asarray(x)))
    for t in (0, 3, 5):
        cut = x.copy()
        cut[:, t + 1:] = 0                       # PAD after position t
        zc = np.asarray(apply(p, jnp.asarray(cut)))
        np.testing.assert_array_equal(zc[:, :t + 1], z[:, :t + 1], err_msg=f"{name}: position <= {t} read a later token")
        assert not np.allclose(zc[:, t + 1:], z[:, t + 1:]), name


# Two groups of the same MLP, one with its own optimizer (Adam), the other the run's (SGD with momentum), their
# state kept between rounds (warm-up, round 1), no exchange (distill.weight=0): the Adam group's peers are then
# those peers of the one-model Adam run (peer i keeps its shard, init, warm-up and training keys:
# docs/groups.md), up to float rounding (a program of 2 peers vmapped, not 4: 3e-8 apart measured; with the
# run's optimizer handed to every group, 1e-2).
ADAM = ["optim.name=adam", "optim.lr=0.01"]
BASE = ["protocol.name=tally", "distill.weight=0", "optim.reset_each_round=false", "model.width=16",
        "optim.name=sgd", "optim.lr=0.05", "optim.momentum=0.9", "rounds=1", "data.train_size=600"]


def _final(*items):
    d = tallysim.drive(tiny(*BASE, *items))
    d.run(1)
    return d.state


def test_each_group_steps_with_its_own_optimizer_and_state():
    grouped = _final("model.groups=adam:2:mlp,optim.name=adam,optim.lr=0.01;momentum:2:mlp")
    alone = _final(*ADAM)
    for got, want in zip(jax.tree.leaves(grouped.params[0]), jax.tree.leaves(alone.params)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want)[:2], rtol=1e-4, atol=1e-6)
    # the optimizer state kept between rounds is the group's own kind (Adam's count and moments)
    got_opt, want_opt = jax.tree.leaves(grouped.opt[0]), jax.tree.leaves(alone.opt)
    assert len(got_opt) == len(want_opt) != len(jax.tree.leaves(grouped.opt[1]))
    for got, want in zip(got_opt, want_opt):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want)[:2], rtol=1e-4, atol=1e-6)
