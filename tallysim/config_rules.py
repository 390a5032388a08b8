"""The cross-field rules of a Config: what one field allows given the others (the protocol's traits,
faults, privacy, model.groups, the cohort draw), and the fields the chosen protocol would silently
ignore (`check_read`). Split from validation.py, which runs them (`validate`, through `check_rules`)
and re-exports `check_rules`, `check_read` and `MESSAGE_FAULTS`.

Each failure is a `ConfigError` with one line naming the fields, the bad values and what is allowed.
"""
from __future__ import annotations

from tallysim import model_groups, protocols, robust_checks
from tallysim.field_checks import live_choices, check_ranges, check_types, not_known, show
from tallysim.schema import FAULT_KINDS, PARAM_ATTACKS, Config, ConfigError, declared, get_field
from tallysim.schema_text import show_default


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
    if cfg.eval_sample == "random" and cfg.eval_peers is not None and cfg.model.groups:
        raise ConfigError("eval_sample=random is not supported with model.groups (each group stacks its own "
                          "peers); allowed: eval_sample=first, or no model.groups")
    _fault_rules(cfg)
    _privacy_rules(cfg)
    _group_rules(cfg)
    _cohort_rules(cfg)


def _group_rules(cfg: Config) -> None:
    """model.groups: each group's own fields checked as a run of its own would be, then the groups' rules."""
    for g in model_groups.parse(cfg.model.groups):
        gcfg = model_groups.group_config(cfg, g)
        try:
            check_types(gcfg)
            for key, allowed in live_choices().items():
                if key.startswith(("model.", "optim.")) and get_field(gcfg, key) not in allowed:
                    raise ConfigError(not_known(key, get_field(gcfg, key), allowed))
            check_ranges(gcfg)
            check_group_model_reads(g, gcfg)
            check_group_mode_reads(g, gcfg)
        except ConfigError as e:
            raise ConfigError(f"model.groups, group {g.name}: {e}") from None
    model_groups.check(cfg)


def _cohort_rules(cfg: Config) -> None:
    """participation_rule=size and cohort_draw=sequential only where there is a cohort to draw, and size
    only where nothing assumes uniform draws (cohort_draw=sequential under uniform is the same
    distribution as sort, so the privacy accountant's fixed-size uniform sampling still holds)."""
    active = max(1, int(round(cfg.participation * cfg.peers)))     # fed.build's A
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


