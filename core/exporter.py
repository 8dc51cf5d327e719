"""Background span exporter: bounded queue -> batched gRPC Export -> spool on failure -> replay.

The agent's thread only serializes a span and appends it to an in-memory queue (bounded by bytes).
A daemon thread batches, sends, and on any transport failure writes the batch to the local spool,
backs off, and replays the spool once the server answers again. Nothing is dropped silently:
``stats()`` counts every span by fate, and drops are logged (rate-limited) with their reason.
"""
from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
import weakref
from typing import Optional

import grpc

from agentlightning.core.batch_queue import BATCH_READY, REJECTED, BatchQueue
from agentlightning.core.channel import open_channel
from agentlightning.core.exporter_config import (  # noqa: F401 (re-exported: the exporter's public API)
    DEFAULT_ENDPOINT,
    ExporterConfig,
    ExporterStats,
    default_spool_dir,
)
from agentlightning.core.spool import Spool
from agentlightning.core.wire import frame_span, split_export_request
from agentlightning.v1 import spans_pb2, traces_pb2

logger = logging.getLogger("agentlightning.exporter")

EXPORT_METHOD = "/agentlightning.v1.TraceService/Export"
# Failures worth retrying later: the batch itself may be fine.
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNAUTHENTICATED,  # keep the data until the token is fixed
    grpc.StatusCode.PERMISSION_DENIED,
}


def _count_frames(payload: bytes) -> int:
    return sum(1 for _ in split_export_request(payload))


