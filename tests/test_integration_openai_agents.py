"""OpenAI Agents SDK integration, end to end: a real ``agents.Agent`` with real function tools, run by the
real ``Runner`` against the scripted OpenAI-compatible server on 127.0.0.1, exporting to a real Lightning
server; spans are read back from the store and checked as a tree.

The SDK's default trace processor (which would export to the vendor when a key is set) is removed for
every test with the SDK's public ``set_trace_processors``; nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

agents = pytest.importorskip("agents")

from agents import (  # noqa: E402
    Agent, GuardrailFunctionOutput, InputGuardrail, ModelSettings, OpenAIChatCompletionsModel,
    OpenAIResponsesModel, RunConfig, Runner, custom_span, function_tool, set_trace_processors,
)
from agents.tracing import TracingProcessor  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402

from agentlightning.core import api  # noqa: E402
from agentlightning.core.exporter import ExporterConfig, SpanExporter  # noqa: E402
from agentlightning.core.kinds import SpanKind, TokenProvenance, ToolOutcome  # noqa: E402
from agentlightning.core.span_tree import SpanNode, build_tree  # noqa: E402
from agentlightning.core.tracer import MemorySink, Tracer  # noqa: E402
from agentlightning.integrations.openai_agents import instrument, uninstrument  # noqa: E402
from agentlightning.integrations.openai_agents.processor import LightningTracingProcessor  # noqa: E402
from agentlightning.testing import openai_wire  # noqa: E402
from agentlightning.testing.scripted_llm import Reply, RequestView, ScriptedLLMServer, ToolCall, route  # noqa: E402
from agentlightning.v1 import spans_pb2  # noqa: E402


@pytest.fixture(autouse=True)
def sdk_tracing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No vendor exporter, no key: only processors a test adds run."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_AGENTS_DISABLE_TRACING", raising=False)
    set_trace_processors([])
    try:
        yield
    finally:
        uninstrument()
        set_trace_processors([])


# -- the agent under test ------------------------------------------------------------------------
@function_tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@function_tool
def explode(reason: str) -> str:
    """A tool that always fails."""
    raise RuntimeError(f"exploded: {reason}")


BAD_ARGS = '{"a": 1,'  # not JSON: the SDK must report it, we must classify it INVALID_ARGUMENTS
FIRST = Reply(tool_calls=[ToolCall("add", '{"a": 2, "b": 3}'), ToolCall("explode", '{"reason": "test"}'),
                          ToolCall("add", BAD_ARGS)],
              prompt_token_ids=[11, 12, 13], token_ids=[21, 22], logprobs=[-0.25, -0.5], model_version="v3")
FINAL = Reply("2 + 3 = 5")


def calc_script(request: dict, api_name: str) -> Reply:
    return FINAL if RequestView(request, api_name).last_is_tool_result else FIRST


def model_for(llm: ScriptedLLMServer, api_name: str) -> Any:
    client = AsyncOpenAI(base_url=llm.base_url, api_key="dummy", max_retries=0)
    if api_name == "responses":
        return OpenAIResponsesModel(model="scripted", openai_client=client)
    return OpenAIChatCompletionsModel(model="scripted", openai_client=client)


def calc_agent(llm: ScriptedLLMServer, api_name: str = "responses") -> Agent:
    return Agent(name="calc", instructions="You are calc. Use the tools.", tools=[add, explode],
                 model=model_for(llm, api_name), model_settings=ModelSettings(include_usage=True))


# -- reading back ----------------------------------------------------------------------------------
def stored_rollouts(server: Any) -> set[str]:
    return {spans_pb2.Span.FromString(raw).rollout_id for raw in server.store.iter_span_bytes()}


def shape(node: SpanNode) -> tuple:
    s = node.span
    return (SpanKind(s.kind).name, s.name, s.agent_name, [shape(c) for c in node.children])


def read_tree(tracer: Tracer, client: Any, rollout_id: str) -> list[SpanNode]:
    assert tracer.sink.flush(10.0)
    return build_tree(client.query_spans(rollout_id))


def expected_usage(llm: ScriptedLLMServer) -> list[tuple[int, int]]:
    return [openai_wire.usage_counts(c.reply, c.request, c.api) for c in llm.calls]


CALC_SHAPE = ("AGENT", "calc", "calc", [
    ("LLM", "response", "calc", []),
    ("TOOL", "add", "calc", []),
    ("TOOL", "explode", "calc", []),
    ("TOOL", "add", "calc", []),
    ("LLM", "response", "calc", []),
])


def check_calc_tree(root: SpanNode, llm: ScriptedLLMServer, llm_name: str = "response") -> None:
    expected = (CALC_SHAPE[0], CALC_SHAPE[1], CALC_SHAPE[2],
                [(k, llm_name if k == "LLM" else n, a, c) for k, n, a, c in CALC_SHAPE[3]])
    assert shape(root) == expected
    agent = root.span
    first, ok, failed, invalid, final = (c.span for c in root.children)
    assert all(c.span.parent_span_id == agent.span_id for c in root.children)

    # The model's requested calls, and each tool span tied to its call id.
    calls = {tc.arguments: tc.id for tc in first.llm.response_messages[0].tool_calls}
    assert [tc.name for tc in first.llm.response_messages[0].tool_calls] == ["add", "explode", "add"]
    assert (ok.tool.call_id, failed.tool.call_id, invalid.tool.call_id) == (
        calls['{"a": 2, "b": 3}'], calls['{"reason": "test"}'], calls[BAD_ARGS])

    assert ok.tool.outcome == ToolOutcome.OK and ok.tool.result == "5" and ok.tool.arguments_valid
    assert ok.status.code == spans_pb2.STATUS_CODE_OK
    if llm_name == "response":  # the Responses object lists the offered tools; a chat generation span does not
        assert json.loads(ok.tool.parameters_json_schema)["required"] == ["a", "b"]

    assert failed.tool.outcome == ToolOutcome.ERROR and failed.tool.arguments_valid
    assert "exploded: test" in failed.tool.error_message
    assert failed.status.code == spans_pb2.STATUS_CODE_ERROR

    assert invalid.tool.outcome == ToolOutcome.INVALID_ARGUMENTS and not invalid.tool.arguments_valid
    assert invalid.tool.arguments == BAD_ARGS
    assert invalid.status.code == spans_pb2.STATUS_CODE_ERROR

    # Usage exactly as the server reported it, per call, in order.
    assert [(s.llm.usage.input_tokens, s.llm.usage.output_tokens) for s in (first, final)] == expected_usage(llm)
    assert all(s.llm.usage.total_tokens == s.llm.usage.input_tokens + s.llm.usage.output_tokens
               for s in (first, final))

    # Request/response messages: the second call saw the three tool results.
    assert [m.role for m in final.llm.request_messages] == ["system", "user", "assistant", "tool", "tool", "tool"]
    assert final.llm.request_messages[3].content == "5"
    assert final.llm.response_messages[0].content == "2 + 3 = 5"


# -- tests -----------------------------------------------------------------------------------------
class Recorder(TracingProcessor):
    """A user's own processor: must keep receiving everything after instrument()."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    def on_trace_start(self, trace: Any) -> None: ...
    def on_trace_end(self, trace: Any) -> None: ...
    def on_span_start(self, span: Any) -> None: ...
    def on_span_end(self, span: Any) -> None:
        self.ended.append(span.span_data.type)
    def shutdown(self) -> None: ...
    def force_flush(self) -> None: ...


