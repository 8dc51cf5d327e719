"""Automatic Intermediate Rewards: dense reward from signals the system already records.

For one LLM call we look at the tool calls it requested (from its response) and the TOOL spans
that ran them, and at its output when it asked for JSON. Each signal that fires is recorded with
what it added (``AirSignal``), so a user can read why a transition got its reward.

Rules that avoid counting one mistake twice:
- the model's own arguments (the raw string in its response) are graded, not the framework's
  re-rendering of them; a TOOL span's arguments are graded only when no requested call matches it
  and the tool declares a JSON schema;
- when our argument check already penalised a call, the tool's INVALID_ARGUMENTS outcome adds
  nothing more; when the tool reports INVALID_ARGUMENTS, ``args_valid`` does not fire.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence

from agentlightning.core.lightningrl import schema_check
from agentlightning.core.lightningrl.config import AirConfig, AirWeights
from agentlightning.v1 import spans_pb2

_OK = spans_pb2.TOOL_OUTCOME_OK
_ERROR = spans_pb2.TOOL_OUTCOME_ERROR
_INVALID = spans_pb2.TOOL_OUTCOME_INVALID_ARGUMENTS
_TIMEOUT = spans_pb2.TOOL_OUTCOME_TIMEOUT
_NOT_FOUND = spans_pb2.TOOL_OUTCOME_NOT_FOUND
_STATUS_ERROR = spans_pb2.STATUS_CODE_ERROR
_STATUS_OK = spans_pb2.STATUS_CODE_OK

_OUTCOME_SIGNAL = {
    _OK: "tool_ok",
    _ERROR: "tool_error",
    _INVALID: "tool_invalid_arguments",
    _TIMEOUT: "tool_timeout",
    _NOT_FOUND: "tool_not_found",
}
_TEXT_FORMATS = frozenset({"", "text"})


@dataclass(frozen=True, slots=True)
class AirSignal:
    """One automatic signal that fired for an LLM call."""

    name: str     # e.g. "tool_error" (the AirWeights field name)
    value: float  # what it added to the call's reward
    detail: str   # which tool / call / why, for people reading the breakdown


def _outcome_signal(tool: spans_pb2.Span) -> Optional[str]:
    outcome = tool.tool.outcome
    if outcome:
        return _OUTCOME_SIGNAL.get(outcome)
    code = tool.status.code  # outcome not filled in by the integration: fall back to the status
    if code == _STATUS_ERROR:
        return "tool_error"
    if code == _STATUS_OK:
        return "tool_ok"
    return None


def check_arguments(arguments: str, schema_text: str) -> tuple[str, str]:
    """Grade a raw arguments string: (signal name, detail). Empty arguments are not graded ("", "")."""
    if not arguments:
        return "", ""
    try:
        value = json.loads(arguments)
    except ValueError as exc:
        return "args_invalid_json", f"not JSON: {exc.msg}"
    if not isinstance(value, dict):
        return "args_invalid_json", f"not a JSON object: {schema_check._json_type(value)}"
    schema = schema_check.parse_schema(schema_text) if schema_text else None
    if schema is not None:
        problem = schema_check.check(value, schema)
        if problem:
            return "args_schema_mismatch", problem
    return "args_valid", ""


def _json_output(llm: spans_pb2.LlmPayload) -> tuple[str, str]:
    if llm.response_format in _TEXT_FORMATS or not llm.response_messages:
        return "", ""
    message = llm.response_messages[0]
    if message.tool_calls and not message.content:
        return "", ""  # it answered with a tool call, not with the JSON document
    try:
        json.loads(message.content)
    except ValueError as exc:
        return "json_output_invalid", f"{llm.response_format}: {exc.msg}"
    return "json_output_valid", llm.response_format


def air_for_call(llm_span: spans_pb2.Span, tool_spans: Sequence[spans_pb2.Span],
                 config: AirConfig) -> tuple[float, list[AirSignal]]:
    """Total AIR for one LLM call and the signals that fired (empty when AIR is off)."""
    if not config.enabled:
        return 0.0, []
    weights: AirWeights = config.weights
    signals: list[AirSignal] = []

    def fire(name: str, detail: str) -> None:
        signals.append(AirSignal(name, getattr(weights, name), detail))

    llm = llm_span.llm
    by_call_id: dict[str, spans_pb2.Span] = {}
    unmatched: list[spans_pb2.Span] = []
    for t in tool_spans:
        call_id = t.tool.call_id
        if call_id:
            by_call_id[call_id] = t  # a re-run with the same call id: the last one counts
        else:
            unmatched.append(t)
    schemas: Optional[dict[str, str]] = None
    for message in llm.response_messages:
        for call in message.tool_calls:
            if schemas is None:
                schemas = {d.name: d.parameters_json_schema for d in llm.tools}
            name = call.name
            tool = by_call_id.pop(call.id, None) if call.id else None
            if tool is None and not call.id:
                tool = _take_by_name(unmatched, name)
            label = f"{name} {call.id}".rstrip()
            outcome = _outcome_signal(tool) if tool is not None else None
            if outcome is None and schemas and name not in schemas:
                outcome = "tool_not_found"
            args_signal, args_detail = ("", "")
            if outcome != "tool_not_found":
                schema_text = schemas.get(name) or (tool.tool.parameters_json_schema if tool is not None else "")
                args_signal, args_detail = check_arguments(call.arguments, schema_text)
            _fire_pair(fire, outcome, args_signal, label, args_detail, tool)
    for tool in list(by_call_id.values()) + unmatched:
        # Ran, but not as a call of this response (no call id, or requested elsewhere): grade what we can.
        label = f"{tool.tool.name} {tool.tool.call_id}".rstrip()
        outcome = _outcome_signal(tool)
        args_signal, args_detail = ("", "")
        if tool.tool.parameters_json_schema and outcome != "tool_not_found":
            args_signal, args_detail = check_arguments(tool.tool.arguments, tool.tool.parameters_json_schema)
        _fire_pair(fire, outcome, args_signal, label, args_detail, tool)
    name, detail = _json_output(llm)
    if name:
        fire(name, detail)
    total = sum(s.value for s in signals)
    if config.clip is not None:
        total = max(-config.clip, min(config.clip, total))
    return total, signals


def _take_by_name(spans: list[spans_pb2.Span], name: str) -> Optional[spans_pb2.Span]:
    for i, t in enumerate(spans):
        if t.tool.name == name:
            return spans.pop(i)
    return None


def _fire_pair(fire, outcome: Optional[str], args_signal: str, label: str, args_detail: str,
               tool: Optional[spans_pb2.Span]) -> None:
    args_bad = args_signal in ("args_invalid_json", "args_schema_mismatch")
    if outcome and not (outcome == "tool_invalid_arguments" and args_bad):
        detail = label
        if tool is not None and outcome != "tool_ok":
            message = tool.tool.error_message or tool.status.message
            if message:
                detail = f"{label}: {message[:120]}"
        fire(outcome, detail)
    if args_signal and not (args_signal == "args_valid" and outcome == "tool_invalid_arguments"):
        fire(args_signal, f"{label}: {args_detail}" if args_detail else label)
