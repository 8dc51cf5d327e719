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
from agentlightning.core.lightningrl.config import AirConfig
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


def _outcome_signal(span: spans_pb2.Span, payload: spans_pb2.ToolPayload) -> Optional[str]:
    outcome = payload.outcome
    if outcome:
        return _OUTCOME_SIGNAL.get(outcome)
    code = span.status.code  # outcome not filled in by the integration: fall back to the status
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
        value = _loads(arguments)
    except ValueError as exc:
        return "args_invalid_json", f"not JSON: {getattr(exc, 'msg', exc)}"
    if type(value) is not dict:
        return "args_invalid_json", f"not a JSON object: {schema_check.json_type(value)}"
    if schema_text:
        check = schema_check.validator(schema_text)
        if check is not None:
            problem = check(value)
            if problem is not None:
                return "args_schema_mismatch", f"${problem[0]}: {problem[1]}"
    return "args_valid", ""


_scan_once = json.JSONDecoder().scan_once


def _loads(text: str) -> object:
    """``json.loads(text)``, without its two Python-level frames when ``text`` is exactly one JSON
    document (the usual case); anything else (leading or trailing whitespace, a BOM, an error) goes
    through ``json.loads`` itself, so results and error messages are the same."""
    try:
        value, end = _scan_once(text, 0)
    except Exception:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def _json_output(llm: spans_pb2.LlmPayload, fmt: str) -> tuple[str, str]:
    """Grade the response of a call that asked for JSON output (``fmt`` is its response format)."""
    if fmt in _TEXT_FORMATS:
        return "", ""
    if not llm.response_messages:
        return "", ""
    message = llm.response_messages[0]
    content = message.content
    if not content and message.tool_calls:
        return "", ""  # it answered with a tool call, not with the JSON document
    try:
        _loads(content)
    except ValueError as exc:
        return "json_output_invalid", f"{fmt}: {getattr(exc, 'msg', exc)}"
    return "json_output_valid", fmt


def tool_calls_of(llm_span: spans_pb2.Span) -> list[tuple[str, str, str]]:
    """(call id, tool name, raw arguments) of every tool call in the call's response."""
    return requested_calls(llm_span.llm)


def requested_calls(llm: spans_pb2.LlmPayload) -> list[tuple[str, str, str]]:
    """``tool_calls_of`` for an LLM payload already in hand."""
    return [(c.id, c.name, c.arguments) for m in llm.response_messages for c in m.tool_calls]


# A TOOL span with the fields every AIR check reads, read once: (span, its tool payload, call id).
ToolRun = tuple[spans_pb2.Span, spans_pb2.ToolPayload, str]


def tool_run(span: spans_pb2.Span) -> ToolRun:
    payload = span.tool
    return span, payload, payload.call_id


def weight_table(config: AirConfig) -> dict[str, float]:
    return config.weights.as_dict()


def _schema_of(tools: Sequence[spans_pb2.ToolDefinition], name: str) -> tuple[bool, str]:
    """(is the tool offered, its schema text); (True, "") when the call offered no tool list."""
    if not tools:
        return True, ""
    for d in tools:
        if d.name == name:
            return True, d.parameters_json_schema
    return False, ""


def air_for_call(llm_span: spans_pb2.Span, tool_spans: Sequence[spans_pb2.Span], config: AirConfig, *,
                 tool_calls: Optional[list[tuple[str, str, str]]] = None,
                 table: Optional[dict[str, float]] = None) -> tuple[float, list[AirSignal]]:
    """Total AIR for one LLM call and the signals that fired (empty when AIR is off).

    ``tool_calls`` (from ``tool_calls_of``) and ``table`` (from ``weight_table``) may be passed in
    when the caller already has them."""
    if not config.enabled:
        return 0.0, []
    llm = llm_span.llm
    total, signals, _ = call_air(llm, requested_calls(llm) if tool_calls is None else tool_calls,
                                 [tool_run(t) for t in tool_spans],
                                 weight_table(config) if table is None else table, config.clip)
    return total, signals


def call_air(llm: spans_pb2.LlmPayload, tool_calls: list[tuple[str, str, str]], runs: Sequence[ToolRun],
             table: dict[str, float], clip: Optional[float]) -> tuple[float, list[AirSignal], dict[str, float]]:
    """``air_for_call`` on facts already read: (total, signals, total by signal name)."""
    signals: list[AirSignal] = []
    if tool_calls or runs:
        by_call_id: dict[str, ToolRun] = {}
        unmatched: list[ToolRun] = []
        for run in runs:
            if run[2]:
                by_call_id[run[2]] = run  # a re-run with the same call id: the last one counts
            else:
                unmatched.append(run)
        offered_tools = llm.tools if tool_calls else ()
        for call_id, name, arguments in tool_calls:
            if call_id:
                run = by_call_id.pop(call_id, None) if by_call_id else None
                label = f"{name} {call_id}"
            else:
                run = _take_by_name(unmatched, name)
                label = name
            outcome = _outcome_signal(run[0], run[1]) if run is not None else None
            offered, schema_text = _schema_of(offered_tools, name)
            if outcome is None and not offered:
                outcome = "tool_not_found"
            args_signal = args_detail = ""
            if outcome != "tool_not_found":
                if not schema_text and run is not None:
                    schema_text = run[1].parameters_json_schema
                args_signal, args_detail = check_arguments(arguments, schema_text)
            _fire_pair(signals, table, outcome, args_signal, label, args_detail, run)
        for run in (list(by_call_id.values()) + unmatched) if by_call_id or unmatched else ():
            # Ran, but not as a call of this response (no call id, or requested elsewhere): grade what we can.
            payload = run[1]
            label = f"{payload.name} {run[2]}".rstrip()
            outcome = _outcome_signal(run[0], payload)
            args_signal = args_detail = ""
            schema_text = payload.parameters_json_schema
            if schema_text and outcome != "tool_not_found":
                args_signal, args_detail = check_arguments(payload.arguments, schema_text)
            _fire_pair(signals, table, outcome, args_signal, label, args_detail, run)
    fmt = llm.response_format
    if fmt not in _TEXT_FORMATS:
        name, detail = _json_output(llm, fmt)
        if name:
            signals.append(AirSignal(name, table[name], detail))
    if not signals:
        return 0.0, signals, {}
    by_name: dict[str, float] = {}
    values = []
    for s in signals:
        value = s.value
        by_name[s.name] = by_name.get(s.name, 0.0) + value
        values.append(value)
    total = sum(values)
    if clip is not None:
        total = max(-clip, min(clip, total))
    return total, signals, by_name


def _take_by_name(runs: list[ToolRun], name: str) -> Optional[ToolRun]:
    for i, run in enumerate(runs):
        if run[1].name == name:
            return runs.pop(i)
    return None


def _fire_pair(signals: list[AirSignal], table: dict[str, float], outcome: Optional[str], args_signal: str,
               label: str, args_detail: str, run: Optional[ToolRun]) -> None:
    bad_args = args_signal == "args_invalid_json" or args_signal == "args_schema_mismatch"
    if outcome and not (bad_args and outcome == "tool_invalid_arguments"):
        detail = label
        if run is not None and outcome != "tool_ok":
            message = run[1].error_message or run[0].status.message
            if message:
                detail = f"{label}: {message[:120]}"
        signals.append(AirSignal(outcome, table[outcome], detail))
    if args_signal and not (args_signal == "args_valid" and outcome == "tool_invalid_arguments"):
        signals.append(AirSignal(args_signal, table[args_signal], f"{label}: {args_detail}" if args_detail else label))
