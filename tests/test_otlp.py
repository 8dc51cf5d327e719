"""OTLP receiver: spans sent by the OpenTelemetry SDK's own OTLP/gRPC exporter come back as our
LLM/TOOL/AGENT/CHAIN spans, for the GenAI semantic conventions, OpenInference and OpenLLMetry."""
from __future__ import annotations

import json
from typing import Iterator

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from agentlightning.core.auth import hash_token, new_token
from agentlightning.core.client import LightningClient
from agentlightning.core.server import LightningServer, ServerConfig
from agentlightning.core.store.sqlite import SqliteStore
from agentlightning.v1 import spans_pb2

K = spans_pb2
OTLP_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def otel(lightning_server) -> Iterator[TracerProvider]:
    """A private TracerProvider exporting with the real OTLP gRPC exporter to our server (batched, the
    SDK's usual set-up: agent names are inherited within one export request)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-agent",
                                                        "agentlightning.rollout_id": "from-resource"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=lightning_server.address, insecure=True)))
    yield provider
    provider.shutdown()


def _by_name(spans: list[spans_pb2.Span]) -> dict[str, spans_pb2.Span]:
    return {s.name: s for s in spans}


def test_genai_semantic_conventions(otel: TracerProvider, client: LightningClient):
    tracer = otel.get_tracer("genai-app")
    with tracer.start_as_current_span("invoke_agent planner", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}) as agent:
        with tracer.start_as_current_span("chat smollm2", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "smollm2", "gen_ai.response.model": "smollm2-v3",
                "gen_ai.response.id": "resp-1", "gen_ai.usage.input_tokens": 42, "gen_ai.usage.output_tokens": 7,
                "gen_ai.request.temperature": 0.5, "gen_ai.request.max_tokens": 64,
                "gen_ai.request.stop_sequences": ["\n\n"], "gen_ai.response.finish_reasons": ["tool_call"],
                "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "2+3?"}]}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "finish_reason": "tool_call", "parts": [
                    {"type": "tool_call", "id": "call-1", "name": "add", "arguments": {"a": 2, "b": 3}}]}]),
                "gen_ai.tool.definitions": json.dumps([{"type": "function", "name": "add", "description": "a+b",
                                                        "parameters": {"type": "object"}}])}):
            pass
        with tracer.start_as_current_span("execute_tool add", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "add", "gen_ai.tool.call.id": "call-1",
                "gen_ai.tool.call.arguments": '{"a": 2, "b": 3}', "gen_ai.tool.call.result": "5"}):
            pass
    assert otel.force_flush(10)
    trace_id = agent.get_span_context().trace_id.to_bytes(16, "big")
    spans = _by_name(client.query_spans("from-resource"))
    assert set(spans) == {"invoke_agent planner", "chat smollm2", "execute_tool add"}
    root, llm_span, tool_span = spans["invoke_agent planner"], spans["chat smollm2"], spans["execute_tool add"]
    assert root.kind == K.SPAN_KIND_AGENT and root.agent_name == "planner" and root.trace_id == trace_id
    assert llm_span.kind == K.SPAN_KIND_LLM and llm_span.parent_span_id == root.span_id
    assert llm_span.agent_name == "planner"  # inherited from the agent span
    llm = llm_span.llm
    assert (llm.operation, llm.request_model, llm.response_model, llm.response_id) == ("chat", "smollm2", "smollm2-v3", "resp-1")
    assert (llm.usage.input_tokens, llm.usage.output_tokens, llm.usage.total_tokens) == (42, 7, 49)
    assert llm.sampling.temperature == 0.5 and llm.sampling.max_tokens == 64 and list(llm.sampling.stop) == ["\n\n"]
    assert [(m.role, m.content) for m in llm.request_messages] == [("system", "Be brief."), ("user", "2+3?")]
    call = llm.response_messages[0].tool_calls[0]
    assert (call.id, call.name, json.loads(call.arguments)) == ("call-1", "add", {"a": 2, "b": 3})
    assert list(llm.finish_reasons) == ["tool_call"] and llm.tools[0].name == "add"
    tool = tool_span.tool
    assert tool_span.kind == K.SPAN_KIND_TOOL and tool_span.agent_name == "planner"
    assert (tool.name, tool.call_id, tool.arguments, tool.result) == ("add", "call-1", '{"a": 2, "b": 3}', "5")
    assert tool.arguments_valid and tool.outcome == K.TOOL_OUTCOME_OK
    assert tool_span.producer_id.startswith("otlp:otel-agent") and tool_span.attributes["service.name"].string_value == "otel-agent"
    assert "gen_ai.input.messages" not in llm_span.attributes  # moved into the payload, not stored twice
    assert llm_span.attributes["gen_ai.request.model"].string_value == "smollm2"


def test_openinference_attributes(otel: TracerProvider, client: LightningClient):
    tracer = otel.get_tracer("openinference-app")
    with tracer.start_as_current_span("graph", attributes={"openinference.span.kind": "CHAIN",
                                                           "agentlightning.rollout_id": "oi-1"}):
        with tracer.start_as_current_span("ChatOpenAI", attributes={
                "openinference.span.kind": "LLM", "agentlightning.rollout_id": "oi-1", "llm.model_name": "gpt-x",
                "llm.invocation_parameters": json.dumps({"temperature": 0.2, "max_completion_tokens": 30}),
                "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "You add.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.contents.0.message_content.text": "7+8?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.tool_calls.0.tool_call.id": "c9",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "add",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"a": 7, "b": 8}',
                "llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": {"name": "add"}}),
                "llm.token_count.prompt": 20, "llm.token_count.completion": 5, "llm.token_count.total": 25}):
            pass
        with tracer.start_as_current_span("add", attributes={
                "openinference.span.kind": "TOOL", "agentlightning.rollout_id": "oi-1", "tool.name": "add",
                "tool.parameters": '{"type": "object"}', "input.value": "{not json", "output.value": ""}) as failing:
            failing.set_status(Status(StatusCode.ERROR, "TimeoutError: tool took too long"))
    assert otel.force_flush(10)
    spans = _by_name(client.query_spans("oi-1"))
    assert spans["graph"].kind == K.SPAN_KIND_CHAIN
    llm = spans["ChatOpenAI"].llm
    assert spans["ChatOpenAI"].kind == K.SPAN_KIND_LLM and llm.request_model == "gpt-x"
    assert [(m.role, m.content) for m in llm.request_messages] == [("system", "You add."), ("user", "7+8?")]
    assert llm.response_messages[0].tool_calls[0].name == "add" and llm.response_messages[0].tool_calls[0].id == "c9"
    assert (llm.usage.input_tokens, llm.usage.output_tokens, llm.usage.total_tokens) == (20, 5, 25)
    assert llm.sampling.temperature == 0.2 and llm.sampling.max_tokens == 30 and llm.tools[0].name == "add"
    tool = spans["add"].tool
    assert spans["add"].kind == K.SPAN_KIND_TOOL and tool.name == "add" and tool.parameters_json_schema == '{"type": "object"}'
    assert tool.arguments == "{not json" and not tool.arguments_valid
    assert tool.outcome == K.TOOL_OUTCOME_TIMEOUT and "too long" in tool.error_message
    assert spans["add"].status.code == K.STATUS_CODE_ERROR


def test_openllmetry_attributes_and_trace_derived_rollout(lightning_server, client: LightningClient):
    provider = TracerProvider(resource=Resource.create({"service.name": "traceloop-app"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=lightning_server.address, insecure=True)))
    tracer = provider.get_tracer("traceloop")
    with tracer.start_as_current_span("math.workflow", attributes={"traceloop.span.kind": "workflow"}) as workflow:
        with tracer.start_as_current_span("solver.agent", attributes={"traceloop.span.kind": "agent",
                                                                      "traceloop.entity.name": "solver"}):
            with tracer.start_as_current_span("openai.chat", attributes={
                    "llm.request.type": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "m1",
                    "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "9-4?",
                    "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Answer: 5",
                    "gen_ai.completion.0.finish_reason": "stop", "gen_ai.usage.prompt_tokens": 11,
                    "gen_ai.usage.completion_tokens": 3, "llm.usage.total_tokens": 14, "llm.is_streaming": True}):
                pass
            with tracer.start_as_current_span("subtract.tool", attributes={
                    "traceloop.span.kind": "tool", "traceloop.entity.name": "subtract",
                    "traceloop.entity.input": '{"args": [9, 4]}', "traceloop.entity.output": "5"}):
                pass
    provider.shutdown()
    rollout_id = f"otel-{workflow.get_span_context().trace_id.to_bytes(16, 'big').hex()}"
    spans = _by_name(client.query_spans(rollout_id))
    assert spans["math.workflow"].kind == K.SPAN_KIND_CHAIN
    assert spans["solver.agent"].kind == K.SPAN_KIND_AGENT and spans["solver.agent"].agent_name == "solver"
    chat = spans["openai.chat"]
    assert chat.kind == K.SPAN_KIND_LLM and chat.agent_name == "solver" and chat.llm.streamed
    assert [(m.role, m.content) for m in chat.llm.request_messages] == [("user", "9-4?")]
    assert chat.llm.response_messages[0].content == "Answer: 5" and list(chat.llm.finish_reasons) == ["stop"]
    assert (chat.llm.usage.input_tokens, chat.llm.usage.output_tokens, chat.llm.usage.total_tokens) == (11, 3, 14)
    tool = spans["subtract.tool"].tool
    assert (tool.name, tool.arguments, tool.result, tool.outcome) == ("subtract", '{"args": [9, 4]}', "5", K.TOOL_OUTCOME_OK)


def _otlp_span(span_id: bytes, name: str, start: int = 1_700_000_000_000_000_000, end: int = 0) -> trace_pb2.Span:
    return trace_pb2.Span(trace_id=b"\x07" * 16, span_id=span_id, name=name, start_time_unix_nano=start,
                          end_time_unix_nano=end or start + 1000, attributes=[common_pb2.KeyValue(
                              key="gen_ai.operation.name", value=common_pb2.AnyValue(string_value="chat"))])


def _request(*spans: trace_pb2.Span) -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.extend(spans)
    return request


def _export(address: str, request, metadata=None) -> trace_service_pb2.ExportTraceServiceResponse:
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(OTLP_EXPORT, request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString)
        return call(request, timeout=10, metadata=metadata)


def test_partial_success_names_bad_spans_and_keeps_the_rest(lightning_server, client: LightningClient):
    good = [_otlp_span(bytes([0, 0, 0, 0, 0, 0, 0, i]), f"ok-{i}") for i in (1, 2)]
    backwards = _otlp_span(b"\x00" * 7 + b"\x03", "backwards", start=1_700_000_000_000_000_000,
                           end=1_600_000_000_000_000_000)
    no_id = _otlp_span(b"", "no-id")
    response = _export(lightning_server.address, _request(good[0], backwards, no_id, good[1]))
    assert response.partial_success.rejected_spans == 2
    assert "backwards" in response.partial_success.error_message and "span_id" in response.partial_success.error_message
    rollout_id = "otel-" + (b"\x07" * 16).hex()
    assert sorted(s.name for s in client.query_spans(rollout_id)) == ["ok-1", "ok-2"]
    again = _export(lightning_server.address, _request(*good))  # an exporter retry: stored once
    assert not again.HasField("partial_success") or again.partial_success.rejected_spans == 0
    assert len(client.query_spans(rollout_id)) == 2
    with pytest.raises(grpc.RpcError) as err:
        with grpc.insecure_channel(lightning_server.address) as channel:
            channel.unary_unary(OTLP_EXPORT)(b"\xff\xff\xff", timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_otlp_with_auth_needs_a_worker_token(tmp_path):
    store = SqliteStore(tmp_path / "otlp-auth.db")
    token = new_token()
    store.add_token("agent-1", "worker", hash_token(token))
    server = LightningServer(store, ServerConfig(port=0, require_auth=True))
    server.start()
    try:
        with pytest.raises(grpc.RpcError) as err:
            _export(server.address, _request(_otlp_span(b"\x01" * 8, "anon")))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        response = _export(server.address, _request(_otlp_span(b"\x01" * 8, "signed")),
                           metadata=(("authorization", f"Bearer {token}"),))
        assert response.partial_success.rejected_spans == 0
        assert [s.name for s in store.get_spans("otel-" + (b"\x07" * 16).hex())] == ["signed"]
    finally:
        server.stop(grace_s=0)


def test_older_genai_prompt_and_completion_events(otel: TracerProvider, client: LightningClient):
    tracer = otel.get_tracer("older-genai")
    with tracer.start_as_current_span("chat old", attributes={"gen_ai.operation.name": "chat",
                                                              "agentlightning.rollout_id": "events-1"}) as span:
        span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": json.dumps(
            [{"role": "user", "content": [{"type": "text", "text": "hi"}]}])})
        span.add_event("gen_ai.content.completion", {"gen_ai.completion": json.dumps(
            [{"role": "assistant", "content": None, "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]}])})
    assert otel.force_flush(10)
    (stored,) = client.query_spans("events-1")
    assert [(m.role, m.content) for m in stored.llm.request_messages] == [("user", "hi")]
    assert stored.llm.response_messages[0].tool_calls[0].name == "lookup"
