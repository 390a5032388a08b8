"""The cross-field rules of a Config: what one field allows given the others (the protocol's traits,
faults, privacy (privacy_checks.py), model.groups, the cohort draw); the fields a run would silently
ignore are config_reads.py's. Split from validation.py, which runs them (`validate`, through `check_rules`)
and re-exports `check_rules`, `check_read` and `MESSAGE_FAULTS`.

Each failure is a `ConfigError` with one line naming the fields, the bad values and what is allowed.
"""
from __future__ import annotations

from tallysim import model_groups, privacy_checks, probe_source_checks, protocols, robust_checks
from tallysim.config_reads import check_group_mode_reads, check_group_model_reads
from tallysim.field_checks import installed_choices, live_choices, check_ranges, check_types, not_known
from tallysim.probe_blocks import counts_target
from tallysim.sizing import KNOWN_CLIENTS, active_peers
from tallysim.file_shapes import IMAGE_MODELS, KNOWN_SHAPES, KNOWN_TEXT, KNOWN_TRAIN, TEXT_MODELS
from tallysim.schema import FAULT_KINDS, PARAM_ATTACKS, Config, ConfigError, default_pool_size, get_field


def check_rules(cfg: Config) -> None:
    """Every cross-field rule; `validate` runs it after the fields' own checks."""
    if cfg.data.name == "files" and not cfg.data.path:
        raise ConfigError("data.name=files needs data.path=DIR (a directory of IDX or .npz files)")
    if cfg.data.path is not None and cfg.data.name == "synthetic":   # (the text datasets: data/loading.py)
        # the data would silently not be yours: synthetic never reads data.path
        raise ConfigError(f"data.path={cfg.data.path} with data.name=synthetic, which reads no files (generated "
                          "from the data.* fields); allowed: data.name=files data.path=DIR, or no data.path")
    if cfg.probe.source == "files":
        raise ConfigError("probe.source=files is not supported (data.path belongs to the training data); "
                          "import the pool's files first with `python -m tallysim prepare NAME --path DIR` "
                          "and set probe.source=NAME")
    if cfg.probe.source is not None and cfg.probe.source == cfg.data.name and cfg.data.path is None:
        # the pool was the training split again, appended: copies of the examples the peers train on
        raise ConfigError(f"probe.source={cfg.probe.source} is the training dataset itself: its pool would be "
                          "copies of the peers' own training examples; allowed: another prepared dataset, or "
                          f"none (the pool carved out of {cfg.data.name}'s training split, disjoint from it)")
    probe_source_checks.check(cfg)     # another dataset's inputs: refused before both load
    clients = KNOWN_CLIENTS.get(cfg.data.name) if cfg.data.path is None else None
    if cfg.partition.kind == "natural" and clients is not None and cfg.peers > clients:
        # here, not only when partitioning: the memory estimate (validate's next check) said "lower peers"
        # first, for peers=100000, without the reason that holds whatever the machine
        raise ConfigError(f"peers={cfg.peers} is above the {clients} clients of {cfg.data.name} "
                          f"(partition.kind=natural: one client per peer); allowed: peers=1..{clients} "
                          f"(peers={clients} takes every client)")
    reason = protocols.traits(cfg.protocol.name).shared_init
    if reason and cfg.init.shared is False:
        free = [n for n in protocols.names() if not protocols.traits(n).shared_init]
        raise ConfigError(f"{cfg.protocol.name} needs a shared init ({reason}); remove init.shared=false "
                          f"(it is only for {'/'.join(free)})")
    reason = protocols.traits(cfg.protocol.name).sgd_only
    if reason and (cfg.optim.name != "sgd" or cfg.optim.momentum > 0):
        now = f"optim.name={cfg.optim.name}" if cfg.optim.name != "sgd" else f"optim.momentum={cfg.optim.momentum}"
        raise ConfigError(f"{now} is not allowed with protocol.name={cfg.protocol.name}: {reason}; allowed: "
                          f"optim.name=sgd with optim.momentum=0")
    t = protocols.traits(cfg.protocol.name)
    reset = cfg.optim.reset_each_round
    reset = t.default("optim.reset_each_round", cfg) if reset is None else reset
    if t.fresh_momentum and cfg.optim.name == "sgd" and cfg.optim.momentum > 0 and reset is False:
        raise ConfigError(f"optim.reset_each_round=false with optim.momentum={cfg.optim.momentum} is not allowed "
                          f"with protocol.name={cfg.protocol.name}: {t.fresh_momentum}; allowed: "
                          "optim.reset_each_round=true, or optim.momentum=0")
    if cfg.eval_sample == "random" and cfg.eval_peers is not None and cfg.model.groups:
        raise ConfigError("eval_sample=random is not supported with model.groups (each group stacks its own "
                          "peers); allowed: eval_sample=first, or no model.groups")
    _fault_rules(cfg)
    privacy_checks.check(cfg)
    _group_rules(cfg)
    _cohort_rules(cfg)
    _tally_rules(cfg)
    _sequential_rules(cfg)
    _task_rules(cfg)
    _heads_rule(cfg)
    _class_rules(cfg)
    partition_on_task(cfg)      # last: a text run's fault target or model, which a test may pin, said first


