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
    for its config or JAX's random generator, and the first finished run of another protocol or dataset
    (EXPERIMENT); a finished run of another config otherwise is kept and noted (sweep.py), and an
    unreadable checkpoint still runs again, as before."""
    from tallysim import checkpoint
    for (name, _), cfg in zip(runs, cfgs):
        d = out_dir / name
        if (d / done).exists():
            _refuse_other_experiment(d, name, cfg)
            continue
        if not (d / checkpoint.FILE).is_file():
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


# Fields a finished run cannot differ in and still be this sweep's run "edited since": another protocol or
# dataset is another experiment. A tally-only sweep into the folder of a softlabel-only one (both named
# `model.name=lstm__seed=0`: neither sweep had the protocol as an axis) skipped every run as done, tally never ran.
EXPERIMENT = ("protocol.name", "data.name")


def _refuse_other_experiment(d: Path, name: str, cfg) -> None:
    try:
        old = json.loads((d / "config.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return                          # nothing to compare: skipped as done, as before
    if not isinstance(old, dict):
        return
    now = config.to_dict(cfg)
    for key in EXPERIMENT:
        section, field = key.split(".")
        was, wants = (old.get(section) or {}).get(field), now[section][field]
        if was is not None and was != wants:
            raise ConfigError(
                f"sweep: {d} is a finished run of {key}={was}, and this sweep's run {name} is {key}={wants}: "
                f"another experiment's results under the same name, which the sweep would skip as done, never "
                f"running {wants}; allowed: another --out for this sweep (or move {d} away); a sweep's axes "
                f"name its runs, so two sweeps that differ in a field neither sweeps share names")


def refuse_smoke_mix(out_dir: Path, runs, smoke, done: str) -> None:
    """A full sweep into a `--smoke` sweep's --out (or the other way round): the runs share their names (the
    axes name them), so every finished smoke run was skipped as done, with only a note, and sweep.json then
    said `"smoke": false` over a table of 1-round results. Refused (ConfigError) where the index says the
    other and a run of `runs` has finished there; `smoke`: this sweep's (None: not known, nothing checked)."""
    if not isinstance(smoke, bool):
        return
    try:
        old = json.loads((Path(out_dir) / "sweep.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):     # a damaged index: nothing to say
        return
    was = old.get("smoke") if isinstance(old, dict) else None
    finished = [name for name, _ in runs if (Path(out_dir) / name / done).exists()]
    if not isinstance(was, bool) or was == smoke or not finished:
        return
    what = {True: "a --smoke sweep's (its smoke section applied)", False: "a full-size sweep's (no --smoke)"}
    raise ConfigError(f"sweep: {out_dir} holds {what[was]} finished runs ({first_few(finished, 3)}), which this "
                      f"{'--smoke ' if smoke else 'full-size '}sweep would skip as done under the same names; "
                      f"allowed: another --out for it (or {'leave out' if was is False else 'add'} --smoke to "
                      "continue the sweep that is there)")


def after_group(left: list, dirs: list) -> tuple[list, list]:
    """A group that ran out of memory even one lane at a time (sweep._run_grouped): of its runs not
    finished (`left`, their directories `dirs`), (those with a checkpoint, which resume from it each
    alone as a sweep run again resumes them; the rest, whose rounds a smaller group runs from round 1)."""
    from tallysim.outdir import CHECKPOINT
    alone = [i for i, d in zip(left, dirs) if (d / CHECKPOINT).is_file()]
    return alone, [i for i in left if i not in alone]


def after_group_words(finished: int, alone: int, rest: int, stopped: int = 0) -> str:
    """What the sweep says it does next (after_group): `2 runs finished, kept; 1 run stopped (loss not
    finite), kept; 1 run resumes from its checkpoint alone; running the other 3 as two smaller groups`."""
    def runs(n: int) -> str:
        return f"{n} run{'' if n == 1 else 's'}"
    said = ([f"{runs(finished)} finished, kept"] if finished else []) + \
        ([f"{runs(stopped)} stopped (loss not finite), kept"] if stopped else []) + \
        ([f"{runs(alone)} resume{'s' if alone == 1 else ''} from {'its' if alone == 1 else 'their'} checkpoint"
          f"{' alone' if alone == 1 else 's, each alone'}"] if alone else [])
    if rest > 1:
        said.append(f"running the other {rest} as two smaller groups" if said else "running it as two smaller groups")
    elif rest:
        said.append(f"running {'the other' if said else 'it'} alone")
    return "; ".join(said)
