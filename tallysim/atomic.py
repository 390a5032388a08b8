"""Atomic file writes that never touch a file tallysim did not create.

A fixed temporary name (`sweep.json.tmp`) can already exist: as a user's file it would be overwritten,
as a symlink its target would be. So the temporary file is created exclusively (`mkstemp`: O_CREAT |
O_EXCL, a fresh random name) in the destination's directory, flushed, then renamed over the
destination. A destination that is a symlink is refused, never followed or replaced. On any error the
temporary file is removed before anything else (closing a file may write), so a full disk leaves
nothing behind.

Temporary names are `.<destination name>.<8 random characters>.tmp`; `is_temp_of` recognises them so
a run directory interrupted mid-write (kill -9) can still be resumed or replaced.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import tempfile
from pathlib import Path

from tallysim.config import ConfigError
from tallysim import out_path

_TEMP = re.compile(r"^\.(?P<dest>.+)\.[a-z0-9_]{8}\.tmp$")


def is_temp_of(name: str, destinations) -> bool:
    """True when `name` is a temporary file `write_atomic` makes for one of `destinations`."""
    m = _TEMP.match(name)
    return bool(m) and m.group("dest") in destinations


def refuse_symlink(path: Path) -> None:
    if path.is_symlink():
        raise ConfigError(f"refusing to write {path}: it is a symbolic link (tallysim never follows or "
                          "replaces one); move it away or choose another directory")


def refuse_symlinks(paths, flag: str = "--out") -> None:
    """Every destination of one command checked before any is written: a link found at the third of
    four files would otherwise stop the command with two of them already replaced. Nor may a derived
    output (a table, a plot, a bench's JSON) land in a run directory or on a sweep's index."""
    for p in paths:
        refuse_symlink(Path(p))
        refuse_results_file(Path(p), flag)


RUN_MARKER = ".tallysim-run"     # a run directory's marker file (outdir.MARKER; outdir imports this module)
SWEEP_INDEX = "sweep.json"       # results.metrics.SWEEP
RUN_ROWS = "metrics.jsonl"       # results.metrics.METRICS: a folder holding it is a run to every reader
# The figure `tallysim.Results.plot()` draws into its run directory by default (and its points): a run
# file like the others (outdir.RUN_FILES), which --overwrite may remove and a plot may replace.
RUN_CURVE = ("curve.png", "curve.csv")


def refuse_results_file(path: Path, flag: str = "--out") -> None:
    """`table runs --out runs/a/metrics.jsonl` replaced the run's rows with a markdown table, `bench --json
    runs/a/partition.json` its partition, `table sweep --out sweep/sweep.json` the sweep's index; any other
    file put in a run directory stops its --resume and --overwrite (a run directory holds only a run's
    files). Refused in one line before anything is written."""
    run = run_above(path)
    if run is not None and not (os.path.abspath(run) == os.path.abspath(path.parent) and path.name in RUN_CURVE):
        ours = "tallysim " if (run / RUN_MARKER).is_file() else ""
        raise ConfigError(f"{flag} {path} is inside the {ours}run directory {run}, which holds only the files a run "
                          f"writes{' (and this would replace its ' + path.name + ')' if path.exists() else ''}: "
                          "anything else there stops its --resume and --overwrite; "
                          f"allowed: a path outside any run directory, such as {run.parent}")
    if path.name == SWEEP_INDEX and path.is_file() and is_sweep_index(path):
        raise ConfigError(f"{flag} {path} is a sweep's index (its list of runs); allowed: another file name")


def file_in(folder, name: str) -> Path:
    """The file to suggest for an output given as a folder: FOLDER/name, or, where FOLDER is (inside) a run
    directory, a file beside that run (RUN-name): `table runs/a --out runs/a` was told "give a file such as
    runs/a/table.md", which the next try refused as inside the run directory."""
    folder = Path(folder)
    run = run_above(folder / name)
    return folder / name if run is None else run.parent / f"{run.name}-{name}"


def run_above(path: Path):
    """The run directory `path` would be inside (the nearest folder above it that is a run, `_reads_as_run`),
    else None. Only the folder the file goes in was checked: `pareto --out runs/a/sub/p.png`, and any --out
    in a run without the marker (an older tallysim's, one written by hand), went in. The walk stops below the
    file-system root and a home directory (or a folder above one): tallysim never writes a run there
    (out_path.root_or_home), and a stray metrics.jsonl in a home or at / refused every derived output below it."""
    path = Path(path)
    for i, d in enumerate(Path(os.path.abspath(path)).parents):
        if _never_a_run(d):
            return None
        if _reads_as_run(d):
            shown = path.parents[i] if i < len(path.parents) else d      # as the user wrote it, where it can
            return shown if os.path.abspath(shown) == str(d) and shown.name not in ("", "..") else d
    return None


def _never_a_run(d: Path) -> bool:
    """The root, a home directory or a folder above one: out_path refuses a run there, so none is read as one."""
    return out_path.root_or_home(Path(os.path.realpath(d))) is not None


def _reads_as_run(d: Path) -> bool:
    """tallysim's marker, or a run's two files together: config.json and a metrics.jsonl whose first row is a
    run's (an object with an integer `round`; empty: a run stopped before its first round). A lone stray
    metrics.jsonl, or another tool's beside a project's config.json, is not a run (it refused every derived
    output in every folder below it); every run tallysim wrote, an older one's too, has both files."""
    if (d / RUN_MARKER).is_file():
        return True
    if not ((d / RUN_ROWS).is_file() and (d / "config.json").is_file()):
        return False
    import json
    try:
        with open(d / RUN_ROWS, encoding="utf-8") as f:
            first = f.readline(1 << 20)
        row = json.loads(first) if first.strip() else {"round": 0}
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(row, dict) and isinstance(row.get("round"), int)


def is_sweep_index(path: Path) -> bool:
    """path holds a sweep's index: a JSON object with a list of `runs` (a damaged one is not)."""
    import json
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):     # `[[[...]]]` thousands deep
        return False
    return isinstance(doc, dict) and isinstance(doc.get("runs"), list)


def open_temp(path: Path):
    """(file object, temporary path) for an exclusive new file beside `path`."""
    refuse_symlink(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:    # named by the file asked for: the error named `.t.md.czctir7q.tmp`, a name of ours
        raise OSError(e.errno, e.strerror, str(path)) from None
    # Unbuffered: every write reaches the file at once, so nothing is pending when a write fails. A
    # buffered file would flush again when closed after a full disk, fail the same way, and leave
    # the temporary file behind (the cleanup never ran).
    return os.fdopen(fd, "wb", buffering=0), Path(tmp)


def commit(f, tmp: Path, path: Path) -> None:
    """Flush `f` to disk and rename its temporary file over `path`."""
    f.flush()
    os.fsync(f.fileno())
    f.close()
    refuse_symlink(path)            # checked again: the rename must not replace a link made meanwhile
    os.chmod(tmp, 0o644)            # mkstemp makes 0600; results are ordinary, shareable files
    os.replace(tmp, path)


@contextlib.contextmanager
def writing(path: Path):
    """`with writing(path) as f:` writes an exclusive temporary file and renames it over `path` when the
    block ends; on any error the temporary file is removed and `path` is untouched."""
    path = Path(path)
    f, tmp = open_temp(path)
    try:
        yield f
        commit(f, tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)     # first: removing a file writes nothing, even on a full disk
        with contextlib.suppress(OSError):
            f.close()
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` all at once; a reader sees the old file or the new one, never half."""
    with writing(path) as f:
        f.write(data)


def link_or_copy(src: Path, path: Path) -> bool:
    """Replace `path` with `src`'s bytes all at once: a hard link to src where the filesystem makes one (no
    second copy on disk), else a copy (write_atomic); True for a link. Only for a `src` that is replaced by
    a rename, never written into (checkpoint.save): the link keeps the old bytes when src is replaced."""
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")     # a temporary name (is_temp_of)
    refuse_symlink(path)
    try:
        os.link(src, tmp)
    except OSError:     # no hard links here (FAT, some network and FUSE mounts), or another device
        write_atomic(path, Path(src).read_bytes())
        return False
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)     # our own link: src's bytes stay under src
        raise
    # path already a link to src: rename() of two links to one file does nothing and leaves tmp (POSIX),
    # a third name of the file, until a resume's stale-temporary sweep
    tmp.unlink(missing_ok=True)
    return True


def write_text(path: Path, text: str) -> None:
    write_atomic(path, text.encode())


def write_csv(path: Path, fieldnames, rows) -> None:
    """`rows` (dicts) as CSV with a header, replacing `path` all at once. The bytes are what
    `csv.DictWriter` writes into a file opened with `newline=""` (\\r\\n line ends), so a table
    written before this helper existed is byte for byte what it writes now."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(fieldnames))
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())
