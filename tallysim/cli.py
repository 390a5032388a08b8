"""`python -m tallysim run|sweep|plot|pareto|prepare|bench ...`

User errors print one line `tallysim: error: ...` and exit with code 2, before anything compiles.
"""
from __future__ import annotations

import argparse
import sys

from tallysim.config import ConfigError


def _seed_list(items: list[str]) -> list[str]:
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


def _config(args):
    from tallysim import config
    items = _seed_list(args.overrides)
    cfg = config.load_file(args.config, smoke=args.smoke) if args.config else config.Config()
    return config.apply_overrides(cfg, items)


def with_tracking(cfg, args):
    from tallysim.tracking import with_tracking as flag
    return flag(cfg, args)


def _check(cfg) -> None:
    from tallysim import config, validation
    validation.check_read(config.validate(cfg))     # a field this protocol ignores: one line, before anything runs
    for w in validation.warnings(config.validate(cfg)):
        print(f"tallysim: warning: {w}", file=sys.stderr)


def print_config(cfg) -> int:
    """`run --print-config`: the resolved config as config.json would hold it (`--config` takes it back);
    nothing runs, and neither JAX nor the data is loaded."""
    import json
    from tallysim import config
    print(json.dumps(config.to_dict(config.validate(cfg)), indent=2))
    return 0


def cmd_run(args) -> int:
    if args.print_config and args.resume:
        raise ConfigError("--print-config prints the config a run would use; with --resume that is "
                          "OUT/config.json: read it there")
    if args.out is None and not args.print_config:
        raise ConfigError("run needs --out DIR (the directory the run writes), or --print-config")
    if args.print_config:
        cfg = _config(args)
        _check(cfg)
        return print_config(with_tracking(cfg, args))
    from tallysim import run
    from tallysim.results import metrics
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it; pass one")
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every {args.checkpoint_every}: allowed 0 (never) or a number of rounds")
    if args.resume and not args.config and not args.overrides:
        from tallysim import config, outdir
        d = outdir.destination(args.out)
        if not outdir.is_run_dir(d):
            raise ConfigError(f"--resume: {args.out} is not a tallysim run directory")
        cfg = config.load_file(str(d / metrics.CONFIG))     # the run's own config
    else:
        cfg = _config(args)
        _check(cfg)
    cfg = with_tracking(cfg, args)
    last = run.run(cfg, args.out, overwrite=args.overwrite, progress=not args.quiet,
                   checkpoint_every=args.checkpoint_every, resume=args.resume)
    print(metrics.summary_line(run.config.validate(cfg), last))
    return 0


def cmd_plot(args) -> int:
    from tallysim.results.plot import plot_curves
    print(plot_curves(args.runs, args.out, metric=args.metric, title=args.title, labels=args.label))
    return 0


def cmd_sweep(args) -> int:
    from tallysim import sweep
    return sweep.main(args)


def cmd_pareto(args) -> int:
    from tallysim.results import pareto
    return pareto.main(args)


def cmd_prepare(args) -> int:
    from tallysim import data
    for name in args.names:
        print(f"{name}: {data.prepare(name, args.path)}")
    return 0


def cmd_figure(args) -> int:
    from tallysim import figures
    return figures.main(args)


def cmd_bench(args) -> int:
    from tallysim.bench import check_json_dest
    check_json_dest(getattr(args, "json", None))      # before anything is measured
    if getattr(args, "sample", 0) < 0:
        raise ConfigError(f"--sample {args.sample}: allowed 0 (every run) or a number of runs to time")
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
    bench.main(args)
    return 0


