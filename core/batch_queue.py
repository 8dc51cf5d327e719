"""The exporter's queue: serialized spans bounded by total bytes, grouped into batches as they arrive.

Grouping on arrival makes taking a batch O(1) for a sender thread. Popping span by span meant the sender
held the queue lock (and the GIL) for hundreds of microseconds per batch while the agent's thread waited
for it, and every lock or GIL hand-off between them can cost Python's 5 ms switch interval when the
agent's thread is busy. Not thread-safe by itself: the exporter guards it with its lock.
"""
from __future__ import annotations

import collections

# What ``put`` did with a frame.
REJECTED = 0      # the byte bound is reached: the caller counts a drop
QUEUED = 1
BATCH_READY = 2   # queued, and it completed a batch: worth waking a sender


class BatchQueue:
    def __init__(self, max_bytes: int, max_batch_spans: int, max_batch_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_batch_spans = max(1, max_batch_spans)
        self.max_batch_bytes = max_batch_bytes
        self.bytes = 0  # every queued frame, in full batches and the open one
        self._full: collections.deque[tuple[list[bytes], int]] = collections.deque()
        self._open: list[bytes] = []
        self._open_bytes = 0

    def __bool__(self) -> bool:
        return bool(self._full or self._open)

    def put(self, frame: bytes) -> int:
        size = len(frame)
        if self.bytes + size > self.max_bytes:
            return REJECTED
        self.bytes += size
        if self._open and self._open_bytes + size > self.max_batch_bytes:
            self._close_open()
        self._open.append(frame)
        self._open_bytes += size
        if len(self._open) >= self.max_batch_spans:
            self._close_open()
            return BATCH_READY
        return QUEUED

    def take(self) -> list[bytes]:
        """The oldest full batch, else whatever has arrived since (maybe nothing)."""
        if self._full:
            batch, size = self._full.popleft()
        else:
            batch, size = self._open, self._open_bytes
            self._open, self._open_bytes = [], 0
        self.bytes -= size
        return batch

    def take_all(self) -> list[bytes]:
        frames = [frame for batch, _ in self._full for frame in batch] + self._open
        self._full.clear()
        self._open, self._open_bytes, self.bytes = [], 0, 0
        return frames

    def _close_open(self) -> None:
        self._full.append((self._open, self._open_bytes))
        self._open, self._open_bytes = [], 0
