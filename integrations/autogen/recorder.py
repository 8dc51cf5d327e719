"""Turns AutoGen's GenAI spans and event-log records into our AGENT, LLM and TOOL spans.

Parents come from OpenTelemetry span ids: each open ``invoke_agent``/``execute_tool`` span maps to our
span, and an LLM event is placed under the span current when AutoGen logs it (the agent's). A root
agent span hangs under the current agentlightning span/rollout, or starts a generated rollout.

Tool spans are held open after the tool returns until the agent logs ``ToolCallExecutionEvent``,
which carries the result text the model will see and ``is_error``; calls that never ran (arguments
that are not JSON, unknown tool) get a span from that event alone. Whatever is still held when the
agent's span ends is closed with it, so nothing waits forever.
"""
from __future__ import annotations

import contextvars
import logging
import time
from collections import OrderedDict
from typing import Any, Optional

from opentelemetry import trace

from agentlightning.core import api
from agentlightning.core.kinds import SpanKind, ToolOutcome
from agentlightning.core.tracer import ActiveSpan, Tracer
from agentlightning.integrations.autogen import mapping
from agentlightning.integrations.autogen.otel import GEN_AI_OPERATION, GEN_AI_SYSTEM
from agentlightning.v1 import spans_pb2

_debug = logging.getLogger("agentlightning.integrations.autogen")
_MAX_REMEMBERED = 4096  # requested tool calls / schemas kept for matching; oldest forgotten first
_STATUS_ERROR = trace.StatusCode.ERROR
_NEVER_RAN_ERROR = {ToolOutcome.INVALID_ARGUMENTS: "InvalidArguments", ToolOutcome.NOT_FOUND: "ToolNotFound"}

# The streamed LLM span between LLMStreamStartEvent and LLMStreamEndEvent of the task that streams.
_stream_span: contextvars.ContextVar[Optional[ActiveSpan]] = contextvars.ContextVar(
    "agentlightning_autogen_stream", default=None)


class _Open:
    """One open AutoGen GenAI span and what waits on it."""

    __slots__ = ("span", "parent", "held", "streams")

    def __init__(self, span: ActiveSpan, parent: Optional["_Open"]) -> None:
        self.span = span
        self.parent = parent
        self.held: dict[str, tuple[ActiveSpan, int]] = {}  # call id -> finished tool span, its end time
        self.streams: list[ActiveSpan] = []


class _Bounded(OrderedDict):
    def remember(self, key: Any, value: Any) -> None:
        self[key] = value
        if len(self) > _MAX_REMEMBERED:
            self.popitem(last=False)


def _agent_type(agent_id: Any) -> str:
    """``SelectorGroupChatManager_<team>/<team>`` -> ``SelectorGroupChatManager``."""
    if not agent_id:
        return ""
    kind, _, key = str(agent_id).partition("/")
    return kind[: -len(key) - 1] if key and kind.endswith("_" + key) else kind


