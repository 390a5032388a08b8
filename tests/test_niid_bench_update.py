"""tallysim's local update is NIID-Bench's (docs/niid-bench.md), written out in numpy.

NIID-Bench (github.com/Xtra-Computing/NIID-Bench, experiments.py `train_net_fedprox`) and Flower's
baselines/niid_bench (models.py `train_fedprox`) train each party with a fresh
`torch.optim.SGD(lr, momentum=rho, weight_decay=reg)` per round, on a DataLoader with shuffle=True and
drop_last=False, minimising per batch `CrossEntropyLoss()` (the batch mean) + (mu/2) sum ||w - w_g||^2.
PyTorch's SGD: g += reg * w; buf = g on the first step, else rho * buf + g; w -= lr * buf.
One peer on a linear softmax model, a partial last batch, two epochs: tallysim's step must give
those weights exactly (so FedProx's term is the same scale, weight decay is coupled L2 added before
momentum, and the short batch is a mean over its own examples).
"""
import jax
import jax.numpy as jnp
import numpy as np

from tallysim.config import OptimConfig
from tallysim.sim import local, peers
from tallysim.sim.fed import FedData

N, D, C, B, E = 10, 5, 3, 4, 2            # 10 examples in batches of 4: 4, 4, 2 (drop_last=False)
LR, RHO, REG, MU = 0.1, 0.9, 1e-3, 0.5


def _apply(w, x):
    return x.reshape(x.shape[0], -1) @ w["W"] + w["b"]


def _niid_bench_reference(w0, x, y, batches):
    """NIID-Bench's loop in numpy (float64): per batch CE mean + prox, SGD(momentum, weight_decay)."""
    W, b = (np.asarray(w0["W"], np.float64), np.asarray(w0["b"], np.float64))
    gW0, gb0 = W.copy(), b.copy()                    # the global model w_g the prox term pulls to
    bufW = bufb = None
    for idx in batches:
        xb, yb = x[idx].reshape(len(idx), -1), y[idx]
        z = xb @ W + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        d = (p - np.eye(C)[yb]) / len(idx)           # d(mean CE)/dz
        gW, gb = xb.T @ d + MU * (W - gW0), d.sum(0) + MU * (b - gb0)
        gW, gb = gW + REG * W, gb + REG * b          # weight_decay: added to the gradient
        bufW, bufb = (gW, gb) if bufW is None else (RHO * bufW + gW, RHO * bufb + gb)
        W, b = W - LR * bufW, b - LR * bufb
    return W, b


def test_fedprox_local_round_is_niid_benchs_update():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N + 1, 1, D, 1)).astype(np.float32)     # row 0: padding, never read
    y = rng.integers(0, C, N + 1).astype(np.int32)
    w0 = {"W": jnp.asarray(rng.normal(size=(D, C)) * 0.5, jnp.float32), "b": jnp.asarray(rng.normal(size=C), jnp.float32)}
    tx = peers.make_optimizer(OptimConfig(name="sgd", lr=LR, momentum=RHO, weight_decay=REG))
    spec = local.LocalSpec(apply_fn=_apply, tx=tx, batch_size=B, shard_max=12, epochs=E, prox_mu=MU)
    shard = jnp.asarray(np.r_[np.arange(1, N + 1), 0, 0], jnp.int32)
    data = FedData(jnp.asarray(x), jnp.asarray(y), shard[None], jnp.array([N]), jnp.arange(1),
                   jnp.asarray(x[:2]), jnp.asarray(y[:2]))
    key = jax.random.PRNGKey(3)
    w, _, _ = local.train_peer(spec, w0, tx.init(w0), key, shard, jnp.int32(N), data, None, anchor=w0)

    idx_TxB, mask_TxB = local.private_schedule(spec, jax.random.split(key)[0], shard, jnp.int32(N))
    batches = [np.asarray(i)[np.asarray(m)] for i, m in zip(idx_TxB, mask_TxB) if np.asarray(m).any()]
    assert [len(b) for b in batches] == [4, 4, 2] * E
    W, b = _niid_bench_reference(w0, x, y, batches)
    np.testing.assert_allclose(np.asarray(w["W"]), W, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(w["b"]), b, rtol=1e-5, atol=1e-6)
    # and the same steps without the prox term move the weights elsewhere (the term is live)
    w_free, _, _ = local.train_peer(spec._replace(prox_mu=None), w0, tx.init(w0), key, shard, jnp.int32(N),
                                    data, None, None)
    assert not np.allclose(np.asarray(w_free["W"]), W, rtol=1e-3)


def test_lenet_and_inputs_are_not_niid_benchs_as_docs_niid_bench_md_says():
    """docs/niid-bench.md explains the gap to NIID-Bench's #C=1 numbers by three choices; pin them, so the
    page is revisited if one changes: tallysim's LeNet has the 400-feature SAME first conv (61,706
    parameters; NIID-Bench's SimpleCNNMNIST, conv1 VALID and 256 features, has 44,426), flax's init
    (zero biases, where PyTorch draws U(+-1/sqrt(fan_in))), and inputs in [-1, 1] (ToTensor: [0, 1])."""
    from tallysim.config import ModelConfig
    from tallysim.sim.fed import to_input
    from tallysim.sim.models import make_model, param_count

    params = make_model(ModelConfig(name="lenet"), 10).init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))
    assert param_count(params) == 61_706
    assert param_count(params) - 144 * 120 == 44_426       # NIID-Bench's: 256 instead of 400 inputs to fc1
    assert all(not np.asarray(leaf).any() for path, leaf in jax.tree_util.tree_leaves_with_path(params)
               if "bias" in jax.tree_util.keystr(path))
    np.testing.assert_allclose(np.asarray(to_input(jnp.array([0, 255], jnp.uint8))), [-1.0, 1.0])


def test_the_comparison_scripts_behind_the_page_compile():
    """benchmarks/niid_bench/ (PyTorch transcription of NIID-Bench's loop; tallysim's run, patched) are
    what docs/niid-bench.md's table was measured with; they need PyTorch or minutes, so only compile."""
    import py_compile
    from pathlib import Path
    for script in sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "niid_bench").glob("*.py")):
        py_compile.compile(str(script), doraise=True)
