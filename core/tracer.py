"""The tracer: the small API instrumented code uses to open, fill and close spans.

It never raises into the agent: anything that goes wrong while recording is counted and swallowed.
Finished spans go to a ``SpanSink`` (normally the background ``SpanExporter``).
"""
from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import threading
import time
from typing import Any, Iterator, Mapping, Optional, Protocol

from agentlightning.core import context as ctx
from agentlightning.core import ids
from agentlightning.core.kinds import RewardSource, SpanKind, TokenProvenance, ToolOutcome  # noqa: F401 (re-export)
from agentlightning.v1 import spans_pb2

logger = logging.getLogger("agentlightning.tracer")


class SpanSink(Protocol):
    def submit(self, span: spans_pb2.Span) -> bool:
        """Take a finished span; must not block on the network or raise."""


class MemorySink:
    """Keeps finished spans in a list: for tests of instrumentation and for offline use."""

    def __init__(self) -> None:
        self.spans: list[spans_pb2.Span] = []
        self._lock = threading.Lock()

    def submit(self, span: spans_pb2.Span) -> bool:
        copy = spans_pb2.Span()
        copy.CopyFrom(span)
        with self._lock:
            self.spans.append(copy)
        return True


def set_attribute(target: Any, key: str, value: Any, depth: int = 0) -> None:
    """Store a Python value into a ``map<string, AttributeValue>`` entry."""
    slot = target[key]
    _fill_value(slot, value, depth)


def _fill_value(slot: spans_pb2.AttributeValue, value: Any, depth: int) -> None:
    if depth > 8:
        slot.string_value = json.dumps(value, default=str)[:4096]
    elif isinstance(value, bool):
        slot.bool_value = value
    elif isinstance(value, int):
        if -(2**63) <= value < 2**63:
            slot.int_value = value
        else:
            slot.string_value = str(value)
    elif isinstance(value, float):
        slot.double_value = value
    elif isinstance(value, str):
        slot.string_value = value
    elif isinstance(value, (bytes, bytearray)):
        slot.bytes_value = bytes(value)
    elif isinstance(value, Mapping):
        slot.map_value.SetInParent()
        for k, v in value.items():
            _fill_value(slot.map_value.values[str(k)], v, depth + 1)
    elif isinstance(value, (list, tuple)):
        slot.list_value.SetInParent()
        for item in value:
            _fill_value(slot.list_value.values.add(), item, depth + 1)
    else:
        slot.string_value = str(value)


