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
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

KEY = "data_read"       # partition.json's key
MAX_FILES = 64          # a directory of more (not a dataset's few files): not recorded, partition.json stays small


def state(path) -> Optional[dict]:
    """{"path": the resolved path, "files": [[name, size, mtime_ns, ctime_ns, inode, device], ...]} of a
    data.path (a file, or a directory's files, sorted); None where there is none, it cannot be read, or a
    directory holds more than MAX_FILES files."""
    if not path:
        return None
    try:
        p = Path(path).expanduser().resolve()
        files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else []
        if len(files) > MAX_FILES:
            return None
        rows = []
        for f in files:
            st = f.stat()
            rows.append([f.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev])
    except OSError:
        return None
    return {"path": str(p), "files": rows} if rows else None


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
