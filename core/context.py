"""Rollout and span context carried in contextvars, so nested, async and threaded code finds its parent.

Threads started with a plain ``threading.Thread`` do not inherit contextvars; integrations that hop
threads pass parents explicitly (framework run ids), and ``contextvars.copy_context().run`` works too.
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field
from typing import Iterator, Optional

from agentlightning.core import ids


@dataclass(frozen=True)
class RolloutContext:
    """Identity shared by every span of one rollout attempt."""

    rollout_id: str
    attempt_id: str
    trace_id: bytes
    group_id: str = ""
    # Spans with no parent in this rollout hang under this span id (e.g. an OpenTelemetry parent).
    root_parent_span_id: bytes = b""
    metadata: dict = field(default_factory=dict, compare=False)


_current_rollout: contextvars.ContextVar[Optional[RolloutContext]] = contextvars.ContextVar(
    "agentlightning_rollout", default=None
)
# The innermost open span (an ActiveSpan from tracer.py), typed loosely to avoid an import cycle.
_current_span: contextvars.ContextVar[Optional[object]] = contextvars.ContextVar(
    "agentlightning_span", default=None
)


def current_rollout() -> Optional[RolloutContext]:
    return _current_rollout.get()


def current_span() -> Optional[object]:
    return _current_span.get()


def _otel_parent() -> tuple[bytes, bytes]:
    """(trace_id, span_id) of the active OpenTelemetry span, or empty bytes when there is none."""
    try:
        from opentelemetry import trace as otel_trace
    except ImportError:  # opentelemetry-api is a dependency, but stay fail-open
        return b"", b""
    span_context = otel_trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return b"", b""
    return span_context.trace_id.to_bytes(16, "big"), span_context.span_id.to_bytes(8, "big")


def new_rollout_context(
    rollout_id: Optional[str] = None,
    attempt_id: Optional[str] = None,
    group_id: str = "",
    metadata: Optional[dict] = None,
) -> RolloutContext:
    """A fresh rollout identity; joins the active OpenTelemetry trace when there is one."""
    otel_trace_id, otel_span_id = _otel_parent()
    rollout_id = rollout_id or ids.new_rollout_id()
    return RolloutContext(
        rollout_id=rollout_id,
        attempt_id=attempt_id or ids.new_attempt_id(rollout_id, 1),
        trace_id=otel_trace_id or ids.new_trace_id(),
        group_id=group_id,
        root_parent_span_id=otel_span_id,
        metadata=dict(metadata or {}),
    )


@contextlib.contextmanager
def use_rollout(context: RolloutContext) -> Iterator[RolloutContext]:
    """Make ``context`` the current rollout (and clear the current span) inside the block."""
    rollout_token = _current_rollout.set(context)
    span_token = _current_span.set(None)
    try:
        yield context
    finally:
        _current_span.reset(span_token)
        _current_rollout.reset(rollout_token)


@contextlib.contextmanager
def use_span(span: object) -> Iterator[object]:
    token = _current_span.set(span)
    try:
        yield span
    finally:
        _current_span.reset(token)
