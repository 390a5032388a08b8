"""Memory sizing, the one estimator: of a whole run from its config (`estimate_bytes`, which validation
uses to refuse impossible sizes), of one seed's lane once its shapes are known (`per_seed_bytes`, which
sets the seeds per compiled batch), of the probe exchange and of evaluation. Pure Python, no jax, so
that `validation` can refuse impossible sizes before jax is even imported; only a plugin's model is
traced (plugin_params.py), with the JAX its own module has imported. A run's shapes from its config
(data_shape, model_params, active_peers, ...) are config_shapes.py's, and the bytes per example of a
model's passes (example_bytes, forward_hidden, ...) forward_bytes.py's, both re-exported here; the notes
`tallysim run` prints about a costly default (storage_hint, cohort_note, draw_hint, run_notes) are
storage_notes.py's.

Shape letters (glossary: tallysim/sim/__init__.py): A active peers, M probes, C classes, c peers a chunk, P peers, B eval batch.
"""
from __future__ import annotations

import math

from tallysim import protocols
from tallysim.file_shapes import (IMAGE_MODELS, TEXT_MODELS, KNOWN_CLIENTS, KNOWN_SHAPES, KNOWN_TEXT, MOST_CLASSES,  # noqa: F401 - sizing.X
                                  assumed, files_shape, text_model_params)
# a run's shapes from its config (config_shapes.py): sizing.X, as before
from tallysim.config_shapes import (BYTES_PER_PARAM, active_peers, asked_chunk, data_shape, example_shape, model_params, models_bytes,  # noqa: F401
                                    decimal_floor, faulty_peers, positions, text_activation_bytes, trained_at_once)
# the sizes past which a run hangs or cannot finish whatever the memory: sizing.LIMITS, as before
from tallysim.size_limits import LIMITS  # noqa: F401
# bytes per example of a model's passes (forward_bytes.py): sizing.X, as before
from tallysim.forward_bytes import (FORWARD_SLACK, eval_hidden_bytes, example_bytes, exchange_hidden_bytes,  # noqa: F401
                                    forward_hidden)
from tallysim.probe_blocks import BLOCK_SHARE, KEPT_BYTES, blocks_votes, counts_target, kept_bytes, probe_block  # noqa: F401 - sizing.X for sim/

CHUNK_BYTES = 256 * 2**20     # one chunk's [c, M, C] (or one eval batch's [P, B, C]) float32 logits and forward passes
LIVE_PER_CHUNK = 4            # [c, M, C] buffers alive at once: logits, probabilities, quantised, product
LIVE_PER_CHUNK_VOTES = 2      # votes alone (no soft_bits): logits, probabilities (footprint_bytes)


