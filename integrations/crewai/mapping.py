"""Pure functions from CrewAI event fields to our span payloads.

Duck-typed on the events' plain fields (dicts, strings, pydantic objects read by attribute), so this module
imports nothing from CrewAI and can be tested with plain objects.
"""
from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from typing import Any, Optional

from agentlightning.core.kinds import ToolOutcome
from agentlightning.core.openai_format import MAX_TEXT, dumps
from agentlightning.v1 import spans_pb2

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_ONE_US = _dt.timedelta(microseconds=1)
# CrewAI's ToolFailureReason values -> our normalised outcome.
_FAILURE_OUTCOMES = {
    "unknown_tool": ToolOutcome.NOT_FOUND,
    "invalid_input": ToolOutcome.INVALID_ARGUMENTS,
}
_TIMEOUT_ERRORS = ("TimeoutError", "ReadTimeout", "ConnectTimeout", "APITimeoutError")


def time_ns(timestamp: Any) -> int:
    """An event's ``timestamp`` (aware UTC datetime) in ns; 0 (= now, for the tracer) when unusable."""
    try:
        if timestamp.tzinfo is None:
            timestamp = timestamp.astimezone(_dt.timezone.utc)
        return ((timestamp - _EPOCH) // _ONE_US) * 1000
    except Exception:
        return 0


def text_of(value: Any) -> str:
    """Text of a message content or result: a string, a list of content parts, or anything else as JSON."""
    if value.__class__ is str:
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT]
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, (list, tuple)) and all(isinstance(p, Mapping) for p in value):
        texts = [p.get("text") for p in value if isinstance(p.get("text"), str)]
        if texts:
            return "".join(texts)[:MAX_TEXT]
    raw = getattr(value, "raw", None)  # TaskOutput / CrewOutput
    if isinstance(raw, str):
        return raw[:MAX_TEXT]
    return dumps(value)[:MAX_TEXT]


def _get(obj: Any, key: str) -> Any:
    if obj.__class__ is dict:  # what CrewAI hands over; skips the slow ABC check
        return obj.get(key)
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def add_tool_call(target: Any, call: Any) -> None:
    """An OpenAI-style tool call (dict or object with ``function.name/arguments``) into a ToolCallRequest."""
    fn = _get(call, "function") or call
    args = _get(fn, "arguments")
    target.add(id=str(_get(call, "id") or ""), name=str(_get(fn, "name") or ""),
               arguments=args if isinstance(args, str) else dumps(args if args is not None else {}))


def add_message(messages: Any, message: Any) -> None:
    """One OpenAI-style message dict into a repeated ChatMessage field (runs per message per call: lean)."""
    if message.__class__ is not dict and not isinstance(message, Mapping):
        messages.add(role="user", content=text_of(message))
        return
    content = message.get("content")
    target = messages.add(role=message.get("role") or "",
                          content=content if content.__class__ is str and len(content) <= MAX_TEXT
                          else text_of(content))
    if len(message) > 2 or "content" not in message:  # the rare fields (a tool-call message may lack content)
        name = message.get("name")
        if name:
            target.name = str(name)
        call_id = message.get("tool_call_id")
        if call_id:
            target.tool_call_id = str(call_id)
        calls = message.get("tool_calls")
        if calls:
            for call in calls:
                add_tool_call(target.tool_calls, call)


_schema_cache: dict[tuple, str] = {}


def _schema_json(name: Any, description: str, schema: Any) -> str:
    """A tool's JSON schema as text; the same tool is offered on every call of an agent, so cache it
    (keyed on name, description and the schema's top-level property names)."""
    if schema is None:
        return ""
    props = _get(schema, "properties")
    key = (name, description, tuple(props) if props.__class__ is dict else None)
    text = _schema_cache.get(key)
    if text is None:
        text = dumps(schema)
        if len(_schema_cache) > 1024:
            _schema_cache.clear()
        _schema_cache[key] = text
    return text