@pytest.mark.parametrize("defer", [True, False], ids=["background", "inline"])
def test_agent_llm_tool_llm_tree_outcomes_usage_and_tokens(defer: bool, global_tracer: Tracer, client: Any,
                                                           lightning_server: Any) -> None:
    user_processor = Recorder()
    agents.add_trace_processor(user_processor)
    processor = instrument(defer=defer)
    assert instrument() is processor  # idempotent: registered once
    registered = agents.tracing.get_trace_provider()._multi_processor._processors
    assert registered.count(processor) == 1 and user_processor in registered

    with ScriptedLLMServer(calc_script) as llm:
        result = asyncio.run(Runner.run(calc_agent(llm), "What is 2 + 3?"))
    assert result.final_output == "2 + 3 = 5"
    assert user_processor.ended.count("function") == 3

    assert global_tracer.sink.flush(10.0)
    rollouts = stored_rollouts(lightning_server)
    assert len(rollouts) == 1  # one SDK trace outside any rollout = one generated rollout
    (root,) = read_tree(global_tracer, client, rollouts.pop())
    check_calc_tree(root, llm)

    first, final = root.children[0].span, root.children[4].span
    # Exact tokens when the server returned them; unspecified when it did not.
    assert list(first.llm.prompt_token_ids) == [11, 12, 13] and list(first.llm.completion_token_ids) == [21, 22]
    assert first.llm.token_provenance == TokenProvenance.EXACT and first.llm.policy_version == "v3"
    assert final.llm.token_provenance == spans_pb2.TOKEN_PROVENANCE_UNSPECIFIED
    assert not final.llm.completion_token_ids
    assert first.llm.finish_reasons == ["tool_calls"] and final.llm.finish_reasons == ["stop"]
    assert {t.name for t in first.llm.tools} == {"add", "explode"}
    assert [m.role for m in first.llm.request_messages] == ["system", "user"]
    assert first.llm.request_messages[0].content == "You are calc. Use the tools."
    assert processor.errors == 0 and not processor._nodes and not processor._traces