class ActiveSpan:
    """A span being recorded. Fill ``proto`` (or use the helpers), then ``end()`` exactly once."""

    __slots__ = ("proto", "_tracer", "_ended", "rollout", "__weakref__")

    def __init__(self, tracer: "Tracer", proto: spans_pb2.Span, rollout: ctx.RolloutContext) -> None:
        self.proto = proto
        self._tracer = tracer
        self._ended = False
        self.rollout = rollout

    @property
    def span_id(self) -> bytes:
        return self.proto.span_id

    @property
    def agent_name(self) -> str:
        return self.proto.agent_name

    @property
    def ended(self) -> bool:
        return self._ended

    def set_attribute(self, key: str, value: Any) -> "ActiveSpan":
        try:
            set_attribute(self.proto.attributes, key, value)
        except Exception:  # never into the agent
            logger.debug("attribute %r not recorded", key, exc_info=True)
        return self

    def record_error(self, error: BaseException | str, error_type: str | None = None) -> None:
        status = self.proto.status
        status.code = spans_pb2.STATUS_CODE_ERROR
        if isinstance(error, BaseException):
            status.error_type = error_type or type(error).__name__
            status.message = str(error)[:8192]
        else:
            status.error_type = error_type or "Error"
            status.message = str(error)[:8192]

    def end(self, error: BaseException | str | None = None, end_time_ns: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            proto = self.proto
            if error is not None:
                self.record_error(error)
            else:
                status = proto.status
                if status.code == spans_pb2.STATUS_CODE_UNSET:
                    status.code = spans_pb2.STATUS_CODE_OK
            start = proto.start_time_unix_nano
            end = end_time_ns or time.time_ns()
            proto.end_time_unix_nano = end if end > start else start
            self._tracer._finish(self)
        except Exception:
            logger.debug("span end failed", exc_info=True)


class Tracer:
    """Creates spans with the right identity and parent, and hands finished ones to a sink."""

    def __init__(self, sink: Optional[SpanSink] = None, producer_id: Optional[str] = None) -> None:
        self.sink: SpanSink = sink if sink is not None else MemorySink()
        self.producer_id = producer_id or ids.new_producer_id()
        self._sequence = itertools.count(1)
        self.errors = 0

    # -- spans ---------------------------------------------------------------------------
    def start_span(
        self,
        name: str,
        kind: int = spans_pb2.SPAN_KIND_OTHER,
        *,
        agent_name: Optional[str] = None,
        parent: Optional[ActiveSpan] = None,
        rollout: Optional[ctx.RolloutContext] = None,
        attributes: Optional[Mapping[str, Any]] = None,
        start_time_ns: Optional[int] = None,
    ) -> ActiveSpan:
        """Open a span. Parent: ``parent`` if given, else the current span, else the rollout root.

        Outside any rollout a root span starts a new generated rollout (live traffic).
        """
        if parent is None:
            current = ctx._current_span.get()
            parent = current if isinstance(current, ActiveSpan) else None
        if parent is not None:
            rollout_ctx = parent.rollout
            parent_id = parent.proto.span_id
            inherited_agent = parent.proto.agent_name
        else:
            rollout_ctx = rollout or ctx._current_rollout.get() or ctx.new_rollout_context()
            parent_id = rollout_ctx.root_parent_span_id
            inherited_agent = ""
        # Field by field, empty ones skipped: measured ~35% cheaper than the keyword constructor
        # (this runs on the agent's thread for every span).
        span = spans_pb2.Span()
        span.schema_version = spans_pb2.SCHEMA_VERSION_1
        span.trace_id = rollout_ctx.trace_id
        span.span_id = ids.new_span_id()
        if parent_id:
            span.parent_span_id = parent_id
        span.rollout_id = rollout_ctx.rollout_id
        if rollout_ctx.attempt_id:
            span.attempt_id = rollout_ctx.attempt_id
        span.producer_id = self.producer_id
        span.sequence = next(self._sequence)
        span.name = name
        span.kind = kind
        agent = agent_name if agent_name is not None else inherited_agent
        if agent:
            span.agent_name = agent
        span.start_time_unix_nano = start_time_ns or time.time_ns()
        active = ActiveSpan(self, span, rollout_ctx)
        if attributes:
            for key, value in attributes.items():
                active.set_attribute(key, value)
        return active

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        kind: int = spans_pb2.SPAN_KIND_OTHER,
        *,
        agent_name: Optional[str] = None,
        attributes: Optional[Mapping[str, Any]] = None,
    ) -> Iterator[ActiveSpan]:
        """Open a span as the current one for the block; an exception marks it ERROR and propagates."""
        active = self.start_span(name, kind, agent_name=agent_name, attributes=attributes)
        with ctx.use_span(active):
            try:
                yield active
            except BaseException as exc:
                active.end(error=exc)
                raise
            else:
                active.end()

    # -- rewards -------------------------------------------------------------------------
    def emit_reward(
        self,
        value: float,
        name: str = "reward",
        *,
        source: int = spans_pb2.REWARD_SOURCE_ENVIRONMENT,
        primary: bool = True,
        label: str = "",
        rollout: Optional[ctx.RolloutContext] = None,
        agent_name: Optional[str] = None,
    ) -> bool:
        """Record a reward under the current span/rollout. Returns False (and records nothing) if invalid."""
        try:
            value = float(value)
        except (TypeError, ValueError):
            logger.warning("reward %r ignored: not a number: %r", name, value)
            return False
        if not math.isfinite(value):
            logger.warning("reward %r ignored: not finite: %r", name, value)
            return False
        span = self.start_span(
            name, spans_pb2.SPAN_KIND_REWARD, agent_name=agent_name, rollout=rollout,
            parent=None,
        )
        if rollout is not None and span.rollout is not rollout:
            # An explicit rollout wins over the current context (e.g. feedback attached later).
            span.proto.trace_id = rollout.trace_id
            span.proto.rollout_id = rollout.rollout_id
            span.proto.attempt_id = rollout.attempt_id
            span.proto.parent_span_id = rollout.root_parent_span_id
            span.rollout = rollout
        reward = span.proto.reward
        reward.name = name
        reward.value = value
        reward.source = source
        reward.primary = primary
        reward.label = label
        span.end(end_time_ns=span.proto.start_time_unix_nano)
        return True

    # -- internals -----------------------------------------------------------------------
    def _finish(self, span: ActiveSpan) -> None:
        try:
            self.sink.submit(span.proto)
        except Exception:
            self.errors += 1
            logger.debug("sink refused a span", exc_info=True)
