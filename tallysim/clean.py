"""`make clean`'s results directory (OUT): removed only when all of it is what tallysim wrote.

`make clean` ran `rm -rf $(OUT)`, so `make clean OUT=$HOME` (or `OUT=..`, `OUT=/`, a directory of one's
own) deleted whatever it named, as `make figures-smoke` ran `rm -rf $(OUT)/smoke`. Now both run
`python -m tallysim.clean DIR`, which removes DIR only when every entry in
it is tallysim's: run directories (`outdir.is_run_dir`: the `.tallysim-run` marker and only a run's
files), sweep indexes (`sweep.json`, `atomic.is_sweep_index`, with their temporary files, and the sweep's
`.tallysim-lock`), and
directories holding nothing else (a sweep's, a figure's `OUT/<figure>/<group>/`, `OUT/demo/`). Anything
else is refused in one line naming the path and what is allowed, and nothing is removed: the file-system
root, a home directory, the working directory (the repository, for make) or one above it, a symbolic
link, a file, a directory holding anything tallysim did not write, and one outside the working directory
that holds no run or sweep at all, a run a tallysim process is writing now (its lock is held), and
anything inside a sweep or figure directory being written (a finished run of it, a figure's group). A
missing DIR is nothing to do. Stops before removing anything (exit 2), so make stops too.

The removal is not `shutil.rmtree` after the check (that removed whatever appeared in DIR meanwhile: a file
of the user's, a run a sweep had just started): it unlinks only the files the check approved, still the same
files, walking by directory descriptors that follow no link, holding each run's lock while it empties it,
and removes the directories that leaves empty. Anything else stays, named, and the exit status is 2.
"""
from __future__ import annotations

import errno
import fcntl
import os
import sys
from pathlib import Path

from tallysim.fields import first_few

ALLOWED = ("allowed: a results directory holding only what tallysim wrote (run directories, which hold "
           ".tallysim-run; sweeps, with their sweep.json; directories of those), e.g. `tallysim clean results` "
           "or `make clean OUT=results`")
# opens a directory only when it is one and not a link: the removal walks by these descriptors, so a
# directory swapped for a link after the check is not followed (shutil.rmtree's guard, kept without rmtree)
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(Exception):
    """Why OUT may not be removed (one line)."""


def _ident(st: os.stat_result) -> tuple:
    # the inode alone is not enough: a file removed and written again often gets its number back
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _foreign(d: Path, found: list, ours: dict, rel: str = "") -> list[str]:
    """Entries below directory d that tallysim did not write; `found` collects the runs and sweep indexes
    seen, `ours` the files that may go (path relative to OUT -> (device, inode) as checked). A run that a
    tallysim process is writing now is refused: it was removed from under the run (or sweep, or figure)."""
    from tallysim import atomic, outdir, run_lock
    out = []
    for e in sorted(d.iterdir()):
        r = rel + e.name
        if e.is_symlink():
            out.append(str(e))
        elif e.is_dir():
            if outdir.is_run_dir(e):
                if run_lock.being_written(e):
                    raise Refused(f"refusing to remove {e}: a tallysim process (a run, sweep or figure) is writing "
                                  "it right now; wait for it to finish or stop it, then clean")
                found.append(e)
                ours.update({f"{r}/{f.name}": _ident(f.lstat()) for f in e.iterdir()})
            elif (e / outdir.MARKER).is_file() and outdir.foreign_entries(e):    # a run, with something of yours
                out += [str(e / name) for name in outdir.foreign_entries(e)]
            else:
                out += _foreign(e, found, ours, r + "/")
        elif e.name == atomic.SWEEP_INDEX and atomic.is_sweep_index(e):
            found.append(e)
            ours[r] = _ident(e.lstat())
        elif atomic.is_temp_of(e.name, {atomic.SWEEP_INDEX}) and e.is_file():
            ours[r] = _ident(e.lstat())
        elif e.name == outdir.LOCK and e.is_file():     # a sweep directory's lock (outdir.sweep_lock)
            if run_lock.being_written(d):
                raise Refused(f"refusing to remove {d}: a tallysim sweep (or figure) is writing it right now; "
                              "wait for it to finish or stop it, then clean")
            ours[r] = _ident(e.lstat())
        else:
            out.append(str(e))
    return out


