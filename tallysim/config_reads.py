"""The fields a run would silently ignore: a protocol-specific field set for a protocol that does not read
it, a model.* field its architecture does not read, a knob its mode (optim.name, partition.kind,
faults.kind, ...) does not read, the synthetic data's fields for a real dataset. `unread` lists them
all (the field, the refusal's line); a single run refuses the first (`check_read`), a sweep a field no
run of it reads (sweep_axes.check_fields_read). Split from config_rules.py (the rules between field values),
which asks `check_group_model_reads` / `check_group_mode_reads` of each model group.
"""
from __future__ import annotations

from tallysim import model_groups, protocols
from tallysim.field_checks import show
from tallysim.file_shapes import KNOWN_SHAPES, KNOWN_TEXT
from tallysim.schema import FAULT_KINDS, Config, ConfigError, declared, get_field
from tallysim.schema_text import show_default


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
              # passes over the probes before local training: distill.order=mixed interleaves them with
              # the private batches instead (protocols/distill.py), and distill.epochs=3 ran as if unset
              "distill.epochs": ("distill.order", ("sequential",)),
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


def _unread_local_epochs(cfg: Config):
    """local_epochs beside local_steps, which replaces the epochs of every round (protocols/context.py's
    local_spec): read only where it sizes the distillation protocols' warm-up (warmup_epochs unset, derived
    from it). `protocol.name=fedavg local_steps=5 local_epochs=3` ran 5 steps a round, as if unset."""
    if cfg.local_steps is None or cfg.local_epochs == declared()["local_epochs"].default:
        return
    if protocols.traits(cfg.protocol.name).defaults.get("warmup_epochs") == "local_epochs" and (
            "warmup_epochs" in cfg.derived or cfg.warmup_epochs is None):
        return
    yield "local_epochs", (f"local_epochs={cfg.local_epochs} is not read with local_steps={cfg.local_steps} (every "
                           "round runs local_steps steps instead of epochs; local_epochs sizes only a warm-up "
                           "left to it, and this run's has none or its own warmup_epochs); allowed there: its "
                           f"default {declared()['local_epochs'].default}, or local_steps=none")


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


def accounted(cfg: Config) -> bool:
    """Whether the run computes an epsilon: privacy noise on the messages, or a protocol whose declared
    mechanism is XOR (fedct) with its own epsilon. One rule for the fields it reads (below) and the
    delta warning (validation.warnings), which wrote it by protocol name, apart from a plugin's XOR."""
    return cfg.privacy.noise > 0 or (protocols.traits(cfg.protocol.name).privacy == "xor"
                                     and cfg.fedct.xor_epsilon > 0)