def fill_request(llm: spans_pb2.LlmPayload, event: Any) -> None:
    """``LLMCallStartedEvent``: model, messages, offered tools, sampling, streaming."""
    llm.operation = "chat"
    if event.model:
        llm.request_model = str(event.model)
    messages = event.messages
    if isinstance(messages, str):
        llm.request_messages.add(role="user", content=messages[:MAX_TEXT])
    else:
        target = llm.request_messages
        for message in messages or ():
            add_message(target, message)
    tools = event.tools
    if tools:
        add_tool = llm.tools.add
        for tool in tools:
            fn = _get(tool, "function") or tool
            name = _get(fn, "name")
            if name:
                description = str(_get(fn, "description") or "")
                add_tool(name=str(name), description=description,
                         parameters_json_schema=_schema_json(name, description, _get(fn, "parameters")))
    sampling = llm.sampling
    if event.temperature is not None:
        sampling.temperature = float(event.temperature)
    if event.top_p is not None:
        sampling.top_p = float(event.top_p)
    if event.max_tokens is not None:
        sampling.max_tokens = int(event.max_tokens)
    if event.seed is not None:
        sampling.seed = int(event.seed)
    if event.n is not None:
        sampling.n = int(event.n)
    if event.stop_sequences:
        sampling.stop.extend(str(s) for s in event.stop_sequences)
    llm.streamed = bool(event.stream)


def fill_response(llm: spans_pb2.LlmPayload, event: Any) -> list[tuple[str, str, str]]:
    """``LLMCallCompletedEvent``: the reply (text or tool calls), usage, finish reason.

    Returns the tool calls requested as ``(id, name, raw arguments)``, to pair with the tool spans."""
    message = llm.response_messages.add(role="assistant")
    response = event.response
    requested: list[tuple[str, str, str]] = []
    if response.__class__ is list and response and all(_get(c, "function") is not None for c in response):
        for call in response:
            add_tool_call(message.tool_calls, call)
        requested = [(c.id, c.name, c.arguments) for c in message.tool_calls]
    else:
        message.content = text_of(response)
    usage = event.usage
    if usage.__class__ is dict or isinstance(usage, Mapping):
        prompt = usage.get("prompt_tokens", usage.get("input_tokens")) or 0
        completion = usage.get("completion_tokens", usage.get("output_tokens")) or 0
        llm.usage.input_tokens = int(prompt)
        llm.usage.output_tokens = int(completion)
        llm.usage.total_tokens = int(usage.get("total_tokens") or prompt + completion)
    if event.finish_reason:
        llm.finish_reasons.append(event.finish_reason)
    if event.response_id:
        llm.response_id = event.response_id
    if event.model:
        llm.response_model = str(event.model)
    return requested


def raw_arguments(tool_args: Any) -> tuple[str, bool]:
    """(raw arguments string, whether they are a valid JSON object). CrewAI hands parsed dicts on
    success and the model's raw string when it could not parse them."""
    if tool_args.__class__ is dict or isinstance(tool_args, Mapping):
        return dumps(tool_args), True
    if isinstance(tool_args, str):
        try:
            return tool_args, isinstance(json.loads(tool_args), dict)
        except ValueError:
            return tool_args, False
    return dumps(tool_args), False


def fill_tool_start(tool: spans_pb2.ToolPayload, event: Any, requested: Optional[tuple[str, str, str]]) -> None:
    tool.name = str(event.tool_name or "")
    if requested is not None:  # the model's own call: its id and exact argument string
        tool.call_id = requested[0]
        tool.arguments = requested[2]
        _, tool.arguments_valid = raw_arguments(requested[2])
    else:
        tool.arguments, tool.arguments_valid = raw_arguments(event.tool_args)


def error_outcome(error: Any) -> int:
    name = type(error).__name__ if isinstance(error, BaseException) else ""
    return ToolOutcome.TIMEOUT if name in _TIMEOUT_ERRORS else ToolOutcome.ERROR


def failure_outcome(failure: Any) -> int:
    reason = _get(failure, "reason")
    reason = getattr(reason, "value", reason)
    return _FAILURE_OUTCOMES.get(str(reason), ToolOutcome.ERROR)


def failure_reason(failure: Any) -> str:
    """CrewAI's reason (``exception``, ``unknown_tool``, ``invalid_input``...) as the span's error type."""
    reason = _get(failure, "reason")
    return str(getattr(reason, "value", reason) or "tool_failure")


def failure_message(failure: Any) -> str:
    return str(_get(failure, "message") or "")[:8192]
