"""Server-side span validation: each rule names its field; a valid span yields its store record."""
import pytest

from agentlightning.core.store import SpanRecord
from agentlightning.core.validation import MAX_ID_CHARS, validate_span, validated_record
from agentlightning.v1 import spans_pb2
from spans_factory import llm_span


def test_a_valid_span_yields_its_record():
    span = llm_span("r1", seq=7)
    record = validated_record(span, b"raw")
    assert isinstance(record, SpanRecord)
    assert record == SpanRecord(span.trace_id, span.span_id, "r1", "r1:1", spans_pb2.SPAN_KIND_LLM,
                                span.start_time_unix_nano, "test", 7, b"raw")
    assert validate_span(span) is None


@pytest.mark.parametrize("change, reason", [
    (lambda s: setattr(s, "rollout_id", ""), "rollout_id is empty"),
    (lambda s: setattr(s, "rollout_id", "r\x01"), "rollout_id contains control characters"),
    (lambda s: setattr(s, "attempt_id", "a\n"), "attempt_id contains control characters"),
    (lambda s: setattr(s, "producer_id", "p" * (MAX_ID_CHARS + 1)), "producer_id longer than"),
    (lambda s: setattr(s, "rollout_id", "r" * (4 * MAX_ID_CHARS)), "rollout_id longer than"),
    (lambda s: setattr(s, "trace_id", bytes(16)), "trace_id must be 16 non-zero bytes"),
    (lambda s: setattr(s, "parent_span_id", s.span_id), "equal to span_id"),
    (lambda s: setattr(s, "kind", spans_pb2.SPAN_KIND_UNSPECIFIED), "is not a known SpanKind"),
    (lambda s: setattr(s, "end_time_unix_nano", s.start_time_unix_nano - 1), "before start_time"),
    (lambda s: setattr(s.status, "code", 99), "status.code 99"),
    (lambda s: setattr(s, "kind", spans_pb2.SPAN_KIND_TOOL), "payload 'llm' does not match kind"),
    (lambda s: (s.ClearField("llm"), setattr(s, "kind", spans_pb2.SPAN_KIND_REWARD)), "needs a reward payload"),
    (lambda s: s.llm.completion_logprobs.append(0.5), "completion_logprobs has 1 entries for 0"),
])
def test_each_rule_names_its_field(change, reason):
    for _ in range(2):  # the second time through the id cache
        span = llm_span("r1")
        change(span)
        assert reason in validated_record(span, b"")
        assert reason in validate_span(span)
