"""Token ids for LLM calls recorded without them: re-derive from the recorded messages.

Exact ids from the model server are always preferred (the sampled tokens); retokenized
transitions are flagged because a chat template can tokenize the same text differently from what
the model actually sampled. No tokenizer library is imported here: pass in anything with a Hugging
Face style ``apply_chat_template``, or a plain callable.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

from agentlightning.v1 import spans_pb2


class Retokenizer(Protocol):
    def __call__(self, prompt_messages: list[dict], response_messages: list[dict],
                 tools: list[dict]) -> tuple[Sequence[int], Sequence[int]]:
        """(prompt token ids, response token ids) for one call, messages in OpenAI chat format.
        ``response_messages`` is empty when only the prompt is needed; return ``[]`` for it then."""


class ChatTemplateTokenizer(Protocol):
    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


def message_dict(message: spans_pb2.ChatMessage) -> dict:
    """A recorded message in OpenAI chat format (what chat templates expect)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.name:
        out["name"] = message.name
    return out


def tool_dicts(llm: spans_pb2.LlmPayload) -> list[dict]:
    tools = []
    for d in llm.tools:
        try:
            parameters = json.loads(d.parameters_json_schema) if d.parameters_json_schema else {}
        except ValueError:
            parameters = {}
        tools.append({"type": "function",
                      "function": {"name": d.name, "description": d.description, "parameters": parameters}})
    return tools


def _ids(result: Any) -> list[int]:
    """apply_chat_template returns a list, a batch encoding, or a dict depending on the version."""
    if isinstance(result, Mapping) or hasattr(result, "keys"):
        result = result["input_ids"]
    if hasattr(result, "tolist"):
        result = result.tolist()
    if result and isinstance(result[0], (list, tuple)):
        result = result[0]
    return [int(i) for i in result]


def chat_template_retokenizer(tokenizer: ChatTemplateTokenizer) -> Retokenizer:
    """Prompt = template(prompt, generation prompt); response = what the template adds for the reply, up to
    and including the tokenizer's end-of-turn token (``eos_token_id``) when it has one: a model stops
    there, so what a template writes after it (ChatML's newline) was never sampled and is not trained."""
    eos = getattr(tokenizer, "eos_token_id", None)

    def until_eos(response: list[int]) -> list[int]:
        if isinstance(eos, int) and eos in response:
            return response[:len(response) - response[::-1].index(eos)]
        return response

    def retokenize(prompt_messages: list[dict], response_messages: list[dict],
                   tools: list[dict]) -> tuple[list[int], list[int]]:
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        prompt = _ids(tokenizer.apply_chat_template(prompt_messages, tokenize=True,
                                                    add_generation_prompt=True, **extra))
        if not response_messages:
            return prompt, []
        full = _ids(tokenizer.apply_chat_template(prompt_messages + response_messages[:1], tokenize=True,
                                                  add_generation_prompt=False, **extra))
        if full[:len(prompt)] == prompt and len(full) > len(prompt):
            return prompt, until_eos(full[len(prompt):])
        encode = getattr(tokenizer, "encode", None)
        if encode is None:
            raise ValueError("the chat template does not extend the prompt and the tokenizer has no encode()")
        return prompt, _ids(encode(response_messages[0].get("content") or "", add_special_tokens=False))

    return retokenize


def as_retokenizer(tokenizer: Any) -> Optional[Retokenizer]:
    """Accept a Hugging Face style tokenizer, a ready retokenizer callable, or None."""
    if tokenizer is None:
        return None
    if hasattr(tokenizer, "apply_chat_template"):
        return chat_template_retokenizer(tokenizer)
    if callable(tokenizer):
        return tokenizer
    raise TypeError("tokenizer must have apply_chat_template or be a callable (prompt, response, tools) -> ids")


def retokenize_call(retokenizer: Callable, llm: spans_pb2.LlmPayload,
                    response: bool = True) -> tuple[Sequence[int], Sequence[int]]:
    """(prompt ids, response ids) of a recorded call; with ``response=False`` only the prompt is
    tokenized (the response ids were recorded exactly) and the response comes back empty."""
    prompt_messages = [message_dict(m) for m in llm.request_messages]
    response_messages = [message_dict(m) for m in llm.response_messages[:1]] if response else []
    return retokenizer(prompt_messages, response_messages, tool_dicts(llm))
