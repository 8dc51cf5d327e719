"""Client -> gRPC -> SQLite: trees, rewards, idempotent retries, partial success."""
import grpc
import pytest

from agentlightning.core.kinds import SpanKind, ToolOutcome
from agentlightning.core.span_tree import build_tree, format_tree, walk
from agentlightning.core.store.sqlite import SqliteStore
from agentlightning.core.tracer import Tracer
from agentlightning.core import api
from agentlightning.v1 import spans_pb2, traces_pb2, traces_pb2_grpc
from spans_factory import llm_span


def _export(address, spans):
    with grpc.insecure_channel(address) as channel:
        return traces_pb2_grpc.TraceServiceStub(channel).Export(traces_pb2.ExportRequest(spans=spans), timeout=10)


def test_multi_level_tree_and_rewards_are_stored(tracer: Tracer, client, db_path):
    from agentlightning.core.context import new_rollout_context, use_rollout

    context = new_rollout_context("rollout-tree", group_id="g1")
    with use_rollout(context):
        with tracer.span("agent", SpanKind.AGENT, agent_name="writer"):
            with tracer.span("chat", SpanKind.LLM) as llm:
                llm.proto.llm.request_model = "m"
                llm.proto.llm.usage.input_tokens = 12
            with tracer.span("calc", SpanKind.TOOL) as tool:
                tool.proto.tool.name = "calc"
                tool.proto.tool.outcome = ToolOutcome.OK
                with tracer.span("inner", SpanKind.OTHER):
                    pass
            tracer.emit_reward(0.25, name="format", primary=False)
            tracer.emit_reward(1.0, name="correct")
    assert tracer.sink.flush(10)
    spans = client.query_spans("rollout-tree")
    assert len(spans) == 6
    roots = build_tree(spans)
    assert [r.span.name for r in roots] == ["agent"]
    order = [(n.span.name, n.span.agent_name) for n in walk(roots)]
    assert order == [("agent", "writer"), ("chat", "writer"), ("calc", "writer"), ("inner", "writer"),
                     ("format", "writer"), ("correct", "writer")]
    rewards = {s.reward.name: (s.reward.value, s.reward.primary) for s in spans if s.kind == SpanKind.REWARD}
    assert rewards == {"format": (0.25, False), "correct": (1.0, True)}
    assert all(s.attempt_id == context.attempt_id and s.trace_id == context.trace_id for s in spans)
    assert "TOOL calc" in format_tree(roots)
    # The same data is in the SQLite file itself.
    store = SqliteStore(db_path)
    assert len(store.get_spans("rollout-tree")) == 6
    store.close()


def test_retried_batch_stores_nothing_twice(lightning_server, client):
    spans = [llm_span("rollout-retry", seq=i) for i in range(20)]
    first = _export(lightning_server.address, spans)
    assert (first.accepted, first.duplicates, first.rejected) == (20, 0, 0)
    second = _export(lightning_server.address, spans[5:] + [llm_span("rollout-retry", seq=99)])
    assert (second.accepted, second.duplicates, second.rejected) == (1, 15, 0)
    assert {r.code for r in second.results} == {traces_pb2.SPAN_RESULT_CODE_DUPLICATE}
    assert len(client.query_spans("rollout-retry")) == 21


def test_duplicates_inside_one_batch_are_stored_once(lightning_server, client):
    span = llm_span("rollout-dup")
    response = _export(lightning_server.address, [span, span, span])
    assert (response.accepted, response.duplicates) == (1, 2)
    assert len(client.query_spans("rollout-dup")) == 1


def test_invalid_span_is_named_and_the_others_are_kept(lightning_server, client):
    good = [llm_span("rollout-mixed", seq=i) for i in range(3)]
    bad = llm_span("rollout-mixed", seq=9)
    bad.span_id = b"\x01\x02"  # wrong length
    nan_reward = spans_pb2.Span()
    nan_reward.CopyFrom(good[0])
    nan_reward.span_id = b"\x09" * 8
    nan_reward.ClearField("llm")
    nan_reward.kind = spans_pb2.SPAN_KIND_REWARD
    nan_reward.reward.value = float("nan")
    response = _export(lightning_server.address, [good[0], bad, good[1], nan_reward, good[2]])
    assert (response.accepted, response.rejected) == (3, 2)
    reasons = {r.index: r.reason for r in response.results}
    assert set(reasons) == {1, 3}
    assert "span_id must be 8 non-zero bytes" in reasons[1]
    assert "reward.value must be finite" in reasons[3]
    assert len(client.query_spans("rollout-mixed")) == 3


def test_undecodable_span_is_rejected_alone(lightning_server, client):
    from agentlightning.core.wire import frame_span

    good = llm_span("rollout-garbage")
    payload = frame_span(good.SerializeToString()) + frame_span(b"\xff\xff\xff")
    with grpc.insecure_channel(lightning_server.address) as channel:
        export = channel.unary_unary("/agentlightning.v1.TraceService/Export", request_serializer=None,
                                     response_deserializer=traces_pb2.ExportResponse.FromString)
        response = export(payload, timeout=10)
        assert (response.accepted, response.rejected) == (1, 1)
        assert "not a valid Span message" in response.results[0].reason
        with pytest.raises(grpc.RpcError) as err:
            export(b"\x0a\xff\xff\xff\x0f", timeout=10)  # framing claims more bytes than sent
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(client.query_spans("rollout-garbage")) == 1


def test_spans_outside_any_rollout_get_a_generated_live_rollout(tracer: Tracer, client):
    with tracer.span("request", SpanKind.AGENT, agent_name="bot") as root:
        with tracer.span("chat", SpanKind.LLM):
            pass
    assert tracer.sink.flush(10)
    rollout_id = root.proto.rollout_id
    assert rollout_id.startswith("ro-")
    assert [s.name for s in client.query_spans(rollout_id)] == ["chat", "request"]


def test_rollout_helper_and_reward_decorator(global_tracer, client):
    @api.reward(name="score")
    def grade(answer: str) -> float:
        return 1.0 if answer == "42" else 0.0

    with api.rollout("rollout-api", agent_name="solver", final_reward=0.5):
        with api.span("think", SpanKind.LLM):
            pass
        assert grade("42") == 1.0
    assert global_tracer.sink.flush(10)
    spans = client.query_spans("rollout-api")
    rewards = sorted((s.reward.name, s.reward.value) for s in spans if s.kind == SpanKind.REWARD)
    assert rewards == [("final", 0.5), ("score", 1.0)]
    assert {s.agent_name for s in spans} == {"solver"}


def test_joins_an_active_opentelemetry_trace(tracer: Tracer, client):
    from opentelemetry.sdk.trace import TracerProvider

    from agentlightning.core.context import new_rollout_context, use_rollout

    otel = TracerProvider().get_tracer("user-code")
    with otel.start_as_current_span("user-request") as user_span:
        context = new_rollout_context("rollout-otel")
        with use_rollout(context):
            with tracer.span("chat", SpanKind.LLM):
                pass
    assert tracer.sink.flush(10)
    (span,) = client.query_spans("rollout-otel")
    user_ctx = user_span.get_span_context()
    assert span.trace_id == user_ctx.trace_id.to_bytes(16, "big")
    assert span.parent_span_id == user_ctx.span_id.to_bytes(8, "big")
