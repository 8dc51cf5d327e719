"""The OpenAI chat-completions wire format of the model server: request -> prompt + sampling, result -> JSON.

Beyond the OpenAI fields every response carries the exact-token extension, with the same names the
scripted test server (:mod:`agentlightning.testing.openai_wire`) and vLLM's ``return_token_ids`` use, so
integrations read one format:

* top level: ``model_version`` (the policy version that generated every choice) and ``prompt_token_ids``;
* each choice: ``prompt_token_ids``, ``token_ids`` (completion ids, the EOS/stop token included), and
  ``logprobs.content[i].logprob`` for every completion token (always sent, ``logprobs`` or not);
* streaming: the first chunk carries ``model_version``/``prompt_token_ids``; each choice's final chunk (the
  one with ``finish_reason``) carries its ``token_ids`` and all its ``logprobs``.

``content`` is ``decode(token_ids, skip_special_tokens=True)``, cut before a matched ``stop`` string.
Request extensions: ``ignore_eos``, ``stop_token_ids``, ``chat_template_kwargs`` (as in vLLM);
``return_token_ids`` is accepted and implied. ``tool_choice: "none"`` hides the tools; other tool_choice
values are accepted but not enforced.
"""
from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

from agentlightning.core.openai_format import mirror_exact_tokens_into_messages
from agentlightning.trainer.serving.engine import Generation
from agentlightning.trainer.serving.sampling import SamplingParams
from agentlightning.trainer.serving.toolcalls import OPEN, parse_tool_calls, partial_suffix


_ENCODE_LOCK = threading.Lock()


class BadRequest(ValueError):
    """The request cannot be served as sent (HTTP 400 with this message)."""


@dataclass
class ChatJob:
    """A parsed chat request: what to generate and how to answer."""

    model: str
    prompt_ids: list[int]
    params: list[SamplingParams]
    tools: Optional[list[dict]] = None
    tool_names: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False


def parse_chat(body: dict, tokenizer: Any, *, default_max_tokens: int, max_positions: int) -> ChatJob:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    tools = body.get("tools") or None
    if tools is not None and not isinstance(tools, list):
        raise BadRequest("'tools' must be a list")
    if body.get("tool_choice") == "none":
        tools = None
    prompt_ids = render_prompt(tokenizer, messages, tools, body.get("chat_template_kwargs") or {})
    room = max_positions - len(prompt_ids)
    if room < 1:
        raise BadRequest(f"prompt is {len(prompt_ids)} tokens; the model takes at most {max_positions}")
    requested = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    n = _int(body, "n", 1)
    if not 1 <= n <= 64:
        raise BadRequest("'n' must be between 1 and 64")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str) and s]
    seed = body.get("seed")
    top = _int(body, "top_logprobs", 0) if body.get("logprobs") else 0
    try:
        params = [SamplingParams(
            max_tokens=min(int(requested), room),
            temperature=float(body["temperature"]) if body.get("temperature") is not None else 1.0,
            top_p=float(body["top_p"]) if body.get("top_p") is not None else 1.0,
            stop=tuple(stop), stop_token_ids=tuple(int(t) for t in body.get("stop_token_ids") or ()),
            ignore_eos=bool(body.get("ignore_eos", False)),
            seed=None if seed is None else int(seed) + i, top_logprobs=top) for i in range(n)]
    except (TypeError, ValueError) as exc:
        raise BadRequest(str(exc)) from exc
    names = [t.get("function", {}).get("name") for t in tools or [] if isinstance(t, dict)]
    return ChatJob(model=str(body.get("model") or ""), prompt_ids=prompt_ids, params=params, tools=tools,
                   tool_names=[n for n in names if n], stream=bool(body.get("stream")),
                   include_usage=bool((body.get("stream_options") or {}).get("include_usage")))


