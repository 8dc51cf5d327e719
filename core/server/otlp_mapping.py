"""OpenTelemetry spans -> our Span: GenAI semantic conventions, OpenInference and OpenLLMetry.

Pure functions over OTLP protobuf messages (read by field name, so this module imports no
OpenTelemetry package). Three vocabularies describe the same things; each field below takes the
first convention that is present:
- kind: ``openinference.span.kind`` > ``traceloop.span.kind`` > ``gen_ai.operation.name`` > model attrs.
- messages: ``gen_ai.input.messages``/``gen_ai.output.messages`` (JSON parts) > OpenInference
  ``llm.input_messages.N.message.*`` > OpenLLMetry ``gen_ai.prompt.N.*``/``gen_ai.completion.N.*``
  > the older ``gen_ai.content.prompt``/``gen_ai.content.completion`` events.
- rollout: ``agentlightning.rollout_id`` on the span, else on the resource, else ``otel-<trace id>``.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Iterable

from agentlightning.core.tracer import set_attribute
from agentlightning.v1 import spans_pb2

K = spans_pb2
_OPENINFERENCE_KINDS = {"LLM": K.SPAN_KIND_LLM, "TOOL": K.SPAN_KIND_TOOL, "AGENT": K.SPAN_KIND_AGENT,
                        "CHAIN": K.SPAN_KIND_CHAIN, "RETRIEVER": K.SPAN_KIND_RETRIEVER}
_TRACELOOP_KINDS = {"workflow": K.SPAN_KIND_CHAIN, "task": K.SPAN_KIND_CHAIN, "agent": K.SPAN_KIND_AGENT,
                    "tool": K.SPAN_KIND_TOOL}
_GENAI_OPERATIONS = {"chat": K.SPAN_KIND_LLM, "text_completion": K.SPAN_KIND_LLM, "generate_content": K.SPAN_KIND_LLM,
                     "responses": K.SPAN_KIND_LLM, "execute_tool": K.SPAN_KIND_TOOL,
                     "invoke_agent": K.SPAN_KIND_AGENT, "create_agent": K.SPAN_KIND_AGENT}
# Bulk attributes whose content moves into the payload (not copied a second time as attributes).
_MOVED = re.compile(r"^(llm\.(input|output)_messages\.|gen_ai\.(prompt|completion)\.\d|gen_ai\.(input|output)\.messages$"
                    r"|gen_ai\.system_instructions$|llm\.tools\.\d|llm\.request\.functions\.\d)")


def any_value(value: Any) -> Any:
    """OTLP AnyValue -> a Python value."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def attributes(key_values: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in key_values}