def _heads_rule(cfg: Config) -> None:
    """model.heads must divide model.hidden for a transformer, the run's model or a group's: it was
    refused by make_model only after the data loaded (a sweep's other runs trained first, --print-config
    and --dry-run passed it), and a group's clash named model.heads, not the group that set it."""
    groups = model_groups.parse(cfg.model.groups)
    for name, m in [(g.name, model_groups.group_config(cfg, g).model) for g in groups] or [("", cfg.model)]:
        if m.name == "transformer" and m.hidden % m.heads:
            fits = [h for h in range(1, m.hidden + 1) if m.hidden % h == 0]
            where = f"model.groups, group {name}: " if name else ""
            raise ConfigError(f"{where}model.heads={m.heads} does not divide model.hidden={m.hidden} (each of a "
                              f"transformer's heads attends over hidden / heads features); allowed: model.heads in "
                              f"{', '.join(map(str, fits[:12]))}{' ...' if len(fits) > 12 else ''}, or another "
                              "model.hidden")


def _task_rules(cfg: Config) -> None:
    """A built-in model on a named dataset of the other kind (an image model on Shakespeare, a text model on
    synthetic images), refused before anything loads, as build's tasks.check refuses it after loading: a
    sweep `data.name=synthetic,shakespeare` ran and compiled the synthetic runs first, and `--dry-run`
    listed the Shakespeare ones as fine."""
    if cfg.data.path is not None:
        return
    text = cfg.data.name in KNOWN_TEXT
    if not text and not (cfg.data.name == "synthetic" or cfg.data.name in KNOWN_SHAPES):
        return                      # prepared under another name: its task is known once it is loaded
    ties_on_text(cfg, text)
    wrong, right = (IMAGE_MODELS, TEXT_MODELS) if text else (TEXT_MODELS, IMAGE_MODELS)
    kind = "text (token sequences)" if text else "images (classification)"
    groups = model_groups.parse(cfg.model.groups)
    named = [(g.name, dict(g.values).get("model.name", cfg.model.name)) for g in groups] or [("", cfg.model.name)]
    for group, name in named:
        if name in wrong:
            raise ConfigError(f"{'group ' + group + ': ' if group else ''}model.name={name} does not fit "
                              f"{cfg.data.name}, whose examples are {kind}; allowed for it: {', '.join(right)} "
                              "(or a plugin's model)")


