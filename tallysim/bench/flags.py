"""`tallysim bench`'s flags checked against each other before anything is measured (cli_commands.cmd_bench).

Each refusal is one `ConfigError` line naming the flag, what was wrong and what is allowed. What they
stop (hostile review of 2026-12-06): two modes at once ran the first in cmd_bench's order and ignored
the other (`--sweep --round` ran the 108-run sweep); a mode's flag without its mode, or a flag the chosen
mode never reads, was ignored; an empty comma list (`--conv ''`) read as the default; a value listed
twice was measured twice; `--round` took the first of a comma list (`--peers 2,3` timed P = 2 alone)
and read `--steps 0` as the default; `--population --set peers=5` measured 5 clients in every row
labelled 10,000 and up.
"""
from __future__ import annotations

from tallysim.fields import ConfigError

MODES = ("sweep", "round", "population", "devices")
# flags only one mode reads: (attribute, flag, the mode, its unset value)
MODE_FLAGS = (("smoke", "--smoke", "sweep", False), ("data", "--data", "sweep", None),
              ("sample", "--sample", "sweep", 0), ("protocols", "--protocols", "round", None),
              ("examples", "--examples", "population", None), ("stacked_max", "--stacked-max", "population", None),
              ("cohort_draw", "--cohort-draw", "population", None), ("set", "--set", "population", None))
# the throughput table's own flags (unset: None or False), read by no other mode but --round's share
THROUGHPUT_FLAGS = (("model", "--model"), ("dtype", "--dtype"), ("steps", "--steps"), ("impl", "--impl"),
                    ("conv", "--conv"), ("full", "--full"))
ROUND_READS = ("model", "peers", "dtype", "steps")
CONV_MODELS = ("lenet", "cnn", "resnet8")        # the models model.conv (and so --conv) applies to
CONV_IMPLS = ("tallysim", "dense")     # the throughput columns --conv changes (loop and vmap_ref: always conv=xla)
REPEATS = 3             # --repeats unset: timed runs per cell, their median the cell's time
LISTS = (("model", "--model"), ("peers", "--peers"), ("dtype", "--dtype"), ("impl", "--impl"), ("conv", "--conv"),
         ("protocols", "--protocols"), ("cohort_draw", "--cohort-draw"), ("devices", "--devices"))
# config fields a --population point sets from its own axes and flags (bench.population.items)
POPULATION_AXES = {"peers": "--peers", "participation": "the 10 and 100 clients per round",
                   "client_storage": "the auto and stacked rows", "cohort_draw": "--cohort-draw",
                   "data.train_size": "--examples", "rounds": "the bench's 10 rounds"}


def _mode(args) -> str | None:
    given = [m for m in MODES if getattr(args, m, None)]
    if len(given) > 1:
        raise ConfigError(f"bench: --{' and --'.join(given)} are separate benchmarks (only the first would run); "
                          "allowed: one of --sweep, --round, --population, --devices per command")
    return given[0] if given else None


