"""A run's metrics.jsonl as it is written: one whole row per write() call, appended, every row also kept
in memory, so that a file deleted, emptied, cut or replaced by another program while the run goes on is
noticed before the next row and written again whole.

Before, the run wrote at its own file offset into whatever the path had become: a file emptied mid-run
(`> metrics.jsonl`) got a run of NUL bytes before the next row (unreadable), a deleted one took every
later row with it, and one replaced (an editor's save) kept the rows up to the save; each time the run
then reported success with its results "in" that directory.
"""
from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Optional

from tallysim import atomic


class MetricsFile:
    """`rows`: the rows to start from (whole lines without their newline; a resumed run's rows before
    its checkpoint), written first, all at once."""

    def __init__(self, path: Path, rows: Optional[list] = None):
        self.path = Path(path)
        self.rows = list(rows or [])
        self.file = None
        self._rewrite()

    def _rewrite(self) -> None:
        """The path made to hold exactly the rows so far (all at once), then opened to append."""
        if self.file is not None:
            self.file.close()
        atomic.write_atomic(self.path, b"".join(row + b"\n" for row in self.rows))
        # unbuffered: each row is one write() call, so a crash never leaves half a line; O_NOFOLLOW: a
        # symlink planted as metrics.jsonl is refused, its target never written; O_APPEND: rows go at
        # the end of the file as it is, never at a stale offset past it
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.file = os.fdopen(fd, "ab", buffering=0)
        self.size = os.fstat(fd).st_size

    def _changed(self) -> Optional[str]:
        """How the file at the path differs from the one written (None: it is that file, whole)."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return "deleted"
        mine = os.fstat(self.file.fileno())
        if (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino):
            return "replaced"
        if st.st_size != self.size:
            return "cut or extended"
        return None

    def _repair(self) -> None:
        changed = self._changed()
        if changed:
            print(f"tallysim: warning: {self.path} was {changed} by another program during the run; written "
                  f"again with all {len(self.rows)} rows so far", file=sys.stderr)
            self._rewrite()

    def write(self, row: bytes) -> None:
        self._repair()
        line = row + b"\n"
        n = self.file.write(line)
        if n != len(line):                  # a short write (a nearly full disk): never half a row
            os.ftruncate(self.file.fileno(), self.size)
            raise OSError(errno.ENOSPC, "No space left on device (a metrics row was cut short)", str(self.path))
        self.size += n
        self.rows.append(row)

    def sync(self) -> None:
        """Every row written so far on disk (fsync), before what replaces a checkpoint relies on them."""
        self._repair()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        """After the last row: the file as the run leaves it holds every row (changed after it too)."""
        if self.file is None or self.file.closed:
            return
        try:
            self._repair()
        finally:
            self.file.close()