def partition_on_task(cfg: Config) -> None:
    """data/partition.py's refusals of a partition the dataset cannot take, where the name tells its kind: said
    only once the data had loaded, after `run --print-config` and a sweep's --dry-run had passed it (and a
    sweep `partition.kind=iid,natural` on images ran the iid runs first)."""
    # files (data.name=files, or a named image dataset's data.path) never carry clients (only text caches do:
    # data/text.py), so natural on them failed at load too; a text name with data.path: check_data_path's
    kind, text = cfg.partition.kind, cfg.data.name in KNOWN_TEXT
    if text and cfg.data.path is not None or not (text or cfg.data.name in ("synthetic", "files", *KNOWN_SHAPES)):
        return                      # prepared under another name, or a plugin's: its clients are known once loaded
    if text and kind not in ("iid", "natural", "population"):
        unset = " (the default when unset)" if kind == "dirichlet" else ""
        raise ConfigError(f"partition.kind={kind}{unset} splits by class "
                          f"label, and {cfg.data.name}'s examples are sequences with a label per position; allowed: "
                          "partition.kind=natural (one client per peer) or iid (sequences dealt uniformly)")
    if not text and kind == "natural":
        raise ConfigError(f"partition.kind=natural needs a dataset with clients (shakespeare, shakespeare_words); "
                          f"{cfg.data.name} has none; use partition.kind=iid or dirichlet")


def ties_on_text(cfg: Config, text: bool) -> None:
    """vote.ties=lowest_word reads next-token prediction's special tokens: refused on a classification task
    (here for a named dataset before it loads, in tasks.check for any once loaded)."""
    if not text and cfg.vote.ties == "lowest_word":
        raise ConfigError(f"vote.ties=lowest_word breaks ties away from the special tokens of next-token "
                          f"prediction, and {cfg.data.name} has none (its classes are all labels); allowed "
                          "for it: vote.ties=lowest (the same winners) or random")


def _group_rules(cfg: Config) -> None:
    """model.groups: each group's own fields checked as a run of its own would be, then the groups' rules."""
    for g in model_groups.parse(cfg.model.groups):
        gcfg = model_groups.group_config(cfg, g)
        try:
            check_types(gcfg)
            for key, allowed in live_choices().items():
                allowed = installed_choices(key, get_field(gcfg, key), allowed) if key == "model.name" else allowed
                if key.startswith(("model.", "optim.")) and get_field(gcfg, key) not in allowed:
                    raise ConfigError(not_known(key, get_field(gcfg, key), allowed))
            check_ranges(gcfg)
            check_group_model_reads(g, gcfg)
            check_group_mode_reads(g, gcfg)
        except ConfigError as e:
            raise ConfigError(f"model.groups, group {g.name}: {e}") from None
    traits = protocols.traits(cfg.protocol.name)
    # a protocol that needs one common init merges parameters (the bridge), as the FedAvg family averages them
    model_groups.check(cfg, traits.model_groups, traits.fedavg_family or bool(traits.shared_init))


def _sequential_rules(cfg: Config) -> None:
    """distill.order=sequential digests the probes for distill.epochs passes before local training; with
    0 passes the local round took its mixed path (sim/local.py: `if sequential_epochs`), the probes
    interleaved with the private batches, and the run said sequential."""
    if cfg.distill.order == "sequential" and cfg.distill.epochs == 0 \
            and protocols.reads(cfg.protocol.name, "distill.order"):
        raise ConfigError("distill.order=sequential with distill.epochs=0 makes no pass over the probes before "
                          "local training, and the round then trains as distill.order=mixed; allowed: "
                          "distill.epochs >= 1 with sequential, or distill.order=mixed")


def _tally_rules(cfg: Config) -> None:
    """tally.target=counts only where the histogram is the plain mean of the votes that arrived: no vote
    setting changes what a vote counts for or which probes train. Either topology: allgather's peers count
    the votes they receive, star's server sends each peer the histograms (protocols/tally.py). Here, not
    in tally's make: every configuration of a sweep is to be refused before its first run starts."""
    if not counts_target(cfg):
        return
    others = [name for name, on in (
        ("vote.weighting=history", cfg.vote.weighting == "history"),
        (f"vote.ties={cfg.vote.ties}", cfg.vote.ties != "lowest"),
        ("vote.min_agreement", bool(cfg.vote.min_agreement)),
        ("vote.min_margin", cfg.vote.min_margin > 0),
        ("distill.label_smoothing", bool(cfg.distill.label_smoothing)),
        ("privacy.noise", bool(cfg.privacy.noise))) if on]
    if others:
        raise ConfigError(f"tally.target=counts trains on the plain vote histogram; not with {', '.join(others)}; "
                          "allowed: those at their defaults, or tally.target=vote")


