"""Pure functions from the Agents SDK's span data to our span payloads.

Kept apart from the processor so the mapping can be read against the SDK's types in one place and
tested without running an agent. Inputs may be the SDK's pydantic objects or plain dicts (the SDK
mixes both: request items are dicts, response items are models), so every read goes through ``_get``.
Nothing here imports the SDK.
"""
from __future__ import annotations

import functools
import json
import re
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from agentlightning.core.kinds import ToolOutcome
from agentlightning.core.openai_format import set_exact_tokens
from agentlightning.v1 import spans_pb2

# The SDK's own message for a call whose arguments did not parse (tool.py), with or without details.
_INVALID_JSON_PREFIX = "Invalid JSON input for tool"
# The SDK's default timeout result ("Tool 'x' timed out after 2 seconds.") and ToolTimeoutError text.
_TIMEOUT_RE = re.compile(r"^Tool '.*' timed out after [0-9.]+ seconds")


@dataclass
class ToolCallInfo:
    """A tool call the model requested, kept until the SDK runs it (to give the tool span its call id)."""

    call_id: str
    name: str
    arguments: str
    claimed: bool = False


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _extra(obj: Any) -> dict:
    """Fields a server sent beyond the OpenAI schema (pydantic ``model_extra``), or the dict itself."""
    if isinstance(obj, dict):
        return obj
    extra = getattr(obj, "model_extra", None)
    return extra if isinstance(extra, dict) else {}


def text_of(content: Any) -> str:
    """Text of a message content: a string, or a list of parts (``text``/``input_text``/``output_text``)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
                continue
            text = _get(part, "text")
            if text is None:
                text = _get(part, "refusal")
            if isinstance(text, str):
                parts.append(text)
        return "".join(parts)
    return str(content)


def to_text(value: Any) -> str:
    """A tool result or arguments value as the string the model saw."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        try:
            return json.dumps(value, default=str)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


# -- Responses API -------------------------------------------------------------------------------
def _add_tool_call(messages: Any, call_id: str, name: str, arguments: str) -> None:
    """Attach a function call to the assistant message it belongs to (chat-completions shape)."""
    if len(messages) == 0 or messages[-1].role != "assistant" or messages[-1].tool_call_id:
        messages.add(role="assistant")
    messages[-1].tool_calls.add(id=call_id, name=name, arguments=arguments)


def fill_response_request(llm: spans_pb2.LlmPayload, instructions: Any, items: Any) -> None:
    """Request messages from Responses ``instructions`` + ``input`` items, in chat-completions shape."""
    messages = llm.request_messages
    if instructions:
        messages.add(role="system", content=text_of(instructions))
    if items is None:
        return
    if isinstance(items, str):
        messages.add(role="user", content=items)
        return
    for item in items:
        get = item.get if isinstance(item, dict) else functools.partial(_get, item)
        kind = get("type")
        role = get("role")
        if kind == "function_call":
            _add_tool_call(messages, get("call_id") or "", get("name") or "", get("arguments") or "")
        elif kind == "function_call_output":
            output = get("output")
            messages.add(role="tool", tool_call_id=get("call_id") or "",
                         content=output if isinstance(output, str) else text_of(output))
        elif role is not None:
            content = get("content")
            messages.add(role=str(role), content=content if isinstance(content, str) else text_of(content))
        elif kind is not None and kind != "reasoning":
            # Hosted tool calls, item references...: keep their presence, not their shape.
            messages.add(role=str(kind), content=to_text(get("output")))


def fill_response_output(llm: spans_pb2.LlmPayload, output: Iterable[Any]) -> tuple[list[ToolCallInfo], list[float]]:
    """One assistant message from the Responses output items; returns the tool calls and logprobs."""
    message = llm.response_messages.add(role="assistant")
    calls: list[ToolCallInfo] = []
    logprobs: list[float] = []
    texts: list[str] = []
    for item in output or ():
        kind = _get(item, "type")
        if kind == "message":
            for part in _get(item, "content") or ():
                text = _get(part, "text")
                if text is None:
                    text = _get(part, "refusal")
                if isinstance(text, str):
                    texts.append(text)
                for entry in _get(part, "logprobs") or ():
                    value = _get(entry, "logprob")
                    if isinstance(value, (int, float)):
                        logprobs.append(float(value))
        elif kind == "function_call":
            call = ToolCallInfo(_get(item, "call_id") or "", _get(item, "name") or "", _get(item, "arguments") or "")
            message.tool_calls.add(id=call.call_id, name=call.name, arguments=call.arguments)
            calls.append(call)
    message.content = "".join(texts)
    return calls, logprobs