def _privacy_rules(cfg: Config) -> None:
    """privacy.* only where it protects something, and only in settings the accountant is exact for."""
    pv, traits = cfg.privacy, protocols.traits(cfg.protocol.name)
    with_privacy = [n for n in protocols.names() if protocols.traits(n).privacy not in ("", "xor")]
    if traits.privacy == "xor":          # fedct: the XOR mechanism (fedct.xor_epsilon), not privacy.noise
        if pv.noise > 0:
            raise ConfigError(f"privacy.noise={pv.noise} with protocol.name={cfg.protocol.name}: its privacy is "
                              "the XOR mechanism on the one-hot votes; allowed: fedct.xor_epsilon > 0 with "
                              "privacy.noise=0")
        if pv.accountant == "pld" and cfg.fedct.xor_epsilon > 0:
            raise ConfigError("privacy.accountant=pld with fedct.xor_epsilon: dp-accounting's PLD accountant "
                              "does not compose randomised response (it reports one response's epsilon for "
                              "any count); allowed: privacy.accountant=rdp")
    if pv.noise == 0:
        if pv.threshold > 0 or pv.threshold_noise > 0:
            raise ConfigError("privacy.threshold / privacy.threshold_noise need privacy.noise > 0 (the "
                              "GNMax noise on the votes); allowed: set privacy.noise, or leave both at 0")
        return
    _tiny_noise(cfg, traits.privacy)
    if not traits.privacy:
        raise ConfigError(f"privacy.noise={pv.noise} is not implemented for protocol.name="
                          f"{cfg.protocol.name} (its messages would go unprotected while epsilon is "
                          f"reported); allowed: {', '.join(with_privacy)}, or privacy.noise=0")
    if (pv.threshold > 0 or pv.threshold_noise > 0) and traits.privacy != "votes":
        raise ConfigError(f"privacy.threshold is Confident-GNMax's, for votes; protocol.name="
                          f"{cfg.protocol.name} sends soft labels; allowed: privacy.threshold=0")
    if pv.threshold_noise > 0 and pv.threshold == 0:
        raise ConfigError("privacy.threshold_noise needs privacy.threshold > 0 (Confident-GNMax's T)")
    if pv.threshold > 0 and pv.threshold_noise == 0:
        raise ConfigError("privacy.threshold needs privacy.threshold_noise > 0: a noiseless threshold "
                          "check on the top count is not private")
    if traits.privacy == "params" and (cfg.fedavg.aggregate != "mean" or cfg.fedavg.pre != "none"):
        raise ConfigError(f"privacy.noise with fedavg.aggregate={cfg.fedavg.aggregate}, fedavg.pre={cfg.fedavg.pre}: "
                          "DP-FedAvg's noise is calibrated to the clipped mean; allowed: fedavg.aggregate=mean, "
                          "fedavg.pre=none")
    if traits.privacy == "sum" and cfg.softlabel.aggregate in ("median", "trimmed"):
        raise ConfigError(f"privacy.noise with softlabel.aggregate={cfg.softlabel.aggregate}: the noise is "
                          "calibrated to a clipped sum; allowed: softlabel.aggregate=mean or era")
    if cfg.vote.weighting != "none":
        raise ConfigError(f"privacy.noise with vote.weighting={cfg.vote.weighting}: the noise is calibrated to "
                          "one vote per peer; allowed: vote.weighting=none")
    if cfg.comm.topology == "allgather":
        raise ConfigError("privacy.noise with comm.topology=allgather: every peer would see the others' "
                          "messages without noise; allowed: comm.topology=star")
    if pv.accountant == "pld" and cfg.participation < 1:
        raise ConfigError(f"privacy.accountant=pld with participation={cfg.participation}: dp-accounting's "
                          "PLD accountant has no fixed-size participation sampling; allowed: "
                          "privacy.accountant=rdp, or participation=1")


def _tiny_noise(cfg: Config, mechanism: str) -> None:
    """Positive noise so small that the device draws none (float32) or the accountant overflows
    (privacy.MIN_NOISE says why); the std drawn for soft labels and DP-FedAvg is noise * clip."""
    from tallysim.privacy import MIN_NOISE
    pv = cfg.privacy
    for key, value in (("privacy.noise", pv.noise), ("privacy.threshold_noise", pv.threshold_noise)):
        if 0 < value < MIN_NOISE:
            raise ConfigError(f"{key}={value:g} is too small to draw in float32 or to account (epsilon "
                              f"overflows); allowed: {key}=0 (off) or >= {MIN_NOISE:g}")
    if mechanism in ("sum", "params") and pv.noise * pv.clip < MIN_NOISE:
        raise ConfigError(f"privacy.noise * privacy.clip={pv.noise * pv.clip:g} (the noise std) is too small "
                          f"to draw in float32; allowed: privacy.noise * privacy.clip >= {MIN_NOISE:g}")


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


MESSAGE_FAULTS = ("confident_wrong", "dropout", "straggler")   # faults that act on what peers send

# The model.* fields each architecture reads (sim/models.py MODELS; name and dtype: every model). A
# field set for a model that does not read it, `model.hidden=64` with the MLP or `model.width=64` with
# the LSTM, ran the model unchanged and no word said.
MODEL_READS = {"model.width": ("mlp",), "model.conv": ("lenet", "cnn", "resnet8"), "model.embed": ("lstm",),
               "model.hidden": ("lstm", "transformer"), "model.layers": ("lstm", "transformer"),
               "model.heads": ("transformer",)}


def check_group_model_reads(g, gcfg: Config) -> None:
    """A group's own model field that the group's model does not read (`big:2:lenet,width=64`)."""
    for key, value in g.values:
        models = MODEL_READS.get(key)
        if models and gcfg.model.name not in models:
            raise ConfigError(f"{key}={show(value)} is not read by model.name={gcfg.model.name} (only by "
                              f"{', '.join(models)}); allowed: leave it out of this group")