def _cohort_rules(cfg: Config) -> None:
    """participation_rule=size and cohort_draw=sequential only where there is a cohort to draw, and size
    only where nothing assumes uniform draws (cohort_draw=sequential under uniform is the same
    distribution as sort, so the privacy accountant's fixed-size uniform sampling still holds)."""
    active, groups = active_peers(cfg), model_groups.parse(cfg.model.groups)      # fed.build's A
    a_g = model_groups.active_counts(cfg, groups) if groups else []       # each group's own A_g of its P_g
    if cfg.ragged_groups is not None and groups:    # each group trains its own A_g, min(ragged_groups, A_g) groups
        most = max(a_g)                             # (local.train_peers): one above all, unused
        if cfg.ragged_groups > most:
            raise ConfigError(f"ragged_groups={cfg.ragged_groups} is above every model group's peers active a round ("
                              f"{', '.join(f'{g.name} {a}' for g, a in zip(groups, a_g))}: each group trains in at most "
                              f"that many groups); allowed: 1 to {most}, or unset (auto)")
    elif cfg.ragged_groups is not None and cfg.ragged_groups > active:    # local.train_peers capped it at A in silence
        raise ConfigError(f"ragged_groups={cfg.ragged_groups} is above the {active} peers active a round (peers="
                          f"{cfg.peers}, participation={cfg.participation}); allowed: 1 to {active}, or unset (auto)")
    if cfg.cohort_draw == "sequential" and groups and active < cfg.peers \
            and all(a == g.peers for g, a in zip(groups, a_g)):
        # each group draws its own A_g of P_g (round_helpers.active_set): every group whole, no cohort is
        # drawn, where the run-wide A < P passed (a:1;b:1 at participation=0.5: A=1, each group's 1 of 1)
        whole = ", ".join(f"{g.name} {a} of {g.peers}" for g, a in zip(groups, a_g))
        raise ConfigError(f"cohort_draw=sequential draws a cohort, but at participation={cfg.participation} every "
                          f"model group is active whole each round ({whole}: "
                          "each group draws max(1, round(participation x its peers))); allowed: a participation that "
                          "leaves some group a cohort, or cohort_draw=sort")
    if cfg.cohort_draw == "sequential" and active >= cfg.peers:
        raise ConfigError(f"cohort_draw=sequential draws a cohort, but participation={cfg.participation} "
                          f"makes all {cfg.peers} peers active every round; allowed: participation below "
                          f"{(cfg.peers - 0.5) / cfg.peers:.4g} (fewer than all peers), or cohort_draw=sort")
    if cfg.participation_rule != "size":
        return
    if active >= cfg.peers:
        raise ConfigError(f"participation_rule=size draws a cohort, but participation={cfg.participation} "
                          f"makes all {cfg.peers} peers active every round; allowed: participation below "
                          f"{(cfg.peers - 0.5) / cfg.peers:.4g} (fewer than all peers), or "
                          "participation_rule=uniform")
    if cfg.privacy.noise > 0:
        raise ConfigError("participation_rule=size with privacy.noise > 0: the privacy accountant's "
                          "amplification by subsampling assumes a uniform cohort; allowed: "
                          "participation_rule=uniform with privacy, or privacy.noise=0")


