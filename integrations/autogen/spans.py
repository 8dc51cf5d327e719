"""Builds our AGENT, LLM and TOOL spans from the events ``AutoGenRecorder`` noted, in event order.

Runs on the background worker (or inline). Every event names its AutoGen parent by OpenTelemetry span
id, resolved on the agent's thread; an event with no AutoGen parent carries the agentlightning span and
rollout that were current there, so root spans hang under the caller's rollout (or start a generated one).

Tool spans are held after the tool returns until the agent's ``ToolCallExecutionEvent`` gives the
result text the model will see and ``is_error``; calls that never ran (arguments that are not JSON,
a tool the agent does not have) get a span from that event alone. Whatever is still held when the
agent's span ends is closed with it.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Optional

from opentelemetry.trace import StatusCode

from agentlightning.core.kinds import SpanKind, ToolOutcome
from agentlightning.core.tracer import ActiveSpan, Tracer
from agentlightning.integrations.autogen import mapping
from agentlightning.v1 import spans_pb2

_MAX_REMEMBERED = 4096  # requested tool calls, schemas, stream keys kept for matching; oldest forgotten
_NEVER_RAN_ERROR = {ToolOutcome.INVALID_ARGUMENTS: "InvalidArguments", ToolOutcome.NOT_FOUND: "ToolNotFound"}

# Event tags (first item of each noted tuple).
AGENT_START, TOOL_START, END, LLM, STREAM_START, STREAM_END, RESULTS = range(7)


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


def agent_type(agent_id: Any) -> str:
    """``SelectorGroupChatManager_<team>/<team>`` -> ``SelectorGroupChatManager``."""
    if not agent_id:
        return ""
    kind, _, key = str(agent_id).partition("/")
    return kind[: -len(key) - 1] if key and kind.endswith("_" + key) else kind


def error_of(span: Any) -> tuple[Optional[str], str]:
    """(message without OpenTelemetry's ``Type: `` prefix, error type) of an ended span; (None, "") if OK."""
    status = span.status
    if status is None or status.status_code != StatusCode.ERROR:
        return None, ""
    error_type = str((span.attributes or {}).get("error.type") or "")
    message = status.description or error_type or "error"
    if error_type and message.startswith(error_type + ": "):
        message = message[len(error_type) + 2:]
    return message, error_type


class SpanBuilder:
    def __init__(self, tracer: Callable[[], Tracer]) -> None:
        self._tracer = tracer
        self._open: dict[int, _Open] = {}
        self._requested = _Bounded()  # call id -> (tool name, raw arguments)
        self._schemas = _Bounded()  # tool name -> parameters JSON schema
        self._ran = _Bounded()  # call ids of tool spans closed without an agent to report results
        self._streams = _Bounded()  # stream key -> open streamed LLM span
        self._dispatch = {AGENT_START: self._agent_started, TOOL_START: self._tool_started, END: self._ended,
                          LLM: self._llm_call, STREAM_START: self._stream_start, STREAM_END: self._stream_end,
                          RESULTS: self._tool_results}

    def handle(self, item: tuple) -> None:
        self._dispatch[item[0]](*item[1:])

    @property
    def open_spans(self) -> int:
        return len(self._open)

    def _start(self, name: str, kind: int, parent: Optional[_Open], origin: Any, start_ns: Optional[int],
               agent_name: Optional[str] = None) -> ActiveSpan:
        if parent is not None:
            return self._tracer().start_span(name, kind, agent_name=agent_name, parent=parent.span,
                                             start_time_ns=start_ns)
        ctx_span, ctx_rollout = origin or (None, None)
        return self._tracer().start_span(name, kind, agent_name=agent_name,
                                         parent=ctx_span if isinstance(ctx_span, ActiveSpan) else None,
                                         rollout=ctx_rollout, start_time_ns=start_ns)

    # -- agents and tools (OpenTelemetry spans) --------------------------------------------------
    def _agent_started(self, span: Any, parent_id: int, origin: Any) -> None:
        attrs = span.attributes or {}
        parent = self._open.get(parent_id)
        ours = self._start(span.name, SpanKind.AGENT, parent, origin, span.start_time,
                           agent_name=str(attrs.get("gen_ai.agent.name") or ""))
        ours.set_attribute("gen_ai.operation.name", "invoke_agent")
        if attrs.get("gen_ai.agent.id"):
            ours.set_attribute("gen_ai.agent.id", str(attrs["gen_ai.agent.id"]))
        self._open[span.context.span_id] = _Open(ours, parent)

    def _tool_started(self, span: Any, parent_id: int, origin: Any) -> None:
        attrs = span.attributes or {}
        parent = self._open.get(parent_id)
        ours = self._start(span.name, SpanKind.TOOL, parent, origin, span.start_time)
        tool = ours.proto.tool
        tool.name = name = str(attrs.get("gen_ai.tool.name") or "")
        tool.call_id = call_id = str(attrs.get("gen_ai.tool.call.id") or "")
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

    def _ended(self, span: Any) -> None:
        entry = self._open.pop(span.context.span_id, None)
        if entry is None:
            return
        end_ns = span.end_time or time.time_ns()
        message, error_type = error_of(span)
        if entry.span.proto.kind == spans_pb2.SPAN_KIND_TOOL:
            self._tool_ended(entry, end_ns, message, error_type)
            return
        for tool, tool_end in entry.held.values():
            tool.end(end_time_ns=tool_end)
        entry.held.clear()
        for stream in entry.streams:
            stream.end(error="stream ended without a result", end_time_ns=end_ns)
        entry.streams.clear()
        if message is not None:
            entry.span.record_error(message, error_type or "Error")
        entry.span.end(end_time_ns=end_ns)

    def _tool_ended(self, entry: _Open, end_ns: int, message: Optional[str], error_type: str) -> None:
        ours = entry.span
        tool = ours.proto.tool
        if message is not None:
            tool.outcome = mapping.outcome_of_error(error_type)
            if tool.outcome == ToolOutcome.INVALID_ARGUMENTS:
                tool.arguments_valid = False
            tool.error_message = message[:8192]
            ours.record_error(message, error_type or "Error")
        parent, call_id = entry.parent, tool.call_id
        if parent is not None and call_id and parent.span.proto.kind == spans_pb2.SPAN_KIND_AGENT:
            parent.held[call_id] = (ours, end_ns)  # until the agent reports the result the model sees
        else:
            if call_id:
                self._ran.remember(call_id, True)
            ours.end(end_time_ns=end_ns)

    # -- tool results (agentchat's ToolCallExecutionEvent) ---------------------------------------
    def _tool_results(self, results: Any, current_id: int, now_ns: int, origin: Any) -> None:
        agent = self._open.get(current_id)
        for result in results or ():
            call_id = str(getattr(result, "call_id", "") or "")
            content = str(getattr(result, "content", "") or "")
            is_error = bool(getattr(result, "is_error", False))
            held = agent.held.pop(call_id, None) if agent is not None else None
            requested = self._requested.pop(call_id, None)
            if held is not None:
                ours, end_ns = held
                tool = ours.proto.tool
                tool.result = content
                if is_error and tool.outcome == ToolOutcome.OK:  # reported as failed without raising
                    tool.outcome = ToolOutcome.ERROR
                    tool.error_message = content[:8192]
                    ours.record_error(content, "ToolError")
                ours.end(end_time_ns=end_ns)
            elif self._ran.pop(call_id, None) is None:
                self._tool_never_ran(agent, origin, now_ns, call_id, str(getattr(result, "name", "") or ""),
                                     content, is_error, requested)

    def _tool_never_ran(self, agent: Optional[_Open], origin: Any, now_ns: int, call_id: str, name: str,
                        content: str, is_error: bool, requested: Optional[tuple[str, str]]) -> None:
        """A call AutoGen answered without running a tool: bad JSON arguments or a tool it does not have."""
        ours = self._start(f"execute_tool {name}", SpanKind.TOOL, agent, origin, now_ns)
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
        ours.end(end_time_ns=now_ns)

    # -- model calls (autogen_core's LLM events) -------------------------------------------------
    def _llm_span(self, kwargs: dict, current_id: int, start_ns: int, origin: Any) -> tuple[ActiveSpan, Optional[_Open]]:
        parent = self._open.get(current_id)
        name = None if parent is not None else (agent_type(kwargs.get("agent_id")) or None)
        ours = self._start("chat", SpanKind.LLM, parent, origin, start_ns, agent_name=name)
        ours.proto.llm.operation = "chat"
        return ours, parent

    def _remember_request(self, requested: list[tuple[str, str, str]], tools: Any) -> None:
        for call_id, name, arguments in requested:
            if call_id:
                self._requested.remember(call_id, (name, arguments))
        for tool in tools:
            self._schemas.remember(tool.name, tool.parameters_json_schema)

    def _llm_call(self, kwargs: dict, current_id: int, now_ns: int, origin: Any) -> None:
        """A non-streamed call: AutoGen logs it once the response is in, so the span is that instant."""
        ours, _ = self._llm_span(kwargs, current_id, now_ns, origin)
        llm = ours.proto.llm
        mapping.fill_request(llm, kwargs.get("messages"), kwargs.get("tools"))
        requested = mapping.fill_completion(llm, kwargs.get("response") or {}, kwargs.get("prompt_tokens"),
                                            kwargs.get("completion_tokens"))
        if llm.response_model:
            ours.proto.name = f"chat {llm.response_model}"
        self._remember_request(requested, llm.tools)
        ours.end(end_time_ns=now_ns)

    def _stream_start(self, key: object, stale: Optional[object], kwargs: dict, current_id: int, now_ns: int,
                      origin: Any) -> None:
        if stale is not None:
            abandoned = self._streams.pop(stale, None)
            if abandoned is not None:
                abandoned[0].end(error="stream ended without a result", end_time_ns=now_ns)
        ours, parent = self._llm_span(kwargs, current_id, now_ns, origin)
        ours.proto.llm.streamed = True
        mapping.fill_request(ours.proto.llm, kwargs.get("messages"))
        if parent is not None:
            parent.streams.append(ours)
        self._streams.remember(key, (ours, parent))

    def _stream_end(self, key: Optional[object], kwargs: dict, current_id: int, now_ns: int, origin: Any) -> None:
        started = self._streams.pop(key, None) if key is not None else None
        if started is None or started[0].ended:  # no start seen (e.g. an empty stream)
            ours, _ = self._llm_span(kwargs, current_id, now_ns, origin)
            ours.proto.llm.streamed = True
        else:
            ours, parent = started
            if parent is not None and ours in parent.streams:
                parent.streams.remove(ours)
        requested = mapping.fill_stream_result(ours.proto.llm, kwargs.get("response") or {},
                                               kwargs.get("prompt_tokens"), kwargs.get("completion_tokens"))
        self._remember_request(requested, ())
        ours.end(end_time_ns=now_ns)