def math_script(request: dict, api_name: str) -> Reply:
    view = RequestView(request, api_name)
    if "triage" in view.system:
        return Reply(tool_calls=[ToolCall("transfer_to_math", "{}")])
    if "5" in view.tool_results_since_user:
        return Reply("5")
    return Reply(tool_calls=[ToolCall("add", '{"a": 2, "b": 3}')])


def test_handoff_between_two_agents_inside_a_rollout(global_tracer: Tracer, client: Any) -> None:
    instrument()
    with ScriptedLLMServer(math_script) as llm:
        math = Agent(name="math", instructions="You do math.", tools=[add], model=model_for(llm, "responses"))
        triage = Agent(name="triage", instructions="You triage.", handoffs=[math], model=model_for(llm, "responses"))

        async def run() -> Any:
            with api.rollout("ro-handoff", name="episode", agent_name="runner"):
                return await Runner.run(triage, "2 + 3?")

        result = asyncio.run(run())
    assert result.final_output == "5"
    assert result.last_agent.name == "math"

    (root,) = read_tree(global_tracer, client, "ro-handoff")
    assert shape(root) == ("AGENT", "episode", "runner", [
        ("AGENT", "triage", "triage", [
            ("LLM", "response", "triage", []),
            ("CHAIN", "handoff", "triage", []),
        ]),
        ("AGENT", "math", "math", [
            ("LLM", "response", "math", []),
            ("TOOL", "add", "math", []),
            ("LLM", "response", "math", []),
        ]),
    ])
    handoff = root.children[0].children[1].span
    assert handoff.attributes["handoff.from_agent"].string_value == "triage"
    assert handoff.attributes["handoff.to_agent"].string_value == "math"
    assert root.children[1].children[1].span.tool.outcome == ToolOutcome.OK
    assert {n.span.rollout_id for n in root.children[1].children} == {"ro-handoff"}


@pytest.mark.parametrize("api_name", ["responses", "chat"])
def test_streamed_run_records_the_same_tree(api_name: str, global_tracer: Tracer, client: Any,
                                            lightning_server: Any) -> None:
    instrument()

    async def run(llm: ScriptedLLMServer) -> Any:
        streamed = Runner.run_streamed(calc_agent(llm, api_name), "What is 2 + 3?")
        deltas = 0
        async for event in streamed.stream_events():
            deltas += event.type == "raw_response_event"
        assert deltas > 3  # it really streamed
        return streamed

    with ScriptedLLMServer(calc_script) as llm:
        result = asyncio.run(run(llm))
        assert all(c.request.get("stream") for c in llm.calls)
    assert result.final_output == "2 + 3 = 5"
    assert global_tracer.sink.flush(10.0)
    (rollout_id,) = stored_rollouts(lightning_server)
    (root,) = read_tree(global_tracer, client, rollout_id)
    check_calc_tree(root, llm, llm_name="response" if api_name == "responses" else "generation")
    if api_name == "chat":  # the SDK's streamed chat span is recognisable; the Responses one is not
        assert all(c.span.llm.streamed for c in root.children if c.span.kind == SpanKind.LLM)


