"""Who else is serving from a directory: each server holds a shared ``flock`` on a lock file there for
its life; an exclusive lock taken at start means no other live server uses the directory, so what a
killed one left behind (temporary files, tasks marked working) is safe to clean up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; callers then assume another server may be live
    fcntl = None


class DirectoryLock:
    """``while_alone()`` runs while the exclusive lock is still held, when no other server is live, so a
    server starting meanwhile cannot begin writing before the clean-up is done."""

    def __init__(self, path: Path, while_alone: Callable[[], None] | None = None) -> None:
        self.path = path
        self._file = None
        self._while_alone = while_alone
        self.alone = self._take()

    def _take(self) -> bool:
        if fcntl is None:
            return False
        try:
            self._file = open(self.path, "a+")
        except OSError:
            return False
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except OSError:
            alone = False
        try:
            if alone and self._while_alone is not None:
                self._while_alone()
        finally:
            fcntl.flock(self._file, fcntl.LOCK_SH)  # from exclusive: a downgrade; else wait for a shared one
        return alone

    def close(self) -> None:
        if self._file is not None:
            self._file.close()  # releases the lock
            self._file = None
