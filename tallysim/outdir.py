"""Output directories: tallysim deletes only what it can prove it wrote.

Every run directory tallysim creates gets a marker file, `.tallysim-run`, before anything else. A
directory is a *tallysim run* when it is a real directory (not a symlink) that holds the marker (or, for
runs written before the marker existed, the full set `config.json`, `partition.json` and
`metrics.jsonl`, with a config that validates and rows that parse as tallysim's metrics rows) and
nothing but the files a run writes (`RUN_FILES`, and `atomic.py`'s temporary files for them).
`--overwrite` replaces only such a directory, and then removes only those named files; it never removes a directory tree. Everything else is refused with one line:
a directory holding anything else, the working directory or one above it, a home directory, `/`, a
symlink, a regular file.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tallysim import atomic
from tallysim.config import ConfigError
from tallysim.results.metrics import CONFIG, DONE, ERROR, METRICS, PARTITION
from tallysim.validation import MAX_NAME      # one limit for every name that becomes a path component

MARKER = ".tallysim-run"
# Everything a run directory may hold; only these names are ever deleted.
RUN_FILES = frozenset({MARKER, CONFIG, PARTITION, METRICS, ERROR, DONE,
                       "checkpoint.npz", "checkpoint.npz.tmp", METRICS + ".tmp"})
_BAD_CHARS = re.compile(r"[/\\\x00-\x1f]")


def check_name(name, what: str) -> str:
    """A group or run name must be one plain path component, so it stays inside its parent."""
    if not isinstance(name, str) or not name or name in (".", "..") or _BAD_CHARS.search(name) \
            or len(name.encode()) > MAX_NAME or Path(name).is_absolute():
        raise ConfigError(f"{what} {name!r} is not allowed as a directory name: use one plain name of "
                          f"1..{MAX_NAME} bytes without '/', '\\', control characters, or '.'/'..'")
    return name


def _protected(p: Path) -> str | None:
    """Why p (resolved) must never be cleared, or None."""
    cwd = Path.cwd().resolve()
    if p == Path(p.anchor):
        return "it is the file-system root"
    if p == cwd or p in cwd.parents:
        return "it is the working directory or a directory above it"
    homes = {Path.home().resolve()}
    if os.environ.get("HOME"):
        homes.add(Path(os.environ["HOME"]).resolve())
    if p in homes or any(p in h.parents for h in homes):
        return "it is a home directory or above one"
    return None


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


def _describe(entries: list[str]) -> str:
    return ", ".join(entries[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4 else "")


def check(out, overwrite: bool, flag: str = "--out") -> Path:
    """Refuse an output directory tallysim may not use (ConfigError, one line); creates nothing.

    Runs before any data is loaded, so a bad --out fails in milliseconds.
    """
    if out is None or str(out).strip() == "":
        raise ConfigError(f"{flag} is empty; give the directory the run should write into")
    p = Path(out)
    if any(len(part.encode()) > MAX_NAME + 55 for part in p.parts) or len(str(p).encode()) > 4000:
        raise ConfigError(f"{flag} {str(out)[:60]}...: the path is too long for the file system")
    for parent in reversed(p.parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{flag} {out}: {parent} is a file, not a directory")
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {out} is a file, not a directory; give a directory")
    if p.is_dir():
        entries = list(p.iterdir()) if os.access(p, os.R_OK | os.X_OK) else None
        if entries is None:
            raise ConfigError(f"{flag} {out} cannot be read; check its permissions")
        if entries:
            if not overwrite:
                raise ConfigError(f"output directory {out} is not empty; pass --overwrite to replace it "
                                  "or choose another --out")
            _check_replaceable(p, out, flag)
        if not os.access(p, os.W_OK):
            raise ConfigError(f"{flag} {out} is not writable; check its permissions or choose another")
    else:
        existing = next((q for q in p.parents if q.exists()), Path("."))
        if not os.access(existing, os.W_OK):
            raise ConfigError(f"{flag} {out} cannot be created: {existing} is not writable")
    return p


def _check_replaceable(p: Path, out, flag: str) -> None:
    if p.is_symlink():
        raise ConfigError(f"refusing to replace {out}: it is a symbolic link; give the real directory "
                          "or another --out")
    why = _protected(p.resolve())
    if why:
        raise ConfigError(f"refusing to replace {out}: {why}; choose a subdirectory for {flag}")
    foreign = foreign_entries(p)
    if foreign:
        raise ConfigError(f"refusing to replace {out}: it holds files tallysim did not write "
                          f"({_describe(foreign)}); move them away or choose another {flag}")
    if not is_run_dir(p):
        raise ConfigError(f"refusing to replace {out}: it is not a tallysim run directory (no {MARKER}); "
                          f"remove it yourself or choose another {flag}")


def claim(out, overwrite: bool) -> Path:
    """Make `out` an empty tallysim run directory: check it, remove a previous run's files (only
    those), create it and write the marker first."""
    p = check(out, overwrite)
    if p.is_dir():
        for e in p.iterdir():
            if is_run_file(e.name) and e.is_file() and not e.is_symlink():
                e.unlink()
    try:
        p.mkdir(parents=True, exist_ok=True)
        atomic.write_text(p / MARKER, json.dumps({"written_by": "tallysim"}) + "\n")
    except OSError as e:
        raise ConfigError(f"--out {out} cannot be written: {e.strerror or e}") from None
    return p


def mark(d: Path) -> None:
    """Record that tallysim created d (for a run directory made outside `claim`, e.g. a failed run)."""
    d.mkdir(parents=True, exist_ok=True)
    if not (d / MARKER).exists() and not (d / MARKER).is_symlink():
        atomic.write_text(d / MARKER, json.dumps({"written_by": "tallysim"}) + "\n")


def check_sweep_dir(out, run_dirs: dict[str, Path], done_file: str, index: str) -> None:
    """A sweep writes DIR/<index> and DIR/<run>/: refuse before anything runs when an existing index
    is not a tallysim one, or an unfinished run directory holds files tallysim did not write."""
    p = check(out, overwrite=False, flag="--out") if not Path(out).is_dir() else Path(out)
    if p.is_dir():
        idx = p / index
        if idx.is_symlink():
            raise ConfigError(f"refusing to use {out}: its {index} is a symbolic link (tallysim never "
                              "follows or replaces one); move it away or choose another --out")
        if idx.exists() and not _is_index(idx):
            raise ConfigError(f"refusing to use {out}: its {index} was not written by tallysim; "
                              "choose another --out")
    for name, d in run_dirs.items():
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            raise ConfigError(f"sweep run {name}: {d} is not a plain directory; move it away or choose "
                              "another --out")
        if d.is_dir() and any(d.iterdir()) and not (d / done_file).exists() and not is_run_dir(d):
            foreign = foreign_entries(d)
            raise ConfigError(f"sweep run {name}: {d} holds files tallysim did not write "
                              f"({_describe(foreign) or 'no ' + MARKER}); move them away or choose "
                              "another --out")


def _is_index(path: Path) -> bool:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("runs"), list)
