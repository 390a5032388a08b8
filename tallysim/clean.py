"""`make clean`'s results directory (OUT): removed only when all of it is what tallysim wrote.

`make clean` ran `rm -rf $(OUT)`, so `make clean OUT=$HOME` (or `OUT=..`, `OUT=/`, a directory of one's
own) deleted whatever it named, as `make figures-smoke` ran `rm -rf $(OUT)/smoke`. Now both run
`python -m tallysim.clean DIR`, which removes DIR only when every entry in
it is tallysim's: run directories (`outdir.is_run_dir`: the `.tallysim-run` marker and only a run's
files), sweep indexes (`sweep.json`, `atomic.is_sweep_index`, with their temporary files), and
directories holding nothing else (a sweep's, a figure's `OUT/<figure>/<group>/`, `OUT/demo/`). Anything
else is refused in one line naming the path and what is allowed, and nothing is removed: the file-system
root, a home directory, the working directory (the repository, for make) or one above it, a symbolic
link, a file, a directory holding anything tallysim did not write, and one outside the working directory
that holds no run or sweep at all. A missing DIR is nothing to do. Stops before removing anything (exit 2), so make stops too.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ALLOWED = ("allowed: a results directory holding only what tallysim wrote (run directories, which hold "
           ".tallysim-run; sweeps, with their sweep.json; directories of those), e.g. OUT=results")


class Refused(Exception):
    """Why OUT may not be removed (one line)."""


def _foreign(d: Path, found: list) -> list[str]:
    """Entries below directory d that tallysim did not write ('/' ends a directory); `found` collects the
    runs and sweep indexes seen."""
    from tallysim import atomic, outdir
    out = []
    for e in sorted(d.iterdir()):
        if e.is_symlink():
            out.append(str(e))
        elif e.is_dir():
            if outdir.is_run_dir(e):
                found.append(e)
            elif (e / outdir.MARKER).is_file() and outdir.foreign_entries(e):    # a run, with something of yours
                out += [str(e / name) for name in outdir.foreign_entries(e)]
            else:
                out += _foreign(e, found)
        elif e.name == atomic.SWEEP_INDEX and atomic.is_sweep_index(e):
            found.append(e)
        elif not atomic.is_temp_of(e.name, {atomic.SWEEP_INDEX}):
            out.append(str(e))
    return out


def check(out: str, cwd: Path | None = None) -> Path | None:
    """The directory OUT names when `make clean` may remove it; None when there is nothing to remove.
    Raises Refused (one line) otherwise; removes nothing."""
    if not out or not out.strip():
        raise Refused(f"OUT is empty; {ALLOWED}")
    p = Path(out)
    if p.is_symlink():
        raise Refused(f"refusing to remove {out}: it is a symbolic link (to {os.path.realpath(p)}); remove "
                      f"the link yourself; {ALLOWED}")
    if not p.exists():
        return None
    if not p.is_dir():
        raise Refused(f"refusing to remove {out}: it is a file, not a results directory; {ALLOWED}")
    from tallysim import outdir          # after the cheap cases: it needs numpy (the venv's Python)
    real = p.resolve()
    named = out if str(real) == out else f"{out} ({real})"       # `.` or `..`: the directory it is
    why = outdir.protected(real)
    if why:
        raise Refused(f"refusing to remove {named}: {why}; {ALLOWED}")
    found: list = []
    foreign = _foreign(p, found)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise Refused(f"refusing to remove {out}: it holds entries tallysim did not write ({shown}); move them "
                      f"away or remove it yourself; {ALLOWED}")
    here = (cwd or Path.cwd()).resolve()
    if not found and here not in real.parents:
        raise Refused(f"refusing to remove {named}: it is outside {here} and holds no tallysim run or "
                      f"sweep; remove it yourself; {ALLOWED}")
    return p


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tallysim.clean OUT", file=sys.stderr)
        return 2
    try:
        p = check(argv[0])
    except Refused as e:
        print(f"tallysim.clean: {e}", file=sys.stderr)
        return 2
    except ImportError as e:         # no venv yet, and a system Python without numpy
        print(f"tallysim.clean: cannot check {argv[0]} without tallysim's dependencies ({e}); run `make test` "
              "once (it sets up .venv), or remove it yourself", file=sys.stderr)
        return 2
    if p is None:
        return 0
    shutil.rmtree(p)
    print(f"tallysim.clean: removed {argv[0]} (tallysim's runs and sweeps)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
