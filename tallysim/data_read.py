"""Which files a run read its data from (data.path): the path resolved (absolute, links followed) and
each file's state (size, modification and change times in ns, inode, device), recorded in partition.json
beside `data_digest` as `data_read`. Pure stdlib, no JAX.

Two readers. A sweep run again whose every run of a data setting is skipped compared their digests with
the data as it is now by loading it (seconds on a large file, once per data setting, only to compare):
where the files are in the very state a skipped run recorded, the digest it recorded is the data's now
(`digest_if_unchanged`), so nothing is loaded. The change time and inode are the kernel's, which no copy
tool sets (`cp -p` and `rsync -t` keep a modification time, not them): a file replaced or rewritten is in
another state and is loaded and compared as before. And `--resume` with data.path moved names the
path it read before and the one it reads now, resolved: a relative data.path read under another
working directory is another file (run_files.check_same_data refuses other contents).

Two ways the same state could stand for other contents, closed where they are known (review17): a
network file system's client answers `stat` from its attribute cache (NFS: up to 60 s old), so a file
rewritten on another node read as unchanged; each file is opened before it is measured (`fstat` of the
open file: NFS's close-to-open check asks the server). And a file system that keeps times in whole
seconds (FAT, HFS+, ext3, some NFS servers) gives a file rewritten within the second of its last write,
at the same size, the very same state; as git's "racy" index entries, a file written less than
RACY_NS before it is measured there is not recorded (the next run records it, settled).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional

KEY = "data_read"       # partition.json's key
MAX_FILES = 64          # a directory of more (not a dataset's few files): not recorded, partition.json stays small
RACY_NS = 2 * 10**9     # whole-second times this close to now may yet change within their second (FAT: 2 s)


def state(path) -> Optional[dict]:
    """{"path": the resolved path, "files": [[name, size, mtime_ns, ctime_ns, inode, device], ...]} of a
    data.path (a file, or a directory's files, sorted); None where there is none, it cannot be read, or a
    directory holds more than MAX_FILES files."""
    if not path:
        return None
    try:
        p = Path(os.path.expanduser(path)).resolve()
        files = [p] if p.is_file() else _dir_files(p) if p.is_dir() else []
        if files is None:
            return None
        rows = []
        for f in files:
            st = _opened_stat(f)
            rows.append([f.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev])
    except OSError:
        return None
    now = time.time_ns()
    if any(_racy(r[2], r[3], now) for r in rows):
        return None
    return {"path": str(p), "files": rows} if rows else None


def _dir_files(p: Path) -> Optional[list]:
    """A directory's files, sorted; None past MAX_FILES (counted as listed: a directory of a million
    files was stat'ed whole, twice per build, before the count refused it)."""
    files = []
    with os.scandir(p) as it:
        for e in it:
            if e.is_file():
                files.append(p / e.name)
                if len(files) > MAX_FILES:
                    return None
    return sorted(files)


def _opened_stat(f: Path) -> os.stat_result:
    """f's state as the file system's server has it: measured through an open descriptor (a path's stat
    on NFS may be the client's cached attributes of a file since rewritten elsewhere)."""
    fd = os.open(f, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _racy(mtime_ns: int, ctime_ns: int, now_ns: int) -> bool:
    """Times kept in whole seconds, of a write less than RACY_NS ago: a rewrite later in that second (or
    FAT's two) would leave size and times as they are, so this state proves nothing yet."""
    whole = mtime_ns % 10**9 == 0 and ctime_ns % 10**9 == 0
    return whole and max(mtime_ns, ctime_ns) > now_ns - RACY_NS


def recorded(run_dir) -> Optional[dict]:
    """The `data_read` partition.json in run_dir records; None where none is (a run before 2026-12-06, data
    without a path, a file that changed while it was read) or it cannot be read."""
    try:
        got = json.loads((Path(run_dir) / "partition.json").read_text()).get(KEY)
    except (OSError, ValueError, AttributeError):
        return None
    return got if isinstance(got, dict) and isinstance(got.get("path"), str) else None


def digest_if_unchanged(run_dir, path) -> Optional[str]:
    """The data digest run_dir recorded, where data.path's files are now in the state it recorded them
    in (then they hold what it read); None otherwise (changed, moved, or nothing recorded)."""
    from tallysim.results.partition_file import data_digest
    was = recorded(run_dir)
    if was is None or was != state(path):
        return None
    return data_digest(run_dir)


def resolved_path(run_dir) -> Optional[str]:
    """The resolved data path run_dir recorded reading, None where none is recorded."""
    was = recorded(run_dir)
    return was["path"] if was else None
