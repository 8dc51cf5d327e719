"""Pure mapping from what AutoGen's OpenAI client logs (plain OpenAI dicts) to our LLM/tool payloads.

``LLMCallEvent`` carries the request messages as sent, the tool definitions and the raw
``ChatCompletion`` dump (so server extensions such as token ids and a model version survive);
``LLMStreamEndEvent`` carries AutoGen's ``CreateResult`` dump instead (no model, no token ids).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Iterable, Optional

from agentlightning.core.kinds import ToolOutcome
from agentlightning.core.openai_format import logprob_entries, logprob_values, set_exact_tokens
from agentlightning.v1 import spans_pb2

# AutoGen normalises finish reasons in streamed results; report the OpenAI names like other integrations.
_FINISH = {"function_calls": "tool_calls"}


def _is_map(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)  # the dict check first: it is the common case


def text_of(content: Any) -> str:
    """Text of an OpenAI message content: a string or a list of parts (non-text parts as placeholders)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if _is_map(part):
                if "text" in part:
                    parts.append(str(part.get("text") or ""))
                else:
                    parts.append(f"[{part.get('type') or 'part'}]")
            else:
                parts.append(str(part))
        return "".join(parts)
    return str(content)


def _add_tool_calls(target: spans_pb2.ChatMessage, calls: Iterable[Any]) -> None:
    for call in calls or ():
        if not _is_map(call):
            continue
        fn = call.get("function")
        if fn is not None and _is_map(fn):  # OpenAI shape
            name, arguments = fn.get("name"), fn.get("arguments")
        else:  # AutoGen FunctionCall dump: {id, name, arguments}
            name, arguments = call.get("name"), call.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        target.tool_calls.add(id=call.get("id") or "", name=name or "", arguments=arguments or "")


def fill_request(llm: spans_pb2.LlmPayload, messages: Any, tools: Any = None) -> None:
    """Request messages as sent to the server, and the tool definitions offered."""
    add = llm.request_messages.add
    for message in messages or ():
        if not _is_map(message):
            continue
        content = message.get("content")
        out = add(role=str(message.get("role") or ""),
                  content=content if type(content) is str else text_of(content))
        name = message.get("name")
        if name:
            out.name = str(name)
        tool_call_id = message.get("tool_call_id")
        if tool_call_id:
            out.tool_call_id = str(tool_call_id)
        calls = message.get("tool_calls")
        if calls:
            _add_tool_calls(out, calls)
    for tool in tools or ():
        fn = tool.get("function") if _is_map(tool) else None
        if fn is not None and _is_map(fn):
            name, description = str(fn.get("name") or ""), str(fn.get("description") or "")
            llm.tools.add(name=name, description=description,
                          parameters_json_schema=_schema_json(name, description, fn.get("parameters")))


_schema_cache: dict[tuple[str, str], tuple[Any, str]] = {}


def _schema_json(name: str, description: str, params: Any) -> str:
    """JSON of a tool's parameter schema; AutoGen rebuilds the same dicts every call, so reuse the text."""
    if params is None:
        return ""
    key = (name, description)
    cached = _schema_cache.get(key)
    if cached is not None and cached[0] == params:
        return cached[1]
    text = json.dumps(params)
    if len(_schema_cache) >= 1024:
        _schema_cache.clear()
    _schema_cache[key] = (params, text)
    return text


def _fill_usage(llm: spans_pb2.LlmPayload, prompt: Any, completion: Any, total: Any = None) -> None:
    prompt, completion = int(prompt or 0), int(completion or 0)
    llm.usage.input_tokens = prompt
    llm.usage.output_tokens = completion
    llm.usage.total_tokens = int(total or prompt + completion)


def _fill_exact_tokens(llm: spans_pb2.LlmPayload, response: Mapping[str, Any], choice: Mapping[str, Any]) -> None:
    """Token ids/logprobs/version when the server returned them (vLLM-style extension); EXACT only then."""
    completion_ids = choice.get("token_ids")
    values = logprob_values(logprob_entries(choice.get("logprobs"))) if completion_ids else None
    set_exact_tokens(llm, choice.get("prompt_token_ids") or response.get("prompt_token_ids"), completion_ids,
                     values, response.get("model_version"))


def fill_completion(llm: spans_pb2.LlmPayload, response: Mapping[str, Any], prompt_tokens: Any,
                    completion_tokens: Any) -> list[tuple[str, str, str]]:
    """A ``ChatCompletion`` dump; returns the tool calls requested as (call id, name, raw arguments)."""
    requested: list[tuple[str, str, str]] = []
    llm.response_id = str(response.get("id") or "")
    llm.response_model = str(response.get("model") or "")
    for index, choice in enumerate(response.get("choices") or ()):
        message = choice.get("message") or {}
        out = llm.response_messages.add(role=str(message.get("role") or "assistant"),
                                         content=text_of(message.get("content")))
        _add_tool_calls(out, message.get("tool_calls") or ())
        if index == 0:
            requested = [(c.id, c.name, c.arguments) for c in out.tool_calls]
            _fill_exact_tokens(llm, response, choice)
        if choice.get("finish_reason"):
            llm.finish_reasons.append(str(choice["finish_reason"]))
    usage = response.get("usage") or {}
    _fill_usage(llm, prompt_tokens if prompt_tokens is not None else usage.get("prompt_tokens"),
                completion_tokens if completion_tokens is not None else usage.get("completion_tokens"),
                usage.get("total_tokens"))
    return requested


def fill_stream_result(llm: spans_pb2.LlmPayload, result: Mapping[str, Any], prompt_tokens: Any,
                       completion_tokens: Any) -> list[tuple[str, str, str]]:
    """AutoGen's ``CreateResult`` dump at the end of a stream; returns the tool calls requested."""
    content = result.get("content")
    out = llm.response_messages.add(role="assistant")
    if isinstance(content, list):
        _add_tool_calls(out, content)
        thought = result.get("thought")
        if thought:
            out.content = str(thought)
    else:
        out.content = text_of(content)
    finish = result.get("finish_reason")
    if finish:
        llm.finish_reasons.append(_FINISH.get(str(finish), str(finish)))
    _fill_usage(llm, prompt_tokens, completion_tokens)
    return [(c.id, c.name, c.arguments) for c in out.tool_calls]


def arguments_valid(raw: Optional[str]) -> bool:
    """Whether raw tool arguments parse as a JSON object (what AutoGen needs to call the tool)."""
    if raw is None:
        return False
    try:
        return isinstance(json.loads(raw or "{}"), dict)
    except (TypeError, ValueError):
        return False


_TIMEOUTS = frozenset({"TimeoutError"})


def outcome_of_error(error_type: str) -> int:
    """Normalised outcome of a tool that raised: argument validation, timeout, or a plain error."""
    if error_type == "ValidationError":  # pydantic rejected the arguments before the tool ran
        return ToolOutcome.INVALID_ARGUMENTS
    if error_type in _TIMEOUTS:
        return ToolOutcome.TIMEOUT
    return ToolOutcome.ERROR
