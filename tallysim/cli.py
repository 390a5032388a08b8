"""`python -m tallysim run|sweep|plot|pareto|prepare|bench ...`

User errors print one line `tallysim: error: ...` and exit with code 2, before anything compiles.
This module is the entrance (`main`): what happens before the arguments are parsed (refusing --out,
loading plugins) and the errors a user can fix. The parser is tallysim/cli_parser.py, what each
subcommand does tallysim/cli_commands.py; their names stay importable from here.
"""
from __future__ import annotations

import argparse
import os
import sys

from tallysim.cli_commands import (cmd_bench, cmd_figure, cmd_pareto, cmd_plot, cmd_prepare,  # noqa: F401
                                   cmd_run, cmd_sweep, config_from_args, print_config, seed_list, with_tracking)
from tallysim.cli_parser import PLUGIN_HELP, parse, parser, refuse_repeated_options  # noqa: F401
from tallysim.config import ConfigError
from tallysim.fields import ENV_FLAGS, env_flag
from tallysim.startup import compile_cache, start_jax  # noqa: F401 - cli.compile_cache, as before

# The names these had when they were private to this module (tests call them)
_seed_list, _config, _parse = seed_list, config_from_args, parse


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
    pre.add_argument("--out")               # given once: main() refused a repeated option already
    known, _ = pre.parse_known_args(argv[1:])
    if known.out is not None and not (known.resume or known.help or known.h or known.print_config):
        from tallysim import outdir
        outdir.refuse_in_sweep(known.out, "--out")      # first: a sweep's run is replaced only by its sweep
        outdir.check(known.out, known.overwrite)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's time limit or preemption, `kill`) or SIGHUP (the terminal closed),
    raised in the main thread like Ctrl-C. Python's default for them ended the process on the spot: no
    message, and a checkpoint being written left its temporary file behind; now the same unwinding as
    Ctrl-C runs (atomic writes remove their temporary files, the lock is released) and the exit status
    is the shell's for that signal (128 + its number)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


def catch_termination():
    """Turn SIGTERM and SIGHUP into Terminated where they would kill the process outright (the default
    handler; one a caller set, or nohup's ignore, is left alone). Returns a function that restores them."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    before = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            before[sig] = signal.signal(sig, _raise_terminated)
    return lambda: [signal.signal(sig, h) for sig, h in before.items()]


def interrupted(e: KeyboardInterrupt, args) -> int:
    """The one line an interrupted command prints, and its exit status: what is kept, and how to go on."""
    import signal
    signum = e.signum if isinstance(e, Terminated) else signal.SIGINT
    what = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    print(f"tallysim: {what}{_kept(args)}{_how_to_continue(args)}", file=sys.stderr)
    return 128 + signum


def _kept(args) -> str:
    """"; metrics written so far are kept" for the commands that write metrics (run, sweep, figure); an
    interrupted `prepare`, `table` or `plot` said so too, of metrics it never writes."""
    return "; metrics written so far are kept" if getattr(args, "fn", None) in (cmd_run, cmd_sweep, cmd_figure) else ""


def end_now(code: int) -> None:
    """End the interrupted command's process with `code`, without the interpreter's teardown. A signal
    that arrives while XLA compiles is handled at once (jax checks Python's signals inside its compile
    call, so the interrupt raises out of it), but XLA's own compile threads go on, and the interpreter
    shutting down under them crashed: measured with jax 0.10.2 on the demo config, SIGTERM 8 s into its
    35 s compile printed the interrupted line within 0.2 s, then the process died of SIGSEGV 4 s later
    (exit 139, "Fatal Python error: Segmentation fault", instead of 143). Nothing is left to write by
    then: the unwinding closed the metrics file and the trackers, atomic writes finished or removed
    their temporary files, and the kernel drops the run's lock with the process. The command line's
    path only (`python -m tallysim`, the `tallysim` script): cli.main([...]) from Python returns."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a pipe whose reader Ctrl-C ended too (`| tee log`), a closed stream:
            pass                        # the BrokenPipeError's traceback replaced the exit code (1, not 130)
    os._exit(code)


def _how_to_continue(args, then: str = "") -> str:
    """`run`: whether `--resume` can continue (a checkpoint is there) or not; `sweep`: run it again. (The
    disk-full line said "run --resume continues from its last checkpoint" where there was none.)"""
    fn, out = getattr(args, "fn", None), getattr(args, "out", None)
    from pathlib import Path
    from tallysim import outdir
    if fn is cmd_sweep:     # a run without a checkpoint starts again: say how many. "saved no checkpoint yet"
        #                     read as if one were coming, where a sweep's grouped runs (its default) save none
        try:
            runs = [d for d in Path(out).iterdir() if d.is_dir()] if out and Path(out).is_dir() else []
            over = sum(outdir.run_state(d) == "stopped" for d in runs)
        except OSError:     # a directory it may not read: the line without the count (it raised, and a
            over = 0        # traceback took the interrupted line's place)
        every = getattr(args, "checkpoint_every", None)
        # with --checkpoint-every K every run saves its own (a group too): such a run stopped before its
        # first K rounds ended (in its compile, say). "runs that share a program save none" was said of
        # them too, telling a user who gave K that K had been ignored
        why = (f"they stopped before their first checkpoint (every {every} round(s))" if every else
               "runs that share a program save none without --checkpoint-every K; --one-at-a-time runs save "
               "one every 5 minutes" if every is None else "--checkpoint-every 0 saves none")
        return (f"; {then}the same sweep command, run again, continues it" +
                (f" ({over} unfinished run(s) have no checkpoint and start again from round 1: {why})"
                 if over else ""))
    if fn is cmd_figure:    # `kill` of a figure said only that its metrics were kept, not how to go on
        return (f"; {then}the same figure command, run again, continues it (finished runs are skipped; a run "
                "that saved no checkpoint yet starts again from round 1)")
    if fn is not cmd_run or not out:
        return ", then rerun" if then else ""
    try:
        saved = (Path(out) / outdir.CHECKPOINT).is_file()
    except OSError:         # not readable (EACCES): whether it saved one is not known
        return (f"; {then}`tallysim run --out {out} --resume` continues from its last checkpoint if it saved "
                "one (see --checkpoint-every)")
    if saved:
        return f"; {then}`tallysim run --out {out} --resume` continues from its last checkpoint"
    return (f"; it had saved no checkpoint yet (see --checkpoint-every), so --resume cannot continue it: "
            f"{then}run it again with --overwrite")


