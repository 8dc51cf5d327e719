"""The agent-thread side: AutoGen's hooks call in here, and each call only notes what happened.

Two hooks feed it: an OpenTelemetry span processor (``on_start``/``on_end``, SDK duck type) for the
``invoke_agent``/``execute_tool`` spans, and ``on_record`` for AutoGen's event-log records. Each notes
the event with its parent (the OpenTelemetry id of the enclosing AutoGen span, resolved here, where
the context is), the clock and, for roots, the current agentlightning span/rollout; ``SpanBuilder``
applies the notes in order, later and in batches (``defer=True``, see ``core.deferred``) or inline.
When an outermost agent span ends, the worker's thread is woken to apply the run's notes in one pass while
the agent's code goes on; ``agentlightning.flush()`` waits for them.
"""
from __future__ import annotations

import contextvars
import logging
import time
from typing import Any, Optional

from opentelemetry import trace

from agentlightning.core import api
from agentlightning.core import context as ctx
from agentlightning.core.tracer import Tracer
from agentlightning.integrations.autogen import spans as notes
from agentlightning.integrations.autogen.otel import GEN_AI_OPERATION, GEN_AI_SYSTEM
from agentlightning.integrations.autogen.spans import SpanBuilder
from agentlightning.core.deferred import DeferredWorker

_debug = logging.getLogger("agentlightning.integrations.autogen")
_get_current_span = trace.get_current_span
_now = time.time_ns

# The key of the stream between LLMStreamStartEvent and LLMStreamEndEvent in the task that streams.
_stream_key: contextvars.ContextVar[Optional[object]] = contextvars.ContextVar(
    "agentlightning_autogen_stream", default=None)


class AutoGenRecorder:
    """Receives AutoGen's hooks; see the module docstring. ``errors``/``dropped`` count what was lost."""

    def __init__(self, tracer: Optional[Tracer] = None, defer: bool = True) -> None:
        self.tracer = tracer
        self.enabled = True
        self.errors = 0  # hook or mapping failures swallowed (logged at debug level)
        self.dropped = 0  # events refused because the worker's backlog was full
        self.record_passthrough_parents = False  # set when attached to a full SDK provider
        self.attached_provider: Any = None  # the OpenTelemetry provider that calls us
        self._builder = SpanBuilder(self._get_tracer)
        self._worker = DeferredWorker(self._apply, name="agentlightning-autogen") if defer else None
        self._genai: set[int] = set()  # open AutoGen GenAI span ids
        self._roots: set[int] = set()  # ... of which outermost agent spans
        self._alias: dict[int, int] = {}  # other SDK span id -> nearest enclosing GenAI span id
        self._event_types: dict[type, Any] = {}

    def _get_tracer(self) -> Tracer:
        return self.tracer or api.get_tracer()

    def register_event_types(self, handlers: dict[type, Any]) -> None:
        self._event_types.update(handlers)

    def _note(self, item: tuple) -> None:
        if self._worker is None:
            self._apply(item)
        elif not self._worker.submit(item):
            self.dropped += 1

    def _apply(self, item: tuple) -> None:
        try:
            self._builder.handle(item)
        except Exception:
            self.errors += 1
            _debug.debug("autogen event not recorded", exc_info=True)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every noted event has become spans handed to the tracer's sink."""
        return self._worker.drain(timeout_s) if self._worker is not None else True

    def _enclosing(self, otel_span_id: int) -> int:
        if otel_span_id in self._genai:
            return otel_span_id
        return self._alias.get(otel_span_id, 0) if self._alias else 0

    @staticmethod
    def _origin() -> tuple[Any, Any]:
        return ctx.current_span(), ctx.current_rollout()

    # -- OpenTelemetry span processor ------------------------------------------------------------
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if not self.enabled:
            return
        try:
            attrs = span.attributes
            operation = attrs.get(GEN_AI_OPERATION) if attrs else None
            parent = span.parent
            parent_id = self._enclosing(parent.span_id) if parent is not None else 0
            if (operation == "invoke_agent" or operation == "execute_tool") and attrs.get(GEN_AI_SYSTEM) == "autogen":
                span_id = span.context.span_id
                self._genai.add(span_id)
                origin = None if parent_id else self._origin()
                if operation == "invoke_agent":
                    if not parent_id:
                        self._roots.add(span_id)
                    self._note((notes.AGENT_START, span, parent_id, origin))
                else:
                    self._note((notes.TOOL_START, span, parent_id, origin))
            elif parent_id and self.record_passthrough_parents:
                self._alias[span.context.span_id] = parent_id
        except Exception:
            self.errors += 1
            _debug.debug("autogen span start not noted", exc_info=True)

    def _on_ending(self, span: Any) -> None:
        pass

    def on_end(self, span: Any) -> None:
        try:
            span_id = span.context.span_id
            if span_id not in self._genai:
                if self._alias:
                    self._alias.pop(span_id, None)
                return
            self._genai.discard(span_id)
            self._note((notes.END, span))
            if span_id in self._roots:
                self._roots.discard(span_id)
                if self._worker is not None:
                    self._worker.kick()
        except Exception:
            self.errors += 1
            _debug.debug("autogen span end not noted", exc_info=True)

    def shutdown(self) -> None:
        self.flush()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.flush(timeout_millis / 1000)

    # -- event-log records ----------------------------------------------------------------------
    def on_record(self, record: logging.LogRecord) -> None:
        """One record from AutoGen's event loggers: note it if it is an event we map."""
        if not self.enabled:
            return
        handler = self._event_types.get(type(record.msg))
        if handler is None:
            return
        try:
            current = self._enclosing(_get_current_span().get_span_context().span_id)
            handler(self, record.msg, current, None if current else self._origin())
        except Exception:
            self.errors += 1
            _debug.debug("autogen event not noted", exc_info=True)

    def _llm_call(self, event: Any, current: int, origin: Any) -> None:
        self._note((notes.LLM, event.kwargs, current, _now(), origin))

    def _stream_start(self, event: Any, current: int, origin: Any) -> None:
        key = object()
        stale = _stream_key.get()
        _stream_key.set(key)
        self._note((notes.STREAM_START, key, stale, event.kwargs, current, _now(), origin))

    def _stream_end(self, event: Any, current: int, origin: Any) -> None:
        key = _stream_key.get()
        if key is not None:
            _stream_key.set(None)
        self._note((notes.STREAM_END, key, event.kwargs, current, _now(), origin))

    def _tool_results(self, event: Any, current: int, origin: Any) -> None:
        self._note((notes.RESULTS, event.content, current, _now(), origin))  # a list made for this event


def core_event_handlers() -> dict[type, Any]:
    """Handlers for ``autogen_core.events`` (imports autogen_core, so only called by ``instrument``)."""
    from autogen_core.logging import LLMCallEvent, LLMStreamEndEvent, LLMStreamStartEvent

    return {LLMCallEvent: AutoGenRecorder._llm_call, LLMStreamStartEvent: AutoGenRecorder._stream_start,
            LLMStreamEndEvent: AutoGenRecorder._stream_end}


def agentchat_event_handlers() -> dict[type, Any]:
    """Handlers for ``autogen_agentchat.events``: tool results with ``is_error``."""
    from autogen_agentchat.messages import ToolCallExecutionEvent

    return {ToolCallExecutionEvent: AutoGenRecorder._tool_results}