def parser() -> argparse.ArgumentParser:
    from tallysim import __version__
    p = argparse.ArgumentParser(prog="tallysim", description="JAX simulator for communication-efficient "
                                "federated learning (TallyTrain, soft-label distillation, FedAvg family).")
    p.add_argument("--version", action="version", version=f"tallysim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    from tallysim.config import help_table
    r = sub.add_parser("run", help="run one configuration", epilog=help_table(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config fields, e.g. peers=20")
    r.add_argument("--config", help="JSON config file (overrides apply on top)")
    r.add_argument("--smoke", action="store_true", help="apply the config file's `smoke` section")
    r.add_argument("--out", help="output directory (must be empty unless --overwrite); required unless "
                   "--print-config")
    r.add_argument("--print-config", action="store_true", help="print the resolved config (JSON, as "
                   "config.json would hold it) and exit without running; JAX is not imported")
    r.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--checkpoint-every", type=int, metavar="K",
                   help="save a checkpoint every K rounds (default: every 5 minutes; 0: never)")
    r.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint (same config; with no config "
                   "given, the run's own config.json)")
    r.add_argument("--tensorboard", metavar="DIR", help="also write the metrics, the config (hparams) and "
                   "the final figure as TensorBoard events into DIR/<name of --out>-<hash of its path> (log.tensorboard)")
    r.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    r.set_defaults(fn=cmd_run)

    sw = sub.add_parser("sweep", help="run the cross product of config values (resumable)",
                        description="Run every combination of the listed values into OUT/<name>/ "
                        "(name from the varying keys, e.g. protocol.name=tally__bridge.density=0.01). "
                        "Complete runs (done.json) are skipped, partial ones rerun, so rerunning the "
                        "same command resumes an interrupted sweep.")
    sw.add_argument("axes", nargs="*", metavar="key=v1,v2,...",
                    help="comma-separated values per key (one value = plain override); these replace "
                    "the config file's `sweep` axes with the same key")
    sw.add_argument("--config", help="JSON config file; its optional `sweep` section "
                    '{"key": [values, ...]} adds axes')
    sw.add_argument("--smoke", action="store_true", help="apply the config file's `smoke` section")
    sw.add_argument("--out", required=True, help="sweep directory (one subdirectory per run, sweep.json)")
    sw.add_argument("--quiet", action="store_true", help="no per-round progress bar")
    sw.add_argument("--dry-run", action="store_true", help="validate and list the runs, run nothing")
    sw.add_argument("--one-at-a-time", action="store_true",
                    help="run each configuration as its own program (default: configurations that differ "
                    "only in learning rates, weights, temperatures, partition, seed or rounds share one)")
    sw.add_argument("--tensorboard", metavar="DIR", help="TensorBoard events of each run into DIR/<run name>-<hash>, "
                    "its config as hparams, so TensorBoard's hparams view compares them (log.tensorboard)")
    sw.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    sw.set_defaults(fn=cmd_sweep)

    pa = sub.add_parser("pareto", help="final/best accuracy vs total bits per peer, frontier per protocol")
    pa.add_argument("runs", nargs="+", metavar="DIR",
                    help="run directories or directories above them (e.g. a sweep's --out)")
    pa.add_argument("--out", required=True, help="figure file (.png or .pdf); tables go next to it as "
                    "<stem>_frontier.csv, <stem>_frontier.md, <stem>_points.csv")
    pa.add_argument("--which", choices=("final", "best"), default="final",
                    help="accuracy of the last evaluation or the best over rounds (default final)")
    pa.add_argument("--metric", default="auto", help="accuracy column (default: acc_global if present "
                    "else acc_mean)")
    pa.add_argument("--title")
    pa.set_defaults(fn=cmd_pareto)

    pl = sub.add_parser("plot", help="accuracy vs cumulative bits per peer for run directories")
    pl.add_argument("runs", nargs="+", help="run directories (each with metrics.jsonl)")
    pl.add_argument("--out", required=True, help="figure file (.png or .pdf)")
    pl.add_argument("--metric", default="auto", help="y column (default: acc_global if present else acc_mean; "
                    "ppl: that model's test perplexity, next-token runs)")
    pl.add_argument("--title")
    pl.add_argument("--label", action="append", metavar="NAME", help="legend entry of each run, in order "
                    "(repeat once per run; default: the protocol, plus what tells same-protocol runs apart)")
    pl.set_defaults(fn=cmd_plot)

    from tallysim.results import table
    table.add_parser(sub)

    pr = sub.add_parser("prepare", help="prepare datasets into the cache: fashion_mnist from Debian's "
                        "dataset-fashion-mnist files when installed, --path from local IDX/npz files, else "
                        "downloaded with tfds (needs TensorFlow and internet)")
    pr.add_argument("names", nargs="+", help="tfds names, e.g. fashion_mnist cifar10 emnist/balanced")
    pr.add_argument("--path", help="read IDX/npz files from this directory instead of downloading")
    pr.set_defaults(fn=cmd_prepare)

    f = sub.add_parser("figure", help="run and draw paper figures (fig1..fig10, robustness, or all)")
    f.add_argument("figure", nargs="+", help="fig1 ... fig10, robustness, all, or a path to a figure config")
    f.add_argument("--smoke", action="store_true", help="the few-minute version of each figure")
    f.add_argument("--results", default="results", help="where the runs go (resumable)")
    f.add_argument("--out", default="figures", help="where figures, CSV and tables go")
    f.add_argument("--quiet", action="store_true", help="no per-round progress bars")
    f.add_argument("--one-at-a-time", action="store_true",
                   help="run each configuration as its own program (default: as `sweep`, shared programs)")
    f.add_argument("--dry-run", action="store_true",
                   help="validate, and print each group's runs and compiled programs; run nothing")
    f.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    f.set_defaults(fn=cmd_figure)

    b = sub.add_parser("bench", help="samples/s of tallysim's round vs a per-peer loop and the plain-JAX "
                       "yardstick, one table", description="Local-training samples/s of tallysim's round "
                       "(peers grouped as a run groups them), its per-peer loop (conv=xla) and the plain-JAX "
                       "vmap_ref yardstick (no PyTorch rows yet). Full grid: --model mlp,lenet,cnn,resnet8 "
                       "--peers 10,100,1000 --dtype float32,bfloat16 --steps 20; on a CPU the default is "
                       "--model mlp,lenet,cnn --peers 10,100 --dtype float32 --steps 2, CNN at P=10 only (or --full).")
    b.add_argument("--model", help="comma list of models (default: see above)")
    b.add_argument("--peers", help="comma list of peer counts P")
    b.add_argument("--dtype", help="comma list: float32, bfloat16")
    b.add_argument("--steps", type=int, help="local steps per peer (20; 2 on a CPU)")
    b.add_argument("--batch", type=int, default=32)
    b.add_argument("--impl", help="comma list of tallysim, loop, vmap_ref, torch_ref (default: all)")
    b.add_argument("--loop-max", type=int, default=100, help="largest P timed as a per-peer loop")
    b.add_argument("--repeats", type=int, default=3, help="timed runs per cell (median)")
    b.add_argument("--conv", choices=("auto", "xla", "im2col"),
                   help="model.conv of the tallysim column (default auto: im2col on a CPU, xla elsewhere)")
    b.add_argument("--full", action="store_true", help="the full grid even on a CPU")
    b.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="the rows as a JSON list: on stdout (table to stderr), or into FILE")
    b.add_argument("--sweep", action="store_true",
                   help="instead: time a fixed 108-run tally sweep grouped and one at a time (runs/hour, ratio)")
    b.add_argument("--smoke", action="store_true", help="with --sweep: its 8-run, 3-round version")
    b.add_argument("--data", help="with --sweep: fashion_mnist (default) or synthetic")
    b.add_argument("--sample", type=int, default=0, metavar="N",
                   help="with --sweep: time one at a time on N evenly spaced runs only (0: all)")
    b.add_argument("--round", action="store_true",
                   help="instead: a whole round of local, tally, softlabel, bridge and fedavg, each against local "
                   "training alone (default: CNN, P=100, bfloat16 on an accelerator; MLP, P=10, float32 on a "
                   "CPU; --model/--peers/--dtype/--steps change it)")
    b.add_argument("--protocols", help="with --round: comma list (default: local,tally,softlabel,bridge,fedavg)")
    b.add_argument("--devices", metavar="1,2,4,8",
                   help="instead: samples/s of the CNN FedAvg round with 8 peers sharded over these device "
                   "counts (on a CPU: XLA_FLAGS=--xla_force_host_platform_device_count=8)")
    b.add_argument("--population", action="store_true",
                   help="instead: FedAvg over 10^4, 10^5, 10^6 synthetic clients, 10 and 100 per round: peak RSS and "
                   "s/round, server model alone (client_storage=auto) vs every client stacked (docs/population.md; "
                   "--peers changes the populations)")
    b.add_argument("--examples", type=int, help="with --population: examples per client (24)")
    b.add_argument("--stacked-max", type=int, help="with --population: the largest population also timed stacked "
                   "(100000)")
    b.add_argument("--cohort-draw", metavar="sort,sequential",
                   help="with --population: comma list of cohort_draw values timed with client_storage=auto "
                   "(default: sort,sequential; the stacked storage runs with the first)")
    b.set_defaults(fn=cmd_bench)
    return p


PLUGIN_HELP = ("import this module first and add the protocols its PROTOCOLS lists (repeatable; also "
               '"plugins": [...] in a config file, or a `tallysim.protocols` entry point)')


def load_plugins(argv: list) -> list:
    """Load every `--plugin MODULE` (anywhere in argv, before the parser is built: a plugin adds
    protocol names and config fields to `run --help` and to the overrides); return argv without them."""
    import os
    from tallysim import protocols
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())      # `--plugin my_protocols` for ./my_protocols.py, as `python -m` does
    rest, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--plugin" or a.startswith("--plugin="):
            module = a.split("=", 1)[1] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else "")
            i += 1 if "=" in a else 2
            if not module or module.startswith("-"):
                raise ConfigError("--plugin needs a module name, e.g. --plugin my_protocols")
            protocols.load_plugin(module)
        else:
            rest.append(a)
            i += 1
    return rest