def peer_chunk(peers: int, probes: int, classes: int, budget: int | None = None, lanes: int = 1,
               hidden: int = 0) -> int:
    """Peers per exchange chunk: as many as fit `budget` bytes (CHUNK_BYTES) of [c, M, C] float32 and,
    per peer, `hidden` bytes of its forward pass over the probes (exchange_hidden_bytes: a conv model's
    feature maps, which dwarf its messages; 0 where the caller does not know them), at least one.
    `lanes`: the lanes one program vmaps together on a device (seeds, a grouped sweep's configurations)
    each stream a chunk at the same time, [lanes, c, M, C]: the budget covers them all, so c divides by
    the lanes. Evaluation's batch is sized by the same count (eval_batch, eval_hidden_bytes)."""
    budget = CHUNK_BYTES if budget is None else budget
    return max(1, min(peers, budget // ((4 * probes * classes + hidden) * lanes)))


def footprint_bytes(peers: int, probes: int, classes: int, soft: bool, chunk: int | None = None) -> int:
    """Rough peak bytes of one probe exchange: the live chunk temporaries plus the [M, C] accumulators
    (counts, probability sum, sent sum, their per-chunk copies, the targets) and the [M, C] random
    tie scores. No A * M * C term: that is the point of exchange.py. Votes alone quantise nothing (4 live
    buffers put tally's 500 word windows at 4.0 GB of probe outputs against a 2.63 GB peak RSS)."""
    live = LIVE_PER_CHUNK if soft else LIVE_PER_CHUNK_VOTES
    return 4 * probes * classes * (live * (chunk or peer_chunk(peers, probes, classes)) + 2 * (3 if soft else 2) + 2)


def eval_batch(peers: int, classes: int, batch: int = 500, budget: int | None = None, lanes: int = 1,
               hidden: int = 0) -> int:
    """Test examples per evaluation batch: at most `batch`, and what one batch holds within `budget`
    (CHUNK_BYTES): its P * B * C float32 logits and, per example, `hidden` bytes of the forward passes
    that make them (eval_hidden_bytes: a conv model's feature maps, which dwarf its logits; 0 where the
    caller does not know them). `lanes`: the lanes one evaluation program vmaps together on a device
    each hold a batch at the same time, [lanes, P, B, C]: the budget covers them all, as peer_chunk's does."""
    budget = CHUNK_BYTES if budget is None else budget
    return max(1, min(batch, budget // ((4 * peers * classes + hidden) * lanes)))


def probe_chunk(probes: int, messages: int, classes: int, peak: int, example: int, logits: int, lanes: int = 1,
                budget: int | None = None) -> int:
    """Probes per forward pass of an exchange peer: all of them where one peer's [messages, C] logits and
    its forward pass over every probe (exchange_hidden_bytes) fit `budget` (CHUNK_BYTES, shared by the
    `lanes`), as peer_chunk counts them; else the most whose forward pass fits beside that peer's logits
    (at least half the budget's worth: the logits cannot be split), at least one. peer_chunk only splits
    the peers, so one CNN over 1,000 probes (about 1.2 GB, fig12) held its whole pass at once; the probe
    axis is split too now (exchange.split_probes: the logits, so votes and soft labels, are the same)."""
    budget = CHUNK_BYTES if budget is None else budget
    held = 4 * messages * classes
    if (held + exchange_hidden_bytes(peak, example, logits, probes)) * lanes <= budget:
        return probes
    room = max(budget // lanes - held, budget // (2 * lanes))
    per_probe = FORWARD_SLACK * forward_hidden(peak, example, logits)
    return max(1, min(probes, int(room // per_probe))) if per_probe > 0 else probes


def estimate_bytes(cfg, groups: tuple = ()) -> list[tuple[str, int, str]]:
    """(what, bytes, fields to lower) for the big allocations of a run: a rough lower bound, so that
    only sizes that cannot possibly fit are refused (auto-chunking of seeds handles the rest). `groups`
    (model.groups; validation.estimate_parts gives them, model_groups sitting above this module):
    ((name, the group's own config, its A_g), ...), each group's models and activations counted with
    its own model, not the run's model.* (which a run of groups may not even use)."""
    d = cfg.data
    synthetic = d.name == "synthetic"
    dim, classes, channels = data_shape(cfg)
    traits = protocols.traits(cfg.protocol.name)
    probe_rows = (cfg.distill.batch_size or cfg.batch_size) if traits.distill else 0
    params = model_params(cfg.model.name, cfg.model.width, dim, classes, channels, example_shape(cfg), cfg.model)
    stacked, cohort_models = models_bytes(cfg)
    active = active_peers(cfg)
    kept = protocols.client_state(cfg)          # "" : the clients keep nothing between rounds
    cohort = cfg.client_storage == "auto" and not kept
    rows = active if cohort else cfg.peers      # models held for the round (the robust aggregation's)
    width = _sizes(cfg.model, params)
    if cohort:      # the server model, and the round's cohort materialised from it (docs/population.md)
        models = (f"the server model and the cohort's {active} models ({cfg.protocol.name} keeps no client "
                  "state)", cohort_models, width + "participation")
    elif not kept:  # it could hold the cohort alone: say so, with what that would need
        models = ("the clients' models, stacked by client_storage=stacked,", stacked,
                  f"set client_storage=auto ({cfg.protocol.name} keeps no client state: the server model and "
                  f"its {active} active clients need {fmt(cohort_models)}), or lower {width}peers")
    else:           # a stateful protocol holds every client: name what it keeps
        models = (f"the clients' models, as {kept},", stacked, width + "peers")
    # a training step's minibatch, plus (distillation) its probe minibatch: distill.batch_size used to
    # escape the estimate, and 2**31 - 1 failed with an 8 TB allocation on the device
    batch = "batch_size" + (", distill.batch_size" if probe_rows else "")
    per_example = example_bytes(cfg.model, dim, classes, positions(cfg))
    ragged = " (or raise ragged_groups: fewer peers trained at once)"
    acts = ("the activations", trained_at_once(cfg) * (cfg.batch_size + probe_rows) * per_example,
            batch + (", " + width.rstrip(", ") if cfg.model.name in TEXT_MODELS else "") +
            (ragged if trained_at_once(cfg) > 1 else ""))
    model_parts = [models]
    if groups:      # each group's peers with its own model; the activations of the largest group's step
        model_parts, steps = [], []
        for name, g, a in groups:
            n = a if cohort else g.peers
            p = model_params(g.model.name, g.model.width, dim, classes, channels, example_shape(cfg), g.model)
            fields = _sizes(g.model, p, prefix="")
            own = f"model.groups group {name}'s {fields}peers"
            model_parts.append((f"group {name}'s {n} {g.model.name} models of {p:,} parameters"
                                + (f", as {kept}," if kept else ""), BYTES_PER_PARAM * p * n, own))
            steps.append((trained_at_once(cfg, a) * (cfg.batch_size + probe_rows) *
                          example_bytes(g.model, dim, classes, positions(cfg)), name,
                          batch + (f", model.groups group {name}'s {fields.rstrip(', ')}" if fields else "") +
                          (ragged if trained_at_once(cfg, a) > 1 else "")))
        # the groups' training steps are separate programs in one round, which XLA may run one after
        # another reusing their buffers: the largest is the lower bound, not their sum
        most, name, lower = max(steps)
        acts = (f"the activations (group {name}'s, the largest of the groups')", most, lower)
    # exchange.py streams the round's active peers (as per_seed_bytes counts; `peers`: 2 of 10^5 clients cost
    # 512 MB) in chunks where peers train on probes; tally's vote walks blocks past the budget (blocked_tally)
    messages = cfg.probe.per_round * positions(cfg)       # text: every position of a probe window
    outputs = exchange_bytes(active, cfg.probe.per_round, classes, traits.soft or counts_target(cfg), positions=positions(cfg),
                             blocked=not traits.soft and blocks_votes(cfg), votes=cfg.vote.weighting == "history",
                             kept=kept_bytes(cfg))
    probe_outputs = [("the probe outputs", outputs,
                      "probe.per_round, peers" + (", data.num_classes" if synthetic else ""))] if traits.distill else []
    out = [*model_parts, *probe_outputs, acts,
           # host and device: each seed's int32 [P, C] class counts (partition.json), and per client its
           # int32 shard offset and count and bool faulty flag (sim/fed.FedData); text keeps one count a client
           # (partition.class_counts' [P, 1] sequences), not C: 10^6 clients on words were refused at 40 GB
           ("the per-client partition records",
            cfg.seeds * cfg.peers * (4 * (1 if positions(cfg) > 1 else classes) + 4 + 4 + 1), "peers, seeds")]
    if cfg.partition.kind == "population" and cfg.partition.reuse:
        # reuse deals the training set again and again: the int32 shard indices (sim/fed.FedData's shard_H)
        # hold every client's examples, peers x E[size] >= max(mean_size - 1/2, min_size) each (Jensen, and
        # rounding half up moves a size by 1/2 at most), not bounded by the data: 10^6 clients of 10^4 are 40 GB, which
        # this estimate missed (49 MB) and numpy's allocation met after the data loaded
        mean = max(cfg.partition.mean_size - 0.5, cfg.partition.min_size)
        out.append(("the clients' shard indices (partition.reuse=true)", int(4 * cfg.seeds * cfg.peers * mean),
                    "partition.mean_size, peers, seeds"))
    if protocols.reads(cfg.protocol.name, "feddf.batch_size"):
        out.append(("the server's distillation batch", 2 * cfg.feddf.batch_size * per_example, "feddf.batch_size"))
    if traits.soft and cfg.softlabel.aggregate in ("median", "trimmed"):
        # no streaming: logits, probabilities and their sort, [A, M, C] each
        out.append(("the robust soft-label aggregation", 4 * 3 * cfg.peers * messages * classes,
                    "probe.per_round, peers (or softlabel.aggregate=mean)"))
    if traits.fedavg_family and (cfg.fedavg.aggregate != "mean" or cfg.fedavg.pre != "none"):
        out.append(("the robust parameter aggregation", 4 * 2 * params * rows,
                    "peers (or fedavg.aggregate=mean)"))
    if synthetic:
        coarse = math.prod(min(s, 7) for s in (d.input_shape[:-1] or d.input_shape))
        out += [("the synthetic data", 4 * (d.train_size + d.test_size) * dim,
                 "data.train_size, data.test_size, data.input_shape"),
                ("the synthetic class prototypes", 4 * 3 * d.num_classes * coarse * d.input_shape[-1],
                 "data.num_classes")]
    return out


def _sizes(model, params: int, prefix: str = "model.") -> str:
    """The fields that size `model` (a plugin's model: its own size, which "lower peers" left out)."""
    if protocols.model_target(model.name):
        return f"the size of model.name={model.name} ({params:,} parameters a copy), "
    return {"mlp": f"{prefix}width, ", "lstm": f"{prefix}embed, {prefix}hidden, {prefix}layers, ",   # embed: C x embed
            "transformer": f"{prefix}hidden, {prefix}layers, "}.get(model.name, "")


def fmt(n: float) -> str:
    """Bytes as people read them: 3 significant digits, decimal units."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} EB"


def per_seed_bytes(num_params: int, peers: int, active: int, input_shape: tuple, batch_size: int,
                   probe_batch: int, probes: int, classes: int, soft: bool, lanes: int = 1, *,
                   positions: int = 1, together: int | None = None, saved: int | None = None,
                   peak: int | None = None, example: int = 0, moments: float = 2,
                   test_examples: int | None = None, data: int = 0, shared: int = 0, groups: tuple = (),
                   blocked: bool = False, votes: bool = False, kept: int = KEPT_BYTES) -> int:
    """Rough bytes one seed (lane) of a built run needs on the device, when `lanes` lanes share one
    compiled program (`lanes_bytes` is all of them): an upper bound of what XLA reports for the
    compiled round (temporaries, arguments, outputs) plus evaluation's temporaries (measured:
    experiments/memory_estimate.py, tests/test_memory_estimate.py). probe_batch and probes are 0 for
    a protocol that never trains on probes (protocols.traits(name).distill false: the FedAvg family).

    The model's own facts, where the caller knows them (build.lane_shapes): `saved` and `peak`, its
    forward pass's bytes per example with and without gradients (sim/activations.py), `example` the
    input's own (part of `peak`; evaluation and the exchange feed every peer the same ones); `together`, the
    peers one training step runs at once (local.train_peers: ceil(active / groups)); `moments`, the
    optimizer's state per parameter; `positions`, the messages per probe (text: the sequence length);
    `test_examples`, the test set; `data`, this lane's data arrays; `shared` (counted once by
    lanes_bytes, not here), the data every lane reads; `blocked`, blocks_votes; `votes` and `kept`, exchange_bytes'. Else the older rough guesses.
    `groups` (model.groups): one dict per model group with its own num_params, peers, active, together,
    saved, peak and moments, which then replace the run's: every group's peers counted with their own
    model, not the largest (which made a MLP + LeNet + CNN run's estimate 3.8x XLA's measure)."""
    models = list(groups) or [dict(num_params=num_params, peers=peers, active=active, together=together or active,
                                   saved=saved, peak=peak, moments=moments)]
    rows = batch_size + probe_batch
    logits = 4 * classes * positions                   # one example's logits (text: every position)
    state = acts = exchange = 0
    forwards = []                                      # (held peers, forward bytes per example) per model
    for m in models:
        model = 4 * m["num_params"]
        # every held client's params and optimizer state, as the round's argument and as its output; the
        # active peers' gathered and trained copies and their gradients inside the round
        state += model * ((1 + m["moments"]) * 2 * m["peers"] + ((1 + m["moments"]) * 2 + 1) * m["active"])
        if m["saved"] is None:
            # the older guess, before the model's own facts: hidden activations of every held peer, and the
            # [P, B+R, C] logits / probabilities / gradients of a training step
            width = max(math.prod(input_shape), 512)
            acts += 4 * m["peers"] * rows * (width * 16 + classes * 4)
            forward = example = 0
        else:
            # a training step keeps its forward pass's values for the backward pass, and the gradient of
            # the logits, for the peers it runs at once (model.groups: each group's, summed)
            acts += m["together"] * rows * (m["saved"] + 2 * logits)
            forward = max(m["peak"], example)
        forwards.append((m["peers"], forward))
        # The probe exchange streams peers in chunks (exchange.py; model.groups: each group its own):
        # one chunk's [c, M * positions, C] temporaries plus the sums, no A * M * C term, and the chunk's
        # forward pass over its probes. The lanes share the budget (Context.lanes), so each lane's
        # chunk shrinks with the lanes: the budget is counted once over them all, not once per lane.
        if probes:
            # the probes of one forward pass (probe_chunk: all of them unless one peer's pass over them
            # exceeds the budget), so each chunk's peers hold their forward pass over that many
            split = probe_chunk(probes, probes * positions, classes, forward, example, logits, lanes) \
                if m["saved"] is not None else probes
            hidden = exchange_hidden_bytes(forward, example, logits, split) if m["saved"] is not None else 0
            c = peer_chunk(m["active"], probes * positions, classes, lanes=lanes, hidden=hidden)
            exchange += exchange_bytes(m["active"], probes, classes, soft, lanes, positions, hidden, blocked, votes, kept) + \
                int(FORWARD_SLACK * (split * c * (forward - example) + probes * example))
    # evaluation holds one [P, B, C] batch of logits and the P peers' and the server's forward pass over
    # it (FORWARD_SLACK: XLA's buffers reuse less than the walk frees), the batch sized as evaluate sizes it
    # (eval_batch: logits and forward pass within the budget the lanes share)
    held = sum(p for p, _ in forwards)
    batch = eval_batch(held, classes * positions, lanes=lanes, hidden=eval_hidden_bytes(forwards, example, logits))
    batch = min(batch, test_examples) if test_examples else batch
    forward_sum = sum(p * (f - example) for p, f in forwards) + max(f - example for _, f in forwards)
    evals = held * batch * logits * 2 + int(FORWARD_SLACK * batch * (forward_sum + example))
    return int(state + acts + exchange + evals + data)


def exchange_bytes(active: int, probes: int, classes: int, soft: bool, lanes: int = 1, positions: int = 1,
                   hidden: int = 0, blocked: bool = False, votes: bool = False, kept: int = KEPT_BYTES) -> int:
    """One lane's probe exchange as it streams (exchange.py, probe_round.py): the chunk of peers and the
    sums of its messages, M probes x `positions` each (a text probe is a window of positions, every
    position voted on: Spec.messages), as the exchange itself chunks them (`lanes` sharing the budget,
    `hidden` each peer's forward pass: exchange_hidden_bytes). `blocked` (blocks_votes): past the budget
    one block's sums (probe_block; its peers chunked as over all probes) and `kept` bytes of each
    message's results (probe_blocks.kept_bytes: 16, up to 10 more with faults and Confident-GNMax).
    `votes` (vote.weighting=history): every peer's vote on every message, [A, M] int32, either path."""
    messages = probes * positions
    block = probe_block(probes, positions, classes, CHUNK_BYTES, lanes) if blocked else probes
    return footprint_bytes(active, block * positions, classes, soft=soft, chunk=peer_chunk(
        active, messages, classes, lanes=lanes, hidden=hidden)) + (kept * messages if block < probes else 0) + \
        (4 * active * messages if votes else 0)


def lanes_bytes(lanes: int, **shapes) -> int:
    """Rough bytes of `lanes` lanes of one compiled program (per_seed_bytes' arguments by name): each
    lane's, and once the data every lane reads (`shared`)."""
    return lanes * per_seed_bytes(**shapes, lanes=lanes) + shapes.get("shared", 0)


def lanes_that_fit(seeds: int, budget: int, **shapes) -> int:
    """The most lanes (at most `seeds`, at least one) whose lanes_bytes stay within `budget`. The total
    grows with the lanes (the shared chunk budgets stay fixed), so a bisection finds it."""
    lo, hi = 1, seeds
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if lanes_bytes(mid, **shapes) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo
