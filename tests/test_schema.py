"""The schema: generated code is current, spans round-trip, enums match the Python mirrors."""
import subprocess
import sys
from pathlib import Path

from agentlightning.core.kinds import RewardSource, SpanKind, ToolOutcome
from agentlightning.v1 import spans_pb2, traces_pb2
from spans_factory import llm_span

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_not_stale():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_span_round_trip_keeps_every_field():
    span = llm_span()
    span.llm.prompt_token_ids.extend([1, 2, 3])
    span.llm.completion_token_ids.extend([4, 5])
    span.llm.completion_logprobs.extend([-0.5, -0.25])
    span.llm.token_provenance = spans_pb2.TOKEN_PROVENANCE_EXACT
    span.llm.policy_version = "v3"
    span.llm.response_messages[0].tool_calls.add(id="call_1", name="calc", arguments='{"x": 1}')
    span.attributes["nested"].map_value.values["k"].list_value.values.add(int_value=7)
    data = span.SerializeToString()
    back = spans_pb2.Span.FromString(data)
    assert back == span
    assert list(back.llm.completion_logprobs) == [-0.5, -0.25]
    assert back.attributes["nested"].map_value.values["k"].list_value.values[0].int_value == 7
    # A tool span and a reward span.
    tool = spans_pb2.Span(kind=spans_pb2.SPAN_KIND_TOOL)
    tool.tool.name, tool.tool.arguments, tool.tool.outcome = "calc", "{bad", spans_pb2.TOOL_OUTCOME_INVALID_ARGUMENTS
    assert spans_pb2.Span.FromString(tool.SerializeToString()).tool.outcome == ToolOutcome.INVALID_ARGUMENTS
    reward = spans_pb2.Span(kind=spans_pb2.SPAN_KIND_REWARD)
    reward.reward.value, reward.reward.source = 0.5, spans_pb2.REWARD_SOURCE_USER
    assert spans_pb2.Span.FromString(reward.SerializeToString()).reward.source == RewardSource.USER


def test_python_enums_mirror_the_schema():
    assert {k.name for k in SpanKind} == {
        n.removeprefix("SPAN_KIND_") for n in spans_pb2.SpanKind.keys() if n != "SPAN_KIND_UNSPECIFIED"}
    for kind in SpanKind:
        assert spans_pb2.SpanKind.Name(kind) == f"SPAN_KIND_{kind.name}"


def test_hand_framed_export_request_equals_protobuf_encoding():
    from agentlightning.core.wire import frame_span, split_export_request

    spans = [llm_span(seq=i, text_bytes=50 * i) for i in range(1, 6)]
    framed = b"".join(frame_span(s.SerializeToString()) for s in spans)
    assert framed == traces_pb2.ExportRequest(spans=spans).SerializeToString()
    assert [spans_pb2.Span.FromString(c) for c in split_export_request(framed)] == spans