class AutoGenRecorder:
    """A span processor (SDK duck type) plus the handlers for AutoGen's event-log records."""

    def __init__(self, tracer: Optional[Tracer] = None) -> None:
        self.tracer = tracer
        self.enabled = True
        self.errors = 0  # mapping failures swallowed (logged at debug level)
        self.record_passthrough_parents = False  # set when attached to a full SDK provider
        self.attached_provider: Any = None  # the OpenTelemetry provider that calls us
        self._open: dict[int, _Open] = {}
        self._alias: dict[int, _Open] = {}  # non-GenAI SDK span id -> nearest GenAI ancestor
        self._requested: _Bounded = _Bounded()  # call id -> (tool name, raw arguments)
        self._schemas: _Bounded = _Bounded()  # tool name -> parameters JSON schema
        self._ran: _Bounded = _Bounded()  # call ids of tool spans already closed without an agent
        self._event_types: dict[type, Any] = {}

    def _tracer(self) -> Tracer:
        return self.tracer or api.get_tracer()

    def register_event_types(self, mapping_: dict[type, Any]) -> None:
        self._event_types.update(mapping_)

    # -- OpenTelemetry span processor ------------------------------------------------------------
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if not self.enabled:
            return
        try:
            attrs = span.attributes or {}
            operation = attrs.get(GEN_AI_OPERATION)
            if attrs.get(GEN_AI_SYSTEM) == "autogen" and operation in ("invoke_agent", "execute_tool"):
                parent = self._lookup(span.parent.span_id) if span.parent is not None else None
                if operation == "invoke_agent":
                    self._agent_started(span, attrs, parent)
                else:
                    self._tool_started(span, attrs, parent)
            elif self.record_passthrough_parents and span.parent is not None:
                ancestor = self._lookup(span.parent.span_id)
                if ancestor is not None:
                    self._alias[span.context.span_id] = ancestor
        except Exception:
            self.errors += 1
            _debug.debug("autogen span start not recorded", exc_info=True)

    def _on_ending(self, span: Any) -> None:
        pass

    def on_end(self, span: Any) -> None:
        try:
            span_id = span.context.span_id
            entry = self._open.pop(span_id, None)
            if entry is None:
                if self._alias:
                    self._alias.pop(span_id, None)
                return
            if entry.span.proto.kind == spans_pb2.SPAN_KIND_TOOL:
                self._tool_ended(entry, span)
            else:
                self._agent_ended(entry, span)
        except Exception:
            self.errors += 1
            _debug.debug("autogen span end not recorded", exc_info=True)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def _lookup(self, otel_span_id: int) -> Optional[_Open]:
        return self._open.get(otel_span_id) or (self._alias.get(otel_span_id) if self._alias else None)

    def _current(self) -> Optional[_Open]:
        return self._lookup(trace.get_current_span().get_span_context().span_id)

    # -- agents ---------------------------------------------------------------------------------
    def _agent_started(self, span: Any, attrs: Any, parent: Optional[_Open]) -> None:
        name = str(attrs.get("gen_ai.agent.name") or "")
        ours = self._tracer().start_span(span.name, SpanKind.AGENT, agent_name=name,
                                         parent=parent.span if parent else None,
                                         start_time_ns=span.start_time)
        ours.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent_id = attrs.get("gen_ai.agent.id")
        if agent_id:
            ours.set_attribute("gen_ai.agent.id", str(agent_id))
        self._open[span.context.span_id] = _Open(ours, parent)

    def _agent_ended(self, entry: _Open, span: Any) -> None:
        end_ns = span.end_time or time.time_ns()
        for tool, tool_end in entry.held.values():
            tool.end(end_time_ns=tool_end)
        entry.held.clear()
        for stream in entry.streams:
            stream.end(error="stream ended without a result", end_time_ns=end_ns)
        entry.streams.clear()
        entry.span.end(error=_error_of(span), end_time_ns=end_ns)

    # -- tools ----------------------------------------------------------------------------------
    def _tool_started(self, span: Any, attrs: Any, parent: Optional[_Open]) -> None:
        name = str(attrs.get("gen_ai.tool.name") or "")
        call_id = str(attrs.get("gen_ai.tool.call.id") or "")
        ours = self._tracer().start_span(span.name, SpanKind.TOOL, parent=parent.span if parent else None,
                                         start_time_ns=span.start_time)
        tool = ours.proto.tool
        tool.name = name
        tool.call_id = call_id
        requested = self._requested.get(call_id) if call_id else None
        if requested is not None:
            tool.arguments = requested[1]
            tool.arguments_valid = mapping.arguments_valid(requested[1])
        else:
            tool.arguments_valid = True  # AutoGen only runs a tool once its arguments parsed
        schema = self._schemas.get(name)
        if schema:
            tool.parameters_json_schema = schema
        tool.outcome = ToolOutcome.OK
        self._open[span.context.span_id] = _Open(ours, parent)

    def _tool_ended(self, entry: _Open, span: Any) -> None:
        ours = entry.span
        end_ns = span.end_time or time.time_ns()
        error = _error_of(span)
        if error is not None:
            tool = ours.proto.tool
            tool.outcome = mapping.outcome_of_error(str(span.attributes.get("error.type") or ""))
            if tool.outcome == ToolOutcome.INVALID_ARGUMENTS:
                tool.arguments_valid = False
            tool.error_message = error[:8192]
            ours.record_error(error, str(span.attributes.get("error.type") or "Error"))
        parent, call_id = entry.parent, ours.proto.tool.call_id
        if parent is not None and call_id and parent.span.proto.kind == spans_pb2.SPAN_KIND_AGENT:
            parent.held[call_id] = (ours, end_ns)  # until the agent reports the result the model sees
        else:
            if call_id:
                self._ran.remember(call_id, True)
            ours.end(end_time_ns=end_ns)

    def _tool_results(self, results: Any) -> None:
        """``ToolCallExecutionEvent``: result text and ``is_error`` per call id."""
        agent = self._current()
        for result in results or ():
            call_id = str(getattr(result, "call_id", "") or "")
            content = str(getattr(result, "content", "") or "")
            is_error = bool(getattr(result, "is_error", False))
            held = agent.held.pop(call_id, None) if agent is not None else None
            requested = self._requested.pop(call_id, None)
            if held is not None:
                ours, end_ns = held
                ours.proto.tool.result = content
                if is_error and ours.proto.tool.outcome == ToolOutcome.OK:
                    ours.proto.tool.outcome = ToolOutcome.ERROR
                    ours.proto.tool.error_message = content[:8192]
                    ours.record_error(content, "ToolError")
                ours.end(end_time_ns=end_ns)
            elif self._ran.pop(call_id, None) is None:
                self._tool_never_ran(agent, call_id, str(getattr(result, "name", "") or ""), content,
                                     is_error, requested)

    def _tool_never_ran(self, agent: Optional[_Open], call_id: str, name: str, content: str, is_error: bool,
                        requested: Optional[tuple[str, str]]) -> None:
        """A call AutoGen answered without running a tool: bad JSON arguments or a tool it does not have."""
        ours = self._tracer().start_span(f"execute_tool {name}", SpanKind.TOOL,
                                         parent=agent.span if agent else None)
        tool = ours.proto.tool
        tool.name, tool.call_id, tool.result = name, call_id, content
        raw = requested[1] if requested else None
        tool.arguments = raw or ""
        tool.arguments_valid = mapping.arguments_valid(raw) if requested else False
        if not is_error:
            tool.outcome = ToolOutcome.OK
        elif requested is None:  # nothing known about the call (forgotten or never requested)
            tool.outcome = ToolOutcome.ERROR
        elif not tool.arguments_valid:
            tool.outcome = ToolOutcome.INVALID_ARGUMENTS
        else:  # valid arguments and still not run: AutoGen found no tool of that name
            tool.outcome = ToolOutcome.NOT_FOUND
        if is_error:
            tool.error_message = content[:8192]
            ours.record_error(content, _NEVER_RAN_ERROR.get(tool.outcome, "ToolError"))
        ours.end(end_time_ns=ours.proto.start_time_unix_nano)

    # -- model calls ----------------------------------------------------------------------------
    def _llm_span(self, agent_id: Any, start_ns: Optional[int] = None) -> tuple[ActiveSpan, Optional[_Open]]:
        parent = self._current()
        name = None if parent is not None else _agent_type(agent_id)
        ours = self._tracer().start_span("chat", SpanKind.LLM, agent_name=name or None,
                                         parent=parent.span if parent else None, start_time_ns=start_ns)
        ours.proto.llm.operation = "chat"
        return ours, parent

    def _remember_request(self, requested: list[tuple[str, str, str]], tools: Any) -> None:
        for call_id, name, arguments in requested:
            if call_id:
                self._requested.remember(call_id, (name, arguments))
        for tool in tools:
            self._schemas.remember(tool.name, tool.parameters_json_schema)

    def _llm_call(self, kwargs: dict) -> None:
        ours, _ = self._llm_span(kwargs.get("agent_id"))
        llm = ours.proto.llm
        mapping.fill_request(llm, kwargs.get("messages"), kwargs.get("tools"))
        response = kwargs.get("response") or {}
        requested = mapping.fill_completion(llm, response, kwargs.get("prompt_tokens"),
                                            kwargs.get("completion_tokens"))
        if llm.response_model:
            ours.proto.name = f"chat {llm.response_model}"
        self._remember_request(requested, llm.tools)
        ours.end(end_time_ns=ours.proto.start_time_unix_nano)

    def _stream_start(self, kwargs: dict) -> None:
        stale = _stream_span.get()
        if stale is not None and not stale.ended:
            stale.end(error="stream ended without a result")
        ours, parent = self._llm_span(kwargs.get("agent_id"))
        ours.proto.llm.streamed = True
        mapping.fill_request(ours.proto.llm, kwargs.get("messages"))
        if parent is not None:
            parent.streams.append(ours)
        _stream_span.set(ours)

    def _stream_end(self, kwargs: dict) -> None:
        ours = _stream_span.get()
        if ours is None or ours.ended:
            ours, _ = self._llm_span(kwargs.get("agent_id"))
            ours.proto.llm.streamed = True
        else:
            _stream_span.set(None)
            parent = self._current()
            if parent is not None and ours in parent.streams:
                parent.streams.remove(ours)
        requested = mapping.fill_stream_result(ours.proto.llm, kwargs.get("response") or {},
                                               kwargs.get("prompt_tokens"), kwargs.get("completion_tokens"))
        self._remember_request(requested, ())
        ours.end()

    # -- event-log records ----------------------------------------------------------------------
    def on_record(self, record: logging.LogRecord) -> None:
        """Dispatch one record from AutoGen's event loggers by the event's type."""
        if not self.enabled:
            return
        handler = self._event_types.get(type(record.msg))
        if handler is not None:
            try:
                handler(self, record.msg)
            except Exception:
                self.errors += 1
                _debug.debug("autogen event not recorded", exc_info=True)


