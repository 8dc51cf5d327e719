"""The exporter's queue: serialized spans bounded by total bytes, appended to batch payloads as they arrive.

Each batch is built as it fills: the span's ExportRequest framing and bytes are appended to a bytearray,
so a sender takes a ready request in O(1). Popping span by span meant the sender held the queue lock (and
the GIL) for hundreds of microseconds per batch while the agent's thread waited for it; and joining ~2 MB
of frames (``bytes.join`` releases the GIL above 1 MiB) cost the sender one more wait for the GIL, up to
Python's 5 ms switch interval while the agent's thread is busy. Not thread-safe by itself: the exporter
guards it with its lock.
"""
from __future__ import annotations

import collections

from agentlightning.core.wire import frame_header

# What ``put`` did with a span.
REJECTED = 0      # the byte bound is reached: the caller counts a drop
QUEUED = 1
BATCH_READY = 2   # queued, and it completed a batch: worth waking a sender


class BatchQueue:
    def __init__(self, max_bytes: int, max_batch_spans: int, max_batch_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_batch_spans = max(1, max_batch_spans)
        self.max_batch_bytes = max_batch_bytes
        self.bytes = 0  # every queued payload byte, in full batches and the open one
        self._full: collections.deque[tuple[bytearray, int]] = collections.deque()  # (ExportRequest, spans)
        self._open = bytearray()
        self._open_spans = 0

    def __bool__(self) -> bool:
        return bool(self._full or self._open_spans)

    def put(self, serialized_span: bytes) -> int:
        header = frame_header(len(serialized_span))
        size = len(header) + len(serialized_span)
        if self.bytes + size > self.max_bytes:
            return REJECTED
        self.bytes += size
        if self._open_spans and len(self._open) + size > self.max_batch_bytes:
            self._close_open()
        self._open += header
        self._open += serialized_span
        self._open_spans += 1
        if self._open_spans >= self.max_batch_spans:
            self._close_open()
            return BATCH_READY
        return QUEUED

    def take(self) -> tuple[bytearray, int]:
        """The oldest full batch (an ExportRequest) and its span count, else whatever has arrived since
        (maybe nothing). The caller turns it into ``bytes`` for gRPC, outside its lock: that copy, unlike
        ``bytes.join``, keeps the GIL."""
        if self._full:
            payload, spans = self._full.popleft()
        else:
            payload, spans = self._open, self._open_spans
            self._open, self._open_spans = bytearray(), 0
        self.bytes -= len(payload)
        return payload, spans

    def take_all(self) -> tuple[bytearray, int]:
        payload = bytearray()
        spans = 0
        while self:
            part, n = self.take()
            payload += part
            spans += n
        return payload, spans

    def _close_open(self) -> None:
        self._full.append((self._open, self._open_spans))
        self._open, self._open_spans = bytearray(), 0
