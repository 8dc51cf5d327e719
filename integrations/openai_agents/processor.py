"""A ``TracingProcessor`` that turns the Agents SDK's traces into Agent Lightning spans.

The SDK calls processors synchronously on the agent's own task, so the rollout and the current
Agent Lightning span are read from contextvars right there. Parents come from the SDK's own span ids
(``parent_id``), never from global context; only a trace's root spans hang under whatever Agent
Lightning span or rollout is current. One SDK trace outside any rollout becomes one generated rollout,
so a handoff between two agents stays in one rollout.

The runner's ``task``/``turn`` spans (new in SDK 0.20) are plumbing: by default they are not recorded
and their children attach to the nearest recorded ancestor (the turn number is kept as an attribute),
which gives the same agent -> LLM -> tool tree on every SDK version. ``include_turn_spans=True`` records
them as CHAIN spans.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from agents.tracing import (
    AgentSpanData, CustomSpanData, FunctionSpanData, GenerationSpanData, GuardrailSpanData, HandoffSpanData,
    ResponseSpanData, Span, Trace, TracingProcessor,
)

from agentlightning.core import api
from agentlightning.core import context as ctx
from agentlightning.core.kinds import SpanKind, ToolOutcome
from agentlightning.core.tracer import ActiveSpan, Tracer
from agentlightning.integrations.openai_agents import mapping

logger = logging.getLogger("agentlightning.integrations.openai_agents")

_SKIPPED_TYPES = frozenset(("task", "turn"))
_TURN_ATTR = "openai_agents.turn"


class _TraceState:
    """Where one SDK trace's root spans go, captured when the trace starts."""

    __slots__ = ("tracer", "parent", "rollout", "open")

    def __init__(self, tracer: Tracer, parent: Optional[ActiveSpan], rollout: Optional[ctx.RolloutContext]) -> None:
        self.tracer = tracer
        self.parent = parent
        self.rollout = rollout
        self.open: set[str] = set()


class _Entry:
    """One SDK span: our span (None when skipped), what its children hang under, its turn number."""

    __slots__ = ("active", "anchor", "rollout", "turn", "trace_id", "tool_call")

    def __init__(self, active: Optional[ActiveSpan], anchor: Optional[ActiveSpan],
                 rollout: Optional[ctx.RolloutContext], turn: Optional[int], trace_id: str) -> None:
        self.active = active
        self.anchor = anchor
        self.rollout = rollout
        self.turn = turn
        self.trace_id = trace_id
        self.tool_call: Optional[mapping.ToolCallInfo] = None


