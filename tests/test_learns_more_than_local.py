"""Issue 20 section 4: one end-to-end check in `make test` (not slow) that a protocol learns more than
`local`, against bounds computed here in numpy, not pinned from the simulator's own output.

Each of 5 peers holds 2 of the 10 classes of a synthetic dataset (label_quantity, k=2). A peer alone
can classify at best the test examples of its own classes: that ceiling is computed from
partition.json and the test labels, and `local` must stay under it. FedAvg's server model must beat
that ceiling by a wide margin and reach a good fraction of a nearest-centroid classifier fitted in
numpy on the whole training set (the centralised baseline).

Measured (seeds 0, 1, 2): local peer mean 0.194, 0.195, 0.192 (ceiling about 0.2); FedAvg server
0.553, 0.470, 0.480; nearest centroid 0.705, so 0.6 x 0.705 = 0.423 sits below every seed. The test
runs seed 0 (about 7 s on a loaded 2-core CPU).
"""
import json

import numpy as np

from tallysim import data, run
from conftest import tiny

SPLIT = ["data.input_shape=8x8x1", "data.train_size=2000", "data.test_size=400", "data.difficulty=0.5",
         "peers=5", "partition.kind=label_quantity", "partition.k=2", "partition.scheme=balanced",
         "rounds=4", "eval_every=4", "model.width=32", "batch_size=32", "optim.lr=0.05",
         "probe.per_round=64", "probe.pool_size=200"]


def _nearest_centroid_acc(x_train, y_train, x_test, y_test, classes) -> float:
    xtr = x_train.reshape(len(x_train), -1).astype(np.float64)
    xte = x_test.reshape(len(x_test), -1).astype(np.float64)
    centroids = np.stack([xtr[y_train == c].mean(0) for c in range(classes)])
    d = ((xte[:, None, :] - centroids[None]) ** 2).sum(-1)
    return float(np.mean(d.argmin(1) == y_test))


def test_fedavg_learns_more_than_any_peer_can_alone(tmp_path):
    local = run.run(tiny(*SPLIT, "protocol.name=local"), str(tmp_path / "local"), progress=False)
    fedavg = run.run(tiny(*SPLIT, "protocol.name=fedavg"), str(tmp_path / "fedavg"), progress=False)

    cfg = tiny(*SPLIT)
    ds = data.load(cfg.data, cfg.data.seed)
    counts = np.array(json.loads((tmp_path / "local" / "partition.json").read_text())["class_counts"])
    assert counts.shape == (5, ds.num_classes) and ((counts > 0).sum(1) == 2).all()
    test_freq = np.bincount(ds.y_test, minlength=ds.num_classes) / len(ds.y_test)
    ceiling = float(np.mean([test_freq[row > 0].sum() for row in counts]))     # about 0.2
    centroid = _nearest_centroid_acc(ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.num_classes)
    assert centroid > ceiling + 0.3, (centroid, ceiling)         # the data are learnable, centrally

    assert local["acc_mean"] <= ceiling + 0.02, (local["acc_mean"], ceiling)
    assert fedavg["acc_global"] > ceiling + 0.15, (fedavg["acc_global"], ceiling)
    assert fedavg["acc_global"] > 0.6 * centroid, (fedavg["acc_global"], centroid)
    assert fedavg["acc_global"] > local["acc_mean"] + 0.15
