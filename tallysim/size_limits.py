"""The sizes past which a run hangs on the host or cannot finish, whatever the memory (`LIMITS`: field ->
(largest allowed, why)): schema.py declares them as the fields' upper bounds, and field_checks' refusal
gives the why. Split from sizing.py (which re-exports LIMITS), whose job is bytes. No imports but
file_shapes'."""
from __future__ import annotations

from tallysim.file_shapes import MOST_CLASSES

# Sizes past which a run hangs on the host or cannot finish, whatever the memory: field -> (largest
# allowed, why). schema.py declares these as the fields' upper bounds; validation's message gives the why.
# Measured on a CPU: seeds are partitioned one after another on the host (8 ms each for a 1,600-example
# synthetic set, longer for real data), so 100,000 seeds spent minutes before the first compile; a
# Dirichlet split loops over the classes (0.35 ms each per seed), so 10**6 classes spent minutes per
# seed; the round loop plans every round on the host, so 2**31 - 1 rounds never started.
LIMITS = {
    "seeds": (10_000, "each seed is partitioned on the host and becomes a lane of one program; run more "
                      "as separate runs (seed=FIRST seeds=N each, or a sweep over seed)"),
    "data.num_classes": (MOST_CLASSES, "the partition loops over the classes on the host for every seed, and the "
                                       "probe exchange holds [probes, classes] sums (ImageNet-21k has 21,841)"),
    "rounds": (1_000_000, "the round loop plans every round on the host, and more rounds cannot finish "
                          "(at a millisecond a round, 10**6 rounds is 17 minutes)"),
    "eval_every": (1_000_000, "it cannot usefully exceed rounds, which is at most 1,000,000"),
    "local_epochs": (100_000, "one round runs them all on the device before the host hears back"),
    "local_steps": (10_000_000, "one round runs them all on the device before the host hears back"),
    "distill.epochs": (100_000, "one round runs them all on the device before the host hears back"),
    "feddf.steps": (10_000_000, "one round runs them all on the device before the host hears back"),
}
