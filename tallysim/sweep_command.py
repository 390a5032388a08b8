"""`tallysim sweep`'s command (cli_commands.cmd_sweep): its axes read from --config's `sweep` section and
the command line, every run checked, `--dry-run`, then sweep.run_sweep (looked up on sweep, where tests
replace it) and the closing lines: how many ran, were done before, failed or diverged; split from sweep.py."""
from __future__ import annotations

import sys
from pathlib import Path

from tallysim import config, config_reads, sweep, sweep_axes, sweep_plan
from tallysim.config import Config
from tallysim.fields import count
from tallysim.progress_base import QuietLog
from tallysim.results import metrics
from tallysim.sweep_axes import expand
from tallysim.sweep_checks import INDEX, check_devices, checked_out, command_configs, warn_before



# ----------------------------------------------------------------------------- CLI

def main(args) -> int:
    from tallysim.tracking import with_tracking
    base = with_tracking(config.load_file(args.config, smoke=args.smoke, sweep_base=True) if args.config else Config(),
                         args)
    section = config.read_file(args.config).get("sweep") if args.config else None
    runs = expand(section or {}, args.axes)
    try:
        cfgs = command_configs(base, runs, args.out)   # fail in one line before anything is created
    except config_reads.UnreadField as e:    # a field the user did not type: say that --config set it
        raise config_reads.from_file(e, args.config and config.source_name(args.config), args.axes) from None
    if args.dry_run:        # seed=0,1 with seeds=2: seed 1 in two runs (run_sweep warns for a real one)
        warn_before(runs, cfgs)
    from tallysim import startup
    startup.start_jax()                      # validated: only now JAX (a refusal above imports none)
    check_devices(runs, cfgs)
    if args.dry_run:        # what the sweep would do in --out, run by run (sweep_plan.dry_run)
        return sweep_plan.dry_run(args, runs, cfgs, checked_out)
    # every axis, the file's `sweep` section's too (was only the command line's: [] for a file's axes)
    meta = {"config": args.config, "smoke": bool(args.smoke),
            "axes": sweep_axes.axis_texts(sweep_axes.merged(section or {}, args.axes))}
    records = sweep.run_sweep(base, runs, args.out, progress=not args.quiet, meta=meta,     # --quiet: docs/cli.md
                        log=QuietLog() if args.quiet else print, grouped=not getattr(args, "one_at_a_time", False),
                        checkpoint_every=getattr(args, "checkpoint_every", None))
    counts = {s: sum(r["status"] == s for r in records) for s in ("done", metrics.DONE_BEFORE, "failed")}
    # "done before", as sweep.json's status says it (docs/sweeps.md): it said "skipped (already done)"
    print(f"sweep: {count(len(records), 'run')} in {args.out}: {counts['done']} ran, {counts[metrics.DONE_BEFORE]} "
          f"done before, {counts['failed']} failed; index in {Path(args.out) / INDEX}")
    failed = [r for r in records if r["status"] == "failed"]
    for r in failed:
        print(f"  failed: {r['name']}: {r['error']}", file=sys.stderr)
    for r in records:       # finished, but a seed's NaN or inf is in its mean (the table cell reads nan)
        if r.get("seeds_diverged"):
            print(f"  diverged: {r['name']}: {r['seeds_diverged']} (its mean is NaN or inf; "
                  "metrics.jsonl's seeds_nonfinite, per_seed)", file=sys.stderr)
    return 1 if failed else 0