def _run_itself(p: Path, out: str, found: list, ours: dict) -> list[str]:
    """OUT is a run directory itself (`tallysim clean results/sweep/run3`, which `tallysim clean`'s help
    offers): its own files may go, as a run's inside a folder. Walked as a folder, each of them (config.json,
    the marker) was "an entry tallysim did not write" and the run was refused with that false reason.
    Refused while it, or the sweep (or figure) directory holding it, is being written."""
    from tallysim import outdir, run_lock
    foreign = outdir.foreign_entries(p)
    if foreign:                         # a run with something of yours in it: that is named
        return [str(p / name) for name in foreign]
    if not outdir.is_run_dir(p):        # a marker that is not tallysim's (or unreadable): walked as a folder
        return _foreign(p, found, ours)
    if run_lock.being_written(p):
        raise Refused(f"refusing to remove {out}: a tallysim process (a run, sweep or figure) is writing it "
                      "right now; wait for it to finish or stop it, then clean")
    found.append(p)
    ours.update({f.name: _ident(f.lstat()) for f in p.iterdir()})
    return []


def _refuse_inside_written(real: Path, out: str) -> None:
    """OUT inside a sweep or figure directory a tallysim process is writing now (its lock held): one of its
    finished runs, or a figure's group folder, went from under it (the sweep's index and the figure's
    plots then name runs that are gone). The folder itself being written is _foreign's check."""
    from tallysim import run_lock
    for above in real.parents:
        if run_lock.being_written(above):
            raise Refused(f"refusing to remove {out}: it is inside {above}, which a tallysim sweep (or figure) "
                          "is writing right now; wait for it to finish or stop it, then clean")


def _approve(out: str, cwd: Path | None = None) -> tuple[Path | None, dict]:
    """check's answer and the files it approved (`ours` of _foreign)."""
    if not out or not out.strip():
        raise Refused(f"OUT is empty; {ALLOWED}")
    p = Path(out)
    if p.is_symlink():
        raise Refused(f"refusing to remove {out}: it is a symbolic link (to {os.path.realpath(p)}); remove "
                      f"the link yourself; {ALLOWED}")
    if not p.exists():
        return None, {}
    if not p.is_dir():
        raise Refused(f"refusing to remove {out}: it is a file, not a results directory; {ALLOWED}")
    from tallysim import outdir          # after the cheap cases: it needs numpy (the venv's Python)
    real = p.resolve()
    named = out if str(real) == out else f"{out} ({real})"       # `.` or `..`: the directory it is
    why = outdir.protected(real)
    if why:
        raise Refused(f"refusing to remove {named}: {why}; {ALLOWED}")
    _refuse_inside_written(real, out)
    found: list = []
    ours: dict = {}
    itself = (p / outdir.MARKER).is_file() or outdir.is_run_dir(p)      # a legacy run has no marker
    foreign = _run_itself(p, out, found, ours) if itself else _foreign(p, found, ours)
    if foreign:
        raise Refused(f"refusing to remove {out}: it holds entries tallysim did not write ({first_few(foreign, 3)}); move them "
                      f"away or remove it yourself; {ALLOWED}")
    here = (cwd or Path.cwd()).resolve()
    if not found and here not in real.parents:
        raise Refused(f"refusing to remove {named}: it is outside {here} and holds no tallysim run or "
                      f"sweep; remove it yourself; {ALLOWED}")
    return p, ours


def check(out: str, cwd: Path | None = None) -> Path | None:
    """The directory OUT names when `make clean` may remove it; None when there is nothing to remove.
    Raises Refused (one line) otherwise; removes nothing."""
    return _approve(out, cwd)[0]


def _same(was, st: os.stat_result, unlinked: set) -> bool:
    """Whether a file is still the one checked (`was`, its _ident then). A hard link's other name removed by
    this clean changes the file's ctime (its link count) and nothing else: an out-of-memory retry's copy
    (checkpoint-retry.npz) is a hard link to checkpoint.npz, and whichever of the two went second was
    kept as "changed during the removal" (clean then failed, until run again)."""
    now = _ident(st)
    return was == now or (was is not None and was[:4] == now[:4] and now[:2] in unlinked)


