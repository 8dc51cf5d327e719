"""Durable commits for the SQLite store: fsync the WAL after COMMIT, outside the write lock.

With ``synchronous=FULL`` SQLite fsyncs the WAL inside COMMIT while holding the database's write lock,
so nothing else can be written until the disk answers (~4 ms on this project's machines, whatever the
size: the ingest writer thread spent most of its time waiting there). Instead the connections run at
``synchronous=NORMAL`` (SQLite still syncs the WAL header on every WAL restart, the WAL before each
checkpoint and the database file after it) and ``WalSync.sync()`` calls ``fdatasync`` on the WAL after
COMMIT. A WAL transaction is durable once its frames are on disk: recovery replays every complete,
checksummed frame sequence after the header. So COMMIT followed by our fdatasync is as durable as FULL;
the difference is that the lock is free during the flush. The group commit inserts the next group
while the last one is being flushed, and one fdatasync covers every transaction committed before it.

Committed rows are visible to readers a few ms before they are durable; no write is acknowledged
before, and a write transaction that only read them (a span found "already stored", perhaps committed by
another server process on the same file) is flushed too before it answers: the flush covers the whole
WAL file, whoever wrote it. A failed fdatasync leaves it unknown what reached the disk (Linux may drop the failed pages),
while SQLite already counts those rows as committed, so a retried span would be answered "duplicate"
without being durable. After one failure every write is therefore refused (StoreUnavailable: clients
spool and retry) until the server restarts and SQLite recovers from what the disk really holds.
"""
from __future__ import annotations

import os
import threading
from typing import Optional

from agentlightning.core.store.base import StoreUnavailable


class WalSync:
    """fdatasync of one database's WAL file; thread-safe."""

    def __init__(self, db_path: str) -> None:
        self.wal_path = db_path + "-wal"
        self.failed: Optional[OSError] = None
        self.syncs = 0
        self._commits = 0  # write transactions, counted right after COMMIT returned
        self._synced = 0   # how many of them the last flush covered
        self._fd: Optional[int] = None
        self._file_id: tuple[int, int] = (0, 0)
        self._lock = threading.Lock()

    def committed(self) -> None:
        """Count a commit (call it after COMMIT, under the store's write lock)."""
        self._commits += 1

    def check(self) -> None:
        """Refuse writes after a failed flush (see the module docstring)."""
        if self.failed is not None:
            raise StoreUnavailable(f"an earlier fsync of {self.wal_path} failed ({self.failed}); what reached "
                                   f"the disk is unknown, so writes stop until the server restarts")

    def sync(self) -> None:
        """Make every transaction committed before this call durable; raises StoreUnavailable if it cannot.
        Free when an earlier flush already covered them all."""
        self.check()
        with self._lock:
            self.check()
            target = self._commits  # read before the flush: later commits wait for a later one
            if self._synced >= target:
                return
            try:
                fd = self._current_fd()
                if fd is not None:
                    os.fdatasync(fd)
                    self.syncs += 1
            except OSError as exc:
                self.failed = exc
                self.check()
            self._synced = target

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _current_fd(self) -> Optional[int]:
        """A descriptor of the WAL file as it is now (reopened if it was replaced)."""
        try:
            status = os.stat(self.wal_path)
        except FileNotFoundError:
            # No WAL: the last connection closed and checkpointed it into the database file, which SQLite
            # synced (synchronous=NORMAL syncs checkpoints).
            return None
        if self._fd is None or (status.st_dev, status.st_ino) != self._file_id:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            fd = os.open(self.wal_path, os.O_RDONLY)
            opened = os.fstat(fd)
            self._fd, self._file_id = fd, (opened.st_dev, opened.st_ino)
        return self._fd
