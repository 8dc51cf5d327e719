"""Pure functions from LangChain's callback arguments to our span payloads.

Duck-typed on LangChain's message/generation objects (``.type``, ``.content``, ``.tool_calls``...), so it
reads plain objects too and costs no isinstance checks against framework classes on the hot path.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Iterable, Optional

from agentlightning.core.kinds import ToolOutcome
from agentlightning.core.openai_format import (MAX_TEXT, dumps, logprob_entries, logprob_values,
                                               set_exact_tokens, token_ids_from_logprobs)
from agentlightning.v1 import spans_pb2

MODEL_VERSION_HEADER = "x-agentlightning-model-version"
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool",
          "developer": "developer", "AIMessageChunk": "assistant"}
# LangChain's default text for a handled pydantic validation error (tools/base.py).
_VALIDATION_ERROR_TEXT = "Tool input validation error"
_TIMEOUT_ERRORS = ("TimeoutError", "ReadTimeout", "ConnectTimeout", "APITimeoutError")
_VALIDATION_ERRORS = ("ValidationError", "ToolInvocationError")
_EXACT_KEYS = ("logprobs", "token_ids", "completion_token_ids", "prompt_token_ids", "model_version", "headers")


_MISSING = object()


def field(obj: Any, name: str, default: Any = None) -> Any:
    """``getattr`` that stays cheap on pydantic models: a missing attribute there costs ~20 µs
    (pydantic's ``__getattr__`` builds an error), so read the instance ``__dict__`` first."""
    fields = getattr(obj, "__dict__", None)
    if fields is not None:
        value = fields.get(name, _MISSING)
        if value is not _MISSING:
            return value
        if not hasattr(type(obj), name):  # not a property/class attribute either
            return default
    return getattr(obj, name, default)


def text_of(content: Any) -> str:
    """Text of a message content: a string or a list of content blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content[:MAX_TEXT]
    if isinstance(content, (list, tuple)):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping):
                text = block.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "".join(parts)[:MAX_TEXT]
    return str(content)[:MAX_TEXT]


def fill_message(target: spans_pb2.ChatMessage, message: Any) -> None:
    """One LangChain message (or a ``(role, content)`` pair / dict) into a ChatMessage."""
    fields = getattr(message, "__dict__", None)
    if fields is None or type(message) is dict:
        if isinstance(message, tuple) and len(message) == 2:
            target.role = _ROLES.get(str(message[0]), str(message[0]))
            target.content = text_of(message[1])
        elif isinstance(message, Mapping):
            target.role = str(message.get("role", ""))
            target.content = text_of(message.get("content"))
        else:
            target.role = "user"
            target.content = text_of(message)
        return
    # pydantic messages keep every field in __dict__: plain dict reads, no attribute machinery.
    kind = fields.get("type") or ""
    target.role = _ROLES.get(kind) or fields.get("role") or kind
    content = fields.get("content")
    target.content = content if type(content) is str and len(content) <= MAX_TEXT else text_of(content)
    name = fields.get("name")
    if name:
        target.name = str(name)
    call_id = fields.get("tool_call_id")
    if call_id:
        target.tool_call_id = str(call_id)
    for call in fields.get("tool_calls") or ():
        target.tool_calls.add(id=call.get("id") or "", name=call.get("name") or "",
                              arguments=dumps(call.get("args", {})))
    # Calls whose arguments did not parse keep the model's raw string (AIR checks it).
    for call in fields.get("invalid_tool_calls") or ():
        args = call.get("args")
        target.tool_calls.add(id=call.get("id") or "", name=call.get("name") or "",
                              arguments=args if isinstance(args, str) else dumps(args))


class MessageCache:
    """Serialised ChatMessages by LangChain message id: a conversation's history is re-sent on every
    model call, so each message is mapped once and later copied as bytes (C speed).

    A hit needs the same message object *and* the same content object (an edited message misses).
    Holds only bytes, bounded by ``max_bytes`` (cleared when full), never the user's objects."""

    def __init__(self, max_bytes: int = 4 << 20) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[str, tuple[int, int, bytes]] = {}
        self._bytes = 0

    def fill(self, target: spans_pb2.ChatMessage, message: Any) -> None:
        fields = getattr(message, "__dict__", None)
        key = fields.get("id") if fields is not None and type(message) is not dict else None
        if not key or type(key) is not str:
            fill_message(target, message)
            return
        content_id = id(fields.get("content"))
        hit = self._entries.get(key)
        if hit is not None and hit[0] == id(message) and hit[1] == content_id:
            target.MergeFromString(hit[2])
            return
        fill_message(target, message)
        data = target.SerializeToString()
        if self._bytes + len(data) > self.max_bytes:
            self._entries.clear()
            self._bytes = 0
        self._entries[key] = (id(message), content_id, data)
        self._bytes += len(data)


_tools_cache: dict[tuple, tuple[list, bytes, dict]] = {}


def _fill_tools(llm: spans_pb2.LlmPayload, tools: Any, tool_schemas: dict) -> None:
    """Offered tools. A bound model passes the same tool dicts on every call (in a new list), so map
    each set once; the cache keeps the (small) dicts alive so their ids stay unique."""
    key = tuple(map(id, tools))
    hit = _tools_cache.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], tools)):
        llm.MergeFromString(hit[1])
        tool_schemas.update(hit[2])
        return
    only_tools = spans_pb2.LlmPayload()
    schemas: dict[str, str] = {}
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        fn = tool.get("function") if isinstance(tool.get("function"), Mapping) else tool
        name = fn.get("name")
        if not name:
            continue
        schema = fn.get("parameters") or fn.get("input_schema")
        schema_json = dumps(schema) if schema is not None else ""
        only_tools.tools.add(name=str(name), description=str(fn.get("description") or ""),
                             parameters_json_schema=schema_json)
        if schema_json:
            schemas[str(name)] = schema_json
    data = only_tools.SerializeToString()
    if len(_tools_cache) >= 256:
        _tools_cache.clear()
    _tools_cache[key] = (list(tools), data, schemas)
    llm.MergeFromString(data)
    tool_schemas.update(schemas)


