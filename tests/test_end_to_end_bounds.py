"""Collaboration must help: on label-skewed synthetic data (each of 8 peers holds 5 of the 10 classes),
the parameter-exchanging protocols' server model beats what the same peers reach alone (`local`,
peer mean), seed by seed. The margins were measured with the correct code on seeds 0, 1, 2 (3 seeds in
one vmapped run each) and are set just below the smallest measured one; see each MARGIN comment.

Not here, because with the correct code they do not beat `local` in this setting (5 rounds, defaults),
measured as peer mean on seeds 0, 1, 2 against local's 0.402, 0.426, 0.413:
  tally 0.472, 0.395, 0.403; softlabel 0.426, 0.420, 0.426; bridge (density 0.01, hard reset, so every
  peer is theta_ref after a merge) 0.165, 0.140, 0.175. There the vote is wrong on most probes: a
  class is known to 4 of 8 peers and the other 4 vote for their own classes.

Where the probe protocols must help: data-starved IID peers (8 peers of about 250 examples each, 300
probes a round). Each peer alone reaches about 0.6; the probes' votes or soft labels carry the
ensemble's knowledge of all 2,000 examples. Measured below (STARVED, MARGIN_STARVED).
"""
import pytest
from conftest import tiny

from tallysim import run

pytestmark = pytest.mark.slow

SKEWED = ["data.input_shape=8x8x1", "data.train_size=2400", "data.test_size=400", "data.difficulty=0.5",
          "peers=8", "rounds=5", "partition.kind=label_quantity", "partition.k=5", "model.width=32",
          "probe.per_round=300", "probe.pool_size=400", "batch_size=32", "seeds=3", "optim.lr=0.05",
          "partition.scheme=balanced"]     # the split the margins below were measured on

# protocol -> margin over local's peer mean, per seed. Measured (server accuracy - local peer mean)
# on seeds 0, 1, 2 with local's peer mean 0.402, 0.426, 0.413:
MARGIN = {
    "fedavg": 0.05,       # server 0.553, 0.487, 0.490 -> +0.151, +0.061, +0.077
    "fedprox": 0.05,      # server 0.553, 0.485, 0.485 -> +0.151, +0.059, +0.072
    "feddf": 0.08,        # server 0.558, 0.517, 0.525 -> +0.156, +0.091, +0.112
}


@pytest.fixture(scope="module")
def local_acc():
    return run.run(tiny(*SKEWED, "protocol.name=local"), None, progress=False)["per_seed"]["acc_mean"]


@pytest.mark.parametrize("protocol", list(MARGIN))
def test_collaboration_beats_local_seed_by_seed(protocol, local_acc):
    last = run.run(tiny(*SKEWED, f"protocol.name={protocol}"), None, progress=False)
    got = last["per_seed"]["acc_global"]
    for seed, (a, base) in enumerate(zip(got, local_acc)):
        assert a > base + MARGIN[protocol], (protocol, seed, got, local_acc)


STARVED = ["data.input_shape=8x8x1", "data.train_size=2400", "data.test_size=400", "data.difficulty=0.5",
           "peers=8", "rounds=8", "partition.kind=iid", "model.width=32", "probe.per_round=300",
           "probe.pool_size=400", "batch_size=16", "seeds=3", "optim.lr=0.05"]

# protocol -> margin over local's peer mean, per seed, on STARVED. Measured on seeds 0, 1, 2 with
# local's peer mean 0.593, 0.616, 0.612 (peer mean for tally and softlabel, the server for bridge):
MARGIN_STARVED = {
    "tally": 0.005,       # 0.634, 0.628, 0.632 -> +0.041, +0.012, +0.020 (the vote helps, a little)
    "softlabel": 0.07,    # 0.702, 0.690, 0.701 -> +0.109, +0.074, +0.089
    "bridge": 0.07,       # density 0.1, period 1: 0.688, 0.720, 0.755 -> +0.095, +0.104, +0.143
}


@pytest.fixture(scope="module")
def local_starved():
    return run.run(tiny(*STARVED, "protocol.name=local"), None, progress=False)["per_seed"]["acc_mean"]


@pytest.mark.parametrize("protocol", list(MARGIN_STARVED))
def test_probe_protocols_beat_local_on_data_starved_peers(protocol, local_starved):
    extra = ["bridge.density=0.1", "bridge.period=1"] if protocol == "bridge" else []
    last = run.run(tiny(*STARVED, f"protocol.name={protocol}", *extra), None, progress=False)
    got = last["per_seed"]["acc_global" if protocol == "bridge" else "acc_mean"]
    for seed, (a, base) in enumerate(zip(got, local_starved)):
        assert a > base + MARGIN_STARVED[protocol], (protocol, seed, got, local_starved)
