"""OpenAI wire formats for the scripted server: chat completions, Responses API, their SSE streams.

Kept apart from the HTTP plumbing so the shapes can be read (and checked against the ``openai`` package's
types) in one place. Everything here is a pure function of a ``Reply`` and the request body.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from agentlightning.core.openai_format import mirror_exact_tokens_into_messages

_PIECE = re.compile(r"\S+\s*|\s+")


@dataclass
class ToolCall:
    """One tool call the model requests. ``arguments`` is the raw JSON string (may be invalid on purpose)."""

    name: str
    arguments: str = "{}"
    id: Optional[str] = None


@dataclass
class Reply:
    """What the scripted model answers to one request.

    Token counts default to whitespace-separated word counts (prompt: all message text of the request;
    completion: the content plus the tool-call arguments), so they are deterministic and non-zero.
    ``token_ids``/``prompt_token_ids``/``logprobs`` are the exact-token extension (vLLM-style) and are
    sent only when set. ``http_status`` != 200 answers an error body instead (for retry/failure tests).
    """

    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: Optional[str] = None
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    prompt_token_ids: Optional[list[int]] = None
    token_ids: Optional[list[int]] = None
    logprobs: Optional[list[float]] = None
    tokens: Optional[list[str]] = None  # token strings for the logprobs entries (default "<id>" / "t<i>")
    model_version: Optional[str] = None
    delay_s: float = 0.0
    http_status: int = 200
    error_message: str = "scripted error"


def words(value: Any) -> int:
    """Word count of any JSON-ish value's text (strings inside lists/dicts included)."""
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(words(v) for k, v in value.items() if k in ("content", "text", "output", "arguments", "input"))
    if isinstance(value, list):
        return sum(words(v) for v in value)
    return 0


def usage_counts(reply: Reply, request: dict, api: str) -> tuple[int, int]:
    if reply.prompt_tokens is not None:
        prompt = reply.prompt_tokens
    elif api == "responses":
        prompt = words(request.get("input")) + words(request.get("instructions"))
    else:
        prompt = words(request.get("messages"))
    if reply.completion_tokens is not None:
        completion = reply.completion_tokens
    else:
        completion = words(reply.content) + sum(words(tc.arguments) for tc in reply.tool_calls)
    return max(prompt, 1), max(completion, 1)


def _finish_reason(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _call_ids(reply: Reply, seq: int) -> list[str]:
    return [tc.id or f"call_{seq}_{i}" for i, tc in enumerate(reply.tool_calls)]


def _logprobs_block(reply: Reply) -> Optional[dict]:
    if reply.logprobs is None:
        return None
    toks = reply.tokens or [
        f"<{reply.token_ids[i]}>" if reply.token_ids and i < len(reply.token_ids) else f"t{i}"
        for i in range(len(reply.logprobs))
    ]
    content = [
        {"token": t, "logprob": float(lp), "bytes": list(t.encode()), "top_logprobs": []}
        for t, lp in zip(toks, reply.logprobs)
    ]
    return {"content": content, "refusal": None}


def _extensions(reply: Reply, target: dict) -> None:
    if reply.prompt_token_ids is not None:
        target["prompt_token_ids"] = list(reply.prompt_token_ids)
    if reply.token_ids is not None:
        target["token_ids"] = list(reply.token_ids)


def _top_extras(reply: Reply, body: dict) -> dict:
    if reply.model_version is not None:
        body["model_version"] = reply.model_version
    if reply.prompt_token_ids is not None:  # vLLM puts these top-level; we also put them on the choice
        body["prompt_token_ids"] = list(reply.prompt_token_ids)
    return body


# -- chat completions ---------------------------------------------------------------------------
def chat_completion(reply: Reply, request: dict, seq: int) -> dict:
    prompt, completion = usage_counts(reply, request, "chat")
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": tc.name, "arguments": tc.arguments}}
            for cid, tc in zip(_call_ids(reply, seq), reply.tool_calls)
        ]
    choice: dict[str, Any] = {
        "index": 0, "message": message, "finish_reason": _finish_reason(reply), "logprobs": _logprobs_block(reply),
    }
    _extensions(reply, choice)
    body = {
        "id": f"chatcmpl-{seq}", "object": "chat.completion", "created": int(time.time()),
        "model": request.get("model") or "scripted", "choices": [choice],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }
    return mirror_exact_tokens_into_messages(_top_extras(reply, body))


