"""The configuration's sections: the frozen dataclasses of data, partition, model, optim, probe, protocol,
init, vote, distill, faults, comm, log and privacy, each field declared once (type, choices, bounds,
default; see "declaring a field" in tallysim/schema.py). The top-level Config, which holds them, and
the views read from the declarations live in schema.py, which re-exports every name here.

tallysim/config_reference.py reads each field's comment from this file's source (inspect.getsource),
so a field's comment here is its line in docs/config.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from tallysim import protocols as _protocols
from tallysim.fields import floats, ints
from tallysim.sizing import LIMITS


@dataclass(frozen=True)
class DataConfig:
    name: str = "fashion_mnist"       # tfds name, "synthetic", or "files" (read `path`)
    path: Optional[str] = None        # directory with IDX (.gz or raw) or .npz files
    seed: int = ints(0, 0)            # fixes the dataset itself (synthetic draw, max_train subset)
    max_train: Optional[int] = ints(None)   # keep only the first N training examples (after a seeded shuffle)
    max_test: Optional[int] = ints(None)    # evaluate on the first N test examples
    # synthetic only
    num_classes: int = ints(10, 2, LIMITS["data.num_classes"][0])
    input_shape: tuple = (28, 28, 1)
    train_size: int = ints(12000)
    test_size: int = ints(2000)
    difficulty: float = floats(1.0, "[0, 1000]")   # larger = classes overlap more


@dataclass(frozen=True)
class PartitionConfig:
    kind: Literal["iid", "dirichlet", "label_quantity", "quantity", "dirichlet_mix", "natural",
                  "population"] = "dirichlet"
    alpha: float = floats(0.1, "(0, 1e6]")   # dirichlet / dirichlet_mix / quantity concentration
    k: int = ints(2)                  # label_quantity: classes per peer
    # (population reads min_size too: no client holds fewer)
    min_size: int = ints(10, 0)       # dirichlet: redraw until every peer holds this many
    # dirichlet: NIID-Bench's cap (a peer holding >= N/P examples gets no more); false = the uncapped
    # split of tallysim before the cap existed, kept so that earlier results reproduce bit for bit.
    cap: bool = True
    scheme: Literal["niid_bench", "balanced"] = "niid_bench"   # label_quantity (balanced: the earlier even split)
    # population (data/population.py): lognormal client sizes of this mean and log-space sigma
    mean_size: float = floats(30.0, "[1, 1e9]")
    sigma: float = floats(1.0, "[0, 10]")
    reuse: bool = False               # population: deal the examples again when the clients need more
    # natural: which clients the peers are; random = drawn from the seed (LEAF/TFF), largest = the
    # `peers` clients with the most training sequences (the same for every seed; a CPU-sized text run)
    pick: Literal["random", "largest"] = "random"


BUILTIN_MODELS = ("mlp", "lenet", "cnn", "resnet8", "lstm", "transformer")


@dataclass(frozen=True)
class ModelConfig:
    # the built-ins (sim/models.py), then the models plugins add (MODELS, docs/howto/own-model.md)
    name: str = field(default="mlp", metadata={"choices": lambda: BUILTIN_MODELS + _protocols.plugin_models()})
    dtype: Literal["float32", "bfloat16"] = "float32"   # compute dtype; parameters stay float32
    width: int = ints(200)            # mlp hidden width
    # text models (sim/text_models.py): token embedding, LSTM / transformer width, layers, heads
    embed: int = ints(8)              # lstm: embedding size (Reddi et al. 2021: 8)
    hidden: int = ints(256)           # lstm: units per layer (256); transformer: model width
    layers: int = ints(2, 1, 64)      # lstm / transformer layers
    heads: int = ints(4)              # transformer: attention heads (must divide hidden)
    conv: Literal["auto", "xla", "im2col", "nchw", "pallas"] = "auto"   # conv models: auto = sim/conv.py AUTO_CONV (CPU im2col)
    # peers with different models, one stacked model per group: "NAME:PEERS:MODEL,FIELD=VALUE;..." (docs/groups.md)
    groups: Optional[str] = None


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["sgd", "adam"] = "sgd"
    lr: float = floats(0.05, "(0, 3.4e38]", lane=True)
    momentum: float = floats(0.9, "[0, 1)", lane=True, nonzero=True)
    weight_decay: float = floats(0.0, "[0, 100]", lane=True, nonzero=True)
    reset_each_round: Optional[bool] = None   # None: true for the FedAvg family, false otherwise


@dataclass(frozen=True)
class ProbeConfig:
    pool_size: Optional[int] = ints(None)   # None: 10% of train, at most 10,000
    per_round: int = ints(1000)       # M
    resample: bool = True
    source: Optional[str] = None      # another prepared dataset to draw the pool from


@dataclass(frozen=True)
class ProtocolConfig:
    # each protocol's traits: tallysim/protocols/<module>.py; plugins add names (protocols.load_plugin)
    name: str = field(default="tally", metadata={"choices": _protocols.names})


@dataclass(frozen=True)
class InitConfig:
    shared: Optional[bool] = None     # None: shared for FedAvg family and bridge, independent otherwise


@dataclass(frozen=True)
class VoteConfig:
    ties: Literal["lowest", "random", "lowest_word"] = "lowest"   # lowest_word: text only, specials lose ties
    min_agreement: float = floats(0.0, "[0, 1]", lane=True, nonzero=True)   # abstain below this winning share (0 = keep all)
    min_margin: float = floats(0.0, "[0, 1]")      # abstain where (top - runner-up count) / voters < this (0 = keep all)
    weighting: Literal["none", "history"] = "none"  # history (tally only): votes weighted by agreement with past consensus
    history: float = floats(0.9, "[0, 1)")          # history: the trust EMA's decay beta


@dataclass(frozen=True)
class DistillConfig:
    weight: float = floats(1.0, "[0, 1e6]", lane=True, nonzero=True)
    temperature: float = floats(1.0, "(0, 1000]", lane=True)
    order: Literal["mixed", "sequential"] = "mixed"
    epochs: int = ints(1, 0, LIMITS["distill.epochs"][0])          # sequential: passes over the probes first
    label_smoothing: float = floats(0.0, "[0, 1)", lane=True, nonzero=True)  # on the vote's targets
    batch_size: Optional[int] = ints(None)          # probe minibatch; None = batch_size
    ramp_rounds: int = ints(0, 0, lane=True, nonzero=True)     # 0 = off; round r trains with weight * min(1, r / ramp_rounds)
    gate: float = floats(0.0, "[0, 1]", lane=True, nonzero=True)   # 0 = off; weight 0 in a round whose vote's mean agreement < gate


@dataclass(frozen=True)
class FaultsConfig:
    """Faulty peers (tallysim/sim/faults.py): floor(fraction * P) of them, drawn from the seed."""
    kind: Literal["none", "under_trained", "label_flip", "confident_wrong", "dropout", "straggler",
                  "sign_flip", "gaussian", "alie", "ipm", "least_likely"] = "none"
    fraction: float = floats(0.0, "[0, 1]")   # of the P peers
    redraw: bool = False              # false: one set for the run; true: a new set every round
    examples: Optional[int] = ints(None, 0)   # under_trained: keep only this many examples of each faulty shard
    steps: Optional[int] = ints(None, 0)      # under_trained: at most this many private steps per training call
    target: int = ints(-1, -1)        # confident_wrong: -1 = a random wrong class, else this class
    scale: float = floats(1.0, "[0, 1e6]")    # confident_wrong, parameters: send w_server - scale * (w_i - w_server)
    drop_prob: float = floats(1.0, "[0, 1]")  # dropout: chance that a faulty peer's message is lost in a round
    sigma: float = floats(1.0, "[0, 1e6]")    # gaussian: standard deviation of the sent update
    z: Optional[float] = floats(None, "[-1e6, 1e6]")   # alie: none = Baruch et al.'s z_max for n, f
    eps: float = floats(0.1, "[0, 1e6]")      # ipm: the sent update is -eps * (mean honest update)


@dataclass(frozen=True)
class CommConfig:
    param_bits: int = ints(32, 1, 64)
    soft_bits: Literal[32, 16, 8] = 32
    topology: Literal["star", "allgather"] = "star"


@dataclass(frozen=True)
class LogConfig:
    """Where a run's rows also go (tallysim/tracking.py); not part of the experiment: resuming, a sweep's
    grouping and config comparisons ignore this section."""
    tensorboard: Optional[str] = None  # DIR: TensorBoard event files in DIR/<run directory's name>-<hash>
    mlflow: Optional[str] = None       # an MLflow experiment name (the mlflow extra; MLFLOW_TRACKING_URI: where)


@dataclass(frozen=True)
class PrivacyConfig:
    """Differential privacy of what peers send (tallysim/privacy.py, sim/dp.py); noise 0 is off, bit for bit."""
    noise: float = floats(0.0, "[0, 1e6]", lane=True, nonzero=True)   # votes: GNMax's sigma, the std of the noise on each vote count; soft labels, FedAvg: the noise multiplier z (std z * clip); 0 (off) or >= 1e-30
    clip: float = floats(1.0, "(0, 1e6]")        # soft labels: each peer's [M, C] message, FedAvg: each update, clipped to this L2 norm
    threshold: float = floats(0.0, "[0, 1e9]")   # votes: Confident-GNMax's T, answer a probe only if its noisy top count >= T (0: answer all)
    threshold_noise: float = floats(0.0, "[0, 1e6]")  # votes: Confident-GNMax's sigma1, the std of the noise on the top count; 0 or >= 1e-30
    delta: float = floats(1e-5, "(0, 1)")         # epsilon is reported at this delta
    accountant: Literal["rdp", "pld"] = "rdp"      # dp-accounting's accountant (pld: every peer in every round only)
