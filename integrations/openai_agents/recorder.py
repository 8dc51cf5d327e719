"""The finishing half of the processor: creates our spans and fills their payloads, in SDK event order.

It runs on the background finisher (or inline with ``defer=False``) and is the only code that touches
``ActiveSpan`` objects, the model calls' pending tool calls and the offered tool schemas, so none of
that state is shared with the agent's thread. Events arrive in the order the SDK emitted them: a
parent's start always precedes its children's, and a model call's end precedes the tool runs it asked for.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from agents.tracing import (
    AgentSpanData, CustomSpanData, FunctionSpanData, GenerationSpanData, GuardrailSpanData, HandoffSpanData,
    ResponseSpanData,
)

from agentlightning.core import context as ctx
from agentlightning.core.kinds import SpanKind, ToolOutcome
from agentlightning.core.tracer import ActiveSpan, Tracer
from agentlightning.integrations.openai_agents import mapping

logger = logging.getLogger("agentlightning.integrations.openai_agents")

TURN_ATTR = "openai_agents.turn"
_OUTCOME_ERROR_TYPE = {ToolOutcome.ERROR: "ToolError", ToolOutcome.INVALID_ARGUMENTS: "InvalidArguments",
                       ToolOutcome.TIMEOUT: "ToolTimeout"}


class Node:
    """One SDK span as recorded: our span (None when folded or not yet started) and what children inherit.

    Created on the agent's thread, filled here. ``anchor``/``rollout`` are where children attach (our
    span, or for a folded span its own parent's); ``turn`` is the runner turn number children carry.
    """

    __slots__ = ("active", "anchor", "rollout", "turn", "dropped")

    def __init__(self) -> None:
        self.active: Optional[ActiveSpan] = None
        self.anchor: Optional[ActiveSpan] = None
        self.rollout: Optional[ctx.RolloutContext] = None
        self.turn: Optional[int] = None
        self.dropped = False


class Recorder:
    def __init__(self) -> None:
        # Tool calls requested by the latest model call, keyed by the SDK parent id that the model span
        # and its tool spans share (the turn); cleared when that parent ends.
        self._pending_calls: dict[str, list[mapping.ToolCallInfo]] = {}
        self._tool_schemas: dict[str, dict[str, Any]] = {}  # trace id -> tool name -> offered tool

    # -- events --------------------------------------------------------------------------------
    def start(self, span: Any, node: Node, parent: Optional[Node], root_anchor: Optional[ActiveSpan],
              root_rollout: Optional[ctx.RolloutContext], tracer: Tracer, start_ns: int, folded: bool) -> None:
        if parent is not None:
            anchor, rollout, turn = parent.anchor, parent.rollout, parent.turn
        else:
            anchor, rollout, turn = root_anchor, root_rollout, None
        data = span.span_data
        own_turn = getattr(data, "turn", None) if data.type == "turn" else None
        if folded:
            node.anchor, node.rollout = anchor, rollout
            node.turn = own_turn if own_turn is not None else turn
            return
        name, kind, agent_name = describe(data)
        active = tracer.start_span(name, kind, agent_name=agent_name, parent=anchor, rollout=rollout,
                                   start_time_ns=start_ns)
        if turn is not None:
            active.proto.attributes[TURN_ATTR].int_value = turn
        node.active = node.anchor = active
        node.turn = own_turn if own_turn is not None else turn

    def end(self, span: Any, node: Node, end_ns: int, snapshot: Any) -> None:
        self._pending_calls.pop(span.span_id, None)
        active = node.active
        if active is None:
            return
        data = span.span_data
        error = span.error
        trace_id = span.trace_id
        if isinstance(data, ResponseSpanData):
            response = data.response
            calls = mapping.fill_response_span(active.proto.llm, response, snapshot, data.usage)
            self._remember_calls(span, calls)
            if response is not None:
                self._remember_schemas(trace_id, getattr(response, "tools", None))
        elif isinstance(data, GenerationSpanData):
            calls = mapping.fill_generation_span(active.proto.llm, data.model, data.model_config, snapshot,
                                                 data.output, data.usage)
            self._remember_calls(span, calls)
        elif isinstance(data, FunctionSpanData):
            self._fill_tool(span, active, data, *snapshot)
        elif isinstance(data, AgentSpanData):
            if data.tools:
                active.set_attribute("openai_agents.tools", list(data.tools))
            if data.handoffs:
                active.set_attribute("openai_agents.handoffs", list(data.handoffs))
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
        active.end(end_time_ns=end_ns)

    def abandon(self, node: Node, end_ns: int) -> None:
        """A span the SDK never finished before its trace ended: close it so it is not lost or leaked."""
        if node.active is not None and not node.active.ended:
            node.active.set_attribute("openai_agents.unfinished", True)
            node.active.end(end_time_ns=end_ns)

    def trace_end(self, trace_id: str) -> None:
        self._tool_schemas.pop(trace_id, None)
        self._pending_calls.pop(trace_id, None)

    # -- tools ---------------------------------------------------------------------------------
    def _remember_calls(self, span: Any, calls: list[mapping.ToolCallInfo]) -> None:
        if calls:
            self._pending_calls[span.parent_id or span.trace_id] = calls

    def _remember_schemas(self, trace_id: str, tools: Any) -> None:
        if tools:
            schemas = self._tool_schemas.setdefault(trace_id, {})
            for tool in tools:
                name = getattr(tool, "name", None)
                if name:
                    schemas[name] = tool  # serialised (and cached) only when a tool of that name runs

    def _claim_call(self, key: str, name: str, arguments: Optional[str]) -> Optional[mapping.ToolCallInfo]:
        """The requested call this tool run answers: same name and arguments, else the first by name."""
        found = None
        for call in self._pending_calls.get(key) or ():
            if call.claimed or call.name != name:
                continue
            if arguments is None or call.arguments == arguments:
                found = call
                break
            found = found or call
        if found is not None:
            found.claimed = True
        return found

    def _fill_tool(self, span: Any, active: ActiveSpan, data: FunctionSpanData, arguments: Optional[str],
                   result: str) -> None:
        tool = active.proto.tool
        call = self._claim_call(span.parent_id or span.trace_id, data.name, arguments)
        if arguments is None and call is not None:
            arguments = call.arguments
        tool.name = data.name
        if call is not None:
            tool.call_id = call.call_id
        if arguments is not None:
            tool.arguments = arguments
        tool.result = result
        outcome, valid, message = mapping.classify_tool(arguments, result, span.error)
        tool.outcome = outcome
        tool.arguments_valid = valid
        if message:
            tool.error_message = message
        if outcome != ToolOutcome.OK:
            active.record_error(message or "tool failed", error_type=_OUTCOME_ERROR_TYPE.get(outcome, "ToolError"))
        offered = self._tool_schemas.get(span.trace_id, {}).get(data.name)
        if offered is not None:
            tool.parameters_json_schema = mapping.SCHEMAS.json(data.name, getattr(offered, "parameters", None))
        if data.mcp_data:
            active.set_attribute("openai_agents.mcp_data", data.mcp_data)


def describe(data: Any) -> tuple[str, int, Optional[str]]:
    """(span name, kind, agent name or None to inherit the parent's) for one SDK span data."""
    kind = data.type
    if kind == "agent":
        return data.name, SpanKind.AGENT, data.name
    if kind in ("response", "generation"):
        return kind, SpanKind.LLM, None
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
