"""What each `tallysim` subcommand does once its arguments are parsed (`cmd_run`, `cmd_sweep`, ...):
the handlers tallysim/cli_parser.py attaches to the subcommands and tallysim/cli.py calls.

Each imports what it needs when called, so `run --help` and a refused config import no JAX.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tallysim.config import ConfigError


def seed_list(items: list[str]) -> list[str]:
    """`seed=0,1,2` in `run` means one program over consecutive seeds: seed=0 seeds=3."""
    out = []
    for item in items:
        if item.startswith("seed=") and "," in item:
            try:
                seeds = [int(v) for v in item[5:].split(",")]
            except ValueError:
                raise ConfigError(f"{item!r}: expected comma-separated integers, e.g. seed=0,1,2") from None
            if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
                raise ConfigError(f"{item!r}: seeds run as one program must be consecutive; use "
                                  "seed=FIRST seeds=N, or `tallysim sweep seed=...` for separate runs")
            out += [f"seed={seeds[0]}", f"seeds={len(seeds)}"]
        else:
            out.append(item)
    return out


def check_no_sweep_section(args) -> None:
    """`run --config FILE` where FILE (or a file it extends) has a `sweep` section: the run used the base
    alone and ignored every axis in silence (`run --config experiments/pareto/bridge.json` ran one bridge
    of the 32). A run takes it where each axis is given one value by a key=value item; the rule is
    sweep_section.refusal's, which config.load_file applies from Python."""
    if not args.config:
        return
    from tallysim import config, sweep_axes, sweep_section
    d = config.read_file(args.config)
    if sweep_section.figure_keys(d):    # a figure's: "use `tallysim sweep --config`", which refuses it as one
        sweep_section.check_load(args.config, d, sweep_base=True)
    section = d.get("sweep")
    if not isinstance(section, dict):       # none, or not an object: load_file says so, naming the file
        return
    given = {item.split("=", 1)[0].strip() for item in seed_list(args.overrides)}
    error = sweep_section.refusal(args.config, sweep_axes.file_axes(section), given)
    if error:
        raise ConfigError(error)


def config_from_args(args):
    """`--config` (and `--smoke`) with the key=value overrides on top; not validated yet."""
    from tallysim import config
    items = seed_list(args.overrides)
    check_no_sweep_section(args)        # the axes given by items: then the file's base is the run's
    cfg = config.load_file(args.config, smoke=args.smoke, sweep_base=True) if args.config else config.Config()
    return config.apply_overrides(cfg, items)


def with_tracking(cfg, args):
    from tallysim.tracking import with_tracking as flag
    return flag(cfg, args)


def _check(cfg, args=None) -> None:
    """`args`: the command line the config came from, to say where a refused field's value came from."""
    from tallysim import config, config_reads, validation
    try:
        validation.single_run(cfg)  # a field this protocol ignores refused, the warnings printed: before anything runs
        if args is not None:        # data.num_classes=10 typed on cifar100, which `unread` passes (the default)
            config_reads.check_typed(cfg, seed_list(args.overrides))
    except config_reads.UnreadField as e:        # one the user did not type: say that --config set it
        if args is None:
            raise
        raise config_reads.from_file(e, args.config and config.source_name(args.config),
                                      seed_list(args.overrides)) from None


def print_config(cfg) -> int:
    """`run --print-config`: the resolved config as config.json would hold it (`--config` takes it back);
    nothing runs, and neither JAX nor the data is loaded."""
    import json
    import sys
    from tallysim import config, validation
    cfg = config.validate(cfg)
    validation.check_data_path(cfg)          # the run's data, as it starts (not validate's: field_checks)
    check_dataset(cfg)
    print(json.dumps(config.to_dict(cfg), indent=2))
    print(f"tallysim: {validation.memory_note(cfg)}", file=sys.stderr)     # stdout stays the JSON --config reads
    return 0


def check_dataset(cfg) -> None:
    """data.name that names no dataset here (a typo), refused before anything loads (loading.check_available)."""
    from tallysim.data import loading
    loading.check_available(cfg.data)


