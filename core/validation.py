"""Server-side span validation: each rule names the field it checks, so a client can fix its data."""
from __future__ import annotations

import functools
import math
import re
from typing import Optional, Union

from agentlightning.core.store.base import SpanRecord
from agentlightning.v1 import spans_pb2

MIN_TIME_NS = 946_684_800 * 10**9     # 2000-01-01
MAX_TIME_NS = 7_258_118_400 * 10**9   # 2200-01-01
MAX_ID_CHARS = 256
MAX_NAME_CHARS = 1024
MAX_ATTRIBUTE_DEPTH = 8
MAX_ATTRIBUTES = 10_000

_CONTROL_CHARS = re.compile(r"[\x00-\x1f]")
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)
_STORABLE_KINDS = frozenset(spans_pb2.SpanKind.values()) - {spans_pb2.SPAN_KIND_UNSPECIFIED}
_OUTCOMES = frozenset(spans_pb2.ToolOutcome.values())
_SOURCES = frozenset(spans_pb2.RewardSource.values())
_STATUS_CODES = frozenset(spans_pb2.StatusCode.values())
_PROVENANCE = frozenset(spans_pb2.TokenProvenance.values())
_PAYLOAD_KIND = {
    "llm": spans_pb2.SPAN_KIND_LLM,
    "tool": spans_pb2.SPAN_KIND_TOOL,
    "reward": spans_pb2.SPAN_KIND_REWARD,
    "retriever": spans_pb2.SPAN_KIND_RETRIEVER,
}


def _attribute_problem(value: spans_pb2.AttributeValue, depth: int, budget: list[int]) -> Optional[str]:
    budget[0] -= 1
    if budget[0] < 0:
        return f"more than {MAX_ATTRIBUTES} attribute values"
    if depth > MAX_ATTRIBUTE_DEPTH:
        return f"attributes nested deeper than {MAX_ATTRIBUTE_DEPTH} levels"
    which = value.WhichOneof("value")
    if which == "list_value":
        for item in value.list_value.values:
            problem = _attribute_problem(item, depth + 1, budget)
            if problem:
                return problem
    elif which == "map_value":
        for item in value.map_value.values.values():
            problem = _attribute_problem(item, depth + 1, budget)
            if problem:
                return problem
    elif which == "double_value" and math.isnan(value.double_value):
        return "attribute double value is NaN"
    return None


def check_id(value: str, field: str, required: bool) -> Optional[str]:
    if required and not value:
        return f"{field} is empty"
    if len(value) > MAX_ID_CHARS:
        return f"{field} longer than {MAX_ID_CHARS} characters"
    if _CONTROL_CHARS.search(value):
        return f"{field} contains control characters"
    return None


def _ids_problem(rollout_id: str, attempt_id: str, producer_id: str) -> Optional[str]:
    for field, value, required in (("rollout_id", rollout_id, True), ("attempt_id", attempt_id, False),
                                   ("producer_id", producer_id, False)):
        problem = check_id(value, field, required)
        if problem:
            return problem
    return None


# The spans of a batch mostly share one rollout, attempt and producer: check each triple once.
_cached_ids_problem = functools.lru_cache(maxsize=4096)(_ids_problem)


def validate_span(span: spans_pb2.Span) -> Optional[str]:
    """None when the span may be stored, else a reason naming the offending field."""
    checked = validated_record(span, b"")
    return checked if isinstance(checked, str) else None


