"""Local spool: batches the server could not take wait here, on disk, until it can.

Format: a directory of segment files. Each record is
``MAGIC (4) | length (u32 LE) | crc32 (u32 LE) | payload`` where the payload is one serialized
``ExportRequest``. A segment being written is named ``*.open``; once closed it becomes ``*.seg`` and
may be claimed for replay by any process (atomic rename), so a restarted agent delivers what an
earlier one spooled. A corrupt or truncated record is skipped, named in the log, and the reader
resynchronises on the next magic marker, so one bad record never costs the rest of the file.
"""
from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

logger = logging.getLogger("agentlightning.spool")

MAGIC = b"ALS1"
_HEADER = struct.Struct("<4sII")
MAX_RECORD_BYTES = 256 * 1024 * 1024


@dataclass
class SpoolRecord:
    offset: int
    payload: bytes


@dataclass
class SkippedRecord:
    path: Path
    offset: int
    reason: str


def read_segment(path: Path, skipped: Optional[list[SkippedRecord]] = None) -> Iterator[SpoolRecord]:
    """Yield the intact records of one segment; report each damaged one to ``skipped`` and the log."""
    data = path.read_bytes()
    offset = 0
    size = len(data)

    def skip(at: int, reason: str) -> int:
        logger.warning("spool %s: record at offset %d skipped: %s", path.name, at, reason)
        if skipped is not None:
            skipped.append(SkippedRecord(path, at, reason))
        nxt = data.find(MAGIC, at + 1)
        return size if nxt < 0 else nxt

    while offset < size:
        if size - offset < _HEADER.size:
            offset = skip(offset, f"truncated header ({size - offset} bytes left)")
            continue
        magic, length, crc = _HEADER.unpack_from(data, offset)
        if magic != MAGIC:
            offset = skip(offset, "bad magic marker")
            continue
        start = offset + _HEADER.size
        if length > MAX_RECORD_BYTES or start + length > size:
            offset = skip(offset, f"truncated record (length {length}, {size - start} bytes left)")
            continue
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            offset = skip(offset, "checksum mismatch")
            continue
        yield SpoolRecord(offset, payload)
        offset = start + length


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """Append batches to this process's open segment; hand out closed segments for replay."""

    def __init__(self, directory: str | os.PathLike, max_bytes: int, segment_bytes: int = 16 * 1024 * 1024,
                 name: str = "spool") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._name = f"{name}-{os.getpid()}"
        self._lock = threading.Lock()
        self._file = None
        self._file_path: Optional[Path] = None
        self._file_bytes = 0
        self._counter = 0
        self.skipped: list[SkippedRecord] = []

    # -- writing -------------------------------------------------------------------------
    def total_bytes(self) -> int:
        total = 0
        for p in self.directory.iterdir():
            try:
                total += p.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def append(self, payload: bytes) -> bool:
        """Write one record; False when the size cap would be exceeded (the caller counts the drop)."""
        record = _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self.total_bytes() + len(record) > self.max_bytes:
                return False
            if self._file is None or self._file_bytes + len(record) > self.segment_bytes:
                self._rotate_locked()
            self._file.write(record)
            self._file.flush()
            self._file_bytes += len(record)
        return True

    def _rotate_locked(self) -> None:
        self._close_locked()
        self._counter += 1
        self._file_path = self.directory / f"{self._name}-{self._counter:06d}.open"
        self._file = open(self._file_path, "ab")
        self._file_bytes = 0

    def _close_locked(self) -> None:
        if self._file is None:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        assert self._file_path is not None
        if self._file_bytes:
            os.replace(self._file_path, self._file_path.with_suffix(".seg"))
        else:
            self._file_path.unlink(missing_ok=True)
        self._file = None
        self._file_path = None

    def seal(self) -> None:
        """Close the open segment so it can be replayed."""
        with self._lock:
            self._close_locked()

    # -- replay --------------------------------------------------------------------------
    def claim(self) -> Optional[Path]:
        """Atomically take one closed segment (or one left open by a dead process) for replay."""
        me = os.getpid()
        candidates = sorted(self.directory.glob("*.seg"))
        for p in sorted(self.directory.glob("*.open")) + sorted(self.directory.glob("*.replay-*")):
            owner = _owner_pid(p)
            if owner is not None and owner != me and not _pid_alive(owner):
                candidates.append(p)
        for path in candidates:
            target = path.with_name(f"{path.stem.split('.')[0]}.replay-{me}")
            try:
                os.replace(path, target)
            except FileNotFoundError:
                continue  # another process claimed it
            return target
        return None

    def has_pending(self) -> bool:
        """Anything spooled on disk: closed segments, our open one (empty segments are removed when
        sealed), segments being replayed, and segments of other processes."""
        return any(True for _ in self.directory.iterdir())

    def records(self, path: Path) -> Iterator[SpoolRecord]:
        return read_segment(path, self.skipped)

    def release(self, path: Path, done: bool) -> None:
        """After replay: delete the segment when done, else put it back for a later try."""
        if done:
            path.unlink(missing_ok=True)
        else:
            os.replace(path, path.with_name(path.name.split(".replay-")[0] + ".seg"))

    def close(self) -> None:
        self.seal()


def _owner_pid(path: Path) -> Optional[int]:
    """The pid a segment belongs to: from ``*.replay-PID`` or from ``NAME-PID-COUNTER.open``."""
    name = path.name
    if ".replay-" in name:
        tail = name.rsplit(".replay-", 1)[1]
        return int(tail) if tail.isdigit() else None
    parts = path.stem.split("-")
    if len(parts) >= 3 and parts[-2].isdigit():
        return int(parts[-2])
    return None
