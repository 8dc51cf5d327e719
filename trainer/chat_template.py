"""A ChatML chat template that renders tools (Hermes/Qwen style) for models whose own template does not.

SmolLM2's template (and the one in its GGUF) ignores ``tools`` and chokes on assistant messages without
content, so an agent that offers tools would silently get a prompt without them. We install this template
instead: without tools it renders exactly what SmolLM2's own template renders (same default system
prompt), with tools it appends the tool signatures to the system message and tells the model to answer
with ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks, which
:mod:`agentlightning.trainer.serving.toolcalls` parses back into OpenAI ``tool_calls``.

History rendering: an assistant message's ``tool_calls`` become ``<tool_call>`` blocks after its content (an
OpenAI ``arguments`` string is written as is, an object as JSON);
consecutive ``tool`` messages become one ``user`` turn of ``<tool_response>`` blocks (as Qwen does, since
small ChatML models never saw a ``tool`` role).
"""
from __future__ import annotations

import re
from typing import Optional

SMOLLM2_DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
# Bumped whenever the rendering changes, so templates saved by an older version (model cache,
# checkpoints) are recognised and replaced (v1 double-encoded the OpenAI ``arguments`` string).
TEMPLATE_MARKER = "agentlightning chatml-tools template v2"
_OURS = "You may call one or more functions to assist with the user query."
_DEFAULT_SYSTEM = re.compile(r"set default_system = (none|'((?:[^'\\]|\\.)*)')")

_TEMPLATE = r"""{#- __MARKER__ -#}
{%- set default_system = __DEFAULT_SYSTEM__ -%}
{%- if messages and messages[0]['role'] == 'system' -%}
{%- set system = messages[0]['content'] if messages[0]['content'] is string else '' -%}
{%- set rest = messages[1:] -%}
{%- else -%}
{%- set system = default_system -%}
{%- set rest = messages -%}
{%- endif -%}
{%- if tools -%}
{%- set ns = namespace(text=(system ~ '\n\n' if system else '') ~ '# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>') -%}
{%- for tool in tools -%}
{%- set ns.text = ns.text ~ '\n' ~ (tool | tojson) -%}
{%- endfor -%}
{%- set system = ns.text ~ '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>' -%}
{%- endif -%}
{%- if system is not none -%}
{{- '<|im_start|>system\n' ~ system ~ '<|im_end|>\n' -}}
{%- endif -%}
{%- for message in rest -%}
{%- set content = message['content'] if message['content'] is string else '' -%}
{%- if message['role'] == 'tool' -%}
{%- if loop.first or loop.previtem['role'] != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}
{{- '\n<tool_response>\n' ~ content ~ '\n</tool_response>' -}}
{%- if loop.last or loop.nextitem['role'] != 'tool' -%}{{- '<|im_end|>\n' -}}{%- endif -%}
{%- elif message['role'] == 'assistant' and message.get('tool_calls') -%}
{{- '<|im_start|>assistant\n' ~ content -}}
{%- for call in message['tool_calls'] -%}
{%- set fn = call['function'] if call.get('function') else call -%}
{%- if content or not loop.first -%}{{- '\n' -}}{%- endif -%}
{%- set args = fn['arguments'] if fn['arguments'] is string else (fn['arguments'] | tojson) -%}
{{- '<tool_call>\n{"name": ' ~ (fn['name'] | tojson) ~ ', "arguments": ' ~ args ~ '}\n</tool_call>' -}}
{%- endfor -%}
{{- '<|im_end|>\n' -}}
{%- else -%}
{{- '<|im_start|>' ~ message['role'] ~ '\n' ~ content ~ '<|im_end|>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- endif -%}"""


def chatml_tools_template(default_system: str | None = SMOLLM2_DEFAULT_SYSTEM) -> str:
    """The template text; ``default_system`` is used when the conversation has no system message
    (``None``: no system turn at all)."""
    literal = "none" if default_system is None else _jinja_string(default_system)
    return _TEMPLATE.replace("__DEFAULT_SYSTEM__", literal).replace("__MARKER__", TEMPLATE_MARKER)


def is_outdated_template(template: Optional[str]) -> bool:
    """Whether ``template`` is one of ours from an older version (it must be replaced, not kept)."""
    return bool(template) and _OURS in template and TEMPLATE_MARKER not in template


def default_system_of(template: str) -> Optional[str]:
    """The default system prompt written into one of our templates (``None``: no system turn)."""
    found = _DEFAULT_SYSTEM.search(template)
    if found is None or found.group(1) == "none":
        return None
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), found.group(2))


def template_renders_tools(template: str | None) -> bool:
    """Whether a chat template looks at ``tools`` at all (if not, tools would silently vanish)."""
    return bool(template) and "tools" in template


def _jinja_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"