def check_checkpoint_every(args) -> None:
    """--checkpoint-every, as run, sweep and figure read it (one meaning, one refusal), before anything
    loads or compiles."""
    every = getattr(args, "checkpoint_every", None)
    if every is not None and every < 0:
        raise ConfigError(f"--checkpoint-every {every}: allowed 0 (never) or a number of rounds")


def cmd_run(args) -> int:
    if args.print_config and args.resume:
        raise ConfigError("--print-config prints the config a run would use; with --resume that is "
                          "OUT/config.json: read it there")
    given = [flag for flag, on in (("--out", args.out is not None), ("--overwrite", args.overwrite),
                                   ("--checkpoint-every", getattr(args, "checkpoint_every", None) is not None)) if on]
    if args.print_config and given:     # ignored in silence: a user may expect DIR/config.json written
        raise ConfigError(f"--print-config prints the config a run would use and writes nothing, so {given[0]} is "
                          "not read with it; allowed: --print-config alone (`> FILE` keeps the JSON, which "
                          "--config reads), or the run without --print-config")
    if args.out is None and not args.print_config:
        raise ConfigError("run needs --out DIR (the directory the run writes), or --print-config")
    check_no_sweep_section(args)
    if args.print_config:
        cfg = config_from_args(args)
        _check(cfg, args)
        return print_config(with_tracking(cfg, args))
    from tallysim.results import metrics
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it; pass one")
    check_checkpoint_every(args)
    if args.resume and not args.config:
        from tallysim import config, existing_run, outdir, validation
        d = outdir.destination(args.out)
        if not outdir.is_run_dir(d):
            raise ConfigError(existing_run.not_a_run(d, args.out, "--resume", outdir.CLI))
        if not (d / outdir.CHECKPOINT).is_file():   # before its config.json is read: a run stopped before
            from tallysim import checkpoint        # writing one said "config file ... does not exist"
            raise ConfigError(checkpoint.nothing_to_resume(d, args.out))
        cfg = outdir.run_config(d, "--resume", outdir.CLI)     # the run's own config
        if args.overrides:
            # on top of the run's own config, as with --config: on top of the defaults, `--resume
            # log.tensorboard=DIR` (which may differ) was refused as "protocol 'local' but the config now
            # names 'tally' (config.json edited?)", and any item named other fields than the ones it set
            own = config.validate(cfg)
            cfg = config.apply_overrides(cfg, seed_list(args.overrides))
            # checked as a single run's only if the run's own config passes as one (a sweep's shared base)
            validation.single_run(cfg, resumed=True, own=own)
    else:
        from tallysim import outdir
        if not args.resume:     # --resume may continue a sweep's run there, as the sweep would
            outdir.refuse_in_sweep(args.out, "--out")
        cfg = config_from_args(args)
        _check(cfg, args)
        check_dataset(cfg)                  # was said after JAX had started
        from tallysim import storage_notes
        # a costly default (stacked stateless clients, an O(P) draw), or auto stacking a stateful run's clients
        for note in [*storage_notes.run_notes(cfg), *filter(None, [storage_notes.stateful_note(cfg)])]:
            print(f"tallysim: note: {note}", file=sys.stderr)
    cfg = with_tracking(cfg, args)
    from tallysim import tracking
    tracking.check_out(cfg, args.out)   # before JAX, as every other refusal of a run's input
    from tallysim import startup
    startup.start_jax()                 # validated: only now JAX (a refusal above imports none)
    from tallysim import run            # after start_jax: jax.distributed comes before anything else
    last = run.run(cfg, args.out, overwrite=args.overwrite, progress=not args.quiet,
                   checkpoint_every=args.checkpoint_every, resume=args.resume)
    print(metrics.summary_line(run.config.validate(cfg), last))
    _note_floor(last, args.out)
    return 0


def _note_floor(last: dict, out) -> None:
    """The run's accuracy at the floor of always predicting the most frequent test target: said on stderr
    (headline.floor_note), since the summary line's number alone read as a result."""
    from tallysim.results import headline, partition_file
    if last:
        note = headline.floor_note(last.get(headline.headline_key(last)), partition_file.majority(last.get("out") or out))
        if note:
            print(note, file=sys.stderr)