def _parse(argv):
    """argparse, but `key=value` items may also follow options (`run --quiet rounds=1`)."""
    p = parser()
    args, extra = p.parse_known_args(argv)
    dest = "overrides" if hasattr(args, "overrides") else "axes" if hasattr(args, "axes") else None
    stray = [x for x in extra if dest is None or x.startswith("-") or "=" not in x]
    if stray:
        p.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        setattr(args, dest, list(getattr(args, dest)) + extra)
    return args


def compile_cache() -> None:
    """The command line keeps XLA's compiled programs on disk (JAX's persistent compilation cache), so
    rerunning a configuration, a sweep or a figure skips compiling: ~/.cache/tallysim/xla, or
    $TALLYSIM_COMPILE_CACHE; TALLYSIM_COMPILE_CACHE=0 turns it off. JAX's own
    JAX_COMPILATION_CACHE_DIR, when set, wins. Importing tallysim as a library changes nothing."""
    import os
    from pathlib import Path
    where = os.environ.get("TALLYSIM_COMPILE_CACHE", "")
    if where == "0" or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    if not where:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        where = str(Path(base) / "tallysim" / "xla")
    import jax
    jax.config.update("jax_compilation_cache_dir", where)


def shipped_config(args) -> None:
    """A `--config` path not on disk that names a shipped config (`experiments/demo.json` outside a
    checkout, e.g. from a wheel) reads the installed copy, with a note saying so."""
    import os
    if getattr(args, "config", None) and not os.path.exists(args.config):
        from tallysim.figures import shipped_config as find
        path, shipped = find(args.config)
        if shipped:
            print(f"tallysim: note: {args.config} is not here; using the shipped copy {path}", file=sys.stderr)
            args.config = path