def _error_of(span: Any) -> Optional[str]:
    """The span's error message (without the ``Type: `` prefix OpenTelemetry adds), or None."""
    status = span.status
    if status is None or status.status_code != _STATUS_ERROR:
        return None
    error_type = str(span.attributes.get("error.type") or "")
    message = status.description or error_type or "error"
    if error_type and message.startswith(error_type + ": "):
        message = message[len(error_type) + 2:]
    return message


def core_event_handlers() -> dict[type, Any]:
    """Handlers for ``autogen_core.events`` (imports autogen_core, so only called by ``instrument``)."""
    from autogen_core.logging import LLMCallEvent, LLMStreamEndEvent, LLMStreamStartEvent

    return {
        LLMCallEvent: lambda rec, event: rec._llm_call(event.kwargs),
        LLMStreamStartEvent: lambda rec, event: rec._stream_start(event.kwargs),
        LLMStreamEndEvent: lambda rec, event: rec._stream_end(event.kwargs),
    }


def agentchat_event_handlers() -> dict[type, Any]:
    """Handlers for ``autogen_agentchat.events`` (tool results with ``is_error``)."""
    from autogen_agentchat.messages import ToolCallExecutionEvent

    return {ToolCallExecutionEvent: lambda rec, event: rec._tool_results(event.content)}
