"""Pure functions from LangChain's callback arguments to our span payloads.

Duck-typed on LangChain's message/generation objects (``.type``, ``.content``, ``.tool_calls``...), so it
reads plain objects too and costs no isinstance checks against framework classes on the hot path.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Optional

from agentlightning.core.kinds import TokenProvenance, ToolOutcome
from agentlightning.v1 import spans_pb2

MAX_TEXT = 256 * 1024
MODEL_VERSION_HEADER = "x-agentlightning-model-version"
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool",
          "developer": "developer", "AIMessageChunk": "assistant"}
# LangChain's default text for a handled pydantic validation error (tools/base.py).
_VALIDATION_ERROR_TEXT = "Tool input validation error"
_TIMEOUT_ERRORS = ("TimeoutError", "ReadTimeout", "ConnectTimeout", "APITimeoutError")
_VALIDATION_ERRORS = ("ValidationError", "ToolInvocationError")


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


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def fill_message(target: spans_pb2.ChatMessage, message: Any) -> None:
    """One LangChain message (or a ``(role, content)`` pair / dict) into a ChatMessage."""
    if isinstance(message, tuple) and len(message) == 2:
        target.role = _ROLES.get(str(message[0]), str(message[0]))
        target.content = text_of(message[1])
        return
    if isinstance(message, Mapping):
        target.role = str(message.get("role", ""))
        target.content = text_of(message.get("content"))
        return
    kind = getattr(message, "type", "")
    target.role = _ROLES.get(kind) or getattr(message, "role", None) or kind
    target.content = text_of(getattr(message, "content", ""))
    name = getattr(message, "name", None)
    if name:
        target.name = str(name)
    call_id = getattr(message, "tool_call_id", None)
    if call_id:
        target.tool_call_id = str(call_id)
    for call in getattr(message, "tool_calls", None) or ():
        target.tool_calls.add(id=call.get("id") or "", name=call.get("name") or "",
                              arguments=_dumps(call.get("args", {})))
    # Calls whose arguments did not parse keep the model's raw string (AIR checks it).
    for call in getattr(message, "invalid_tool_calls", None) or ():
        args = call.get("args")
        target.tool_calls.add(id=call.get("id") or "", name=call.get("name") or "",
                              arguments=args if isinstance(args, str) else _dumps(args))


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
    for tool in params.get("tools") or ():
        if not isinstance(tool, Mapping):
            continue
        fn = tool.get("function") if isinstance(tool.get("function"), Mapping) else tool
        name = fn.get("name")
        if not name:
            continue
        schema = fn.get("parameters") or fn.get("input_schema")
        schema_json = _dumps(schema) if schema is not None else ""
        llm.tools.add(name=str(name), description=str(fn.get("description") or ""),
                      parameters_json_schema=schema_json)
        if schema_json:
            tool_schemas[name] = schema_json
    fmt = params.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type"):
        llm.response_format = str(fmt["type"])
    elif fmt is not None and not isinstance(fmt, Mapping):
        llm.response_format = "json_schema"  # a pydantic class / schema object passed through


def _usage_from(llm: spans_pb2.LlmPayload, message: Any, llm_output: Optional[Mapping[str, Any]]) -> None:
    usage = getattr(message, "usage_metadata", None)
    if usage:
        llm.usage.input_tokens = int(usage.get("input_tokens") or 0)
        llm.usage.output_tokens = int(usage.get("output_tokens") or 0)
        llm.usage.total_tokens = int(usage.get("total_tokens") or 0) or (
            llm.usage.input_tokens + llm.usage.output_tokens)
        return
    token_usage = (llm_output or {}).get("token_usage") or (llm_output or {}).get("usage")
    if isinstance(token_usage, Mapping):
        prompt = token_usage.get("prompt_tokens", token_usage.get("input_tokens")) or 0
        completion = token_usage.get("completion_tokens", token_usage.get("output_tokens")) or 0
        llm.usage.input_tokens = int(prompt)
        llm.usage.output_tokens = int(completion)
        llm.usage.total_tokens = int(token_usage.get("total_tokens") or prompt + completion)


def _token_ids_from_logprobs(entries: list) -> Optional[list[int]]:
    """vLLM's ``return_tokens_as_token_ids`` renders each token as ``token_id:N``: exact ids via any client."""
    ids = []
    for entry in entries:
        token = entry.get("token") if isinstance(entry, Mapping) else None
        if not isinstance(token, str) or not token.startswith("token_id:"):
            return None
        try:
            ids.append(int(token[9:]))
        except ValueError:
            return None
    return ids