def fill_usage(llm: spans_pb2.LlmPayload, usage: Any) -> None:
    if not usage:
        return
    inp = _get(usage, "input_tokens")
    if inp is None:
        inp = _get(usage, "prompt_tokens")
    out = _get(usage, "output_tokens")
    if out is None:
        out = _get(usage, "completion_tokens")
    total = _get(usage, "total_tokens")
    if isinstance(inp, int):
        llm.usage.input_tokens = inp
    if isinstance(out, int):
        llm.usage.output_tokens = out
    if isinstance(total, int):
        llm.usage.total_tokens = total
    elif isinstance(inp, int) and isinstance(out, int):
        llm.usage.total_tokens = inp + out


def fill_exact_tokens(llm: spans_pb2.LlmPayload, source: Any, logprobs: list[float]) -> None:
    """Token ids from the exact-token extension (vLLM-style ``prompt_token_ids``/``token_ids``).

    Provenance is EXACT only when the server returned completion ids; otherwise it stays UNSPECIFIED.
    Logprobs from the standard fields are kept either way.
    """
    extra = _extra(source)
    completion = extra.get("token_ids")
    if completion is None:
        completion = extra.get("completion_token_ids")
    prompt = extra.get("prompt_token_ids")
    if isinstance(completion, list) and completion:  # prompt ids alone are not EXACT here
        set_exact_tokens(llm, prompt if isinstance(prompt, list) else None, completion)
    if not logprobs:  # a chat message carries them as a plain list (mirror_exact_tokens_into_messages)
        mirrored = extra.get("token_logprobs")
        if isinstance(mirrored, list) and isinstance(completion, list) and len(mirrored) == len(completion):
            logprobs = mirrored
    if logprobs:
        llm.completion_logprobs.extend(logprobs)
    version = extra.get("model_version") or extra.get("policy_version")
    if isinstance(version, str):
        llm.policy_version = version


class SchemaCache:
    """JSON text of tool schemas, reused while a tool's schema is unchanged.

    The same tools are offered on every model call; serialising their schemas each time would be the
    most expensive part of mapping a call. Bounded; a changed schema replaces the cached one.
    """

    def __init__(self, max_entries: int = 512) -> None:
        self._entries: dict[str, tuple[Any, str]] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def json(self, name: str, params: Any) -> str:
        if params is None:
            return ""
        hit = self._entries.get(name)
        if hit is not None and hit[0] == params:
            return hit[1]
        text = to_text(params)
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[name] = (params, text)
        return text


SCHEMAS = SchemaCache()


def _fill_tools(llm: spans_pb2.LlmPayload, tools: Any) -> None:
    for tool in tools or ():
        if _get(tool, "type") != "function":
            continue
        name = _get(tool, "name") or ""
        llm.tools.add(name=name, description=_get(tool, "description") or "",
                      parameters_json_schema=SCHEMAS.json(name, _get(tool, "parameters")))


def _fill_sampling(llm: spans_pb2.LlmPayload, temperature: Any, top_p: Any, max_tokens: Any) -> None:
    if temperature is not None:
        llm.sampling.temperature = float(temperature)
    if top_p is not None:
        llm.sampling.top_p = float(top_p)
    if max_tokens is not None:
        llm.sampling.max_tokens = int(max_tokens)


def fill_response_span(llm: spans_pb2.LlmPayload, response: Any, items: Any, usage: Any) -> list[ToolCallInfo]:
    """A ``ResponseSpanData``: request, output, usage, sampling, exact tokens. Returns requested calls."""
    llm.operation = "responses"
    calls: list[ToolCallInfo] = []
    if response is not None:
        fill_response_request(llm, _get(response, "instructions"), items)
        calls, logprobs = fill_response_output(llm, _get(response, "output"))
        model = _get(response, "model")
        if model:
            llm.response_model = str(model)
        llm.response_id = _get(response, "id") or ""
        _fill_tools(llm, _get(response, "tools"))
        _fill_sampling(llm, _get(response, "temperature"), _get(response, "top_p"),
                       _get(response, "max_output_tokens"))
        fmt = _get(_get(_get(response, "text"), "format"), "type")
        if fmt in ("json_schema", "json_object"):
            llm.response_format = fmt
        status = _get(response, "status")
        if status == "incomplete":
            reason = _get(_get(response, "incomplete_details"), "reason")
            llm.finish_reasons.append("length" if reason == "max_output_tokens" else str(reason or "incomplete"))
        elif status == "completed":
            llm.finish_reasons.append("tool_calls" if calls else "stop")
        fill_exact_tokens(llm, response, logprobs)
    elif items is not None:
        fill_response_request(llm, None, items)
    fill_usage(llm, usage if usage else _get(response, "usage"))
    return calls


