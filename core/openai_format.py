"""Helpers for OpenAI-shaped data shared by the integrations: JSON text, and the exact-token extension.

The integrations read the same wire format (``testing/openai_wire.py``): ``prompt_token_ids``,
``token_ids``, ``logprobs.content[*].logprob`` and ``model_version`` beside the standard fields. Where
they find those fields differs per framework and stays in each integration; what they do with them is
here. Imports no framework and no torch; runs per LLM call, so it avoids ABC checks on plain dicts.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Iterable, Optional, Sequence

from agentlightning.core.kinds import TokenProvenance
from agentlightning.v1 import spans_pb2

# Cap on text copied into a span field (message content, tool result).
MAX_TEXT = 256 * 1024
_TOKEN_ID_PREFIX = "token_id:"


def dumps(value: Any) -> str:
    """JSON text of ``value`` (non-JSON leaves as ``str``); ``str(value)`` when it cannot be encoded."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def extend_ints(target: Any, values: Iterable[Any]) -> None:
    """Extend a repeated integer field; converts with ``int`` only when the values are not ints already.

    A protobuf ``extend`` that fails appends nothing, so the retry cannot duplicate values."""
    try:
        target.extend(values)  # fast path: a list of ints
    except (TypeError, ValueError):
        target.extend(int(v) for v in values)


def logprob_entries(logprobs: Any) -> Optional[list]:
    """The per-token entries of a ``logprobs`` field: ``{"content": [...]}`` or the list itself."""
    if type(logprobs) is dict or isinstance(logprobs, Mapping):
        return logprobs.get("content")
    if isinstance(logprobs, list):
        return logprobs
    return None


def logprob_values(entries: Optional[Sequence[Any]]) -> Optional[list]:
    """Each entry's ``logprob`` (an entry may also be a bare number); None unless every one is a number."""
    if not entries:
        return None
    values = [e.get("logprob") if type(e) is dict or isinstance(e, Mapping) else e for e in entries]
    for v in values:
        if not isinstance(v, (int, float)):
            return None
    return values


def token_ids_from_logprobs(entries: Sequence[Any]) -> Optional[list[int]]:
    """Completion ids from entries rendered as ``token_id:N`` (vLLM's ``return_tokens_as_token_ids``),
    which any OpenAI client passes through; None unless every entry has that form."""
    ids = []
    for entry in entries:
        token = entry.get("token") if type(entry) is dict or isinstance(entry, Mapping) else None
        if not isinstance(token, str) or not token.startswith(_TOKEN_ID_PREFIX):
            return None
        try:
            ids.append(int(token[9:]))
        except ValueError:
            return None
    return ids


def set_exact_tokens(llm: spans_pb2.LlmPayload, prompt_ids: Optional[Iterable[Any]],
                     completion_ids: Optional[Sequence[Any]], logprobs: Optional[Sequence[Any]] = None,
                     version: Any = None) -> None:
    """Write what the server returned: token ids (provenance EXACT only when there are some), the
    completion logprobs when there is exactly one per completion id, and the policy version if any."""
    if prompt_ids:
        extend_ints(llm.prompt_token_ids, prompt_ids)
    if completion_ids:
        extend_ints(llm.completion_token_ids, completion_ids)
        if logprobs is not None and len(logprobs) == len(completion_ids):
            llm.completion_logprobs.extend(logprobs)
    if prompt_ids or completion_ids:
        llm.token_provenance = TokenProvenance.EXACT
    if version:
        llm.policy_version = str(version)


_MESSAGE_MIRRORED = ("token_ids", "prompt_token_ids")


def mirror_exact_tokens_into_messages(body: dict) -> dict:
    """Copy the exact-token extension of a chat completion into each ``choices[i].message`` too.

    Some frameworks keep only the assistant message of a completion (the OpenAI Agents SDK records
    ``choices[0].message.model_dump()`` in its generation span), so ids placed on the choice or at the
    top level never reach their traces. Servers that emit the extension (ours, the vLLM gateway, the
    scripted test server) call this on non-streamed answers: the message then also carries
    ``token_ids``, ``prompt_token_ids``, ``model_version`` and ``token_logprobs`` (one float per token).
    """
    version = body.get("model_version")
    top_prompt = body.get("prompt_token_ids")
    for choice in body.get("choices") or ():
        message = choice.get("message")
        if not isinstance(message, dict):
            continue
        for key in _MESSAGE_MIRRORED:
            value = choice.get(key)
            if value is None and key == "prompt_token_ids":
                value = top_prompt
            if value is not None:
                message[key] = list(value)
        if version is not None:
            message["model_version"] = version
        values = logprob_values(logprob_entries(choice.get("logprobs")))
        if values:
            message["token_logprobs"] = values
    return body