def _first(attrs: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return default


def _str(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _indexed(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.0.a.b = 1`` -> ``[{"a.b": 1}]`` (ordered by index; gaps skipped)."""
    found: dict[int, dict[str, Any]] = {}
    start = prefix + "."
    for key, value in attrs.items():
        if key.startswith(start):
            index, _, rest = key[len(start):].partition(".")
            if index.isdigit() and rest:
                found.setdefault(int(index), {})[rest] = value
    return [found[i] for i in sorted(found)]


# -- messages ----------------------------------------------------------------------------------
def _tool_call(target: Any, call_id: Any, name: Any, arguments: Any) -> None:
    target.tool_calls.add(id=_str(call_id), name=_str(name), arguments=_str(arguments))


def _openinference_messages(attrs: dict[str, Any], prefix: str, into: Any) -> None:
    for fields in _indexed(attrs, prefix):
        content = fields.get("message.content")
        if content is None:
            content = "".join(_str(c.get("message_content.text")) for c in _indexed(fields, "message.contents"))
        m = into.add(role=_str(fields.get("message.role")), content=_str(content),
                     tool_call_id=_str(fields.get("message.tool_call_id")), name=_str(fields.get("message.name")))
        for call in _indexed(fields, "message.tool_calls"):
            _tool_call(m, call.get("tool_call.id"), call.get("tool_call.function.name"),
                       call.get("tool_call.function.arguments"))


def _openllmetry_messages(attrs: dict[str, Any], prefix: str, into: Any, finish: list[str]) -> None:
    for fields in _indexed(attrs, prefix):
        m = into.add(role=_str(fields.get("role")), content=_str(fields.get("content")),
                     tool_call_id=_str(fields.get("tool_call_id")), name=_str(fields.get("name")))
        for call in _indexed(fields, "tool_calls"):
            _tool_call(m, call.get("id"), call.get("name"), call.get("arguments"))
        if fields.get("finish_reason"):
            finish.append(_str(fields["finish_reason"]))


def _genai_parts_messages(messages: Any, into: Any, finish: list[str]) -> None:
    """``gen_ai.input.messages`` / ``gen_ai.output.messages``: [{role, parts: [...], finish_reason}]."""
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        m = into.add(role=_str(message.get("role")), name=_str(message.get("name")))
        texts = []
        for part in message.get("parts") or ():
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(_str(part.get("content")))
            elif kind == "tool_call":
                _tool_call(m, part.get("id"), part.get("name"), part.get("arguments"))
            elif kind == "tool_call_response":
                m.tool_call_id = _str(part.get("id"))
                texts.append(_str(part.get("response")))
        m.content = "".join(texts)
        if message.get("finish_reason"):
            finish.append(_str(message["finish_reason"]))


def _openai_messages(messages: Any, into: Any) -> None:
    """OpenAI-format messages (the older ``gen_ai.prompt``/``gen_ai.completion`` event payloads)."""
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(_str(p.get("text")) for p in content if isinstance(p, dict))
        m = into.add(role=_str(message.get("role")), content=_str(content),
                     tool_call_id=_str(message.get("tool_call_id")), name=_str(message.get("name")))
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or call
            _tool_call(m, call.get("id"), fn.get("name"), fn.get("arguments"))


def _tools(attrs: dict[str, Any], llm: Any) -> None:
    definitions = _json(attrs.get("gen_ai.tool.definitions"))
    schemas = [_json(t.get("tool.json_schema")) for t in _indexed(attrs, "llm.tools")]
    for tool in (definitions if isinstance(definitions, list) else []) + schemas:
        if isinstance(tool, dict):
            fn = tool.get("function") or tool
            llm.tools.add(name=_str(fn.get("name")), description=_str(fn.get("description")),
                          parameters_json_schema=_str(fn.get("parameters")) if fn.get("parameters") else "")
    for fn in _indexed(attrs, "llm.request.functions"):
        llm.tools.add(name=_str(fn.get("name")), description=_str(fn.get("description")),
                      parameters_json_schema=_str(fn.get("parameters")))


# -- payloads ----------------------------------------------------------------------------------
def _fill_llm(span: spans_pb2.Span, attrs: dict[str, Any], events: dict[str, dict[str, Any]]) -> None:
    llm = span.llm
    llm.operation = _str(_first(attrs, "gen_ai.operation.name", "llm.request.type", default="chat"))
    llm.request_model = _str(_first(attrs, "gen_ai.request.model", "llm.request.model", "llm.model_name"))
    llm.response_model = _str(_first(attrs, "gen_ai.response.model", "llm.response.model", "llm.model_name"))
    llm.response_id = _str(_first(attrs, "gen_ai.response.id"))
    finish: list[str] = []
    if "gen_ai.input.messages" in attrs or "gen_ai.system_instructions" in attrs:
        instructions = _json(attrs.get("gen_ai.system_instructions"))
        if isinstance(instructions, list):
            _genai_parts_messages([{"role": "system", "parts": instructions}], llm.request_messages, [])
        _genai_parts_messages(_json(attrs.get("gen_ai.input.messages")), llm.request_messages, [])
    elif any(k.startswith("llm.input_messages.") for k in attrs):
        _openinference_messages(attrs, "llm.input_messages", llm.request_messages)
    elif any(k.startswith("gen_ai.prompt.") for k in attrs):
        _openllmetry_messages(attrs, "gen_ai.prompt", llm.request_messages, [])
    elif "gen_ai.content.prompt" in events:
        _openai_messages(_json(events["gen_ai.content.prompt"].get("gen_ai.prompt")), llm.request_messages)
    if "gen_ai.output.messages" in attrs:
        _genai_parts_messages(_json(attrs["gen_ai.output.messages"]), llm.response_messages, finish)
    elif any(k.startswith("llm.output_messages.") for k in attrs):
        _openinference_messages(attrs, "llm.output_messages", llm.response_messages)
    elif any(k.startswith("gen_ai.completion.") for k in attrs):
        _openllmetry_messages(attrs, "gen_ai.completion", llm.response_messages, finish)
    elif "gen_ai.content.completion" in events:
        _openai_messages(_json(events["gen_ai.content.completion"].get("gen_ai.completion")), llm.response_messages)
    reasons = attrs.get("gen_ai.response.finish_reasons")
    llm.finish_reasons.extend([_str(r) for r in reasons] if isinstance(reasons, list) else finish)
    _tools(attrs, llm)
    usage = llm.usage
    usage.input_tokens = int(_first(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                                    "llm.token_count.prompt", default=0))
    usage.output_tokens = int(_first(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                                     "llm.token_count.completion", default=0))
    usage.total_tokens = int(_first(attrs, "llm.usage.total_tokens", "llm.token_count.total",
                                    default=usage.input_tokens + usage.output_tokens))
    params = _json(attrs.get("llm.invocation_parameters"))
    params = params if isinstance(params, dict) else {}
    sampling = llm.sampling
    for field, keys, cast in (("temperature", ("gen_ai.request.temperature",), float),
                              ("top_p", ("gen_ai.request.top_p",), float),
                              ("max_tokens", ("gen_ai.request.max_tokens",), int),
                              ("seed", ("gen_ai.request.seed",), int),
                              ("n", ("gen_ai.request.choice.count",), int)):
        value = _first(attrs, *keys)
        if value is None:
            value = params.get(field, params.get("max_completion_tokens") if field == "max_tokens" else None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            setattr(sampling, field, cast(value))
    stop = _first(attrs, "gen_ai.request.stop_sequences", default=params.get("stop"))
    sampling.stop.extend([_str(s) for s in stop] if isinstance(stop, list) else [_str(stop)] if stop else [])
    llm.streamed = bool(_first(attrs, "llm.is_streaming", "gen_ai.request.stream", default=False))
    if _first(attrs, "gen_ai.output.type") == "json":
        llm.response_format = "json_object"


def _fill_tool(span: spans_pb2.Span, attrs: dict[str, Any], traceloop_name: str) -> None:
    tool = span.tool
    tool.name = _str(_first(attrs, "gen_ai.tool.name", "tool.name", default=traceloop_name)
                     or span.name.removeprefix("execute_tool ").strip())
    tool.call_id = _str(_first(attrs, "gen_ai.tool.call.id", "tool_call.id"))
    tool.arguments = _str(_first(attrs, "gen_ai.tool.call.arguments", "input.value", "traceloop.entity.input"))
    tool.result = _str(_first(attrs, "gen_ai.tool.call.result", "output.value", "traceloop.entity.output"))
    tool.parameters_json_schema = _str(_first(attrs, "tool.parameters"))
    tool.arguments_valid = True
    if tool.arguments:
        try:
            json.loads(tool.arguments)
        except ValueError:
            tool.arguments_valid = False  # a signal for AIR; the tool may still have run fine
    if span.status.code == K.STATUS_CODE_ERROR:
        timeout = "timeout" in (span.status.error_type + span.status.message).lower()
        tool.outcome = K.TOOL_OUTCOME_TIMEOUT if timeout else K.TOOL_OUTCOME_ERROR
        tool.error_message = span.status.message
    else:
        tool.outcome = K.TOOL_OUTCOME_OK


def span_kind(attrs: dict[str, Any]) -> int:
    oi = attrs.get("openinference.span.kind")
    if isinstance(oi, str):
        return _OPENINFERENCE_KINDS.get(oi.upper(), K.SPAN_KIND_OTHER)
    tl = attrs.get("traceloop.span.kind")
    if isinstance(tl, str) and tl in _TRACELOOP_KINDS:
        return _TRACELOOP_KINDS[tl]
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str):
        return _GENAI_OPERATIONS.get(op, K.SPAN_KIND_OTHER)
    if any(k in attrs for k in ("gen_ai.request.model", "llm.request.type", "gen_ai.system")):
        return K.SPAN_KIND_LLM
    return K.SPAN_KIND_OTHER


def map_span(otel: Any, resource_attrs: dict[str, Any], scope_name: str = "") -> spans_pb2.Span:
    """One OTLP ``Span`` (with its resource's attributes) as our Span; the caller validates it."""
    attrs = attributes(otel.attributes)
    events = {e.name: attributes(e.attributes) for e in otel.events}
    span = spans_pb2.Span(
        schema_version=K.SCHEMA_VERSION_1, trace_id=otel.trace_id, span_id=otel.span_id,
        parent_span_id=otel.parent_span_id, name=otel.name,
        start_time_unix_nano=otel.start_time_unix_nano, end_time_unix_nano=otel.end_time_unix_nano)
    span.rollout_id = _str(_first(attrs, "agentlightning.rollout_id")
                           or _first(resource_attrs, "agentlightning.rollout_id") or f"otel-{otel.trace_id.hex()}")
    span.attempt_id = _str(_first(attrs, "agentlightning.attempt_id") or _first(resource_attrs, "agentlightning.attempt_id"))
    service = _str(_first(resource_attrs, "service.name", default="unknown"))
    instance = _str(_first(resource_attrs, "service.instance.id"))
    span.producer_id = f"otlp:{service}" + (f":{instance}" if instance else "")
    exception = events.get("exception", {})
    span.status.code = otel.status.code if otel.status.code in (1, 2) else K.STATUS_CODE_UNSET
    span.status.message = otel.status.message or _str(exception.get("exception.message"))
    span.status.error_type = _str(_first(attrs, "error.type") or exception.get("exception.type"))
    span.kind = span_kind(attrs)
    traceloop_name = _str(attrs.get("traceloop.entity.name"))
    span.agent_name = _str(_first(attrs, "gen_ai.agent.name", "agent.name", "agentlightning.agent_name")
                           or (traceloop_name if span.kind == K.SPAN_KIND_AGENT else "")
                           or (span.name.removeprefix("invoke_agent ").strip() if span.kind == K.SPAN_KIND_AGENT else ""))
    if span.kind == K.SPAN_KIND_LLM:
        _fill_llm(span, attrs, events)
    elif span.kind == K.SPAN_KIND_TOOL:
        _fill_tool(span, attrs, traceloop_name if attrs.get("traceloop.span.kind") == "tool" else "")
    for key, value in attrs.items():
        if not _MOVED.match(key):
            set_attribute(span.attributes, key, "NaN" if isinstance(value, float) and math.isnan(value) else value)
    if "service.name" in resource_attrs and "service.name" not in attrs:
        set_attribute(span.attributes, "service.name", service)
    if scope_name:
        set_attribute(span.attributes, "otel.scope.name", scope_name)
    return span


def inherit_agent_names(spans: list[spans_pb2.Span]) -> None:
    """Spans without an agent name take their nearest ancestor's (within the same request)."""
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    for span in spans:
        seen = 0
        parent = by_id.get((span.trace_id, span.parent_span_id))
        while not span.agent_name and parent is not None and seen < 64:
            span.agent_name = parent.agent_name
            parent = by_id.get((parent.trace_id, parent.parent_span_id))
            seen += 1