def _fault_rules(cfg: Config) -> None:
    f = cfg.faults
    if f.kind == "under_trained" and f.examples is None and f.steps is None:
        raise ConfigError("faults.kind=under_trained needs faults.examples=N (keep N examples of each faulty "
                          "shard) and/or faults.steps=N (at most N private steps per round); allowed: "
                          "either or both, integers >= 0")
    if f.kind == "under_trained" and f.redraw and f.examples is not None:
        raise ConfigError(f"faults.redraw=true with faults.examples={f.examples} is not supported: shards "
                          "are cut once, before the run; allowed: faults.redraw=false, or faults.steps alone")
    traits = protocols.traits(cfg.protocol.name)
    if f.kind in PARAM_ATTACKS and not traits.fedavg_family:
        raise ConfigError(f"faults.kind={f.kind} attacks parameter updates, which protocol.name={cfg.protocol.name} "
                          f"does not send; allowed there: {', '.join(k for k in FAULT_KINDS if k not in PARAM_ATTACKS)}"
                          f" ({'/'.join(PARAM_ATTACKS)} are for the FedAvg family)")
    if f.kind == "least_likely" and not traits.distill:
        raise ConfigError(f"faults.kind=least_likely attacks probe predictions, which protocol.name={cfg.protocol.name} "
                          f"does not send; allowed there: {', '.join(k for k in FAULT_KINDS if k != 'least_likely')}"
                          " (least_likely is for tally, softlabel and bridge)")
    robust_checks.check(cfg)
    if cfg.vote.weighting == "history" and cfg.protocol.name != "tally":
        raise ConfigError(f"vote.weighting=history is implemented for protocol.name=tally only, not "
                          f"{cfg.protocol.name}; allowed there: vote.weighting=none")
    if f.kind == "straggler" and protocols.traits(cfg.protocol.name).distill:
        raise ConfigError(f"faults.kind=straggler is not implemented for protocol.name={cfg.protocol.name} "
                          f"(its stale message would be about last round's probes); allowed there: "
                          f"{', '.join(k for k in FAULT_KINDS if k != 'straggler')}")


def check_pool_size(cfg: Config, pool: int | None = None, why: str = "probe.pool_size") -> None:
    """probe.per_round past the probe pool, for a protocol that draws probes: an explicit probe.pool_size
    refused here without the data (it was refused only once the data loaded, so a sweep's --dry-run listed
    its runs and every run then failed on it at build: userjourney7), after the memory check, which names
    the larger problem of 10^9 probes first; and validation.validate_with_data's `pool` the data makes,
    with `why` it is that size, in the same words."""
    if pool is None and cfg.probe.pool_size is None and (n := known_train(cfg)):
        # the default pool where the config tells the training set's size: it was checked only once the
        # data loaded, so a sweep's --dry-run passed runs that each failed at build (hostile19)
        pool, why = default_pool_size(n), "probe.pool_size is unset: 10% of the training examples, at most 10,000"
    if pool is None and cfg.probe.pool_size is not None and (n := known_train(cfg)) and cfg.probe.pool_size >= n > 1:
        # build_data's refusal, where the config tells the size: said once the data had loaded, after a sweep's
        # --dry-run (and its other runs: probe.pool_size=500,12000 on synthetic) had passed it
        raise ConfigError(f"probe.pool_size={cfg.probe.pool_size} leaves no training data ({cfg.data.name} has {n} "
                          f"training examples); allowed: 1..{n - 1}")
    pool = cfg.probe.pool_size if pool is None else pool
    if pool is not None and protocols.traits(cfg.protocol.name).distill and cfg.probe.per_round > pool:
        raise ConfigError(f"probe.per_round={cfg.probe.per_round} is larger than the probe pool "
                          f"({pool} examples; {why}); allowed: probe.per_round=1..{pool}, "
                          "or a larger probe.pool_size")


def known_train(cfg: Config):
    """The training examples a run of `cfg` gets, where the config alone tells (synthetic's train_size, the
    text datasets' windows; data.max_train below them), else None (a prepared or file dataset, another
    dataset's probe pool)."""
    if cfg.data.path is not None or cfg.probe.source is not None:
        return None
    n = cfg.data.train_size if cfg.data.name == "synthetic" else KNOWN_TRAIN.get(cfg.data.name)
    return None if n is None else min(n, cfg.data.max_train or n)


def known_classes(cfg: Config):
    """The class count of data.name where the config alone tells it (synthetic's data.num_classes, a known
    image dataset's), else None: what needs it waits for the data (validation.validate_with_data)."""
    if cfg.data.name == "synthetic":
        return cfg.data.num_classes
    if cfg.data.name in KNOWN_TEXT:     # the vocabulary: topk_soft.k=10005 on words waited for the data's load
        return KNOWN_TEXT[cfg.data.name][1]
    return KNOWN_SHAPES[cfg.data.name][1] if cfg.data.name in KNOWN_SHAPES and cfg.data.path is None else None