def render_prompt(tokenizer: Any, messages: list, tools: Optional[list], template_kwargs: dict) -> list[int]:
    """Prompt ids exactly as ``tokenizer.apply_chat_template(messages, tools=..., add_generation_prompt=True)``."""
    try:
        text = tokenizer.apply_chat_template([_normalise(m) for m in messages], tools=tools, tokenize=False,
                                             add_generation_prompt=True, **template_kwargs)
    except Exception as exc:  # template errors are the caller's messages being off-shape
        raise BadRequest(f"chat template failed: {exc}") from exc
    with _ENCODE_LOCK:  # fast tokenizers may raise "Already borrowed" when encoding from several threads
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _normalise(message: Any) -> dict:
    if not isinstance(message, dict) or "role" not in message:
        raise BadRequest("each message needs a 'role'")
    out = dict(message)
    if out["role"] == "developer":
        out["role"] = "system"
    content = out.get("content")
    if isinstance(content, list):
        out["content"] = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    elif content is None:
        out["content"] = ""
    calls = []
    for call in out.get("tool_calls") or []:
        fn = dict(call.get("function") or {})
        if isinstance(fn.get("arguments"), str):
            try:
                fn["arguments"] = json.loads(fn["arguments"])
            except ValueError:
                pass  # keep the raw string; the template renders it as a JSON string
        calls.append(dict(call, function=fn))
    if calls:
        out["tool_calls"] = calls
    return out


def _int(body: dict, key: str, default: int) -> int:
    value = body.get(key)
    try:
        return default if value is None else int(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"'{key}' must be an integer") from exc


# -- answers --------------------------------------------------------------------------------------
def completion_text(tokenizer: Any, gen: Generation) -> str:
    text = tokenizer.decode(gen.token_ids, skip_special_tokens=True)
    return _cut_at_stop(text, gen.params.stop)


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cuts = [text.find(s) for s in stops if s and s in text]
    return text[:min(cuts)] if cuts else text


def _logprobs(tokenizer: Any, gen: Generation) -> dict:
    content = []
    for (piece, raw), lp, top in zip(_token_texts(tokenizer, gen.token_ids), gen.logprobs, gen.top_logprobs):
        entry: dict[str, Any] = {"token": piece, "logprob": lp, "bytes": raw, "top_logprobs": []}
        if top:
            entry["top_logprobs"] = [{"token": s, "logprob": v, "bytes": b}
                                     for (s, b), (_, v) in zip(_token_texts(tokenizer, [t for t, _ in top]), top)]
        content.append(entry)
    return {"content": content, "refusal": None}


def _token_texts(tokenizer: Any, ids: Sequence[int]) -> list[tuple[str, list[int]]]:
    """(text, utf-8 bytes) per token. Byte-level BPE tokens map back to their exact bytes, so a character
    split across tokens can be rebuilt from ``bytes`` as the OpenAI format intends."""
    texts = tokenizer.batch_decode([[t] for t in ids])
    out = []
    for token, text in zip(tokenizer.convert_ids_to_tokens(list(ids)), texts):
        raw = _byte_level_bytes(token) if isinstance(token, str) else None
        out.append((text, list(raw) if raw is not None and text.endswith("\ufffd") else list(text.encode())))
    return out


def _byte_level_bytes(token: str) -> Optional[bytes]:
    table = _byte_decoder()
    if not token or any(ch not in table for ch in token):
        return None
    return bytes(table[ch] for ch in token)


_BYTE_DECODER: dict[str, int] = {}


def _byte_decoder() -> dict[str, int]:
    """The byte-level BPE alphabet: printable bytes stand for themselves, the others shift to 256 + k."""
    if not _BYTE_DECODER:
        printable = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1),
                     *range(ord("\xae"), ord("\xff") + 1)]
        shifted = 0
        for byte in range(256):
            if byte in printable:
                _BYTE_DECODER[chr(byte)] = byte
            else:
                _BYTE_DECODER[chr(256 + shifted)] = byte
                shifted += 1
    return _BYTE_DECODER