# A field read only under one value of another (the aggregate, the pre-aggregation, the optimizer, the
# vote weighting): (the field that decides, the values under which it is read). `softlabel.trim=0.2` with
# softlabel.aggregate=mean, or optim.momentum with optim.name=adam, ran as if unset.
FAULT_KINDS_ON = tuple(k for k in FAULT_KINDS if k != "none")
MODE_READS = {"optim.momentum": ("optim.name", ("sgd",)),
              "softlabel.era_temperature": ("softlabel.aggregate", ("era",)),
              "softlabel.trim": ("softlabel.aggregate", ("trimmed",)),
              "fedavg.trim": ("fedavg.aggregate", ("trimmed",)),
              "fedavg.tau": ("fedavg.aggregate", ("cclip",)),
              "fedavg.clip_iters": ("fedavg.aggregate", ("cclip",)),
              "fedavg.geomed_iters": ("fedavg.aggregate", ("geomed",)),
              "fedavg.m": ("fedavg.aggregate", ("multikrum",)),
              "fedavg.bucket": ("fedavg.pre", ("bucketing",)),
              "vote.history": ("vote.weighting", ("history",)),
              # each fault knob is read by its kinds alone (sim/faults.py, attacks.py): label_flip with
              # faults.target=50 or sign_flip with faults.sigma=5 ran as if unset, and faults.fraction=0.3
              # with kind=none ran no faulty peer
              "faults.fraction": ("faults.kind", FAULT_KINDS_ON),
              "faults.redraw": ("faults.kind", FAULT_KINDS_ON),
              "faults.examples": ("faults.kind", ("under_trained",)),
              "faults.steps": ("faults.kind", ("under_trained",)),
              "faults.target": ("faults.kind", ("confident_wrong",)),
              "faults.scale": ("faults.kind", ("confident_wrong", "sign_flip")),
              "faults.drop_prob": ("faults.kind", ("dropout",)),
              "faults.sigma": ("faults.kind", ("gaussian",)),
              "faults.z": ("faults.kind", ("alie",)),
              "faults.eps": ("faults.kind", ("ipm",)),
              # each partition knob is read by its kinds alone (data/partition.py, population.py, validation's
              # min_each): partition.kind=iid partition.alpha=0.5, or natural with min_size, ran as if unset
              "partition.alpha": ("partition.kind", ("dirichlet", "dirichlet_mix", "quantity")),
              "partition.k": ("partition.kind", ("label_quantity",)),
              "partition.scheme": ("partition.kind", ("label_quantity",)),
              "partition.cap": ("partition.kind", ("dirichlet",)),
              "partition.min_size": ("partition.kind", ("dirichlet", "population")),
              "partition.mean_size": ("partition.kind", ("population",)),
              "partition.sigma": ("partition.kind", ("population",)),
              "partition.reuse": ("partition.kind", ("population",)),
              "partition.pick": ("partition.kind", ("natural",))}


def check_group_mode_reads(g, gcfg: Config) -> None:
    """A group's own optim.momentum with the group's optim.name=adam (`a:2:mlp,optim.name=adam,optim.momentum=0.5`)."""
    if "optim.momentum" in dict(g.values) and gcfg.optim.name != "sgd":
        raise ConfigError(f"optim.momentum={show(gcfg.optim.momentum)} is not read with optim.name={gcfg.optim.name} "
                          "(only by sgd); allowed: leave it out of this group")


def _unread_modes(cfg: Config):
    for key, (mode, values) in MODE_READS.items():
        default = declared()[key].default
        if get_field(cfg, key) == default or get_field(cfg, mode) in values:
            continue
        if not protocols.reads(cfg.protocol.name, key):
            continue             # the protocol check above names it
        if key == "optim.momentum" and cfg.model.groups:
            continue             # each group may set optim.name itself (its own momentum: _group_rules)
        yield key, (f"{key}={show(get_field(cfg, key))} is not read with {mode}={show(get_field(cfg, mode))} "
                    f"(only with {mode}={'|'.join(values)}); allowed there: its default {show_default(default)}")