class LightningTracingProcessor(TracingProcessor):
    """Maps agents, responses/generations, function tools, handoffs, guardrails and custom spans.

    ``tracer`` defaults to the process-wide tracer (``agentlightning.configure``), looked up per trace.
    Every hook swallows its own errors (logged at debug level) and never waits on the network.
    """

    def __init__(self, tracer: Optional[Tracer] = None, *, include_turn_spans: bool = False,
                 max_open_spans: int = 100_000) -> None:
        self._tracer = tracer
        self.include_turn_spans = include_turn_spans
        self.max_open_spans = max_open_spans
        self.enabled = True
        self.errors = 0
        self.dropped = 0
        self._traces: dict[str, _TraceState] = {}
        self._spans: dict[str, _Entry] = {}
        # Tool calls requested by the latest model call, keyed by the SDK parent both spans share.
        self._pending_calls: dict[str, list[mapping.ToolCallInfo]] = {}
        self._tool_schemas: dict[str, dict[str, str]] = {}

    # -- traces ----------------------------------------------------------------------------------
    def _new_trace_state(self) -> _TraceState:
        tracer = self._tracer or api.get_tracer()
        current = ctx.current_span()
        if isinstance(current, ActiveSpan) and not current.ended:
            return _TraceState(tracer, current, None)
        return _TraceState(tracer, None, ctx.current_rollout() or ctx.new_rollout_context())

    def on_trace_start(self, trace: Trace) -> None:
        if not self.enabled:
            return
        try:
            self._traces[trace.trace_id] = self._new_trace_state()
        except Exception:
            self._swallow("on_trace_start")

    def on_trace_end(self, trace: Trace) -> None:
        try:
            state = self._traces.pop(trace.trace_id, None)
            self._tool_schemas.pop(trace.trace_id, None)
            self._pending_calls.pop(trace.trace_id, None)
            if state is None:
                return
            for span_id in list(state.open):  # spans the SDK never finished: close, do not leak
                entry = self._spans.pop(span_id, None)
                self._pending_calls.pop(span_id, None)
                if entry is not None and entry.active is not None:
                    entry.active.set_attribute("openai_agents.unfinished", True)
                    entry.active.end()
        except Exception:
            self._swallow("on_trace_end")

    # -- spans -----------------------------------------------------------------------------------
    def on_span_start(self, span: Span[Any]) -> None:
        if not self.enabled:
            return
        try:
            self._start(span)
        except Exception:
            self._swallow("on_span_start")

    def on_span_end(self, span: Span[Any]) -> None:
        try:
            entry = self._spans.pop(span.span_id, None)
            if entry is None:
                return
            state = self._traces.get(entry.trace_id)
            if state is not None:
                state.open.discard(span.span_id)
            self._pending_calls.pop(span.span_id, None)
            if entry.active is not None:
                self._finish(span, entry)
        except Exception:
            self._swallow("on_span_end")

    def _start(self, span: Span[Any]) -> None:
        trace_id = span.trace_id
        state = self._traces.get(trace_id)
        if state is None:  # the processor was added mid-trace, or the trace is someone else's
            state = self._traces[trace_id] = self._new_trace_state()
        parent_entry = self._spans.get(span.parent_id) if span.parent_id else None
        if parent_entry is not None:
            anchor, rollout, turn = parent_entry.anchor, parent_entry.rollout, parent_entry.turn
        else:
            current = ctx.current_span()
            if isinstance(current, ActiveSpan) and not current.ended:
                anchor, rollout = current, None
            else:
                anchor, rollout = state.parent, state.rollout
            turn = None
        data = span.span_data
        kind_name = data.type
        if kind_name in _SKIPPED_TYPES and not self.include_turn_spans:
            if kind_name == "turn":
                turn = getattr(data, "turn", None)
            self._register(span, state, _Entry(None, anchor, rollout, turn, trace_id))
            return
        if len(self._spans) >= self.max_open_spans:
            self.dropped += 1
            return
        name, kind, agent_name = _describe(data)
        active = state.tracer.start_span(name, kind, agent_name=agent_name, parent=anchor, rollout=rollout)
        if turn is not None:
            active.set_attribute(_TURN_ATTR, turn)
        if kind_name == "turn":
            turn = getattr(data, "turn", None)
        entry = _Entry(active, active, None, turn, trace_id)
        if isinstance(data, FunctionSpanData):
            entry.tool_call = self._claim_call(span.parent_id or trace_id, data.name, None)
        self._register(span, state, entry)

    def _register(self, span: Span[Any], state: _TraceState, entry: _Entry) -> None:
        self._spans[span.span_id] = entry
        state.open.add(span.span_id)

    def _finish(self, span: Span[Any], entry: _Entry) -> None:
        active = entry.active
        assert active is not None
        data = span.span_data
        error = span.error
        if isinstance(data, ResponseSpanData):
            calls = mapping.fill_response_span(active.proto.llm, data.response, data.input, data.usage)
            self._remember_calls(span, entry, calls)
            if data.response is not None:
                self._remember_schemas(entry.trace_id, getattr(data.response, "tools", None))
        elif isinstance(data, GenerationSpanData):
            calls = mapping.fill_generation_span(active.proto.llm, data.model, data.model_config, data.input,
                                                 data.output, data.usage)
            self._remember_calls(span, entry, calls)
        elif isinstance(data, FunctionSpanData):
            self._fill_tool(span, entry, data)
        elif isinstance(data, AgentSpanData):
            _set_list(active, "openai_agents.tools", data.tools)
            _set_list(active, "openai_agents.handoffs", data.handoffs)
            if data.output_type:
                active.set_attribute("openai_agents.output_type", data.output_type)
        elif isinstance(data, HandoffSpanData):
            active.set_attribute("handoff.from_agent", data.from_agent or "")
            active.set_attribute("handoff.to_agent", data.to_agent or "")
        elif isinstance(data, GuardrailSpanData):
            active.set_attribute("guardrail.name", data.name)
            active.set_attribute("guardrail.triggered", bool(data.triggered))
        elif isinstance(data, CustomSpanData):
            if data.data:
                active.set_attribute("openai_agents.data", data.data)
        else:
            active.set_attribute("openai_agents.span_type", data.type)
        if error and not isinstance(data, FunctionSpanData):
            active.record_error(mapping.error_text(error), error_type=str(error.get("message") or "SpanError"))
        active.end()

    # -- tools -----------------------------------------------------------------------------------
    def _remember_calls(self, span: Span[Any], entry: _Entry, calls: list[mapping.ToolCallInfo]) -> None:
        if calls:
            self._pending_calls[span.parent_id or entry.trace_id] = calls

    def _remember_schemas(self, trace_id: str, tools: Any) -> None:
        if not tools:
            return
        schemas = self._tool_schemas.setdefault(trace_id, {})
        for tool in tools:
            name = getattr(tool, "name", None)
            if name and name not in schemas:
                schemas[name] = tool  # serialised only when a tool span of that name ends

    def _claim_call(self, key: str, name: str, arguments: Optional[str]) -> Optional[mapping.ToolCallInfo]:
        """The requested call this tool run answers: same name (and arguments when known), in order."""
        calls = self._pending_calls.get(key)
        if not calls:
            return None
        fallback = None
        for call in calls:
            if call.claimed or call.name != name:
                continue
            if arguments is None or call.arguments == arguments:
                call.claimed = True
                return call
            fallback = fallback or call
        return fallback

    def _fill_tool(self, span: Span[Any], entry: _Entry, data: FunctionSpanData) -> None:
        active = entry.active
        assert active is not None
        tool = active.proto.tool
        call = entry.tool_call
        arguments = data.input
        if call is not None and arguments is not None and call.arguments != arguments:
            better = self._claim_call(span.parent_id or entry.trace_id, data.name, arguments)
            if better is not None and better is not call:
                call.claimed, call = False, better
        if arguments is None and call is not None:
            arguments = call.arguments
        tool.name = data.name
        if call is not None:
            tool.call_id = call.call_id
        if arguments is not None:
            tool.arguments = arguments
        tool.result = mapping.to_text(data.output)
        outcome, valid, message = mapping.classify_tool(arguments, data.output, span.error)
        tool.outcome = outcome
        tool.arguments_valid = valid
        if message:
            tool.error_message = message
        if outcome != ToolOutcome.OK:
            active.record_error(message or "tool failed", error_type=_OUTCOME_ERROR_TYPE.get(outcome, "ToolError"))
        schema = self._tool_schemas.get(entry.trace_id, {}).get(data.name)
        if schema is not None:
            params = getattr(schema, "parameters", None)
            if params is not None:
                tool.parameters_json_schema = mapping.to_text(params)
        if data.mcp_data:
            active.set_attribute("openai_agents.mcp_data", data.mcp_data)

    # -- lifecycle -------------------------------------------------------------------------------
    def shutdown(self) -> None:
        self.force_flush()

    def force_flush(self) -> None:
        """Wait (bounded) until finished spans are acked or spooled: the SDK calls this from ``flush_traces``."""
        try:
            sink = (self._tracer or api.get_tracer()).sink
            flush = getattr(sink, "flush", None)
            if callable(flush):
                flush(5.0)
        except Exception:
            self._swallow("force_flush")

    def _swallow(self, where: str) -> None:
        self.errors += 1
        logger.debug("openai-agents %s failed; span mapping skipped", where, exc_info=True)


_OUTCOME_ERROR_TYPE = {
    ToolOutcome.ERROR: "ToolError",
    ToolOutcome.INVALID_ARGUMENTS: "InvalidArguments",
    ToolOutcome.TIMEOUT: "ToolTimeout",
}


def _describe(data: Any) -> tuple[str, int, Optional[str]]:
    """(span name, kind, agent name or None to inherit) for one SDK span data."""
    kind = data.type
    if kind == "agent":
        return data.name, SpanKind.AGENT, data.name
    if kind == "response":
        return "response", SpanKind.LLM, None
    if kind == "generation":
        return "generation", SpanKind.LLM, None
    if kind == "function":
        return data.name, SpanKind.TOOL, None
    if kind == "handoff":
        return "handoff", SpanKind.CHAIN, None
    if kind == "guardrail":
        return f"guardrail {data.name}", SpanKind.OTHER, None
    if kind in ("task", "turn"):
        return kind, SpanKind.CHAIN, None
    name = getattr(data, "name", None)
    return (name if isinstance(name, str) and name else kind), SpanKind.OTHER, None


def _set_list(active: ActiveSpan, key: str, values: Optional[list]) -> None:
    if values:
        active.set_attribute(key, list(values))