def _unread_privacy(cfg: Config):
    """privacy.delta, .accountant and .clip away from their defaults where nothing reads them: without
    noise (or fedct's XOR) no epsilon is computed, and the votes' GNMax and fedct's XOR clip nothing.
    `privacy.clip=3` on a private tally run, or `privacy.delta=1e-3` on a run without noise, ran as if
    unset."""
    pv, mechanism = cfg.privacy, protocols.traits(cfg.protocol.name).privacy
    computed = accounted(cfg)
    clipped = pv.noise > 0 and mechanism in ("sum", "params")
    for key, read, why in (("privacy.delta", computed, "no epsilon is computed without privacy.noise > 0 or "
                            "fedct.xor_epsilon > 0"),
                           ("privacy.accountant", computed, "no epsilon is computed without privacy.noise > 0 "
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
    # a field every model reads (its name, dtype, optimizer) is the run's only for the groups that do not
    # set it: `model.name=cnn` beside groups that each name their model ran no CNN, in silence
    for key in ("model.name", "model.dtype") + model_groups.GROUP_OPTIM:
        default = declared()[key].default
        if groups and get_field(cfg, key) != default and all(key in dict(g.values) for g in groups):
            yield key, (f"{key}={show(get_field(cfg, key))} is not read with model.groups={cfg.model.groups!r}: "
                        f"every group sets {key.removeprefix('model.')} itself; allowed there: its default "
                        f"{show_default(default)}, or a group that leaves it out")


# The data.* fields only the synthetic generator reads: a dataset from files or the cache has its own
# classes, example shape and sizes. `data.name=files data.num_classes=7` (or fashion_mnist with
# data.train_size=1000) ran on the dataset as it is, and no word said.
SYNTHETIC_READS = ("data.num_classes", "data.input_shape", "data.train_size", "data.test_size", "data.difficulty")


def _own_classes(name: str) -> str:
    """What a known dataset's files give for data.num_classes: `data.num_classes=10004` on
    shakespeare_words was told "allowed there: its default 10", as if the words had 10 classes."""
    name = name.lower()
    if name in KNOWN_TEXT:
        return f" (data.name={name} has C = {KNOWN_TEXT[name][1]:,} from its files: its vocabulary)"
    if name in KNOWN_SHAPES:
        return f" (data.name={name} has C = {KNOWN_SHAPES[name][1]:,} from its files)"
    return ""


def _unread_data(cfg: Config):
    if cfg.data.name.lower() == "synthetic":
        return          # `Synthetic`: the dataset's name is refused, with synthetic as the near one, not its fields
    for key in SYNTHETIC_READS:
        default = declared()[key].default
        if get_field(cfg, key) != default:
            hint = (" (data.max_train / data.max_test subsample a dataset)" if key in ("data.train_size", "data.test_size")
                    else _own_classes(cfg.data.name) if key == "data.num_classes" else "")
            value = get_field(cfg, key)
            shown = show_default(value) if isinstance(value, tuple) else show(value)     # a shape as written: 5x5x1
            yield key, (f"{key}={shown} is not read by data.name={cfg.data.name} (only by "
                        f"synthetic: a dataset's files fix its classes, example shape and sizes); allowed there: "
                        f"its default {show_default(default)}{hint}")
    d = cfg.data
    if (d.seed != declared()["data.seed"].default and d.max_train is None and d.max_test is None
            and cfg.probe.source is None):
        # a prepared dataset is the same whatever data.seed: a sweep data.seed=0,1,2 on Shakespeare ran three
        # identical runs and read as a spread over data draws (the run's draws follow `seed`)
        yield "data.seed", (f"data.seed={d.seed} is not read by data.name={d.name} without data.max_train or "
                            "data.max_test (it draws the synthetic data and those subsets; the peers' data, the "
                            "probe pool and training follow `seed`); allowed there: its default 0, or set seed")


def _typed_classes(cfg: Config, value: str):
    """data.num_classes typed on a dataset other than synthetic: refused unless it is the dataset's own
    class count (`data.name=cifar100 data.num_classes=10`, the default, ran on 100 classes)."""
    name = cfg.data.name.lower()
    if name == "synthetic":
        return None
    own = KNOWN_TEXT.get(name, KNOWN_SHAPES.get(name, (None, None)))[1]
    if own is not None and cfg.data.num_classes == own:
        return None          # the dataset's own count, said again: nothing ignored
    counts = f"data.name={cfg.data.name} has C = {own:,} from its files" if own else \
        f"data.name={cfg.data.name} takes its classes from its files"
    return (f"data.num_classes={value} is not read by data.name={cfg.data.name} (only by synthetic: it does not "
            f"pick a subset of classes); {counts}; allowed there: no data.num_classes")


# The fields refused when typed even at their default (`unread` compares a field with its default, and a
# dataset's files fix these whatever the default says): the field -> its rule, (cfg, the value typed) ->
# the refusal's line, or None where the value is read. One table for the check (check_typed), a sweep's
# axes (sweep_axes.check_fields_read) and from_file's advice: a --config file's value is to be removed
# from the file, since typing its default is refused too.
TYPED_RULES = {"data.num_classes": _typed_classes}


def check_typed(cfg: Config, items) -> None:
    """Each TYPED_RULES field among the `key=value` items the user typed (a run's command line, a sweep run's
    axes), refused in its rule's line. A --config file's value is not refused here: a run's config.json
    holds the default 10 for every dataset (docs/cli.md), and `--config` must take it back."""
    for key, rule in TYPED_RULES.items():
        typed = [str(i).split("=", 1)[1].strip() for i in items if str(i).split("=", 1)[0].strip() == key]
        if typed and (line := rule(cfg, typed[-1])):
            raise ConfigError(line)


def _unread_sign_broadcast(cfg: Config):
    """signsgd broadcasts the server's signs when every peer is active (1 bit a parameter) and its dense
    model at comm.param_bits only to a cohort: comm.param_bits is read with participation < 1 alone."""
    from tallysim.sizing import active_peers
    default = declared()["comm.param_bits"].default
    if cfg.protocol.name == "signsgd" and cfg.comm.param_bits != default and active_peers(cfg) == cfg.peers:
        yield "comm.param_bits", (f"comm.param_bits={cfg.comm.param_bits} is not read by protocol.name=signsgd with "
                                  f"every peer active (participation={show(cfg.participation)}: its downlink is the "
                                  "majority's signs, 1 bit a parameter); allowed there: its default "
                                  f"{default}, or participation < 1 (a cohort gets the dense model)")


def _unread_bridge_merge(cfg: Config):
    """bridge.density=0 sends no parameter (k = 0: tally exactly, protocols/bridge.py), so the merge's knobs
    are never read: `bridge.density=0 bridge.period=1 bridge.scope=per_tensor` ran tally as if unset."""
    if cfg.protocol.name != "bridge" or cfg.bridge.density != 0:
        return
    for key in ("bridge.period", "bridge.scope", "bridge.average", "bridge.reset", "comm.param_bits"):
        default = declared()[key].default
        if get_field(cfg, key) != default:
            yield key, (f"{key}={show(get_field(cfg, key))} is not read with bridge.density=0 (no parameter is "
                        "sent, no merge happens: the run is tally); allowed there: its default "
                        f"{show_default(default)}, or bridge.density > 0")


def unread(cfg: Config) -> list[tuple[str, str]]:
    """Every field check_read refuses in cfg, in the order it checks them: (the field, the refusal's line).
    A sweep refuses a field no run of it reads (sweep_axes.check_fields_read); a single run, the first of them."""
    name, out = cfg.protocol.name, []
    for key, spec in declared().items():
        if get_field(cfg, key) == spec.default or protocols.reads(name, key):   # the cheaper test first
            continue
        readers = [n for n in protocols.names() if protocols.reads(n, key)]
        out.append((key, f"{key}={show(get_field(cfg, key))} is not read by protocol.name={name} (only by "
                         f"{', '.join(readers)}); allowed there: its default {show_default(spec.default)}"))
    for rule in (_unread_models, _unread_data, _unread_privacy, _unread_eval, _unread_modes, _unread_warmup,
                 _unread_local_epochs,
                 _unread_sign_broadcast, _unread_bridge_merge):
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
    (`tallysim sweep`) only the fields no run of it reads (sweep_axes.check_fields_read), and a figure not at
    all, since there one base serves several protocols and each ignores some of it."""
    problems = unread(cfg)
    if problems:
        raise UnreadField(*problems[0], also=[key for key, _ in problems[1:]])


class UnreadField(ConfigError):
    """check_read's (and a sweep's check_fields_read's) refusal of one unread field, naming it (`key`), so
    that the command line can say where a value the user did not type came from (`from_file`)."""

    def __init__(self, key: str, line: str, also=()):
        super().__init__(line)
        self.key = key
        self.also = tuple(also)     # the other unread fields: from_file names them in the same advice


def from_file(err: UnreadField, path, items) -> ConfigError:
    """`err` with its source named when the field was not among the command line's `key=value` `items`:
    then the --config file at `path` set it (`--config experiments/quick.json partition.kind=label_quantity`
    was refused for quick.json's partition.alpha=0.5, a field the user never typed), and the way out is
    to give the field its default on the command line."""
    given = {str(item).split("=", 1)[0].strip() for item in items}
    if not path or err.key in given:
        return err
    spec = declared().get(err.key)
    # every unread field the file sets, in one piece of advice: a sweep run's config.json, run alone, was
    # refused for comm.soft_bits (the base's, for the sweep's softlabel runs), then again for model.heads
    extra = [key for key in dict.fromkeys(err.also) if key != err.key and key not in given and declared().get(key)]
    # a field typed at its default is refused by its TYPED_RULES rule (data.num_classes on a real dataset):
    # the advice for it is to remove it from the file instead
    typed = [key for key in [err.key, *extra] if key not in TYPED_RULES]
    items = " ".join(f"{key}={show_default(declared()[key].default)}" for key in typed)
    also = f" (it also sets {', '.join(extra)}, which this run does not read either)" if extra else ""
    fix = f"add {items} to the command to run without {'them' if extra else 'it'}{also}" if spec and typed else \
        "remove it from that file"
    if spec and typed and len(typed) <= len(extra):      # a TYPED_RULES field among them: not typed
        fix += f"; remove {', '.join(k for k in [err.key, *extra] if k in TYPED_RULES)} from that file"
    return ConfigError(f"{err} ({err.key} is set by --config {path}, not on the command line: {fix})")