def _remove_dir(parent_fd: int, name: str, rel: str, ours: dict, kept: list, shown: str,
                unlinked: set | None = None) -> None:
    """Remove directory `name` (under parent_fd) as far as it holds only files in `ours`, unchanged since
    the check: anything else, a file that appeared or was replaced since, or a run whose lock another
    process now holds, stays (and so does every directory above it: rmdir removes only empty ones).
    `unlinked`: (device, inode) of the files removed so far that had another name (_same)."""
    from tallysim import outdir
    unlinked = set() if unlinked is None else unlinked
    try:
        fd = os.open(name, _DIR, dir_fd=parent_fd)
    except OSError as e:                # a link or a file now, or gone: not the directory that was checked
        if e.errno != errno.ENOENT:
            kept.append(shown)
        return
    lock = None
    try:
        with os.scandir(fd) as it:
            entries = sorted(it, key=lambda e: e.name)
        names = {e.name for e in entries}
        if outdir.LOCK in names:        # a run directory: hold its lock, so no run starts writing it meanwhile
            try:
                lock = os.open(outdir.LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as e:        # a link planted as the lock (ELOOP), unreadable: not "being written"
                kept.append(f"{shown} (its {outdir.LOCK} cannot be opened: {e.strerror or e})")
                return
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                kept.append(f"{shown} (a tallysim process is writing it now)")
                return
        # the marker and the lock go last: a directory left half-removed (a kill) is still a run to clean
        last = {outdir.MARKER: 1, outdir.LOCK: 2}
        for e in sorted(entries, key=lambda e: (last.get(e.name, 0), e.name)):
            r, s = rel + e.name, f"{shown}/{e.name}"
            if e.is_dir(follow_symlinks=False):
                _remove_dir(fd, e.name, r + "/", ours, kept, s, unlinked)
            elif e.is_file(follow_symlinks=False) and _same(ours.get(r), st := e.stat(follow_symlinks=False), unlinked):
                try:
                    os.unlink(e.name, dir_fd=fd)
                    if st.st_nlink > 1:
                        unlinked.add((st.st_dev, st.st_ino))
                except FileNotFoundError:
                    pass                # gone meanwhile: nothing to remove
                except OSError as err:  # a read-only directory, another user's: said, not a traceback
                    kept.append(f"{s} ({err.strerror})")
            else:
                kept.append(s)
    finally:
        if lock is not None:
            os.close(lock)
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=parent_fd)
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):    # not empty: what stayed inside is named
            kept.append(shown)


def remove(p: Path, ours: dict) -> list[str]:
    """Remove directory p, approved by check with the files `ours`: only those files (still the same
    files) and the directories they leave empty. Returns what stayed (appeared or changed since the check)."""
    real = p.resolve()
    kept: list = []
    parent = os.open(real.parent, _DIR)
    try:
        _remove_dir(parent, real.name, "", ours, kept, str(p))
    finally:
        os.close(parent)
    return kept


def main(argv: list[str], say_missing: bool = False) -> int:
    """`make clean`'s (silent where OUT does not exist: nothing to do) and, with `say_missing`, `tallysim
    clean DIR`'s, where a typed path that names nothing (a typo, a quoted '~') returned 0 without a word.
    `tallysim clean`'s lines start as every other command's (`tallysim: error: ...`, `tallysim: ...`);
    `make clean`'s name the module it runs (`tallysim.clean: ...`)."""
    err, say = ("tallysim: error: ", "tallysim: ") if say_missing else ("tallysim.clean: ", "tallysim.clean: ")
    if len(argv) != 1:
        print("usage: python -m tallysim.clean OUT", file=sys.stderr)
        return 2
    try:
        p, ours = _approve(argv[0])
    except Refused as e:
        print(f"{err}{e}", file=sys.stderr)
        return 2
    except ImportError as e:         # no venv yet, and a system Python without numpy
        print(f"{err}cannot check {argv[0]} without tallysim's dependencies ({e}); run `make test` "
              "once (it sets up .venv), or remove it yourself", file=sys.stderr)
        return 2
    except OSError as e:             # unreadable, or changing under the check: nothing removed
        print(f"{err}cannot check {argv[0]} ({e}); nothing was removed", file=sys.stderr)
        return 2
    if p is None:
        if say_missing:
            print(f"{say}nothing to remove: {argv[0]} does not exist", file=sys.stderr)
        return 0
    try:
        kept = remove(p, ours)
    except OSError as e:
        print(f"{err}stopped removing {argv[0]} ({e}); what is left there is tallysim's or named "
              "above", file=sys.stderr)
        return 2
    if kept:
        print(f"{err}removed tallysim's runs and sweeps from {argv[0]} but kept what appeared or "
              f"changed there during the removal ({first_few(kept, 3)}); look at it, then clean again", file=sys.stderr)
        return 2
    print(f"{say}removed {argv[0]} (tallysim's runs and sweeps)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