def test_agent_completes_when_lightning_server_is_down(tmp_path: Path) -> None:
    with ScriptedLLMServer([]) as probe:
        dead = f"127.0.0.1:{probe.port}"  # a port that just stopped listening gRPC (HTTP only) -> unusable
    exporter = SpanExporter(ExporterConfig(endpoint=dead, spool_dir=str(tmp_path / "spool"), flush_interval_s=0.05,
                                           backoff_initial_s=0.05, backoff_max_s=0.2, rpc_timeout_s=0.5))
    try:
        processor = instrument(Tracer(exporter))
        with ScriptedLLMServer(calc_script) as llm:
            started = time.monotonic()
            result = asyncio.run(Runner.run(calc_agent(llm), "What is 2 + 3?"))
            elapsed = time.monotonic() - started
        assert result.final_output == "2 + 3 = 5"
        assert elapsed < 10.0
        assert processor.errors == 0
        exporter.flush(5.0)
        stats = exporter.stats()
        assert stats.submitted == 6 and stats.acked == 0
        assert stats.spooled == 6 and not stats.dropped  # kept locally, nothing lost or raised
    finally:
        exporter.close(1.0)


def test_guardrail_and_custom_spans_are_mapped() -> None:
    sink = MemorySink()
    instrument(Tracer(sink))

    async def polite(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)

    @function_tool
    def lookup(key: str) -> str:
        """Look a key up."""
        with custom_span("cache", {"key": key, "hit": True}):
            return key.upper()

    script = route([(lambda v: v.last_is_tool_result, Reply("done"))], Reply(tool_calls=[ToolCall("lookup", '{"key": "k"}')]))
    with ScriptedLLMServer(script) as llm:
        agent = Agent(name="guarded", instructions="Be polite.", tools=[lookup], model=model_for(llm, "responses"),
                      input_guardrails=[InputGuardrail(guardrail_function=polite, name="polite")])
        asyncio.run(Runner.run(agent, "hi"))

    by_name = {s.name: s for s in sink.spans}
    guard = by_name["guardrail polite"]
    assert guard.kind == SpanKind.OTHER and guard.attributes["guardrail.triggered"].bool_value is False
    assert guard.parent_span_id == by_name["guarded"].span_id and guard.agent_name == "guarded"
    cache = by_name["cache"]
    assert cache.parent_span_id == by_name["lookup"].span_id
    assert cache.attributes["openai_agents.data"].map_value.values["hit"].bool_value is True


def test_sensitive_data_off_still_records_structure_and_outcomes() -> None:
    sink = MemorySink()
    instrument(Tracer(sink))
    with ScriptedLLMServer(calc_script) as llm:
        asyncio.run(Runner.run(calc_agent(llm), "What is 2 + 3?",
                               run_config=RunConfig(trace_include_sensitive_data=False)))
    tools = [s for s in sink.spans if s.kind == SpanKind.TOOL]
    assert sorted(ToolOutcome(s.tool.outcome).name for s in tools) == ["ERROR", "ERROR", "OK"]
    llms = [s for s in sink.spans if s.kind == SpanKind.LLM]
    assert [(s.llm.usage.input_tokens, s.llm.usage.output_tokens) for s in llms] == expected_usage(llm)
    assert not any(s.llm.request_messages for s in llms)  # the SDK withheld them; we invent nothing


def test_processor_hooks_never_raise() -> None:
    processor = LightningTracingProcessor(Tracer(MemorySink()))

    class Broken:
        trace_id = "t"
        span_id = "s"
        parent_id = None
        error = None

        @property
        def span_data(self) -> Any:
            raise RuntimeError("boom")

    for hook in (processor.on_trace_start, processor.on_trace_end, processor.on_span_start, processor.on_span_end):
        hook(Broken())  # type: ignore[arg-type]
    processor.force_flush()
    assert processor.errors >= 1


