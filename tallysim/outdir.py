"""Output directories: tallysim deletes only what it can prove it wrote.

Every run directory tallysim creates gets a marker file, `.tallysim-run`, before anything else. A
directory is a *tallysim run* when it holds the marker (or is a run written before the marker existed)
and nothing but the files a run writes (existing_run.py says which directories are, and how they stopped).
`--overwrite` replaces only such a directory, and then removes only those named files; it never removes a directory tree. Everything else is refused with one line:
a directory holding anything else, the working directory or one above it, a home directory, `/`, a
symlink, a regular file.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from tallysim import atomic
from tallysim.config import ConfigError
from tallysim.results.metrics import METRICS
from tallysim.results.run_dir import how_stopped
from tallysim import out_path, run_lock
from tallysim.run_lock import LOCK, Busy, SweepBusy, being_written  # noqa: F401 (outdir.Busy etc., as before)
from tallysim.validation import MAX_NAME      # one limit for every name that becomes a path component
# the checks on the path an output names (split from here; outdir.destination etc., as before)
from tallysim.out_path import Given, check_name, check_text, destination, given, protected  # noqa: F401
# which directories are tallysim's runs and how they stopped (split from here; outdir.is_run_dir etc., as before)
from tallysim.existing_run import (CHECKPOINT, MARKER, RETRY_CHECKPOINT, RUN_FILES, describe_entries,  # noqa: F401
                                   foreign_entries, is_run_dir, is_run_file, run_config, run_state)

CLI = {"overwrite": "--overwrite", "resume": "--resume"}
PYTHON = {"overwrite": "overwrite=True", "resume": "resume=True"}    # tallysim.run(cfg, out=..., ...)


def check(out, overwrite: bool, flag="--out", words: dict = CLI) -> Path:
    """Refuse an output directory tallysim may not use (ConfigError, one line); creates nothing.
    `words`: how the advice spells the options (CLI flags, or PYTHON's keyword arguments); `flag`: the
    option that gave `out`, by name or as a Given (a figure group's folder under --results).

    Runs before any data is loaded, so a bad --out fails in milliseconds.
    """
    flag = given(flag)
    p = destination(out, flag)
    if any(len(part.encode()) > MAX_NAME + 55 for part in p.parts) or len(str(p).encode()) > 4000:
        raise ConfigError(f"{flag.named(str(out)[:60] + '...')}: the path is too long for the file system")
    for parent in reversed(p.parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{flag.named(out)}: {parent} is a file, not a directory")
    refuse_inside_run(p, out, flag)
    if p.is_symlink() and not p.exists():   # passed as absent: mkdir's "File exists" after the data had loaded
        raise ConfigError(f"{flag.named(out)} is a symbolic link to {os.readlink(p)}, which does not exist (tallysim "
                          f"never writes through a link); allowed: the real directory, or {flag.another(out)}")
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{flag.named(out)} is a file, not a directory; give a directory")
    if p.is_dir():
        entries = list(p.iterdir()) if os.access(p, os.R_OK | os.X_OK) else None
        if entries is None:
            raise ConfigError(f"{flag.named(out)} cannot be read; check its permissions")
        if entries:
            if not overwrite:
                raise ConfigError(_occupied(p, out, flag, words))
            _check_replaceable(p, out, flag)
        if not os.access(p, os.W_OK):
            raise ConfigError(f"{flag.named(out)} is not writable; check its permissions or choose another")
    else:
        existing = next((q for q in p.parents if q.exists()), Path("."))
        if not os.access(existing, os.W_OK):
            raise ConfigError(f"{flag.named(out)} cannot be created: {existing} is not writable")
    return p


def refuse_inside_run(p: Path, out, flag) -> None:
    """A run (or a sweep, a figure's results) may not go into a directory inside another run's directory:
    `run --out runs/a/sub` made runs/a hold a folder a run does not write, so the interrupted run in
    runs/a could no longer be resumed (nor replaced). Its marker file says which directories are runs."""
    said = given(flag).named(out)
    named = Path(os.path.abspath(os.fsdecode(out)))
    for parent in Path(os.path.abspath(p)).parents:
        if (parent / MARKER).is_file() and parent == named:   # figure --results X: X/<group> checked, X a run
            raise ConfigError(f"{said} is a tallysim run directory, which holds only the files a run "
                              "writes (the runs would go inside it, and it could no longer be resumed or "
                              "replaced); allowed: a directory outside any run directory")
        if (parent / MARKER).is_file():
            raise ConfigError(f"{said} is inside the tallysim run directory {parent}, which holds only the "
                              "files a run writes (it could no longer be resumed or replaced); allowed: a "
                              "directory outside any run directory")


def refuse_unwritable(d: Path, force: str | None = None) -> None:
    """A run directory a run must write into (a resume, an overwrite) that it cannot: a read-only file
    system or mount, an immutable directory, another user's. Said before anything loads: the lock file's
    "move it away" (read-only) or a temporary file's "Operation not permitted" after the data had loaded
    (immutable) were all it said."""
    if force is None and os.access(d, os.W_OK):
        return
    why = force or "no write permission, a read-only mount or an immutable directory"
    raise ConfigError(f"{d} is not writable ({why}), and a run writes its rows, checkpoints and config there; "
                      "make it writable, or copy the run directory elsewhere and use the copy")


def _occupied(p: Path, out, flag: Given, words: dict) -> str:
    """Why a plain run may not write into the non-empty directory p, and what the user can do instead."""
    o, r, another = words["overwrite"], words["resume"], flag.another(out)
    if p.is_symlink():      # "is not empty; pass --overwrite", which then refused the link
        return (f"output directory {out} is a symbolic link to {os.path.realpath(p)}, which is not empty, and tallysim "
                f"never replaces through a link; allowed: the real directory (with {o} to replace it), or {another}")
    if being_written(p):     # a running run read as "stopped before its first checkpoint; pass --overwrite"
        return (f"output directory {out} is being written by another tallysim process right now; wait for it "
                f"to finish, or choose {another}")
    state = run_state(p)
    if state == "interrupted":
        return (f"output directory {out} holds an interrupted run with a checkpoint; pass {r} to continue "
                f"it, {o} to start it again (its results are lost), or choose {another}")
    if state == "finished":
        return (f"output directory {out} holds a finished run (its results: {p / METRICS}); pass {o} to "
                f"replace it or choose {another}")
    if state == "stopped":
        return (f"output directory {out} holds a run that {how_stopped(p)}; pass {o} "
                f"to start it again or choose {another}")
    # "pass --overwrite", which then refused: it replaces only a run directory tallysim wrote (a sweep's
    # folder, a folder of one's own files, were each named so only after the user had typed it)
    if atomic.is_sweep_index(p / "sweep.json"):
        return (f"output directory {out} is a sweep's directory (its sweep.json and runs), which {o} does not "
                f"replace; allowed: {another} for this run")
    if foreign := foreign_entries(p):
        return (f"output directory {out} is not empty and not a tallysim run directory (it holds "
                f"{describe_entries(foreign)}), which {o} does not replace; allowed: {another}, or move them away")
    if not is_run_dir(p):   # a run's file names only (a user's own config.json), no marker: --overwrite refuses it too
        return (f"output directory {out} is not empty: it holds {describe_entries(sorted(e.name for e in p.iterdir()))}, "
                f"but it is not a tallysim run directory (no {MARKER}), which {o} does not replace; allowed: "
                f"{another}, or move them away")
    return f"output directory {out} is not empty; pass {o} to replace it or choose {another}"


def _check_replaceable(p: Path, out, flag: Given) -> None:
    another = flag.another(out)
    if p.is_symlink():
        raise ConfigError(f"refusing to replace {out}: it is a symbolic link; give the real directory "
                          "or another --out")
    why = protected(p.resolve())
    if why:
        raise ConfigError(f"refusing to replace {out}: {why}; choose a subdirectory for {flag.flag}")
    foreign = foreign_entries(p)
    if foreign:
        raise ConfigError(f"refusing to replace {out}: it holds files tallysim did not write "
                          f"({describe_entries(foreign)}); move them away or choose {another}")
    if not is_run_dir(p):
        raise ConfigError(f"refusing to replace {out}: it is not a tallysim run directory (no {MARKER}); "
                          f"remove it yourself or choose {another}")


def claim(out, overwrite: bool) -> Path:
    """Make `out` an empty tallysim run directory: check it, remove a previous run's files (only
    those), create it and write the marker first. Returns its real destination (`destination`)."""
    p = check(out, overwrite)
    if p.is_dir():
        run_lock.lock_if_wanted(p, refuse_unwritable)   # before removing anything another process may be writing
        for e in p.iterdir():
            # the marker stays (it is written again below): a kill between two of these unlinks left a
            # directory without it, which --overwrite then refused as "not a tallysim run directory"
            if is_run_file(e.name) and e.name not in (LOCK, MARKER) and e.is_file() and not e.is_symlink():
                e.unlink()
    try:
        p.mkdir(parents=True, exist_ok=True)
        run_lock.lock_if_wanted(p, refuse_unwritable)
        atomic.write_text(p / MARKER, json.dumps({"written_by": "tallysim"}) + "\n")
    except OSError as e:
        raise ConfigError(f"--out {out} cannot be written: {e.strerror or e}") from None
    return p


def remove_stale_temps(d: Path) -> list[str]:
    """Remove the temporary files a killed writer left in run directory d (`.checkpoint.npz.x1y2z3w4.tmp`,
    a half-written checkpoint as large as the run's whole state): kill -9 during a write leaves one, and a
    resumed run that finished kept it for good. Called with d's lock held, so no live writer owns one."""
    gone = []
    for e in d.iterdir():
        if atomic.is_temp_of(e.name, RUN_FILES) and e.is_file() and not e.is_symlink():
            e.unlink(missing_ok=True)
            gone.append(e.name)
    return gone


def mark(d: Path) -> None:
    """Record that tallysim created d (for a run directory made outside `claim`, e.g. a failed run)."""
    d.mkdir(parents=True, exist_ok=True)
    if not (d / MARKER).exists() and not (d / MARKER).is_symlink():
        atomic.write_text(d / MARKER, json.dumps({"written_by": "tallysim"}) + "\n")


def refuse_in_sweep(out, flag: str, itself: bool = False) -> None:
    """A run, sweep or figure's results the user names inside a sweep's --out (or, `itself`, as one): `run --out
    SWEEP/x` and `figure --results SWEEP` put runs among the sweep's own, which its `table` and `read_rows`
    listed as its runs, and `run --overwrite` of SWEEP/<member> replaced a sweep's run with another config under
    the sweep's name for it. (A sweep's own runs go there through the API, not through this check.)"""
    p = Path(os.path.abspath(destination(out, flag)))
    for d in [p] * itself + list(p.parents):
        if out_path.root_or_home(d) is not None:
            return
        index = d / atomic.SWEEP_INDEX
        if index.is_file() and atomic.is_sweep_index(index):
            where = "is the sweep directory" if d == p else "is inside the sweep directory"
            raise ConfigError(f"{flag} {out} {where} {d}, which holds that sweep's runs and its index (the "
                              "sweep's table, read_rows and its next run would take these runs for its own); "
                              "allowed: a directory outside any sweep's --out")


def refuse_sweep_at_top(out) -> None:
    """`sweep --out ~` (or `/`, or `.` in a checkout) wrote its sweep.json, lock and run folders among the home's
    files, where `run --out` refuses all three: the root and a home always, the working directory or one above
    it unless it is already a sweep's (`sweep --out .` inside one continues it)."""
    p = Path(os.path.abspath(destination(out)))
    index = p / atomic.SWEEP_INDEX
    why = out_path.root_or_home(p.resolve()) or (None if index.is_file() else protected(p.resolve()))
    if why:
        raise ConfigError(f"refusing to use {out} for a sweep: {why} (a sweep writes its index, a lock and a "
                          f"directory per run there, among what is there already); allowed: a directory of its "
                          f"own, e.g. {Path(out) / 'sweep'}")


def check_sweep_dir(out, run_dirs: dict[str, Path], done_file: str, index: str, flag="--out") -> None:
    """A sweep writes DIR/<index> and DIR/<run>/: refuse before anything runs when an existing index
    is not a tallysim one, or an unfinished run directory holds files tallysim did not write. `flag`: the
    option that gave DIR, as `check` takes it (a sweep's --out, a figure group's folder under --results)."""
    flag = given(flag)
    another = flag.another(out)
    p = destination(out, flag)
    refuse_inside_run(p, out, flag)
    if not p.is_dir():
        check(p, overwrite=False, flag=flag)
    elif (p / MARKER).is_file():
        # a `run` directory (a link to one too): the sweep's index and runs went in beside the run's own files
        link = f" (a symbolic link to {os.path.realpath(p)})" * p.is_symlink()
        raise ConfigError(f"refusing to use {out} for a sweep: it is a `tallysim run` directory{link} (a sweep writes an "
                          f"index and one run directory per configuration); choose {another}")
    else:
        idx = p / index
        if idx.is_symlink():
            raise ConfigError(f"refusing to use {out}: its {index} is a symbolic link (tallysim never follows or "
                              f"replaces one); move it away or choose {another}")
        if idx.exists() and not atomic.is_sweep_index(idx):
            # a damaged index (emptied, cut) was called "not written by tallysim"; deleting it is safe: the
            # sweep writes it again, and skips the runs whose directories say they are done
            raise ConfigError(f"refusing to use {out}: its {index} is not a sweep index (damaged, or not "
                              f"tallysim's); if it is this sweep's, delete it (the sweep writes it again and keeps "
                              f"its finished runs), else choose {another}")
    for name, d in run_dirs.items():
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            raise ConfigError(f"sweep run {name}: {d} is not a plain directory; move it away or choose {another}")
        if d.is_dir() and any(d.iterdir()) and not (d / done_file).exists() and not is_run_dir(d):
            foreign = foreign_entries(d)
            raise ConfigError(f"sweep run {name}: {d} holds files tallysim did not write "
                              f"({describe_entries(foreign) or 'no ' + MARKER}); move them away or choose "
                              f"{another}")


@contextlib.contextmanager
def exclusive(out):
    """Only one process (and one thread) writes run directory `out` at a time: two `run --resume` (or
    run/--overwrite) of one directory at once would interleave their metrics rows (run_lock.py). The lock
    is taken at once when `out` already is a marked run directory (resume, overwrite: before any data
    loads), else when `claim` makes it one; the second writer gets one line. Released on exit (and by the
    kernel when the process dies, so a crash leaves no stale lock)."""
    if out is None or str(out).strip() == "":
        yield
        return
    d = destination(out)                # `..` through a missing directory: still the real one
    key = os.path.abspath(d)
    mine = run_lock.want(key)
    try:
        # only a directory tallysim marked as its own gets a lock file now; any other is checked
        # (and maybe refused) first, and locked by `claim`, so no file appears in a user's directory
        if (d / MARKER).is_file() and is_run_dir(d) and protected(d.resolve()) is None:
            run_lock.lock(d, refuse_unwritable)
        yield
    finally:
        if mine:
            run_lock.release(key)


def sweep_lock(out):
    """run_lock.sweep_lock of the directory `out` really names: one sweep (or figure) writes it at a time."""
    return run_lock.sweep_lock(destination(out), refuse_unwritable)