def fill_exact_tokens(llm: spans_pb2.LlmPayload, info: Mapping[str, Any]) -> None:
    """Token ids/logprobs/model version when the server returned them; provenance EXACT only then."""
    logprob_entries = None
    logprobs = info.get("logprobs")
    if isinstance(logprobs, Mapping):
        logprob_entries = logprobs.get("content")
    elif isinstance(logprobs, list):
        logprob_entries = logprobs
    values = None
    if logprob_entries:
        values = [e.get("logprob") if isinstance(e, Mapping) else e for e in logprob_entries]
        if not all(isinstance(v, (int, float)) for v in values):
            values = None
    completion_ids = info.get("token_ids") or info.get("completion_token_ids")
    if completion_ids is None and logprob_entries:
        completion_ids = _token_ids_from_logprobs(logprob_entries)
    prompt_ids = info.get("prompt_token_ids")
    if completion_ids:
        llm.completion_token_ids.extend(int(t) for t in completion_ids)
        if values is not None and len(values) == len(completion_ids):
            llm.completion_logprobs.extend(float(v) for v in values)
    if prompt_ids:
        llm.prompt_token_ids.extend(int(t) for t in prompt_ids)
    if completion_ids or prompt_ids:
        llm.token_provenance = TokenProvenance.EXACT
    version = info.get("model_version")
    headers = info.get("headers")
    if not version and isinstance(headers, Mapping):
        version = headers.get(MODEL_VERSION_HEADER)
    if version:
        llm.policy_version = str(version)


def fill_response(llm: spans_pb2.LlmPayload, response: Any) -> None:
    """Generations, finish reasons, usage, response model/id and exact tokens from an ``LLMResult``."""
    llm_output = getattr(response, "llm_output", None) or {}
    generations = getattr(response, "generations", None) or []
    choices = generations[0] if generations else []
    for index, gen in enumerate(choices):
        message = getattr(gen, "message", None)
        info: dict = {}
        if getattr(gen, "generation_info", None):
            info.update(gen.generation_info)
        if message is not None:
            info.update(getattr(message, "response_metadata", None) or {})
            fill_message(llm.response_messages.add(), message)
            if index == 0:
                _usage_from(llm, message, llm_output)
        else:
            llm.response_messages.add(role="assistant", content=text_of(getattr(gen, "text", "")))
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
        meta = getattr(doc, "metadata", None) or {}
        score = meta.get("score", meta.get("relevance_score"))
        target.documents.add(
            id=str(getattr(doc, "id", None) or meta.get("id") or meta.get("source") or ""),
            content=text_of(getattr(doc, "page_content", doc)),
            score=float(score) if isinstance(score, (int, float)) else 0.0,
        )


def tool_result(output: Any) -> tuple[str, bool, bool]:
    """(result text, failed, invalid arguments) of what a tool returned, incl. ToolMessage(status="error")."""
    if getattr(output, "type", None) == "tool":
        text = text_of(getattr(output, "content", ""))
        failed = getattr(output, "status", "success") == "error"
        return text, failed, failed and text.startswith(_VALIDATION_ERROR_TEXT)
    if isinstance(output, str):
        return output[:MAX_TEXT], False, False
    update = getattr(output, "update", None)  # a LangGraph Command returned by a tool
    if update is not None:
        return _dumps(update)[:MAX_TEXT], False, False
    return _dumps(output)[:MAX_TEXT], False, False


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
        return _dumps(dict(inputs))
    return input_str if isinstance(input_str, str) else _dumps(input_str)


def arguments_valid(raw: str) -> bool:
    """True when the raw string parses as a JSON object (or is a plain string the tool accepted)."""
    stripped = raw.lstrip()
    if not stripped.startswith(("{", "[")):
        return True  # single-string tools take free text
    try:
        return isinstance(json.loads(raw), (dict, list))
    except ValueError:
        return False