class SpanExporter:
    """Thread-safe, fail-open span sink that delivers to a Lightning server."""

    def __init__(self, config: Optional[ExporterConfig] = None) -> None:
        self.config = config or ExporterConfig.from_env()
        self._queue = BatchQueue(self.config.max_queue_bytes, self.config.max_batch_spans,
                                 self.config.max_batch_bytes)
        self._lock = threading.Lock()  # the queue, in-flight count, drops (taken by the agent's threads)
        self._send_lock = threading.Lock()  # the senders' counters: never waits for an agent's thread
        self._wake = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._stats = ExporterStats()
        self._stop = False
        self._circuit_open_until = 0.0
        self._backoff = self.config.backoff_initial_s
        self._last_drop_log = 0.0
        self._rpc_latencies: collections.deque[float] = collections.deque(maxlen=100_000)
        self._replay_lock = threading.Lock()  # one replayer at a time (worker thread or drain_spool)
        self._spool = Spool(self.config.spool_dir or default_spool_dir(), self.config.spool_max_bytes)
        senders = max(1, self.config.senders)
        # A channel per sender: gRPC's Python layer takes its channel's lock a few times per call, and
        # waiting there for another sender costs a GIL hand-off (see max_batch_spans). Same target, so
        # gRPC may still share one connection underneath.
        self._channels = [open_channel(
            self.config.endpoint, self.config.tls_ca_file,
            options=[
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.enable_retries", 0),
            ],
        ) for _ in range(senders)]
        self._exports = [channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=None,  # payloads are pre-framed bytes
            response_deserializer=traces_pb2.ExportResponse.FromString,
        ) for channel in self._channels]
        self._sender = threading.local()  # .export: this sender thread's call (others use the first)
        self._metadata = (("authorization", f"Bearer {self.config.token}"),) if self.config.token else None
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"agentlightning-exporter-{i}", daemon=True)
            for i in range(senders)
        ]
        for thread in self._threads:
            thread.start()
        _live_exporters.add(self)

    # -- agent side (must be cheap, never raise, never block on I/O) ---------------------
    def submit(self, span: spans_pb2.Span) -> bool:
        try:
            serialized = span.SerializeToString()
        except Exception as exc:  # e.g. invalid UTF-8 in a string field
            self._drop("serialize_error", 1, exc)
            return False
        with self._lock:
            self._stats.submitted += 1
            if self._stop:
                self._drop_locked("closed", 1)
                return False
            queued = self._queue.put(serialized)
            if queued == REJECTED:
                self._drop_locked("queue_full", 1)
                return False
        if queued == BATCH_READY:
            self._wake.set()
        return True

    # -- control -------------------------------------------------------------------------
    def stats(self) -> ExporterStats:
        with self._lock, self._send_lock:
            snapshot = ExporterStats(**{**self._stats.__dict__, "dropped": dict(self._stats.dropped)})
            snapshot.queued_bytes = self._queue.bytes
        return snapshot

    def ack_latencies_s(self) -> list[float]:
        """Durations of recent successful Export calls (send -> durable ack), for benchmarks."""
        return list(self._rpc_latencies)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything queued has been acked or spooled. True when the queue drained."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        with self._lock:
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(remaining, 0.05))
        return True

    def drain_spool(self, timeout_s: float = 30.0) -> bool:
        """Flush, then replay the spool until it is empty or the deadline passes. True when empty."""
        deadline = time.monotonic() + timeout_s
        if not self.flush(timeout_s):
            return False
        while time.monotonic() < deadline:
            if not self._replay_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return False
            try:
                self._circuit_open_until = 0.0
                self._spool.seal()
                if self._replay_spool_locked() and not self._spool.has_pending():
                    with self._lock:
                        if not self._queue and not self._in_flight:
                            return True
            finally:
                self._replay_lock.release()
            time.sleep(0.05)
        return False

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what can be sent; whatever is left goes to the spool, never lost."""
        if self._stop:
            return
        self.flush(timeout_s)
        with self._lock:
            self._stop = True
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        with self._lock:
            leftover, n = self._queue.take_all()
        if n:
            self._spool_batch(bytes(leftover), n)
        self._spool.close()
        for channel in self._channels:
            channel.close()
        _live_exporters.discard(self)

    # -- worker thread -------------------------------------------------------------------
    def _run(self, index: int) -> None:
        self._sender.export = self._exports[index]
        while True:
            self._wake.wait(self.config.flush_interval_s)
            self._wake.clear()
            if self._stop:
                return
            try:
                while True:
                    payload, n = self._take_batch()
                    if not n:
                        break
                    try:
                        self._deliver(payload, n)
                    finally:
                        self._done_in_flight(n)
                if time.monotonic() >= self._circuit_open_until and self._spool.has_pending():
                    self._replay_spool()
            except Exception:  # keep the thread alive whatever happens
                logger.exception("exporter loop error")

    def _take_batch(self) -> tuple[bytes, int]:
        with self._lock:
            payload, n = self._queue.take()
            self._in_flight += n
        return bytes(payload), n

    def _done_in_flight(self, n: int) -> None:
        with self._lock:
            self._in_flight -= n
            if not self._queue and not self._in_flight:
                self._idle.notify_all()

    def _deliver(self, payload: bytes, n: int) -> None:
        if time.monotonic() < self._circuit_open_until:
            self._spool_batch(payload, n)
            return
        if not self._send(payload, n, replay=False):
            self._spool_batch(payload, n)

    def _send(self, payload: bytes, n: int, replay: bool) -> bool:
        """One Export RPC. True when the server answered (spans acked or rejected for good)."""
        started = time.perf_counter()
        try:
            export = getattr(self._sender, "export", self._exports[0])
            response = export(payload, timeout=self.config.rpc_timeout_s, metadata=self._metadata)
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
            with self._send_lock:
                self._stats.sent += n
                self._stats.export_errors += 1
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in (err.details() or ""):
                return self._send_split(payload, n, replay, err)
            if code in RETRYABLE:
                self._open_circuit(code)
                return False
            # The server says the batch as a whole is unacceptable: retrying cannot help.
            self._drop(f"server_refused_batch:{code.name}", n, err)
            return True
        self._rpc_latencies.append(time.perf_counter() - started)
        with self._send_lock:
            self._stats.sent += n
            acked = response.accepted + response.duplicates
            self._stats.acked += acked
            self._stats.duplicates += response.duplicates
            self._stats.rejected += response.rejected
            if replay:
                self._stats.replayed += acked
        for result in response.results:
            if result.code == traces_pb2.SPAN_RESULT_CODE_REJECTED:
                logger.warning("span %s rejected by server: %s", result.span_id.hex(), result.reason)
        if self.config.on_ack is not None:
            try:
                self.config.on_ack(payload, response)
            except Exception:
                logger.exception("on_ack callback failed")
        self._backoff = self.config.backoff_initial_s
        self._circuit_open_until = 0.0
        return True

    def _send_split(self, payload: bytes, n: int, replay: bool, err: grpc.RpcError) -> bool:
        """The server's message-size limit refused the batch: send it in halves; a single span
        that is too large on its own can never be accepted and is dropped (counted, logged)."""
        frames = [frame_span(chunk) for chunk in split_export_request(payload)]
        if len(frames) <= 1:
            self._drop("span_too_large", n, err)
            return True
        half = len(frames) // 2
        first = self._send(b"".join(frames[:half]), half, replay)
        second = self._send(b"".join(frames[half:]), len(frames) - half, replay)
        if first and not second:  # keep what is left for a later try (dedupe makes resending safe)
            self._spool_batch(b"".join(frames[half:]), len(frames) - half)
            return True
        return first and second

    def _open_circuit(self, code: grpc.StatusCode) -> None:
        logger.info("export failed (%s); spooling for %.1fs", code.name, self._backoff)
        self._circuit_open_until = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.config.backoff_max_s)

    def _spool_batch(self, payload: bytes, n: int) -> None:
        try:
            ok = self._spool.append(payload)
        except OSError as exc:
            self._drop("spool_error", n, exc)
            return
        if ok:
            with self._send_lock:
                self._stats.spooled += n
        else:
            self._drop("spool_full", n)

    def _replay_spool(self) -> bool:
        """Replay unless another thread already is (then: let it)."""
        if not self._replay_lock.acquire(blocking=False):
            return False
        try:
            return self._replay_spool_locked()
        finally:
            self._replay_lock.release()

    def _replay_spool_locked(self) -> bool:
        """Send every spooled batch. False as soon as the server fails again (the rest stays)."""
        self._spool.seal()
        while True:
            path = self._spool.claim()
            if path is None:
                return True
            done = True
            try:
                for record in self._spool.records(path):
                    if not self._send(record.payload, _count_frames(record.payload), replay=True):
                        done = False
                        break
            except Exception:
                logger.exception("replay of %s failed", path.name)
                done = False
            self._spool.release(path, done)
            if not done:
                return False

    # -- drops ---------------------------------------------------------------------------
    def _drop(self, reason: str, n: int, exc: Optional[BaseException] = None) -> None:
        with self._lock:
            self._drop_locked(reason, n, exc)

    def _drop_locked(self, reason: str, n: int, exc: Optional[BaseException] = None) -> None:
        self._stats.dropped[reason] = self._stats.dropped.get(reason, 0) + n
        now = time.monotonic()
        if now - self._last_drop_log > 5.0:
            self._last_drop_log = now
            logger.warning("dropped %d span(s): %s%s (totals: %s)", n, reason,
                           f" ({exc})" if exc else "", self._stats.dropped)


_live_exporters: "weakref.WeakSet[SpanExporter]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    from agentlightning.core.deferred import drain_all

    drain_all(5.0)  # integrations' background workers first: their spans go to the exporters below
    for exporter in list(_live_exporters):
        try:
            exporter.close(timeout_s=5.0)
        except Exception:
            pass
