"""The Store interface every backend implements (SQLite now, PostgreSQL behind the same contract)."""
from __future__ import annotations

import abc
from typing import Callable, NamedTuple, Optional, Sequence

from agentlightning.core.auth import TokenRecord
from agentlightning.v1 import resources_pb2, rollouts_pb2, spans_pb2


class StoreError(Exception):
    """A request the store cannot satisfy as asked."""


class StoreUnavailable(StoreError):
    """The store cannot write right now (disk full, read-only, locked): retry later."""


class NotFound(StoreError):
    pass


class AttemptNotActive(StoreError):
    """The attempt is not (or no longer) the running attempt of this worker."""


class SpanRecord(NamedTuple):
    """A validated span ready to store: index columns plus the original serialized bytes.

    A NamedTuple in column order, so a store can bind it as a row without copying (hot path)."""

    trace_id: bytes
    span_id: bytes
    rollout_id: str
    attempt_id: str
    kind: int
    start_time_unix_nano: int
    producer_id: str
    sequence: int
    data: bytes

    @classmethod
    def from_span(cls, span: spans_pb2.Span, data: Optional[bytes] = None) -> "SpanRecord":
        return cls(span.trace_id, span.span_id, span.rollout_id, span.attempt_id, span.kind,
                   span.start_time_unix_nano, span.producer_id, span.sequence,
                   data if data is not None else span.SerializeToString())


def _already_durable() -> None:
    pass


class Store(abc.ABC):
    """Durable state of a Lightning server. All methods are thread-safe."""

    # -- spans ---------------------------------------------------------------------------
    @abc.abstractmethod
    def insert_spans(self, records: Sequence[SpanRecord]) -> list[bool]:
        """Store spans in one durable transaction. Returns, per record, True if new, False if a
        span with the same (trace_id, span_id) was already stored (or earlier in this batch).
        Returns only after the data is durable; raises StoreUnavailable when it cannot be."""

    def insert_spans_then_sync(self, records: Sequence[SpanRecord]) -> tuple[list[bool], Callable[[], None]]:
        """``insert_spans`` in two steps, for a pipelined group commit: the rows are committed when this
        returns but durable only once the returned ``sync()`` has returned (it makes everything committed
        before the call durable, and raises StoreUnavailable when it cannot). One thread can then flush
        the last group while another inserts the next. Default: ``insert_spans``, already durable."""
        return self.insert_spans(records), _already_durable

    @abc.abstractmethod
    def get_spans(self, rollout_id: str, attempt_id: str = "") -> list[spans_pb2.Span]:
        """Spans of a rollout (one attempt or all), in ingest order."""

    @abc.abstractmethod
    def count_spans(self) -> int: ...

    # -- rollouts ------------------------------------------------------------------------
    @abc.abstractmethod
    def enqueue(self, specs: Sequence[rollouts_pb2.RolloutSpec]) -> list[rollouts_pb2.Rollout]:
        """Add rollouts; a spec whose rollout_id exists returns the existing rollout (idempotent)."""

    @abc.abstractmethod
    def dequeue(self, worker_id: str, mode: str = "", principal: str = ""
                ) -> Optional[tuple[rollouts_pb2.Rollout, rollouts_pb2.Attempt]]:
        """Atomically take the oldest queued rollout and start a new attempt for ``worker_id``
        (``principal``: the authenticated token name, recorded as the attempt's owner)."""

    @abc.abstractmethod
    def attempt_owners(self, rollout_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """For the given rollouts that exist in the queue: {rollout_id: {attempt_id: owner principal}}."""

    @abc.abstractmethod
    def heartbeat(self, attempt_id: str, worker_id: str) -> rollouts_pb2.HeartbeatResponse: ...

    @abc.abstractmethod
    def complete(self, attempt_id: str, worker_id: str, success: bool,
                 final_reward: Optional[float], error: str) -> rollouts_pb2.Rollout: ...

    @abc.abstractmethod
    def cancel(self, rollout_id: str) -> rollouts_pb2.Rollout: ...

    @abc.abstractmethod
    def expire_attempts(self, now_ns: int) -> list[str]:
        """Time out running attempts whose heartbeat is older than their rollout's timeout.
        Returns the affected rollout ids (re-queued or finished)."""

    @abc.abstractmethod
    def get_rollout(self, rollout_id: str) -> rollouts_pb2.Rollout: ...

    @abc.abstractmethod
    def list_rollouts(self, status: int = 0, group_id: str = "", limit: int = 100,
                      offset: int = 0) -> list[rollouts_pb2.Rollout]: ...

    @abc.abstractmethod
    def list_attempts(self, rollout_id: str) -> list[rollouts_pb2.Attempt]: ...

    # -- resources -----------------------------------------------------------------------
    @abc.abstractmethod
    def publish_resource(self, resource: resources_pb2.ModelResource) -> resources_pb2.ModelResource: ...

    @abc.abstractmethod
    def get_resource(self, name: str) -> resources_pb2.ModelResource: ...

    # -- access tokens -------------------------------------------------------------------
    @abc.abstractmethod
    def add_token(self, name: str, role: str, token_hash: bytes) -> TokenRecord:
        """Store a new token's hash; raises StoreError if the name is taken."""

    @abc.abstractmethod
    def revoke_token(self, name: str) -> bool:
        """Mark a token revoked; False if there is no such token."""

    @abc.abstractmethod
    def list_tokens(self) -> list[TokenRecord]: ...

    def close(self) -> None:
        """Release connections; pending writes are already durable."""