def _with_progress(args) -> int:
    """A command that shows progress, under its --progress (checked with TALLYSIM_PROGRESS* first)."""
    from tallysim import progress_base as progress
    mode = getattr(args, "progress", None)
    if mode is not None and getattr(args, "quiet", False):
        raise ConfigError(f"--quiet shows no progress and --progress {mode} shows it; allowed: one of them")
    if not getattr(args, "quiet", False):
        progress.check_env()
    for var in ENV_FLAGS:       # each read only where it matters (a missing dataset, model.conv=pallas): now
        env_flag(var)
    # Python buffers stdout in blocks when it is a file or a pipe: in `> log 2>&1` a sweep's `[3/12] ...`
    # and summary lines would land kilobytes after the progress lines of stderr they belong with
    # (for this command only: cli.main called from a script leaves the script's stdout as it found it)
    out, was = sys.stdout, getattr(sys.stdout, "line_buffering", None)
    if not progress.is_terminal(out) and hasattr(out, "reconfigure") and was is False:
        try:
            out.reconfigure(line_buffering=True)
        except (ValueError, OSError, TypeError):       # a detached or odd stream: left as it is
            was = None
    else:
        was = None
    try:
        with progress.forced(mode):
            return args.fn(args)
    finally:
        if was is not None:
            try:
                out.reconfigure(line_buffering=was)
            except (ValueError, OSError, TypeError):   # closed by the command: nothing to restore
                pass


# Options naming a file or directory: a leading `~` is expanded, as a shell does unquoted. Quoted (or from
# make's OUT='~/x'), table, plot and pareto wrote into a directory literally named `~` here, which the
# `rm -rf ~` meant to remove it takes the home with it. outdir.destination does the same for run outputs.
PATH_OPTIONS = ("out", "results", "tensorboard", "config")


def main(argv=None, repeats: bool = None) -> int:
    """The command. `repeats`: may a key=value list name a key twice (later wins)? Not on the command
    line (argv None: a repeat is a typo or a paste); from Python (cli.main([...]), as tests and scripts
    extend a base list) by default yes, as config.apply_overrides does."""
    repeats = argv is not None if repeats is None else repeats
    command_line = argv is None
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        refuse_repeated_options(parser(), argv)     # first: `--out a --out b` must touch neither
        check_out_first(argv)
        argv = load_plugins(argv)
    except ConfigError as e:
        print(f"tallysim: error: {e}", file=sys.stderr)
        return 2
    args = parse(argv)
    restore = catch_termination()
    try:
        from tallysim import outdir
        for key, value in vars(args).items():   # undecodable bytes anywhere: one line now, not a traceback later
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    positional = key in ("overrides", "axes", "runs", "names", "figure", "dir")
                    outdir.check_text(item, "argument" if positional else f"--{key.replace('_', '-')}")
            if key in PATH_OPTIONS and isinstance(value, str):
                setattr(args, key, os.path.expanduser(value))
        shipped_config(args)
        if getattr(args, "smoke", False) and args.fn in (cmd_run, cmd_sweep) and not args.config:
            raise ConfigError(f"--smoke applies the --config file's `smoke` section, and no --config is given; "
                              f"allowed: --config FILE --smoke, or leave out --smoke")
        if not repeats and args.fn in (cmd_run, cmd_sweep):
            from tallysim import config
            items = seed_list(args.overrides) if args.fn is cmd_run else args.axes
            config.check_repeats(items, "on the command line" if args.fn is cmd_run else
                                 "on the command line (one sweep axis per key: key=v1,v2,...)")
        if args.fn in (cmd_run, cmd_sweep, cmd_figure):
            return _with_progress(args)
        return args.fn(args)
    except ConfigError as e:
        print(f"tallysim: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        import errno
        if e.errno in (errno.ENOSPC, errno.EDQUOT):     # a full disk is the user's to fix, not a bug
            where = f" writing {e.filename}" if e.filename else ""
            print(f"tallysim: error: the disk is full{where} ({e.strerror or e}){_kept(args)}: free some "
                  f"space{_how_to_continue(args, 'then ')}", file=sys.stderr)
            return 2
        if e.filename is None:          # not about a path the user gave: a real failure, keep the traceback
            raise
        print(f"tallysim: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        code = interrupted(e, args)
        if command_line:
            end_now(code)
        return code
    except RuntimeError as e:
        if type(e).__name__ in ("NonFiniteLoss", "NotTogether"):     # the run's own words (memory_retry.py)
            print(f"tallysim: error: {e}", file=sys.stderr)
            return 1
        raise
    finally:
        restore()