def topk_soft_message(k: int, value_bits: int, classes) -> None:
    """topk_soft's message rules (protocols/topk_soft.check; here too, so that a sweep and its --dry-run
    refuse them before any run: `topk_soft.k=5,11` ran the k=5 run whole, then failed the k=11 run as it
    was built). classes None: the rules that do not need the class count."""
    if classes is not None and k > classes:
        raise ConfigError(f"topk_soft.k={k} is more than the {classes} classes; allowed: 1..{classes}")
    if 16 < value_bits < 32:
        raise ConfigError(f"topk_soft.value_bits={value_bits}; allowed: 0..16 (uniform levels) or 32 (float32)")
    if k == classes and value_bits == 0:
        # k = C sends no index and b = 0 no value: a message of 0 bits, whose target would be 0 / 0
        raise ConfigError(f"topk_soft.k={k} (every class: no index is sent) with topk_soft.value_bits=0 (no value) "
                          f"sends nothing; allowed: value_bits 1..16 or 32 with k={k}, or k 1..{classes - 1} "
                          "with value_bits=0")


def cfd_delta_rule(cfg: Config) -> None:
    """cfd.delta codes against the last message on the same probes (protocols/cfd.py)."""
    if cfg.cfd.delta and cfg.probe.resample:
        raise ConfigError("cfd.delta=true codes each message against the last one on the same probes; "
                          "allowed: probe.resample=false with it, or cfd.delta=false")


TEXT_SPECIALS = ("PAD", "BOS", "EOS", "OOV")   # data/text.py's ids 0..3; the words (characters) from 4


def text_target_rule(cfg: Config, key: str, token: int) -> None:
    """A class a user names on text (`key`=`token`) refused unless a word (character): test accuracy scores
    those alone (sim/tasks.NextToken.scored), never PAD (not even a loss target), BOS, EOS or OOV (ids
    0..3), so a fault that answers one of them is no wrong answer the model is ever scored on (leftovers32
    refused PAD and BOS and kept EOS and OOV, which accuracy skips as well); nor a token past the
    vocabulary, which the name tells (data.path with a text name is refused before anything loads,
    field_checks.check_data_path: it reads no files). The random draws (faults.target=-1) take words alone (sim/faults.wrong_classes)."""
    unit = "word" if "words" in cfg.data.name else "character"
    classes = None if cfg.data.path is not None else KNOWN_TEXT[cfg.data.name][1]
    top = "" if classes is None else f"..{classes - 1}"
    allowed = f"allowed: -1 (a random wrong {unit}) or 4{top} (a {unit})"
    if 0 <= token < 4:
        raise ConfigError(f"{key}={token} is {TEXT_SPECIALS[token]} on text ({cfg.data.name}), never a scored "
                          f"target (test accuracy skips PAD, BOS, EOS and OOV); {allowed}")
    if classes is not None and token >= classes:
        raise ConfigError(f"{key}={token} is not a token of {cfg.data.name} ({classes:,}: PAD, BOS, EOS, OOV "
                          f"and {classes - 4:,} {unit}s); {allowed}")


def _class_rules(cfg: Config) -> None:
    """What the built protocol or data would refuse, refused here where the config tells the class count:
    a single run stopped only after loading its data, a sweep (and --dry-run, which said nothing) after
    running its other runs (faults.target=3,10: the target-3 run whole, then the target-10 run failed)."""
    classes = known_classes(cfg)
    if cfg.protocol.name == "topk_soft":
        topk_soft_message(cfg.topk_soft.k, cfg.topk_soft.value_bits, classes)
    if cfg.protocol.name == "cfd":
        cfd_delta_rule(cfg)
    if cfg.data.name in KNOWN_TEXT and cfg.faults.kind == "confident_wrong":
        text_target_rule(cfg, "faults.target", cfg.faults.target)
    if classes is not None and cfg.faults.kind == "confident_wrong" and cfg.faults.target >= classes:
        raise ConfigError(f"faults.target={cfg.faults.target} is not a class of {cfg.data.name} "
                          f"({classes} classes); allowed: -1 (a random wrong class) or 0..{classes - 1}")