def chat_chunks(reply: Reply, request: dict, seq: int) -> Iterator[dict]:
    """Chunks as the OpenAI API streams them: role, content pieces, tool-call deltas, finish, usage."""
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    base = {"id": f"chatcmpl-{seq}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": request.get("model") or "scripted"}

    def chunk(delta: dict, finish: Optional[str] = None, **choice_extra: Any) -> dict:
        out = dict(base, choices=[dict({"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None},
                                       **choice_extra)])
        if include_usage:
            out["usage"] = None
        return out

    first = chunk({"role": "assistant", "content": ""})
    yield _top_extras(reply, first)
    for piece in _PIECE.findall(reply.content or ""):
        yield chunk({"content": piece})
    for index, (cid, tc) in enumerate(zip(_call_ids(reply, seq), reply.tool_calls)):
        yield chunk({"tool_calls": [{"index": index, "id": cid, "type": "function",
                                     "function": {"name": tc.name, "arguments": ""}}]})
        for piece in _split_args(tc.arguments):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    extra: dict[str, Any] = {}
    if reply.logprobs is not None:
        extra["logprobs"] = _logprobs_block(reply)
    if reply.token_ids is not None:
        extra["token_ids"] = list(reply.token_ids)
    yield chunk({}, _finish_reason(reply), **extra)
    if include_usage:
        prompt, completion = usage_counts(reply, request, "chat")
        yield dict(base, choices=[], usage={"prompt_tokens": prompt, "completion_tokens": completion,
                                            "total_tokens": prompt + completion})


def _split_args(arguments: str, size: int = 8) -> list[str]:
    return [arguments[i:i + size] for i in range(0, len(arguments), size)] or [""]


# -- Responses API -------------------------------------------------------------------------------
def _output_items(reply: Reply, seq: int) -> list[dict]:
    items: list[dict] = []
    if reply.content or not reply.tool_calls:
        part: dict[str, Any] = {"type": "output_text", "text": reply.content, "annotations": []}
        lp = _logprobs_block(reply)
        part["logprobs"] = [dict(e) for e in lp["content"]] if lp else []
        items.append({"type": "message", "id": f"msg_{seq}", "role": "assistant", "status": "completed",
                      "content": [part]})
    for i, (cid, tc) in enumerate(zip(_call_ids(reply, seq), reply.tool_calls)):
        items.append({"type": "function_call", "id": f"fc_{seq}_{i}", "call_id": cid, "name": tc.name,
                      "arguments": tc.arguments, "status": "completed"})
    return items


def response_object(reply: Reply, request: dict, seq: int, status: str = "completed",
                    output: Optional[list[dict]] = None) -> dict:
    prompt, completion = usage_counts(reply, request, "responses")
    body: dict[str, Any] = {
        "id": f"resp_{seq}", "object": "response", "created_at": time.time(), "status": status,
        "model": request.get("model") or "scripted", "output": _output_items(reply, seq) if output is None else output,
        "parallel_tool_calls": bool(request.get("parallel_tool_calls", True)),
        "tool_choice": request.get("tool_choice") or "auto", "tools": request.get("tools") or [],
        "instructions": request.get("instructions"), "metadata": {}, "error": None, "incomplete_details": None,
        "temperature": request.get("temperature"), "top_p": request.get("top_p"),
        "text": {"format": {"type": "text"}}, "truncation": "disabled",
        "usage": None,
    }
    if status == "completed":
        body["usage"] = {
            "input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        }
        if reply.finish_reason == "length":
            body["status"] = "incomplete"
            body["incomplete_details"] = {"reason": "max_output_tokens"}
    _extensions(reply, body)
    if reply.model_version is not None:
        body["model_version"] = reply.model_version
    return body


def response_events(reply: Reply, request: dict, seq: int) -> Iterator[dict]:
    """Events in the order the Responses API streams them (created ... completed), numbered."""
    counter = iter(range(1_000_000))

    def event(kind: str, **fields: Any) -> dict:
        return dict({"type": kind, "sequence_number": next(counter)}, **fields)

    yield event("response.created", response=response_object(reply, request, seq, "in_progress", []))
    yield event("response.in_progress", response=response_object(reply, request, seq, "in_progress", []))
    for index, item in enumerate(_output_items(reply, seq)):
        if item["type"] == "message":
            yield event("response.output_item.added", output_index=index,
                        item=dict(item, status="in_progress", content=[]))
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield event("response.content_part.added", item_id=item["id"], output_index=index, content_index=0,
                        part=empty)
            text = item["content"][0]["text"]
            for piece in _PIECE.findall(text):
                yield event("response.output_text.delta", item_id=item["id"], output_index=index,
                            content_index=0, delta=piece, logprobs=[])
            yield event("response.output_text.done", item_id=item["id"], output_index=index, content_index=0,
                        text=text, logprobs=item["content"][0]["logprobs"])
            yield event("response.content_part.done", item_id=item["id"], output_index=index, content_index=0,
                        part=item["content"][0])
        else:
            yield event("response.output_item.added", output_index=index,
                        item=dict(item, status="in_progress", arguments=""))
            for piece in _split_args(item["arguments"]):
                yield event("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                            delta=piece)
            yield event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                        name=item["name"], arguments=item["arguments"])
        yield event("response.output_item.done", output_index=index, item=item)
    final = response_object(reply, request, seq)
    yield event("response.completed" if final["status"] == "completed" else "response.incomplete", response=final)


def sse(data: dict, event: Optional[str] = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()
