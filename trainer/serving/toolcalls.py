"""Turn a model's generated text into OpenAI ``tool_calls`` (Hermes / Qwen / SmolLM2 style), leniently.

Accepted (only when the request offered tools):

* ``<tool_call>{"name": "f", "arguments": {...}}</tool_call>`` blocks, any number, anywhere in the text;
  a final block without its closing tag counts too (the model ran out of tokens or stopped at ``</``).
* The same object without the tags, when it is the whole reply (a JSON object, or a list of them) and
  its name is one of the offered tools.
* Inside the object: ``arguments`` or ``parameters``/``args``; an object (re-serialised as JSON) or a string
  (passed through as-is); ``{"function": {...}}`` wrappers; single-quoted Python-literal dicts.

A block whose JSON is broken but whose name can still be read becomes a call whose ``arguments`` is the raw
text that followed ``"arguments":`` — deliberately: the agent's tool layer then reports invalid arguments,
which is a signal RL should see (AIR penalises it), rather than the call silently turning into prose.
Text outside the blocks stays the message content (``None`` when nothing is left).
"""
from __future__ import annotations

import ast
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Optional

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_NAME = re.compile(r"""["']name["']\s*:\s*["']([^"']+)["']""")
_ARGS = re.compile(r"""["'](?:arguments|parameters|args)["']\s*:\s*(.*)$""", re.DOTALL)


@dataclass
class ParsedCall:
    name: str
    arguments: str  # raw JSON text as OpenAI sends it (may be invalid JSON on purpose)
    id: str


def parse_tool_calls(text: str, tool_names: Iterable[str] = ()) -> tuple[Optional[str], list[ParsedCall]]:
    """(content, calls) from generated text. With no calls found, content is the text unchanged."""
    names = set(tool_names)
    calls: list[ParsedCall] = []
    if OPEN in text:
        for payload in _BLOCK.findall(text):
            calls.extend(_calls_from_payload(payload, names, require_known=False))
        if calls:
            rest = _BLOCK.sub("", text).strip()
            return (rest or None), calls
        return text, []
    stripped = _FENCE.sub("", text.strip())
    if names and stripped[:1] in ("{", "["):
        value = _loads(stripped)
        if value is not None:
            calls = _calls_from_value(value, names, require_known=True)
            if calls:
                return None, calls
    return text, []


def _calls_from_payload(payload: str, names: set[str], require_known: bool) -> list[ParsedCall]:
    value = _loads(_FENCE.sub("", payload.strip()))
    if value is not None:
        return _calls_from_value(value, names, require_known)
    name = _NAME.search(payload)
    if not name:
        return []
    args = _ARGS.search(payload)
    raw = args.group(1).strip() if args else "{}"
    if raw.endswith("}") and raw.count("}") > raw.count("{"):
        raw = raw[:-1].rstrip()  # the outer object's closing brace
    return [ParsedCall(name.group(1), raw, _new_id())]


def _calls_from_value(value: Any, names: set[str], require_known: bool) -> list[ParsedCall]:
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict):
            continue
        fn = item.get("function") if isinstance(item.get("function"), dict) else item
        name = fn.get("name")
        if not isinstance(name, str) or not name or (require_known and name not in names):
            continue
        args: Any = next((fn[k] for k in ("arguments", "parameters", "args") if k in fn), {})
        arguments = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        calls.append(ParsedCall(name, arguments, str(item.get("id") or _new_id())))
    return calls


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None  # TypeError: e.g. ``{{"a": 1}}`` is a set of a dict to Python


def partial_suffix(text: str, marker: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``marker``."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0


def _new_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]
