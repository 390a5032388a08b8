"""An existing run directory: whether tallysim wrote it, and what it holds.

A directory is a *tallysim run* (`is_run_dir`) when it is a real directory (not a symlink) that holds the
marker `.tallysim-run` (or, for runs written before the marker existed, the full set `config.json`,
`partition.json` and `metrics.jsonl`, with a config that validates and rows that parse as tallysim's
metrics rows) and nothing but the files a run writes (`RUN_FILES`, and `atomic.py`'s temporary files for
them). Also: how it stopped (`run_state`), why --resume cannot take a directory (`not_a_run`) and the run's
own config read back for a resume (`run_config`). Split from outdir.py, which claims and checks output
directories by these and re-exports the names used elsewhere (outdir.is_run_dir, outdir.MARKER, ...).
"""
from __future__ import annotations

import json
from pathlib import Path

from tallysim import atomic
from tallysim.config import ConfigError
from tallysim.fields import NameTaken, PluginError, first_few
from tallysim.results.metrics import CONFIG, DONE, ERROR, METRICS, PARTITION, PARTITION_CLIENTS
from tallysim.run_lock import LOCK

MARKER = atomic.RUN_MARKER      # ".tallysim-run": defined in atomic.py, below outdir, which refuses outputs inside runs
CHECKPOINT = "checkpoint.npz"    # checkpoint.FILE (that module imports JAX; this one must not)
# an out-of-memory retry's copy of the checkpoint its narrower seed chunks start from (memory_retry.RETRY)
RETRY_CHECKPOINT = "checkpoint-retry.npz"
# Everything a run directory may hold; only these names are ever deleted (the lock file never is:
# unlinking a held lock would let a third process lock a new file of the same name).
RUN_FILES = frozenset({MARKER, LOCK, CONFIG, PARTITION, PARTITION_CLIENTS, METRICS, ERROR, DONE,
                       CHECKPOINT, CHECKPOINT + ".tmp", RETRY_CHECKPOINT, METRICS + ".tmp", *atomic.RUN_CURVE})


def is_run_file(name: str) -> bool:
    """A name a run writes: one of RUN_FILES or a temporary file atomic.py makes for one of them."""
    return name in RUN_FILES or atomic.is_temp_of(name, RUN_FILES)


def foreign_entries(d: Path) -> list[str]:
    """Entries of directory d that a tallysim run does not write (directories end with '/')."""
    out = []
    for e in sorted(d.iterdir()):
        if not is_run_file(e.name) or e.is_symlink() or not e.is_file():
            out.append(e.name + ("/" if e.is_dir() and not e.is_symlink() else ""))
    return out


def _has_marker(d: Path) -> bool:
    m = d / MARKER
    if m.is_symlink() or not m.is_file():
        return False
    try:
        return json.loads(m.read_text()).get("written_by") == "tallysim"
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return False


def _is_legacy_run(d: Path) -> bool:
    """A run written before the marker existed: all three of its files, a config that validates and
    metrics rows that parse. Anything less (a user's own config.json and metrics.jsonl) is not ours."""
    from tallysim import config
    if not all((d / n).is_file() and not (d / n).is_symlink() for n in (CONFIG, PARTITION, METRICS)):
        return False
    try:
        config.validate(config.load_file(str(d / CONFIG)))
        json.loads((d / PARTITION).read_text())
        for line in (d / METRICS).read_text().splitlines():
            row = json.loads(line)
            if not (isinstance(row, dict) and isinstance(row.get("round"), int) and "bits_per_peer" in row):
                return False
    except (ConfigError, OSError, ValueError, UnicodeDecodeError, SystemExit):
        return False
    return True


def is_run_dir(d: Path) -> bool:
    """True when d is a directory tallysim wrote as a run and holds nothing else."""
    if d.is_symlink() or not d.is_dir() or foreign_entries(d):
        return False
    return _has_marker(d) or _is_legacy_run(d)


def not_a_run(d: Path, out, what: str, words: dict) -> str:
    """Why `what` (--resume) cannot take d, which is_run_dir refused: "not a tallysim run directory" was
    all it said, also of the user's own run with a notes file, a link or a TensorBoard folder put in it."""
    if d.is_symlink():
        return f"{what}: {out} is not a tallysim run directory (it is a symbolic link); give the run directory itself"
    if not d.is_dir():
        return (f"{what}: {out} is not a tallysim run directory (it {'is a file' if d.exists() else 'does not exist'}); "
                "allowed: a directory a tallysim run wrote")
    foreign = foreign_entries(d)
    if foreign and (_has_marker(d) or (d / CONFIG).is_file()):
        return (f"{what}: {out} holds entries a run does not write ({describe_entries(foreign)}: a directory, a link, "
                f"or a file of its own); move them out of the run directory, then resume ({words['resume']})")
    return f"{what}: {out} is not a tallysim run directory; allowed: a directory a tallysim run wrote"


def run_config(d: Path, what: str, words: dict):
    """The run's own config.json as a Config, for a resume: deleted or damaged since, it was "config file
    ... does not exist" (or "is not valid JSON"), with no word that a resume needs it or what to do."""
    from tallysim import config
    path = d / CONFIG
    try:
        return config.load_file(str(path))
    except NameTaken as e:      # said "cannot be read ... restore it" of a config.json that is fine
        raise ConfigError(f"{what}: {path} loads its plugins, and one clashes with a plugin already loaded "
                          f"({e}); resume without the other plugin (another --plugin, or a module loaded "
                          "before in this process)") from None
    except PluginError as e:    # a plugin not on the Python path here: the same misleading advice
        raise ConfigError(f"{what}: {path} names a plugin this process cannot load ({e}); make "
                          "it importable (as the run had it) and resume again") from None
    except ConfigError as e:
        why = "is missing" if not path.exists() and not path.is_symlink() else f"cannot be read ({e})"
        raise ConfigError(f"{what}: {path} {why}; it is the run's own config, which a resume continues under; "
                          f"restore it, or start the run again with {words['overwrite']}") from None


def describe_entries(entries: list[str]) -> str:
    """The first few entries a message names ("a, b, c, d and 2 more")."""
    return first_few(entries, 4)


def run_state(d: Path) -> str | None:
    """"interrupted" (a checkpoint to resume from), "finished" (no checkpoint, and metrics.jsonl's last
    row is config.json's last round) or "stopped" for a tallysim run directory; None for any other."""
    if not is_run_dir(d):
        return None
    if (d / CHECKPOINT).is_file():
        return "interrupted"
    try:
        rounds = json.loads((d / CONFIG).read_text())["rounds"]
        lines = (d / METRICS).read_text().splitlines()
        last = json.loads(lines[-1])["round"] if lines else None
    except (OSError, ValueError, UnicodeDecodeError, KeyError, TypeError):
        return "stopped"
    return "finished" if last == rounds else "stopped"