def cmd_plot(args) -> int:
    from tallysim.results.figure_files import FLAGS
    from tallysim.results.plot import plot_curves
    out = plot_curves(args.runs, args.out, metric=args.metric, title=args.title, labels=args.label, names=FLAGS)
    # every file written, one a line, as pareto prints its own: the .csv beside the image went unnamed
    print(out)
    print(Path(out).with_suffix(".csv"))
    return 0


def cmd_clean(args) -> int:
    # make clean's own check and removal (clean.py): only what tallysim wrote goes, anything else refuses
    from tallysim import clean
    return clean.main([args.dir], say_missing=True)


def cmd_sweep(args) -> int:
    check_checkpoint_every(args)
    from tallysim import outdir, sweep_command
    outdir.refuse_in_sweep(args.out, "--out")       # a sweep in another sweep's folder
    outdir.refuse_sweep_at_top(args.out)
    return sweep_command.main(args)


def cmd_pareto(args) -> int:
    from tallysim.results import pareto
    return pareto.main(args)


def cmd_prepare(args) -> int:
    from tallysim import data
    if args.path is not None and len(args.names) > 1:    # each name got one copy of the same files
        raise ConfigError(f"prepare --path {args.path} {' '.join(args.names)}: --path imports one dataset, under "
                          f"one name; allowed: one name with --path (several names only without it)")
    listed = [n for n in args.names if "," in n]
    if listed:      # "tfds has no classification dataset by that name", after asking tfds for it
        raise ConfigError(f"prepare {listed[0]}: a dataset name holds no comma; allowed: names separated by spaces, "
                          f"prepare {' '.join(x for x in listed[0].split(',') if x)}")
    # a name given twice was prepared twice (Shakespeare parsed again, a download fetched again)
    for name in dict.fromkeys(args.names):
        print(f"{name}: {data.prepare(name, args.path)}")
    return 0


def cmd_figure(args) -> int:
    check_checkpoint_every(args)
    from tallysim import figures, outdir
    outdir.refuse_in_sweep(args.results, "--results", itself=True)
    return figures.main(args)


def cmd_bench(args) -> int:
    from tallysim.bench import check_json_dest
    check_json_dest(getattr(args, "json", None))      # before anything is measured
    if getattr(args, "sample", 0) < 0:
        raise ConfigError(f"--sample {args.sample}: allowed 0 (every run) or a number of runs to time")
    check_bench_counts(args)
    from tallysim.bench import flags
    flags.check(args)                                 # modes, lists and flags against each other
    if args.sweep:
        from tallysim.bench import sweep as bench_sweep
        return bench_sweep.main(args)
    if getattr(args, "round", False):
        from tallysim.bench import rounds as bench_round
        return bench_round.main(args)
    if getattr(args, "population", False):
        from tallysim.bench import population as bench_population
        return bench_population.main(args)
    if args.devices:
        from tallysim.bench import devices as bench_devices
        return bench_devices.main(args)
    from tallysim.bench import throughput as bench
    rows = bench.main(args)
    return 1 if any(r.get("failed") for r in rows) else 0     # a failed cell: the table says which, rc 1


def check_bench_counts(args) -> None:
    """bench's counts, before anything is measured: `or DEFAULT` read a 0 as the default (`--repeats 0`
    timed 3 repeats, `--examples 0` 24 examples), and `--population --peers 0` measured 10 clients first."""
    for flag in ("repeats", "examples", "stacked_max"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise ConfigError(f"bench --{flag.replace('_', '-')} {value}: allowed a positive integer")
    if getattr(args, "loop_max", 0) < 0:
        raise ConfigError(f"bench --loop-max {args.loop_max}: allowed 0 (no per-peer loop) or a largest P")
    if getattr(args, "population", False) and getattr(args, "peers", None) is not None:
        from tallysim.bench.population import sizes
        sizes(args.peers)