def fill_request(llm: spans_pb2.LlmPayload, params: Mapping[str, Any], metadata: Optional[Mapping[str, Any]],
                 tool_schemas: dict) -> None:
    """Model, sampling params, offered tools and response format from ``invocation_params``."""
    model = params.get("model") or params.get("model_name") or params.get("model_id")
    if not model and metadata:
        model = metadata.get("ls_model_name")
    if model:
        llm.request_model = str(model)
    sampling = llm.sampling
    temperature = params.get("temperature")
    if isinstance(temperature, (int, float)):
        sampling.temperature = float(temperature)
    top_p = params.get("top_p")
    if isinstance(top_p, (int, float)):
        sampling.top_p = float(top_p)
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens") or params.get("max_output_tokens")
    if isinstance(max_tokens, int):
        sampling.max_tokens = max_tokens
    seed = params.get("seed")
    if isinstance(seed, int):
        sampling.seed = seed
    n = params.get("n")
    if isinstance(n, int):
        sampling.n = n
    stop = params.get("stop") or params.get("stop_sequences")
    if isinstance(stop, str):
        sampling.stop.append(stop)
    elif isinstance(stop, (list, tuple)):
        sampling.stop.extend(str(s) for s in stop)
    tools = params.get("tools")
    if tools:
        _fill_tools(llm, tools, tool_schemas)
    fmt = params.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type"):
        llm.response_format = str(fmt["type"])
    elif fmt is not None and not isinstance(fmt, Mapping):
        llm.response_format = "json_schema"  # a pydantic class / schema object passed through


def _usage_from(llm: spans_pb2.LlmPayload, message: Any, llm_output: Optional[Mapping[str, Any]]) -> None:
    usage = field(message, "usage_metadata")
    if usage:
        target = llm.usage
        target.input_tokens = prompt = int(usage.get("input_tokens") or 0)
        target.output_tokens = completion = int(usage.get("output_tokens") or 0)
        target.total_tokens = int(usage.get("total_tokens") or 0) or prompt + completion
        return
    token_usage = (llm_output or {}).get("token_usage") or (llm_output or {}).get("usage")
    if isinstance(token_usage, Mapping):
        prompt = token_usage.get("prompt_tokens", token_usage.get("input_tokens")) or 0
        completion = token_usage.get("completion_tokens", token_usage.get("output_tokens")) or 0
        llm.usage.input_tokens = int(prompt)
        llm.usage.output_tokens = int(completion)
        llm.usage.total_tokens = int(token_usage.get("total_tokens") or prompt + completion)


