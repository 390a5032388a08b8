"""One writer per run directory: an exclusive, non-blocking `flock` on `DIR/.tallysim-lock` held while a
run, --resume, --overwrite or a sweep writes DIR, and the same rule between the threads of one process,
which flock alone does not keep apart (two `tallysim.run` calls from a notebook's threads both "held" the
lock, and the second replaced the first's files while it ran). outdir.exclusive and outdir.claim use
these; `sweep_lock` is the same lock on a sweep's directory (one sweep or figure writes it at a time).
The directory checks are outdir's, so this module imports nothing of tallysim but `config`.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from pathlib import Path
from typing import Callable

from tallysim.config import ConfigError

LOCK = ".tallysim-lock"          # flock'ed while a run, --resume or --overwrite writes the directory
# (and, in a sweep's directory, while a sweep or figure writes its index: outdir.sweep_lock)

# absolute path -> the thread that wants (inside outdir.exclusive) or holds its lock
_WANTED: dict = {}
_HELD: dict = {}                 # absolute path -> (file descriptor holding the lock, thread ident)
_GUARD = threading.Lock()


class Busy(ConfigError):
    """Another process holds the directory's lock: nothing may be written into it (not even error.txt)."""


def busy(p) -> Busy:
    return Busy(f"{p} is being written by another tallysim process (or another thread of this one: run, "
                "--resume, --overwrite or a sweep); wait for it to finish or choose another --out")


class SweepBusy(Busy):
    """Another sweep (or figure) holds a sweep directory's lock: the second is refused before it writes."""


def sweep_busy(p) -> SweepBusy:
    return SweepBusy(f"{p} is being written by another tallysim sweep (or figure) right now; wait for it to "
                     "finish, then run this command again (it skips the finished runs and continues the rest), "
                     "or choose another --out")


def want(key: str, refusal: Callable = busy) -> bool:
    """Mark directory `key` (an absolute path) as this thread's to write; Busy (`refusal(key)`) when
    another thread of this process has it. True when this call marked it (its caller releases it), False
    when this thread already had."""
    me = threading.get_ident()
    with _GUARD:
        if _WANTED.get(key, me) != me:
            raise refusal(key)
        mine = key not in _WANTED
        _WANTED[key] = me
    return mine


def release(key: str) -> None:
    with _GUARD:
        _WANTED.pop(key, None)
        held = _HELD.pop(key, None)
    if held is not None:
        os.close(held[0])            # closing drops the flock


def being_written(d: Path) -> bool:
    """Another process (or another thread of this one) holds d's lock: a run, resume or sweep writing it
    now. Probed with a lock taken and dropped at once on an existing lock file only: no file appears in a
    user's directory, and a directory this thread holds itself is not "another"."""
    owner = _WANTED.get(os.path.abspath(d))
    if owner is not None:                # this process: busy when another of its threads writes it
        return owner != threading.get_ident()
    if not (d / LOCK).is_file() or (d / LOCK).is_symlink():
        return False
    try:
        fd = os.open(d / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)             # closing drops the probe's lock
    return False


def lock_if_wanted(p: Path, unwritable: Callable) -> None:
    if os.path.abspath(p) in _WANTED:
        lock(p, unwritable)


def lock(p: Path, unwritable: Callable, refusal: Callable = busy) -> None:
    """Take p's lock for this thread (kept until `release`). `unwritable(p, why)` says, in one line, that
    p cannot be written at all (a read-only mount: "move the lock file away" could not help); `refusal(p)`
    is the Busy error when another holds it (a run's, or a sweep's: sweep_busy)."""
    key = os.path.abspath(p)
    with _GUARD:
        if _WANTED.get(key, threading.get_ident()) != threading.get_ident():
            raise refusal(p)
        if key in _HELD:
            return
    try:
        fd = os.open(p / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            unwritable(p, e.strerror)
        raise ConfigError(f"{p / LOCK} cannot be opened as a lock file ({e.strerror or e}); "
                          "move it away or choose another --out") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise refusal(p) from None
    _HELD[key] = (fd, threading.get_ident())


@contextlib.contextmanager
def sweep_lock(d: Path, unwritable: Callable):
    """One sweep (or figure group) writes sweep directory d at a time: its index (sweep.json) is rewritten
    whole after every run, so a second sweep into it at once, of the same grid or another, left the index
    describing only the later grid while both grids' runs lay beside it (and two copies of one grid each
    recorded the other's runs failed). The second is refused at once in one line (sweep_busy: wait, run
    it again after, or another --out) before it writes anything; a sweep run after the first has ended
    keeps the sequential rule (docs/sweeps.md: the index is the latest grid). Creates d; its LOCK is the
    same flock as a run directory's (clean.py holds it while it removes the sweep), dropped on exit or
    when the process dies. Reentrant in one thread: a figure takes all its groups' before the first runs.
    outdir.sweep_lock gives d as the real destination."""
    key = os.path.abspath(d)
    mine = want(key, sweep_busy)
    try:
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"--out {d} cannot be created: {e.strerror or e}") from None
        lock(d, unwritable, sweep_busy)
        yield d
    finally:
        if mine:
            release(key)
