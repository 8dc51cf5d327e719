"""Receiving AutoGen's OpenTelemetry GenAI spans (``invoke_agent``, ``execute_tool``).

AutoGen opens these spans on the *global* OpenTelemetry tracer provider (``trace.get_tracer``); the
``tracer_provider`` argument of its runtime only covers the runtime's messaging spans. So:

- if the application already set an SDK-style provider (one with ``add_span_processor``), our
  processor is added to it and the application's own exporters keep working;
- otherwise we install ``GenAiTracerProvider``: a small implementation of the OpenTelemetry *API*
  (no SDK needed, unaffected by ``OTEL_SDK_DISABLED``) that records only AutoGen's GenAI spans and
  passes every other span through as the non-recording current span, so parents stay visible and
  AutoGen's per-message runtime spans cost next to nothing. An OpenTelemetry SDK configured later
  cannot replace a global provider, so configure yours before ``instrument()`` if you have one.
"""
from __future__ import annotations

import random
import time
from typing import Any, Iterator, Mapping, Optional, Protocol, Sequence

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_SYSTEM = "gen_ai.system"
RECORDED_OPERATIONS = frozenset({"invoke_agent", "execute_tool"})

_rng = random.Random()
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class SpanProcessorLike(Protocol):
    """What the OpenTelemetry SDK calls on a span processor (duck-typed: no SDK import needed)."""

    def on_start(self, span: Any, parent_context: Any = None) -> None: ...

    def on_end(self, span: Any) -> None: ...


class GenAiSpan(trace.Span):
    """A recorded AutoGen GenAI span; exposes what the SDK's ``ReadableSpan`` exposes to processors."""

    __slots__ = ("name", "context", "parent", "attributes", "start_time", "end_time", "status", "_processor")

    def __init__(self, name: str, context: SpanContext, parent: Optional[SpanContext],
                 attributes: dict, start_time: int, processor: SpanProcessorLike) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.attributes = attributes
        self.start_time = start_time
        self.end_time: Optional[int] = None
        self.status = Status(StatusCode.UNSET)
        self._processor = processor

    def get_span_context(self) -> SpanContext:
        return self.context

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self.end_time is None:
            self.attributes.update(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        if self.end_time is None:
            self.attributes[key] = value

    def add_event(self, name: str, attributes: Any = None, timestamp: Optional[int] = None) -> None:
        pass  # AutoGen's only events are exceptions, which also set the status we read

    def update_name(self, name: str) -> None:
        self.name = name

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_status(self, status: Any, description: Optional[str] = None) -> None:
        if self.end_time is not None:
            return
        if isinstance(status, Status):
            self.status = status
        else:
            self.status = Status(status, description)

    def record_exception(self, exception: BaseException, attributes: Any = None,
                         timestamp: Optional[int] = None, escaped: bool = False) -> None:
        pass  # see add_event

    def end(self, end_time: Optional[int] = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time or time.time_ns()
        self._processor.on_end(self)


class GenAiTracer(trace.Tracer):
    """Records spans whose attributes say AutoGen GenAI operation; passes every other span through."""

    def __init__(self, provider: "GenAiTracerProvider") -> None:
        self._provider = provider

    def start_span(self, name: str, context: Any = None, kind: Any = trace.SpanKind.INTERNAL,
                   attributes: Optional[Mapping[str, Any]] = None, links: Optional[Sequence[Any]] = None,
                   start_time: Optional[int] = None, record_exception: bool = True,
                   set_status_on_exception: bool = True) -> trace.Span:
        parent_span = trace.get_current_span(context)
        processor = self._provider.processor
        if (processor is None or not attributes or attributes.get(GEN_AI_SYSTEM) != "autogen"
                or attributes.get(GEN_AI_OPERATION) not in RECORDED_OPERATIONS):
            # Pass-through: the parent stays the current span for whatever runs inside.
            return parent_span if not parent_span.is_recording() else NonRecordingSpan(parent_span.get_span_context())
        parent_ctx = parent_span.get_span_context()
        parent = parent_ctx if parent_ctx.is_valid else None
        trace_id = parent_ctx.trace_id if parent is not None else (_rng.getrandbits(128) or 1)
        span_ctx = SpanContext(trace_id, _rng.getrandbits(64) or 1, is_remote=False, trace_flags=_SAMPLED)
        attrs = attributes if type(attributes) is dict else dict(attributes)  # AutoGen passes a fresh dict
        span = GenAiSpan(name, span_ctx, parent, attrs, start_time or time.time_ns(), processor)
        processor.on_start(span, context)
        return span

    def start_as_current_span(self, name: str, context: Any = None, kind: Any = trace.SpanKind.INTERNAL,
                              attributes: Optional[Mapping[str, Any]] = None,
                              links: Optional[Sequence[Any]] = None, start_time: Optional[int] = None,
                              record_exception: bool = True, set_status_on_exception: bool = True,
                              end_on_exit: bool = True) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time, record_exception,
                               set_status_on_exception)
        return trace.use_span(span, end_on_exit=end_on_exit, record_exception=record_exception,
                              set_status_on_exception=set_status_on_exception)  # type: ignore[return-value]


class GenAiTracerProvider(trace.TracerProvider):
    """The global provider we install when the application has none. ``processor=None`` makes it inert."""

    def __init__(self, processor: Optional[SpanProcessorLike]) -> None:
        self.processor = processor
        self._tracer = GenAiTracer(self)

    def get_tracer(self, instrumenting_module_name: str, instrumenting_library_version: Optional[str] = None,
                   schema_url: Optional[str] = None, attributes: Any = None) -> trace.Tracer:
        return self._tracer


def attach(processor: SpanProcessorLike) -> Any:
    """Route AutoGen's GenAI spans to ``processor``; returns the provider used (to detach later)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, GenAiTracerProvider):
        provider.processor = processor
        return provider
    if provider is getattr(processor, "attached_provider", None):
        return provider  # added on an earlier instrument(); SDK providers keep their processors
    add = getattr(provider, "add_span_processor", None)
    if callable(add):
        add(processor)
        return provider
    ours = GenAiTracerProvider(processor)
    trace.set_tracer_provider(ours)
    installed = trace.get_tracer_provider()
    if installed is not ours:  # another thread or an env-configured provider won the race
        add = getattr(installed, "add_span_processor", None)
        if callable(add):
            add(processor)
        return installed
    return ours


def detach(provider: Any, processor: SpanProcessorLike) -> None:
    """Stop routing spans to ``processor`` (an SDK provider keeps it, inert, as the SDK cannot remove one)."""
    if isinstance(provider, GenAiTracerProvider) and provider.processor is processor:
        provider.processor = None