def fill_exact_tokens(llm: spans_pb2.LlmPayload, info: Mapping[str, Any]) -> None:
    """Token ids/logprobs/model version when the server returned them; provenance EXACT only then."""
    if not any(key in info for key in _EXACT_KEYS):
        return
    logprobs = info.get("logprobs")  # usually None: skip the calls then (this runs on every model call)
    entries = logprob_entries(logprobs) if logprobs is not None else None
    values = logprob_values(entries) if entries else None
    completion_ids = info.get("token_ids") or info.get("completion_token_ids")
    if completion_ids is None and entries:
        completion_ids = token_ids_from_logprobs(entries)
    prompt_ids = info.get("prompt_token_ids")
    version = info.get("model_version")
    if not version:
        headers = info.get("headers")
        if isinstance(headers, Mapping):
            version = headers.get(MODEL_VERSION_HEADER)
    if completion_ids or prompt_ids or version:
        set_exact_tokens(llm, prompt_ids, completion_ids, values, version)


def fill_response(llm: spans_pb2.LlmPayload, response: Any, messages: Optional[MessageCache] = None) -> None:
    """Generations, finish reasons, usage, response model/id and exact tokens from an ``LLMResult``."""
    llm_output = field(response, "llm_output") or {}
    generations = field(response, "generations") or []
    choices = generations[0] if generations else []
    for index, gen in enumerate(choices):
        message = field(gen, "message")
        info: dict = {}
        generation_info = field(gen, "generation_info")
        if generation_info:
            info.update(generation_info)
        if message is not None:
            info.update(field(message, "response_metadata") or {})
            # Through the cache: this message is in the history of the agent's next model call.
            (messages.fill if messages is not None else fill_message)(llm.response_messages.add(), message)
            if index == 0:
                _usage_from(llm, message, llm_output)
        else:
            llm.response_messages.add(role="assistant", content=text_of(field(gen, "text", "")))
            if index == 0:
                _usage_from(llm, None, llm_output)
        reason = info.get("finish_reason") or info.get("stop_reason")
        if reason:
            llm.finish_reasons.append(str(reason))
        if index == 0:
            model = info.get("model_name") or info.get("model") or llm_output.get("model_name")
            if model:
                llm.response_model = str(model)
            rid = info.get("id") or llm_output.get("id")
            if rid:
                llm.response_id = str(rid)
            fill_exact_tokens(llm, info)
    if not choices:
        _usage_from(llm, None, llm_output)


def fill_documents(target: spans_pb2.RetrieverPayload, documents: Iterable[Any]) -> None:
    for doc in documents or ():
        meta = field(doc, "metadata") or {}
        score = meta.get("score", meta.get("relevance_score"))
        target.documents.add(
            id=str(field(doc, "id") or meta.get("id") or meta.get("source") or ""),
            content=text_of(field(doc, "page_content", doc)),
            score=float(score) if isinstance(score, (int, float)) else 0.0,
        )


def tool_result(output: Any) -> tuple[str, bool, bool]:
    """(result text, failed, invalid arguments) of what a tool returned, incl. ToolMessage(status="error")."""
    if field(output, "type") == "tool":
        text = text_of(field(output, "content", ""))
        failed = field(output, "status", "success") == "error"
        return text, failed, failed and text.startswith(_VALIDATION_ERROR_TEXT)
    if isinstance(output, str):
        return output[:MAX_TEXT], False, False
    update = field(output, "update")  # a LangGraph Command returned by a tool
    if update is not None:
        return dumps(update)[:MAX_TEXT], False, False
    return dumps(output)[:MAX_TEXT], False, False


def error_outcome(error: BaseException) -> int:
    name = type(error).__name__
    if name in _TIMEOUT_ERRORS or isinstance(error, TimeoutError):
        return ToolOutcome.TIMEOUT
    if name in _VALIDATION_ERRORS:
        return ToolOutcome.INVALID_ARGUMENTS
    return ToolOutcome.ERROR


def arguments_of(input_str: str, inputs: Any) -> str:
    """The tool's arguments as a string: the structured inputs as JSON, else the raw input string."""
    if isinstance(inputs, Mapping):
        return dumps(dict(inputs))
    return input_str if isinstance(input_str, str) else dumps(input_str)


def arguments_valid(raw: str) -> bool:
    """True when the raw string parses as a JSON object (or is a plain string the tool accepted)."""
    stripped = raw.lstrip()
    if not stripped.startswith(("{", "[")):
        return True  # single-string tools take free text
    try:
        return isinstance(json.loads(raw), (dict, list))
    except ValueError:
        return False