def check(args) -> None:
    mode = _mode(args)
    for attr, flag in LISTS:
        text = getattr(args, attr, None)
        if text is None:
            continue
        items = [s.strip() for s in str(text).split(",")]
        if not any(items):
            raise ConfigError(f"bench {flag} {text!r} is empty; allowed: a comma list, or leave {flag} out for "
                              "the default")
        twice = sorted({s for s in items if s and items.count(s) > 1})
        if twice:
            raise ConfigError(f"bench {flag} {text!r} lists {', '.join(twice)} twice (each would be measured "
                              "again); give each value once")
    for attr, flag, owner, unset in MODE_FLAGS:
        if getattr(args, attr, unset) != unset and mode != owner:
            raise ConfigError(f"bench {flag} is read only with --{owner}"
                              f"{'' if mode is None else f', not with --{mode}'}; allowed: add --{owner}, "
                              f"or leave {flag} out")
    if mode is not None:
        reads = ROUND_READS if mode == "round" else ()
        for attr, flag in THROUGHPUT_FLAGS:
            if getattr(args, attr, None) not in (None, False) and attr not in reads:
                raise ConfigError(f"bench {flag} is not read by bench --{mode}; allowed: leave it out "
                                  f"({flag} is the throughput table's{', and --round reads --model, --peers, --dtype, --steps' if mode != 'round' else ''})")
    conv, models = getattr(args, "conv", None), getattr(args, "model", None)
    if mode is None and conv is not None and models is not None and not any(
            m.strip() in CONV_MODELS for m in str(models).split(",")):
        # `--model mlp --conv xla` measured the MLP and labelled nothing: no model of the table convolves
        raise ConfigError(f"bench --conv is read only by the conv models ({', '.join(CONV_MODELS)}), and --model "
                          f"{models} has none; allowed: add a conv model to --model, or leave --conv out")
    if mode in ("sweep", "devices") and getattr(args, "peers", None) is not None:
        raise ConfigError(f"bench --peers is not read by bench --{mode} (its runs fix their peers); allowed: "
                          "leave it out")
    if mode == "round":
        _check_round(args)
    if mode == "population":
        _check_set(getattr(args, "set", None))


def _check_round(args) -> None:
    """--round times one model, P, dtype (resolve took the first of a list, and `or` read 0 as unset)."""
    for attr in ("model", "peers", "dtype"):
        text = getattr(args, attr, None)
        if text is not None and "," in str(text):
            raise ConfigError(f"bench --round --{attr} {text!r}: --round times one {attr} (only the first would "
                              f"be); allowed: one value, or one command per value")
    peers = getattr(args, "peers", None)
    if peers is not None:
        try:
            ok = int(str(peers)) >= 1
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"bench --round --peers {peers!r}: allowed a positive integer")
    steps = getattr(args, "steps", None)
    if steps is not None and steps < 1:
        raise ConfigError(f"bench --round --steps {steps}: allowed a positive integer")


def _check_set(text) -> None:
    for item in (i.strip() for i in str(text or "").split(",") if i.strip()):
        key = item.split("=", 1)[0].strip()
        if key in POPULATION_AXES:
            raise ConfigError(f"bench --population --set {item}: {key} is what the benchmark varies or fixes "
                              f"itself ({POPULATION_AXES[key]}), and every row would be labelled with its own "
                              "value; allowed: other config items (e.g. faults.kind=dropout)")
        if key == "model.groups":   # its counts must sum to peers, which the bench varies: the config's
            # "set peers=N" advice named an item --set refuses just above
            raise ConfigError(f"bench --population --set {item}: the group counts would have to sum to every "
                              "population (--peers) at once, and the bench's FedAvg takes no model.groups; "
                              "allowed: one model for every client (model.* items, e.g. model.width=64)")
    _check_stateless(text)


def _check_stateless(text) -> None:
    """`--set protocol.name=tally` (or optim.reset_each_round=false, faults.kind=straggler): a protocol whose
    clients keep state holds every client under client_storage=auto too, so the rows labelled "server model
    alone" timed every client stacked, beside the stacked rows they are compared with, in silence."""
    from tallysim import config, protocols
    from tallysim.bench.population import items
    extra = [i.strip() for i in str(text or "").split(",") if i.strip()]
    try:
        cfg = config.apply_overrides(config.Config(), items(10_000, 10, "auto", 24) + extra)
    except ConfigError:
        return          # the item itself is refused where every point's config is checked
    if keeps := protocols.client_state(cfg):
        # named from the registry's traits, not a list here: a protocol's name lives in its own file and
        # the registry line (test_fedopt), and a new stateless protocol joins without an edit here
        none = ", ".join(n for n in protocols.REGISTRY if not protocols.traits(n).client_state)
        raise ConfigError(f"bench --population --set {text}: {keeps}, so client_storage=auto would hold every "
                          "client as stacked does, and the rows comparing the two would time the same storage; "
                          f"allowed: a protocol whose clients keep nothing ({none}; docs/population.md)")