def _message_and_finish(job: ChatJob, text: str, gen: Generation) -> tuple[dict, str]:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    finish = gen.finish_reason or "stop"
    if job.tools:
        content, calls = parse_tool_calls(text, job.tool_names)
        if calls:
            message["content"] = content
            message["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}} for c in calls]
            if finish == "stop":
                finish = "tool_calls"
    return message, finish


def _usage(job: ChatJob, gens: Sequence[Generation]) -> dict:
    completion = sum(len(g.token_ids) for g in gens)
    return {"prompt_tokens": len(job.prompt_ids), "completion_tokens": completion,
            "total_tokens": len(job.prompt_ids) + completion}


def completion_body(job: ChatJob, gens: Sequence[Generation], tokenizer: Any, *, rid: str, created: int,
                    model: str) -> dict:
    choices = []
    for index, gen in enumerate(gens):
        message, finish = _message_and_finish(job, completion_text(tokenizer, gen), gen)
        choices.append({"index": index, "message": message, "finish_reason": finish,
                        "logprobs": _logprobs(tokenizer, gen), "prompt_token_ids": list(job.prompt_ids),
                        "token_ids": list(gen.token_ids)})
    return mirror_exact_tokens_into_messages({
        "id": rid, "object": "chat.completion", "created": created, "model": model, "choices": choices,
        "usage": _usage(job, gens), "system_fingerprint": None, "model_version": gens[0].version,
        "prompt_token_ids": list(job.prompt_ids)})


def completion_chunks(job: ChatJob, gens: Sequence[Generation], tokenizer: Any, *, rid: str, created: int,
                      model: str) -> Iterator[dict]:
    """SSE chunks as tokens arrive (choices one after another; they are generated together).

    The first chunk is yielded only once the first token exists (so the version is known); an engine
    failure before that raises from the first ``next()``, while the HTTP status can still say so."""
    base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None}

    def chunk(index: int, delta: dict, finish: Optional[str] = None, **extra: Any) -> dict:
        out = dict(base, choices=[dict({"index": index, "delta": delta, "finish_reason": finish, "logprobs": None},
                                       **extra)])
        if job.include_usage:
            out["usage"] = None
        return out

    streams = [gen.stream() for gen in gens]
    early = list(itertools.islice(streams[0], 1))  # the first token: its batch fixed the version
    first = chunk(0, {"role": "assistant", "content": ""})
    first.update(model_version=gens[0].version, prompt_token_ids=list(job.prompt_ids))
    yield first
    for index, gen in enumerate(gens):
        if index:
            yield chunk(index, {"role": "assistant", "content": ""})
        sent = consumed = 0
        for _ in itertools.chain(early if index == 0 else [], streams[index]):
            # Decode only the tokens taken off the stream so far: the engine may already have appended
            # more, and reading them all would fold a lagging stream into one chunk.
            consumed += 1
            text = tokenizer.decode(gen.token_ids[:consumed], skip_special_tokens=True)
            safe = _safe_length(text, gen.params.stop, bool(job.tools))
            if safe > sent:
                yield chunk(index, {"content": text[sent:safe]})
                sent = safe
        text = completion_text(tokenizer, gen)
        message, finish = _message_and_finish(job, text, gen)
        content = message.get("content") or ""
        if content[sent:] and content.startswith(text[:sent]):
            yield chunk(index, {"content": content[sent:]})
        for position, call in enumerate(message.get("tool_calls") or []):
            yield chunk(index, {"tool_calls": [dict(call, index=position)]})
        yield chunk(index, {}, finish, logprobs=_logprobs(tokenizer, gen), token_ids=list(gen.token_ids))
    if job.include_usage:
        yield dict(base, choices=[], usage=_usage(job, gens))


def _safe_length(text: str, stops: Sequence[str], tools: bool) -> int:
    """How much of the text so far can be sent: not a possible stop string, tool call or partial character."""
    end = len(text)
    if stops:
        cut = _cut_at_stop(text, stops)
        end = len(cut) if len(cut) < end else end - max(partial_suffix(text, s) for s in stops)
    if tools:
        head = text.lstrip()
        if head[:1] in ("{", "[", "`"):
            return 0
        found = text.find(OPEN)
        end = min(end, found if found >= 0 else len(text) - partial_suffix(text, OPEN))
    while end > 0 and text[end - 1] == "\ufffd":
        end -= 1
    return max(end, 0)
