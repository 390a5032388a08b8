"""validation's pre-run memory check (sizing.estimate_bytes: a lower bound, refusing only what cannot
fit) counts the activations of the peers one training step runs at once (sizing.trained_at_once: the
round's active peers in ragged_groups groups), not of every held peer. Checked against XLA's account of
the compiled round and evaluation (tallysim.bench.memory) on a 900 MB budget: a run of 64 clients at
batch 512 trained 8 at a time was refused (a 1.78 GB "lower bound") and measures 0.50 GB; trained all
at once it is still refused (0.98 GB), and measures 1.14 GB."""
from __future__ import annotations

import pytest

from tallysim import build, config, sizing, validation
from tallysim.bench.memory import measured_bytes
from tallysim.config import ConfigError

LIMIT = 900 * 10**6
RUN = ["data.name=synthetic", "data.input_shape=32x32x3", "data.num_classes=10", "data.train_size=1280",
       "data.test_size=100", "partition.kind=iid", "model.name=mlp", "model.width=64", "protocol.name=local",
       "peers=64", "batch_size=512", "local_steps=1", "rounds=1", "warmup_epochs=0"]


def _cfg(*items):
    return config.apply_overrides(config.Config(), [*RUN, *items])


def _lower_bound(cfg) -> int:
    return sum(b for _, b, _ in sizing.estimate_bytes(cfg))


def test_a_run_trained_in_groups_that_fits_is_not_refused(xla_optimized):
    cfg = _cfg("ragged_groups=8")
    validation.check_memory(cfg, LIMIT)              # refused before: every held peer's activations
    measured = measured_bytes(build.build(config.validate(cfg)))["measured"]
    assert _lower_bound(cfg) <= measured <= LIMIT, (_lower_bound(cfg), measured)


def test_a_run_that_cannot_fit_is_still_refused(xla_optimized):
    cfg = _cfg("ragged_groups=1")                    # all 64 peers' minibatches at once
    with pytest.raises(ConfigError, match=r"of memory \(the activations alone .*lower batch_size"):
        validation.check_memory(cfg, LIMIT)
    measured = measured_bytes(build.build(config.validate(cfg)))["measured"]
    assert LIMIT < _lower_bound(cfg) <= measured, (_lower_bound(cfg), measured)


@pytest.mark.parametrize("items,together", [(["ragged_groups=8"], 8), (["ragged_groups=64"], 1), ([], 1),
                                            (["participation=0.25", "ragged_groups=2"], 8),
                                            (["participation=0.25", "client_storage=auto", "ragged_groups=1"], 16),
                                            (["ragged_groups=100"], 1)])
def test_the_activations_count_the_peers_trained_at_once(items, together):
    """ceil(active / ragged_groups); unset, the CPU's one peer per group (step_groups.auto_groups) bounds it."""
    assert sizing.trained_at_once(_cfg(*items)) == together
    acts = dict((what, b) for what, b, _ in sizing.estimate_bytes(_cfg(*items)))["the activations"]
    assert acts == 4 * 2 * together * 512 * 3072