def test_import_pulls_in_no_other_framework() -> None:
    code = ("import sys, agentlightning.integrations.openai_agents as m; "
            "bad = sorted({n.split('.')[0] for n in sys.modules} & "
            "{'langchain', 'langchain_core', 'langgraph', 'crewai', 'autogen', 'autogen_core', "
            "'autogen_agentchat', 'autogen_ext', 'torch', 'transformers', 'trl'}); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_turn_spans_recorded_when_asked() -> None:
    sink = MemorySink()
    instrument(Tracer(sink), include_turn_spans=True)
    with ScriptedLLMServer(calc_script) as llm:
        asyncio.run(Runner.run(calc_agent(llm), "What is 2 + 3?"))
    (root,) = build_tree(sink.spans)
    assert shape(root) == ("CHAIN", "task", "", [("AGENT", "calc", "calc", [
        ("CHAIN", "turn", "calc", [("LLM", "response", "calc", []), ("TOOL", "add", "calc", []),
                                   ("TOOL", "explode", "calc", []), ("TOOL", "add", "calc", [])]),
        ("CHAIN", "turn", "calc", [("LLM", "response", "calc", [])]),
    ])])
    second_turn_llm = root.children[0].children[1].children[0].span
    assert second_turn_llm.attributes["openai_agents.turn"].int_value == 2


def test_sdk_flush_traces_drains_the_processor(global_tracer: Tracer, client: Any) -> None:
    instrument()
    with ScriptedLLMServer(calc_script) as llm:
        async def run() -> None:
            with api.rollout("ro-flush"):
                await Runner.run(calc_agent(llm), "What is 2 + 3?")
            agents.flush_traces()  # the SDK's public flush reaches our force_flush

        asyncio.run(run())
    # No sink.flush() here: flush_traces must already have shipped everything to the server.
    assert len(client.query_spans("ro-flush")) == 1 + 6


@pytest.mark.parametrize("arguments, output, error, expected", [
    ('{"a": 1}', "2", None, (ToolOutcome.OK, True)),
    ('{"a": 1', "An error occurred...", {"message": "Error running tool (non-fatal)",
                                          "data": {"error": "Invalid JSON input for tool add"}},
     (ToolOutcome.INVALID_ARGUMENTS, False)),
    # Valid JSON that fails the schema: the SDK says "Invalid JSON input" too (pydantic validation).
    ('{"a": "x"}', "An error occurred...", {"message": "Error running tool (non-fatal)",
                                             "data": {"error": "Invalid JSON input for tool add: 1 validation error"}},
     (ToolOutcome.INVALID_ARGUMENTS, False)),
    ('[1, 2]', "x", {"message": "Error running tool", "data": None}, (ToolOutcome.INVALID_ARGUMENTS, False)),
    ('{"a": 1}', "An error occurred...", {"message": "Error running tool (non-fatal)", "data": {"error": "kaboom"}},
     (ToolOutcome.ERROR, True)),
    ('{"a": 1}', "Tool 'slow' timed out after 2 seconds.", None, (ToolOutcome.TIMEOUT, True)),
    (None, "An error occurred...", {"message": "Error running tool (non-fatal)",
                                    "data": {"error": "Error details are redacted."}}, (ToolOutcome.ERROR, True)),
])
def test_tool_outcome_classification(arguments: Any, output: Any, error: Any, expected: tuple) -> None:
    from agentlightning.integrations.openai_agents.mapping import classify_tool

    outcome, valid, _ = classify_tool(arguments, output, error)
    assert (outcome, valid) == expected


def test_chat_completions_calls_carry_exact_tokens_too(global_tracer: Tracer, client: Any,
                                                       lightning_server: Any) -> None:
    """The SDK keeps only ``choices[0].message`` of a chat completion; our servers mirror the
    exact-token extension into the message, so those calls get EXACT tokens, logprobs and version."""
    instrument()
    with ScriptedLLMServer(calc_script) as llm:
        asyncio.run(Runner.run(calc_agent(llm, "chat_completions"), "What is 2 + 3?"))
    assert global_tracer.sink.flush(10.0)
    (root,) = read_tree(global_tracer, client, stored_rollouts(lightning_server).pop())
    first = root.children[0].span
    assert list(first.llm.prompt_token_ids) == [11, 12, 13] and list(first.llm.completion_token_ids) == [21, 22]
    assert list(first.llm.completion_logprobs) == [-0.25, -0.5]
    assert first.llm.token_provenance == TokenProvenance.EXACT and first.llm.policy_version == "v3"