def validated_record(span: spans_pb2.Span, data: bytes) -> Union[SpanRecord, str]:
    """The span's store record (``data``: its serialized bytes), or a reason naming the offending field.

    One pass that reads each protobuf field once: the ingest hot path (validation and record building
    used to read the identity fields twice, and every read crosses into the protobuf runtime).
    """
    trace_id, span_id = span.trace_id, span.span_id
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
        return f"trace_id must be 16 non-zero bytes (got {len(trace_id)} bytes)"
    if len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
        return f"span_id must be 8 non-zero bytes (got {len(span_id)} bytes)"
    parent_id = span.parent_span_id
    if parent_id and (len(parent_id) != 8 or parent_id == span_id):
        return (f"parent_span_id must be empty or 8 bytes other than span_id "
                f"(got {len(parent_id)} bytes{', equal to span_id' if parent_id == span_id else ''})")
    rollout_id, attempt_id, producer_id = span.rollout_id, span.attempt_id, span.producer_id
    if len(rollout_id) + len(attempt_id) + len(producer_id) <= 3 * MAX_ID_CHARS:  # bounds the cache's memory
        problem = _cached_ids_problem(rollout_id, attempt_id, producer_id)
    else:
        problem = _ids_problem(rollout_id, attempt_id, producer_id)
    if problem:
        return problem
    if len(span.name) > MAX_NAME_CHARS or len(span.agent_name) > MAX_NAME_CHARS:
        return f"name or agent_name longer than {MAX_NAME_CHARS} characters"
    kind = span.kind
    if kind not in _STORABLE_KINDS:
        return f"kind {kind} is not a known SpanKind"
    if span.schema_version != spans_pb2.SCHEMA_VERSION_1:
        return f"schema_version {span.schema_version} is not supported (this server reads 1)"
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if not MIN_TIME_NS <= start <= MAX_TIME_NS:
        return f"start_time_unix_nano {start} is outside 2000..2200"
    if not MIN_TIME_NS <= end <= MAX_TIME_NS:
        return f"end_time_unix_nano {end} is outside 2000..2200"
    if end < start:
        return "end_time_unix_nano is before start_time_unix_nano"
    if span.status.code not in _STATUS_CODES:
        return f"status.code {span.status.code} is not a known StatusCode"
    payload = span.WhichOneof("payload")
    if payload is not None:
        problem = _payload_problem(span, payload, kind)
        if problem:
            return problem
    elif kind == spans_pb2.SPAN_KIND_REWARD:
        return "a REWARD span needs a reward payload"
    if span.attributes:
        budget = [MAX_ATTRIBUTES]
        for value in span.attributes.values():
            problem = _attribute_problem(value, 1, budget)
            if problem:
                return problem
    return SpanRecord(trace_id, span_id, rollout_id, attempt_id, kind, start, producer_id, span.sequence, data)


def _payload_problem(span: spans_pb2.Span, payload: str, kind: int) -> Optional[str]:
    if _PAYLOAD_KIND[payload] != kind:
        return f"payload '{payload}' does not match kind {spans_pb2.SpanKind.Name(kind)}"
    if payload == "llm":
        llm = span.llm
        if llm.token_provenance not in _PROVENANCE:
            return f"llm.token_provenance {llm.token_provenance} is not a known TokenProvenance"
        logprobs = llm.completion_logprobs
        completion_ids = llm.completion_token_ids
        if logprobs:
            if len(logprobs) != len(completion_ids):
                return (f"llm.completion_logprobs has {len(logprobs)} entries for "
                        f"{len(completion_ids)} completion tokens")
            if max(logprobs) > 0 or math.isnan(sum(logprobs)):
                return "llm.completion_logprobs must be <= 0 and not NaN"
        prompt_ids = llm.prompt_token_ids
        if (prompt_ids and min(prompt_ids) < 0) or (completion_ids and min(completion_ids) < 0):
            return "llm token ids must be non-negative"
    elif payload == "reward":
        if not math.isfinite(span.reward.value):
            return f"reward.value must be finite (got {span.reward.value})"
        if span.reward.source not in _SOURCES:
            return f"reward.source {span.reward.source} is not a known RewardSource"
    elif payload == "tool":
        if span.tool.outcome not in _OUTCOMES:
            return f"tool.outcome {span.tool.outcome} is not a known ToolOutcome"
    return None
