"""Ready-made scripts for ``ScriptedLLMServer``: answer from what the request says, not from call order.

Stateless routing (by system prompt, by whether the last message is a tool result) keeps multi-agent
tests deterministic even when a framework adds, retries or reorders calls.

    script = route_by_system({
        "researcher": tool_then_answer("search", '{"q": "x"}', "found x"),
        "writer": Reply("final report"),
    })
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from agentlightning.testing.openai_wire import Reply, ToolCall

ScriptFn = Callable[[dict, str], Reply]
ScriptLike = Union[Reply, Sequence[Reply], ScriptFn]


def _text(content: Any) -> str:
    """Text of a message content: a string, or a list of parts (chat or Responses style)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text(p.get("text") if isinstance(p, dict) else p) for p in content)
    return str(content)


class RequestView:
    """A framework-neutral view of one request (chat completions or Responses API)."""

    def __init__(self, request: dict, api: str = "chat") -> None:
        self.request = request
        self.api = api
        if api == "responses":
            raw = request.get("input")
            self.messages: list[dict] = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
        else:
            self.messages = list(request.get("messages") or [])

    @property
    def system(self) -> str:
        """System/developer prompt text (and Responses ``instructions``)."""
        parts = [_text(m.get("content")) for m in self.messages if m.get("role") in ("system", "developer")]
        if self.api == "responses" and self.request.get("instructions"):
            parts.insert(0, _text(self.request.get("instructions")))
        return "\n".join(parts)

    @property
    def last(self) -> dict:
        return self.messages[-1] if self.messages else {}

    @property
    def last_is_tool_result(self) -> bool:
        last = self.last
        return last.get("role") == "tool" or last.get("type") == "function_call_output"

    @property
    def tool_results(self) -> list[str]:
        """Outputs of the tool calls in the conversation so far, in order."""
        out = []
        for m in self.messages:
            if m.get("role") == "tool":
                out.append(_text(m.get("content")))
            elif m.get("type") == "function_call_output":
                out.append(_text(m.get("output")))
        return out

    @property
    def tool_results_since_user(self) -> list[str]:
        """Tool outputs after the last user message (the current turn's results)."""
        last_user = max((i for i, m in enumerate(self.messages) if m.get("role") == "user"), default=-1)
        return RequestView({"messages": self.messages[last_user + 1:]}, "chat").tool_results if self.api == "chat" \
            else RequestView({"input": self.messages[last_user + 1:]}, "responses").tool_results

    @property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return _text(m.get("content"))
        return ""

    @property
    def tool_names(self) -> list[str]:
        """Names of the tools offered to the model in this request."""
        names = []
        for tool in self.request.get("tools") or []:
            fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
            if fn.get("name"):
                names.append(fn["name"])
        return names

    def contains(self, text: str) -> bool:
        """Whether ``text`` appears anywhere in the system prompt or messages (case-insensitive)."""
        needle = text.lower()
        return needle in self.system.lower() or any(
            needle in _text(m.get("content") or m.get("output")).lower() for m in self.messages)


def as_script(item: ScriptLike) -> ScriptFn:
    """A Reply (always the same), a list (consumed in order, thread-safe) or a callable, as a callable."""
    if isinstance(item, Reply):
        return lambda request, api: item
    if callable(item):
        return item
    return sequence(*item)


def sequence(*replies: Reply, cycle: bool = False) -> ScriptFn:
    """Replies in order (for one route); raises when exhausted unless ``cycle``."""
    lock = threading.Lock()
    position = [0]

    def script(request: dict, api: str) -> Reply:
        with lock:
            if position[0] >= len(replies):
                if not cycle or not replies:
                    raise RuntimeError(f"sequence exhausted after {len(replies)} replies")
                position[0] = 0
            position[0] += 1
            return replies[position[0] - 1]

    return script


def route(rules: Sequence[tuple[Callable[[RequestView], bool], ScriptLike]],
          default: Optional[ScriptLike] = None) -> ScriptFn:
    """First rule whose predicate holds for the request answers; else ``default`` (else an error)."""
    compiled = [(pred, as_script(s)) for pred, s in rules]
    fallback = as_script(default) if default is not None else None

    def script(request: dict, api: str) -> Reply:
        view = RequestView(request, api)
        for pred, answer in compiled:
            if pred(view):
                return answer(request, api)
        if fallback is None:
            raise RuntimeError(f"no route matched (system={view.system[:80]!r}, last={view.last!r:.120})")
        return fallback(request, api)

    return script


def route_by_system(mapping: Mapping[str, ScriptLike], default: Optional[ScriptLike] = None) -> ScriptFn:
    """Pick the script whose key appears in the system prompt/instructions (e.g. an agent's name or role)."""
    return route([(lambda v, k=key.lower(): k in v.system.lower(), s) for key, s in mapping.items()], default)


def route_by_last_message(on_user: ScriptLike, on_tool_result: ScriptLike,
                          on_other: Optional[ScriptLike] = None) -> ScriptFn:
    """Answer one way to a fresh user turn and another once a tool result came back."""
    return route([(lambda v: v.last_is_tool_result, on_tool_result),
                  (lambda v: v.last.get("role") == "user" or on_other is None, on_user)], on_other)


def tool_then_answer(tool_name: Union[str, Sequence[ToolCall]], args_json: str = "{}",
                     final_text: Union[str, Callable[[RequestView], str]] = "done",
                     **reply_fields: Any) -> ScriptFn:
    """Call a tool (or several, given ToolCalls) on the user's turn; answer ``final_text`` after the results.

    ``final_text`` may be a function of the request (e.g. ``lambda v: v.tool_results[-1]`` to echo the
    tool's output). ``reply_fields`` (usage, token ids, model_version...) go on both replies.
    """
    calls = [ToolCall(tool_name, args_json)] if isinstance(tool_name, str) else list(tool_name)

    def script(request: dict, api: str) -> Reply:
        view = RequestView(request, api)
        if view.last_is_tool_result:
            text = final_text(view) if callable(final_text) else final_text
            return Reply(content=text, **reply_fields)
        return Reply(tool_calls=[ToolCall(c.name, c.arguments, c.id) for c in calls], **reply_fields)

    return script