def _unread_warmup(cfg: Config):
    """warmup_epochs (private epochs before the first exchange) for a protocol without a warm-up (the
    FedAvg family, local): `protocol.name=fedavg warmup_epochs=3` ran no warm-up, silently."""
    traits = protocols.traits(cfg.protocol.name)
    if (cfg.warmup_epochs not in (None, 0) and "warmup_epochs" not in cfg.derived
            and "warmup_epochs" not in traits.defaults):
        readers = [n for n in protocols.names() if "warmup_epochs" in protocols.traits(n).defaults]
        yield "warmup_epochs", (f"warmup_epochs={cfg.warmup_epochs} is not read by protocol.name={cfg.protocol.name} "
                                f"(it has no warm-up before a first exchange; only {', '.join(readers)}); allowed "
                                "there: none")


def _unread_eval(cfg: Config):
    """eval_peers / eval_sample where no client model is evaluated (client_storage=auto for a stateless
    protocol: the server model alone, docs/population.md) or where every peer is (eval_sample=random
    with eval_peers=none): both ran as if unset."""
    if cfg.client_storage == "auto" and not protocols.client_state(cfg):
        for key, default in (("eval_peers", None), ("eval_sample", "first")):
            if get_field(cfg, key) != default:
                yield key, (f"{key}={show(get_field(cfg, key))} is not read with client_storage=auto and "
                            f"protocol.name={cfg.protocol.name} (no client model outlives its round: the "
                            f"rows evaluate the server model alone); allowed there: its default "
                            f"{show_default(default)}, or client_storage=stacked")
    if cfg.eval_peers is not None and cfg.eval_peers > cfg.peers:    # ran as eval_peers=none, the row saying so
        yield "eval_peers", (f"eval_peers={cfg.eval_peers} is more than the {cfg.peers} peers (peers={cfg.peers}); "
                             f"allowed: 1..{cfg.peers}, or none (every peer)")
    if cfg.eval_sample != "first" and cfg.eval_peers is None:
        yield "eval_sample", (f"eval_sample={cfg.eval_sample} picks which eval_peers peers are evaluated, and "
                              "eval_peers=none evaluates every peer; allowed: eval_peers=N with it, or eval_sample=first")


def _unread_privacy(cfg: Config):
    """privacy.delta, .accountant and .clip away from their defaults where nothing reads them: without
    noise (or fedct's XOR) no epsilon is computed, and the votes' GNMax and fedct's XOR clip nothing.
    `privacy.clip=3` on a private tally run, or `privacy.delta=1e-3` on a run without noise, ran as if
    unset."""
    pv, mechanism = cfg.privacy, protocols.traits(cfg.protocol.name).privacy
    accounted = pv.noise > 0 or (mechanism == "xor" and cfg.fedct.xor_epsilon > 0)
    clipped = pv.noise > 0 and mechanism in ("sum", "params")
    for key, read, why in (("privacy.delta", accounted, "no epsilon is computed without privacy.noise > 0 or "
                            "fedct.xor_epsilon > 0"),
                           ("privacy.accountant", accounted, "no epsilon is computed without privacy.noise > 0 "
                            "or fedct.xor_epsilon > 0"),
                           ("privacy.clip", clipped, "only soft labels and DP-FedAvg clip, and only with "
                            "privacy.noise > 0")):
        default = declared()[key].default
        if not read and get_field(cfg, key) != default:
            yield key, (f"{key}={show(get_field(cfg, key))} is not read by this run ({why}; protocol.name="
                        f"{cfg.protocol.name}, privacy.noise={show(pv.noise)}); allowed there: its default "
                        f"{show_default(default)}")


def _unread_models(cfg: Config):
    """A run-level model.* field away from its default that no model of the run reads: the run's
    model, or with model.groups every group's that does not set the field itself."""
    groups = model_groups.parse(cfg.model.groups)
    for key, models in MODEL_READS.items():
        spec = declared()[key]
        if get_field(cfg, key) == spec.default:
            continue
        if groups:
            users = [model_groups.group_config(cfg, g).model.name for g in groups if key not in dict(g.values)]
            if any(m in models for m in users):
                continue
            whose = (f"the models of the groups that take it from the run ({', '.join(sorted(set(users)))})"
                     if users else f"any group (every group sets {key.removeprefix('model.')} itself)")
        elif cfg.model.name in models:
            continue
        else:
            whose = f"model.name={cfg.model.name}"
        yield key, (f"{key}={show(get_field(cfg, key))} is not read by {whose} (only by "
                    f"{', '.join(models)}); allowed there: its default {show_default(spec.default)}")


