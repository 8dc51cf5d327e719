"""Build realistic spans for tests and benchmarks without going through an integration."""
from __future__ import annotations

import time

from agentlightning.core import ids
from agentlightning.v1 import spans_pb2


def llm_span(rollout_id: str = "r1", trace_id: bytes | None = None, parent: bytes = b"", seq: int = 1,
             text_bytes: int = 1000, agent: str = "writer") -> spans_pb2.Span:
    now = time.time_ns()
    span = spans_pb2.Span(
        schema_version=spans_pb2.SCHEMA_VERSION_1, trace_id=trace_id or ids.new_trace_id(),
        span_id=ids.new_span_id(), parent_span_id=parent, rollout_id=rollout_id, attempt_id=f"{rollout_id}:1",
        producer_id="test", sequence=seq, name="chat", kind=spans_pb2.SPAN_KIND_LLM, agent_name=agent,
        start_time_unix_nano=now, end_time_unix_nano=now + 1000,
        status=spans_pb2.Status(code=spans_pb2.STATUS_CODE_OK))
    body = ("What is the total revenue per region for 2024? " * 40)[: text_bytes // 2]
    span.llm.request_model = "smollm2-135m-instruct"
    span.llm.request_messages.add(role="user", content=body)
    span.llm.response_messages.add(role="assistant", content=body)
    span.llm.usage.input_tokens = 120
    span.llm.usage.output_tokens = 80
    return span
