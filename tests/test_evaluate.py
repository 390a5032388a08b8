"""`evaluate()` on hand-made logits: per-peer, server and plurality-vote accuracy, with a test set that
is not a multiple of the eval batch (padding) and with tied votes (lowest class wins)."""
import jax.numpy as jnp
import numpy as np
import pytest

from tallysim.sim.evaluate import evaluate

pytestmark = pytest.mark.core

# Test example t has input [t]; a "model" is a lookup table of logits [V, C] indexed by the input.
V, C = 7, 4
Y = np.array([0, 1, 2, 3, 0, 1, 2])
# Each peer's predicted class per example (argmax of the table below), chosen by hand:
PRED = np.array([
    [0, 1, 2, 3, 1, 1, 0],     # peer 0: wrong on t=4, 6         -> 5/7
    [0, 2, 2, 0, 1, 3, 2],     # peer 1: wrong on t=1, 3, 4, 5   -> 3/7
    [1, 2, 2, 3, 0, 3, 0],     # peer 2: wrong on t=0, 1, 5, 6   -> 3/7
    [1, 1, 3, 3, 1, 2, 0],     # peer 3: wrong on t=0, 2, 4, 5, 6 -> 2/7
])
# Votes per example: t=0 {0,0,1,1} tie -> 0 (right); t=1 {1,2,2,1} tie -> 1 (right);
# t=2 {2,2,2,3} -> 2 (right); t=3 {3,0,3,3} -> 3 (right); t=4 {1,1,0,1} -> 1 (wrong);
# t=5 {1,3,3,2} -> 3 (wrong); t=6 {0,2,0,0} -> 0 (wrong).  Ensemble: 4/7.
SERVER = np.array([0, 1, 2, 0, 0, 0, 2])                        # 5/7


def table(pred):
    logits = np.full((V, C), -1.0, np.float32)
    logits[np.arange(V), pred] = 2.0
    return logits


def apply(params, x):
    return params["table"][x[:, 0].astype(jnp.int32)]


@pytest.mark.parametrize("batch", [3, 5, 7, 500])              # 3 and 5 pad the last batch
def test_evaluate_hand_made_logits_with_padding_and_ties(batch):
    params = {"table": jnp.asarray(np.stack([table(p) for p in PRED]))}
    server = {"table": jnp.asarray(table(SERVER))}
    x = jnp.arange(V, dtype=jnp.float32)[:, None]
    out = evaluate(apply, params, server, x, jnp.asarray(Y), C, batch=batch)
    np.testing.assert_allclose(np.asarray(out["acc_P"]), [5 / 7, 3 / 7, 3 / 7, 2 / 7], rtol=1e-6)
    assert float(out["acc_ensemble"]) == pytest.approx(4 / 7)
    assert float(out["acc_global"]) == pytest.approx(5 / 7)
    none = evaluate(apply, params, None, x, jnp.asarray(Y), C, batch=batch)
    assert none["acc_global"] is None


def test_padding_never_counts_as_correct():
    # Every prediction is class 0, and so is the padded input's (x=0): only real zeros may count.
    params = {"table": jnp.asarray(np.stack([table(np.zeros(V, int))] * 2))}
    x = jnp.arange(V, dtype=jnp.float32)[:, None]
    y = jnp.asarray(np.array([1, 1, 1, 1, 1, 1, 0]))
    out = evaluate(apply, params, {"table": params["table"][0]}, x, y, C, batch=4)     # pads 1
    np.testing.assert_allclose(np.asarray(out["acc_P"]), [1 / 7, 1 / 7], rtol=1e-6)
    assert float(out["acc_ensemble"]) == pytest.approx(1 / 7)
    assert float(out["acc_global"]) == pytest.approx(1 / 7)