# The data.* fields only the synthetic generator reads: a dataset from files or the cache has its own
# classes, example shape and sizes. `data.name=files data.num_classes=7` (or fashion_mnist with
# data.train_size=1000) ran on the dataset as it is, and no word said.
SYNTHETIC_READS = ("data.num_classes", "data.input_shape", "data.train_size", "data.test_size", "data.difficulty")


def _unread_data(cfg: Config):
    if cfg.data.name.lower() == "synthetic":
        return          # `Synthetic`: the dataset's name is refused, with synthetic as the near one, not its fields
    for key in SYNTHETIC_READS:
        default = declared()[key].default
        if get_field(cfg, key) != default:
            hint = (" (data.max_train / data.max_test subsample a dataset)" if key in ("data.train_size", "data.test_size")
                    else "")
            value = get_field(cfg, key)
            shown = show_default(value) if isinstance(value, tuple) else show(value)     # a shape as written: 5x5x1
            yield key, (f"{key}={shown} is not read by data.name={cfg.data.name} (only by "
                        f"synthetic: a dataset's files fix its classes, example shape and sizes); allowed there: "
                        f"its default {show_default(default)}{hint}")


def unread(cfg: Config) -> list[tuple[str, str]]:
    """Every field check_read refuses in cfg, in the order it checks them: (the field, the refusal's line).
    A sweep refuses a field no run of it reads (`unread_by_every_run`); a single run, the first of them."""
    name, out = cfg.protocol.name, []
    for key, spec in declared().items():
        if get_field(cfg, key) == spec.default or protocols.reads(name, key):   # the cheaper test first
            continue
        readers = [n for n in protocols.names() if protocols.reads(n, key)]
        out.append((key, f"{key}={show(get_field(cfg, key))} is not read by protocol.name={name} (only by "
                         f"{', '.join(readers)}); allowed there: its default {show_default(spec.default)}"))
    for rule in (_unread_models, _unread_data, _unread_privacy, _unread_eval, _unread_modes, _unread_warmup):
        out += rule(cfg)
    if cfg.faults.kind in MESSAGE_FAULTS and not protocols.traits(name).messages:
        out.append(("faults.kind", f"faults.kind={cfg.faults.kind} acts on messages, and protocol.name={name} sends "
                                   "none; allowed there: none, label_flip, under_trained"))
    return out


def reads_all(cfg: Config) -> bool:
    """cfg passes check_read, as a single run's config must. A run a sweep or figure made need not (their
    shared base): resuming one checks the config only where its own passes (validation.check_read_resumed)."""
    return not unread(cfg)


def check_read(cfg: Config) -> None:
    """A protocol-specific field (one some protocol reads, TRAITS.reads) set away from its default for a
    protocol that does not read it would be silently ignored: refuse it, and so a model.* field the
    run's models do not read (MODEL_READS). So is a message fault for a protocol whose peers send nothing. A single run checks this (`tallysim run`, tallysim.run); a sweep
    (`tallysim sweep`) only the fields no run of it reads (`unread_by_every_run`), and a figure not at
    all, since there one base serves several protocols and each ignores some of it."""
    problems = unread(cfg)
    if problems:
        raise ConfigError(problems[0][1])


def unread_by_every_run(cfgs: list[Config], names: list[str]) -> None:
    """A sweep (`tallysim sweep`) whose runs ALL leave one field unread: `partition.pick=largest` over
    runs none of which has partition.kind=natural ran every run as if unset. Refused, naming the field,
    with the first run's line; a field that some run reads stays allowed (a shared base)."""
    if not cfgs:
        return
    first: dict = {}
    for key, line in unread(cfgs[0]):
        first.setdefault(key, line)
    common = set(first)
    for c in cfgs[1:]:
        if not common:            # some run reads each of them: the usual sweep stops at its first runs
            return
        common &= {key for key, _ in unread(c)}
    if common:
        key = next(k for k in first if k in common)
        raise ConfigError(f"{key} is not read by any run of the sweep (each of its {len(cfgs)} run(s) would refuse "
                          f"it as a single run); sweep run {names[0]}: {first[key]}")
