"""A sweep run again over its partial runs: a partial run with a checkpoint continues from it (sweep.py),
unless its checkpoint holds another config than the sweep's for it (the sweep's config edited since it
stopped) or was computed under another JAX random generator; such a run is refused before any run starts,
as `run --resume` refuses it, where the sweep said "cannot resume (...); running it again" and started it
over, its rounds lost. `runs` and `cfgs` as sweep.run_sweep's, `done` its finished-run marker (done.json).
"""
from __future__ import annotations

import json
from pathlib import Path

from tallysim import config, resume_diff
from tallysim.config import ConfigError
from tallysim.fields import first_few


def refuse_lost_checkpoints(runs, cfgs, out_dir: Path, done: str) -> None:
    """Refuse (ConfigError) the first partial run of `runs` whose checkpoint this sweep could not continue
    for its config or JAX's random generator; a finished run of another config is kept and noted
    (sweep.py), and an unreadable checkpoint still runs again, as before."""
    from tallysim import checkpoint
    for (name, _), cfg in zip(runs, cfgs):
        d = out_dir / name
        if (d / done).exists() or not (d / checkpoint.FILE).is_file():
            continue
        try:
            meta = checkpoint.read_meta(d)
        except ConfigError:
            continue                    # nothing it could continue from: run again, as before
        if refusal := checkpoint.random_change(meta, d / checkpoint.FILE):     # JAX's generator: the same refusal
            raise ConfigError(f"sweep: {refusal.removeprefix('--resume: ')}"
                              f" (or delete it to run {name} again)")
        was = resume_diff.as_read_now(meta.get("config"))     # an older checkpoint's: new fields at their defaults
        if not isinstance(was, dict):
            continue
        diff = config.diff(was, json.loads(json.dumps(config.to_dict(cfg))))
        if diff and not (len(diff) == 1 and diff[0].startswith("data.path=")):   # a moved file: resume checks it
            raise ConfigError(
                f"sweep: {d} stopped after round {meta['round']} with a checkpoint of another config than this "
                f"sweep's for it ({first_few(diff, 4, ', ...')}); run now, it would "
                f"start again from round 1 and lose those rounds; allowed: the sweep's config as it was (the "
                f"run then continues), or delete {d / checkpoint.FILE} to run it again under this config")