def check_out_first(argv: list) -> None:
    """`run --out DIR`: refuse a DIR it may not write (or, with --overwrite, replace) before any plugin
    named by --plugin or by the config file's "plugins" is imported: a plugin runs code on import."""
    if not argv or argv[0] != "run":
        return
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flag in ("--overwrite", "--resume", "-h", "--help", "--print-config"):
        pre.add_argument(flag, action="store_true")
    pre.add_argument("--out")
    known, _ = pre.parse_known_args(argv[1:])
    if known.out is not None and not (known.resume or known.help or known.h or known.print_config):
        from tallysim import outdir
        outdir.check(known.out, known.overwrite)


def main(argv=None, repeats: bool = None) -> int:
    """The command. `repeats`: may a key=value list name a key twice (later wins)? Not on the command
    line (argv None: a repeat is a typo or a paste); from Python (cli.main([...]), as tests and scripts
    extend a base list) by default yes, as config.apply_overrides does."""
    repeats = argv is not None if repeats is None else repeats
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        check_out_first(argv)
        argv = load_plugins(argv)
    except ConfigError as e:
        print(f"tallysim: error: {e}", file=sys.stderr)
        return 2
    args = _parse(argv)
    try:
        from tallysim import outdir
        for key, value in vars(args).items():   # undecodable bytes anywhere: one line now, not a traceback later
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    positional = key in ("overrides", "axes", "runs", "names", "figure")
                    outdir.check_text(item, "argument" if positional else f"--{key.replace('_', '-')}")
        shipped_config(args)
        if not repeats and args.fn in (cmd_run, cmd_sweep):
            from tallysim import config
            items = _seed_list(args.overrides) if args.fn is cmd_run else args.axes
            config.check_repeats(items, "on the command line" if args.fn is cmd_run else
                                 "on the command line (one sweep axis per key: key=v1,v2,...)")
        if args.fn in (cmd_run, cmd_sweep, cmd_figure) and not getattr(args, "print_config", False):
            # not bench: it times compiling; not --print-config: it runs nothing
            from tallysim.sim import mesh
            mesh.initialize_distributed()                    # before JAX starts: TALLYSIM_DISTRIBUTED=1
            compile_cache()
        return args.fn(args)
    except ConfigError as e:
        print(f"tallysim: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        import errno
        if e.errno in (errno.ENOSPC, errno.EDQUOT):     # a full disk is the user's to fix, not a bug
            where = f" writing {e.filename}" if e.filename else ""
            print(f"tallysim: error: the disk is full{where} ({e.strerror or e}); metrics written so far "
                  "are kept: free some space, then rerun (run --resume continues from its last checkpoint)",
                  file=sys.stderr)
            return 2
        if e.filename is None:          # not about a path the user gave: a real failure, keep the traceback
            raise
        print(f"tallysim: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tallysim: interrupted; metrics written so far are kept", file=sys.stderr)
        return 130
    except RuntimeError as e:
        if type(e).__name__ == "NonFiniteLoss":
            print(f"tallysim: error: {e}", file=sys.stderr)
            return 1
        raise