# -- chat completions (GenerationSpanData) -------------------------------------------------------
def _fill_chat_message(target: Any, message: Any) -> list[ToolCallInfo]:
    msg = target.add(role=str(_get(message, "role") or "assistant"), content=text_of(_get(message, "content")))
    tool_call_id = _get(message, "tool_call_id")
    if tool_call_id:
        msg.tool_call_id = str(tool_call_id)
    name = _get(message, "name")
    if isinstance(name, str):
        msg.name = name
    calls = []
    for call in _get(message, "tool_calls") or ():
        fn = _get(call, "function") or {}
        info = ToolCallInfo(_get(call, "id") or "", _get(fn, "name") or "", _get(fn, "arguments") or "")
        msg.tool_calls.add(id=info.call_id, name=info.name, arguments=info.arguments)
        calls.append(info)
    return calls


def fill_generation_span(llm: spans_pb2.LlmPayload, model: Any, model_config: Any, inputs: Any, outputs: Any,
                         usage: Any) -> list[ToolCallInfo]:
    """A ``GenerationSpanData`` (chat completions). A streamed call's output is a Responses-shaped dump."""
    llm.operation = "chat"
    if model:
        llm.request_model = str(model)
    for message in inputs or ():
        _fill_chat_message(llm.request_messages, message)
    calls: list[ToolCallInfo] = []
    for out in outputs or ():
        if _get(out, "object") == "response" or (isinstance(out, dict) and "output" in out):
            llm.streamed = True
            found, logprobs = fill_response_output(llm, _get(out, "output"))
            calls.extend(found)
            fill_exact_tokens(llm, out, logprobs)
        else:
            calls.extend(_fill_chat_message(llm.response_messages, out))
            fill_exact_tokens(llm, out, [])
    if model_config:
        _fill_sampling(llm, _get(model_config, "temperature"), _get(model_config, "top_p"),
                       _get(model_config, "max_tokens"))
    fill_usage(llm, usage)
    return calls


# -- function tools ------------------------------------------------------------------------------
def error_text(error: Any) -> str:
    """The most specific text of an SDK ``SpanError`` (its ``data.error`` when there is one)."""
    if not error:
        return ""
    data = _get(error, "data")
    detail = _get(data, "error") if data else None
    message = _get(error, "message") or ""
    return str(detail) if detail else str(message)


def arguments_parse(arguments: Optional[str]) -> Optional[bool]:
    """Whether raw arguments are a JSON object (empty counts: the SDK reads it as ``{}``); None if unknown."""
    if arguments is None:
        return None
    if arguments == "":
        return True
    try:
        return isinstance(json.loads(arguments), dict)
    except ValueError:
        return False


def classify_tool(arguments: Optional[str], output: Any, error: Any) -> tuple[int, bool, str]:
    """(outcome, arguments_valid, error_message) for one function span.

    The SDK reports both failures the same way: the span gets an error and the tool's
    ``failure_error_function`` text becomes the output the model sees. Arguments that are not a JSON
    object (checked here on the raw string) or that the SDK rejected ("Invalid JSON input for tool",
    also used for schema validation failures) are INVALID_ARGUMENTS; any other error is the tool
    raising (ERROR); the SDK's timeout text is TIMEOUT.
    """
    parsed = arguments_parse(arguments)
    detail = error_text(error)
    if error:
        rejected = detail.startswith(_INVALID_JSON_PREFIX) or str(_get(error, "message") or "").startswith(
            _INVALID_JSON_PREFIX)
        if parsed is False or rejected:
            return ToolOutcome.INVALID_ARGUMENTS, False, detail
        if _TIMEOUT_RE.match(detail):
            return ToolOutcome.TIMEOUT, True, detail
        return ToolOutcome.ERROR, parsed is not False, detail
    if isinstance(output, str) and _TIMEOUT_RE.match(output):
        return ToolOutcome.TIMEOUT, parsed is not False, output
    return ToolOutcome.OK, parsed is not False, ""
