"""AutoGen 0.7 integration, end to end: real ``AssistantAgent``s with real tools and real teams
(``RoundRobinGroupChat``, ``SelectorGroupChat``) using AutoGen's real ``OpenAIChatCompletionClient``
against the scripted OpenAI-compatible server on 127.0.0.1, exporting to a real Lightning server; the
stored spans are read back and checked as a tree. AutoGen has no telemetry of its own; a socket audit
hook checks that nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

pytest.importorskip("autogen_agentchat")
pytest.importorskip("autogen_ext.models.openai")

from autogen_agentchat.agents import AssistantAgent  # noqa: E402
from autogen_agentchat.conditions import MaxMessageTermination  # noqa: E402
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat  # noqa: E402
from autogen_core import EVENT_LOGGER_NAME  # noqa: E402
from autogen_core.logging import LLMCallEvent, LLMStreamEndEvent  # noqa: E402
from autogen_ext.models.openai import OpenAIChatCompletionClient  # noqa: E402

from agentlightning.core import api  # noqa: E402
from agentlightning.core.exporter import ExporterConfig, SpanExporter  # noqa: E402
from agentlightning.core.kinds import SpanKind, TokenProvenance, ToolOutcome  # noqa: E402
from agentlightning.core.span_tree import SpanNode, build_tree  # noqa: E402
from agentlightning.core.tracer import Tracer  # noqa: E402
from agentlightning.integrations.autogen import AutoGenRecorder, instrument, uninstrument  # noqa: E402
from agentlightning.testing import openai_wire  # noqa: E402
from agentlightning.testing.scripted_llm import Reply, RequestView, ScriptedLLMServer, ToolCall  # noqa: E402
from agentlightning.v1 import spans_pb2  # noqa: E402

MODEL_INFO = {"vision": False, "function_calling": True, "json_output": False, "family": "unknown",
              "structured_output": False}


@pytest.fixture(autouse=True)
def recorder() -> Iterator[AutoGenRecorder]:
    """Instrumented for the test, then restored (logger levels back, our provider inert)."""
    rec = instrument()
    try:
        yield rec
    finally:
        uninstrument()


# -- the agents under test -------------------------------------------------------------------------
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def explode(reason: str) -> str:
    """A tool that always fails."""
    raise RuntimeError(f"exploded: {reason}")


FIRST = Reply(tool_calls=[ToolCall("add", '{"a": 2, "b": 3}'), ToolCall("explode", '{"reason": "test"}')],
              prompt_token_ids=[11, 12, 13], token_ids=[21, 22], logprobs=[-0.25, -0.5], model_version="v3")
FINAL = Reply("2 + 3 = 5")


def calc_script(request: dict, api_name: str) -> Reply:
    return FINAL if RequestView(request, api_name).last_is_tool_result else FIRST


def model_client(llm: ScriptedLLMServer, **kwargs: Any) -> OpenAIChatCompletionClient:
    return OpenAIChatCompletionClient(model="scripted", base_url=llm.base_url, api_key="dummy",
                                      model_info=MODEL_INFO, max_retries=0, **kwargs)


def calc_agent(client: OpenAIChatCompletionClient, stream: bool = False) -> AssistantAgent:
    return AssistantAgent("calc", model_client=client, tools=[add, explode], reflect_on_tool_use=True,
                          system_message="You are calc. Use the tools.", model_client_stream=stream)


async def run_calc(llm: ScriptedLLMServer, stream: bool = False, task: str = "What is 2 + 3?") -> Any:
    """One run of the calc agent (streamed: through ``run_stream``, checking chunks really arrived)."""
    client = model_client(llm, stream_options={"include_usage": True}) if stream else model_client(llm)
    try:
        if not stream:
            return await calc_agent(client).run(task=task)
        chunks, result = 0, None
        async for item in calc_agent(client, stream=True).run_stream(task=task):
            chunks += type(item).__name__ == "ModelClientStreamingChunkEvent"
            result = item
        assert chunks > 3
        return result
    finally:
        await client.close()


async def run_team(llm: ScriptedLLMServer, selector: bool, task: str, max_messages: int) -> Any:
    """A writer/critic team, round-robin or with a model selecting the speaker."""
    clients = [model_client(llm) for _ in range(3)]
    try:
        writer = AssistantAgent("writer", model_client=clients[0], system_message="You are the writer.")
        critic = AssistantAgent("critic", model_client=clients[1], system_message="You are the critic.")
        stop = MaxMessageTermination(max_messages)
        team = (SelectorGroupChat([writer, critic], model_client=clients[2], termination_condition=stop)
                if selector else RoundRobinGroupChat([writer, critic], termination_condition=stop))
        return await team.run(task=task)
    finally:
        for client in clients:
            await client.close()


# -- reading back ----------------------------------------------------------------------------------
def shape(node: SpanNode) -> tuple:
    s = node.span
    return (SpanKind(s.kind).name, s.name, s.agent_name, [shape(c) for c in node.children])


def read_tree(tracer: Tracer, client: Any, rollout_id: str) -> list[SpanNode]:
    assert tracer.sink.flush(10.0)
    return build_tree(client.query_spans(rollout_id))


def expected_usage(llm: Any) -> list[tuple[int, int]]:
    return [openai_wire.usage_counts(c.reply, c.request, c.api) for c in llm.calls]


def run_in_rollout(rollout_id: str, coro_fn: Any) -> Any:
    with api.rollout(rollout_id, name="episode", agent_name="runner"):
        return asyncio.run(coro_fn())


def check_calc_tree(agent_node: SpanNode, llm: Any, llm_name: str, streamed: bool) -> None:
    assert shape(agent_node) == ("AGENT", "invoke_agent calc", "calc", [
        ("LLM", llm_name, "calc", []),
        ("TOOL", "execute_tool add", "calc", []),
        ("TOOL", "execute_tool explode", "calc", []),
        ("LLM", llm_name, "calc", []),
    ])
    first, ok, failed, final = (c.span for c in agent_node.children)
    assert all(c.span.parent_span_id == agent_node.span.span_id for c in agent_node.children)
    assert first.llm.streamed is streamed and final.llm.streamed is streamed

    # The calls the model requested (raw arguments), each tool span tied to its call id.
    requested = first.llm.response_messages[0].tool_calls
    assert [(tc.name, tc.arguments) for tc in requested] == [("add", '{"a": 2, "b": 3}'),
                                                             ("explode", '{"reason": "test"}')]
    assert (ok.tool.call_id, failed.tool.call_id) == (requested[0].id, requested[1].id)

    assert ok.tool.name == "add" and ok.tool.arguments == '{"a": 2, "b": 3}' and ok.tool.arguments_valid
    assert ok.tool.outcome == ToolOutcome.OK and ok.tool.result == "5"
    assert ok.status.code == spans_pb2.STATUS_CODE_OK
    if not streamed:  # a streamed call's event does not list the offered tools
        assert json.loads(ok.tool.parameters_json_schema)["required"] == ["a", "b"]

    assert failed.tool.outcome == ToolOutcome.ERROR and failed.tool.arguments_valid
    assert failed.tool.error_message == "exploded: test"
    assert failed.tool.result == "exploded: test"  # what the model was shown (is_error=True)
    assert failed.status.code == spans_pb2.STATUS_CODE_ERROR and failed.status.error_type == "RuntimeError"

    # Usage exactly as the server reported it, per call, in order.
    assert [(s.llm.usage.input_tokens, s.llm.usage.output_tokens) for s in (first, final)] == expected_usage(llm)
    assert all(s.llm.usage.total_tokens == s.llm.usage.input_tokens + s.llm.usage.output_tokens
               for s in (first, final))
    assert first.llm.finish_reasons == ["tool_calls"] and final.llm.finish_reasons == ["stop"]

    # Request/response messages: the second call saw both tool results, tied to their call ids.
    assert [m.role for m in first.llm.request_messages] == ["system", "user"]
    assert first.llm.request_messages[0].content == "You are calc. Use the tools."
    assert [m.role for m in final.llm.request_messages] == ["system", "user", "assistant", "tool", "tool"]
    assert [(m.tool_call_id, m.content) for m in final.llm.request_messages[3:]] == [
        (requested[0].id, "5"), (requested[1].id, "exploded: test")]
    assert final.llm.response_messages[0].content == "2 + 3 = 5"
    # Tool spans sit between the two model calls in time.
    assert first.start_time_unix_nano <= ok.start_time_unix_nano <= failed.end_time_unix_nano
    assert max(ok.end_time_unix_nano, failed.end_time_unix_nano) <= final.end_time_unix_nano


# -- tests -----------------------------------------------------------------------------------------
def test_assistant_agent_tree_outcomes_usage_and_tokens(global_tracer: Tracer, client: Any,
                                                        recorder: AutoGenRecorder) -> None:
    assert instrument() is recorder  # idempotent
    assert logging.getLogger(EVENT_LOGGER_NAME).filters.count(recorder_tap(recorder)) == 1

    with ScriptedLLMServer(calc_script) as llm:
        result = run_in_rollout("ro-calc", lambda: run_calc(llm))
    assert result.messages[-1].content == "2 + 3 = 5"

    (root,) = read_tree(global_tracer, client, "ro-calc")
    assert (root.span.name, root.span.agent_name) == ("episode", "runner")
    (agent,) = root.children
    check_calc_tree(agent, llm, "chat scripted", streamed=False)
    first, final = agent.children[0].span, agent.children[3].span
    assert {t.name for t in first.llm.tools} == {"add", "explode"}
    assert first.llm.response_model == "scripted" and first.llm.response_id
    # Exact tokens when the server returned them; unspecified when it did not.
    assert list(first.llm.prompt_token_ids) == [11, 12, 13] and list(first.llm.completion_token_ids) == [21, 22]
    assert list(first.llm.completion_logprobs) == [-0.25, -0.5]
    assert first.llm.token_provenance == TokenProvenance.EXACT and first.llm.policy_version == "v3"
    assert final.llm.token_provenance == spans_pb2.TOKEN_PROVENANCE_UNSPECIFIED
    assert not final.llm.completion_token_ids
    spans = [n.span for n in [agent, *agent.children]]
    assert {s.rollout_id for s in spans} == {"ro-calc"} and {s.agent_name for s in spans} == {"calc"}
    assert recorder.errors == 0 and not recorder._builder.open_spans


def recorder_tap(recorder: AutoGenRecorder) -> Any:
    (tap,) = [f for f in logging.getLogger(EVENT_LOGGER_NAME).filters
              if getattr(f, "_on_record", None) == recorder.on_record]
    return tap


def test_streamed_agent_records_the_same_tree(global_tracer: Tracer, client: Any,
                                              recorder: AutoGenRecorder) -> None:
    with ScriptedLLMServer(calc_script) as llm:
        result = run_in_rollout("ro-stream", lambda: run_calc(llm, stream=True))
        assert all(c.request.get("stream") for c in llm.calls)
    assert result.messages[-1].content == "2 + 3 = 5"
    (root,) = read_tree(global_tracer, client, "ro-stream")
    check_calc_tree(root.children[0], llm, "chat", streamed=True)
    assert recorder.errors == 0 and not recorder._builder.open_spans


def bad_calls_script(request: dict, api_name: str) -> Reply:
    if RequestView(request, api_name).last_is_tool_result:
        return Reply("sorry")
    return Reply(tool_calls=[ToolCall("add", '{"a": 1,'), ToolCall("add", '{"a": "x", "b": 2}'),
                             ToolCall("divide", '{"a": 1}')])


def test_invalid_arguments_and_unknown_tool_are_classified(global_tracer: Tracer, client: Any) -> None:
    with ScriptedLLMServer(bad_calls_script) as llm:
        run_in_rollout("ro-bad", lambda: run_calc(llm, task="break it"))
    (root,) = read_tree(global_tracer, client, "ro-bad")
    (agent,) = root.children
    kinds = [SpanKind(c.span.kind).name for c in agent.children]
    assert kinds == ["LLM", "TOOL", "TOOL", "TOOL", "LLM"]
    tools = {c.span.tool.arguments: c.span for c in agent.children if c.span.kind == SpanKind.TOOL}
    not_json, wrong_type, unknown = tools['{"a": 1,'], tools['{"a": "x", "b": 2}'], tools['{"a": 1}']
    # Not JSON: AutoGen never ran the tool; the span comes from the result it gave the model.
    assert not_json.tool.outcome == ToolOutcome.INVALID_ARGUMENTS and not not_json.tool.arguments_valid
    assert not_json.tool.result.startswith("Error:") and not_json.status.code == spans_pb2.STATUS_CODE_ERROR
    # JSON that fails the tool's schema: the tool span errors with pydantic's ValidationError.
    assert wrong_type.tool.outcome == ToolOutcome.INVALID_ARGUMENTS and not wrong_type.tool.arguments_valid
    assert wrong_type.status.error_type == "ValidationError"
    # A tool the agent does not have.
    assert unknown.tool.outcome == ToolOutcome.NOT_FOUND and unknown.tool.name == "divide"
    assert unknown.tool.arguments_valid and "not found" in unknown.tool.result
    assert all(s.agent_name == "calc" and s.parent_span_id == agent.span.span_id for s in tools.values())


def team_script(request: dict, api_name: str) -> Reply:
    view = RequestView(request, api_name)
    if "role play" in view.last_user_text:  # SelectorGroupChat asking who speaks next
        return Reply("critic")
    if "writer" in view.system:
        return Reply("A draft about otters.")
    return Reply("APPROVE")


def test_round_robin_team_records_each_agent_by_name(global_tracer: Tracer, client: Any) -> None:
    with ScriptedLLMServer(team_script) as llm:
        result = run_in_rollout("ro-team", lambda: run_team(llm, False, "Write about otters.", 3))
    assert [(m.source, m.content) for m in result.messages] == [
        ("user", "Write about otters."), ("writer", "A draft about otters."), ("critic", "APPROVE")]

    (root,) = read_tree(global_tracer, client, "ro-team")
    assert shape(root) == ("AGENT", "episode", "runner", [
        ("AGENT", "invoke_agent writer", "writer", [("LLM", "chat scripted", "writer", [])]),
        ("AGENT", "invoke_agent critic", "critic", [("LLM", "chat scripted", "critic", [])]),
    ])
    writer_llm = root.children[0].children[0].span.llm
    critic_llm = root.children[1].children[0].span.llm
    assert writer_llm.request_messages[0].content == "You are the writer."
    assert writer_llm.response_messages[0].content == "A draft about otters."
    # The critic saw the writer's turn, named.
    assert [(m.role, m.name, m.content) for m in critic_llm.request_messages[1:]] == [
        ("user", "user", "Write about otters."), ("user", "writer", "A draft about otters.")]
    llm_spans = [c.children[0].span for c in root.children]
    assert [(s.llm.usage.input_tokens, s.llm.usage.output_tokens) for s in llm_spans] == expected_usage(llm)


def test_selector_group_chat_records_the_selector_and_the_chosen_agent(global_tracer: Tracer,
                                                                       client: Any) -> None:
    with ScriptedLLMServer(team_script) as llm:
        result = run_in_rollout("ro-selector", lambda: run_team(llm, True, "Review this.", 2))
    assert [m.source for m in result.messages] == ["user", "critic"]
    (root,) = read_tree(global_tracer, client, "ro-selector")
    assert shape(root) == ("AGENT", "episode", "runner", [
        ("LLM", "chat scripted", "SelectorGroupChatManager", []),
        ("AGENT", "invoke_agent critic", "critic", [("LLM", "chat scripted", "critic", [])]),
    ])
    selector = root.children[0].span.llm
    assert "role play" in selector.request_messages[-1].content and selector.response_messages[0].content == "critic"


def test_model_client_used_directly_lands_under_the_current_rollout(global_tracer: Tracer, client: Any,
                                                                    recorder: AutoGenRecorder) -> None:
    from autogen_core.models import UserMessage

    async def call(llm: ScriptedLLMServer) -> Any:
        model = model_client(llm)
        try:
            return await model.create([UserMessage(content="Say hi.", source="user")])
        finally:
            await model.close()

    with ScriptedLLMServer([Reply("hi")]) as llm:
        result = run_in_rollout("ro-direct", lambda: call(llm))
    assert result.content == "hi"
    assert recorder.flush(5.0)  # no agent run ended to drain the worker
    (root,) = read_tree(global_tracer, client, "ro-direct")
    assert shape(root) == ("AGENT", "episode", "runner", [("LLM", "chat scripted", "runner", [])])
    llm_span = root.children[0].span.llm
    assert [(m.role, m.content) for m in llm_span.request_messages] == [("user", "Say hi.")]
    assert (llm_span.usage.input_tokens, llm_span.usage.output_tokens) == expected_usage(llm)[0]


def test_outside_any_rollout_each_agent_run_gets_a_generated_rollout(exporter: SpanExporter, client: Any,
                                                                     lightning_server: Any) -> None:
    instrument(Tracer(exporter))
    with ScriptedLLMServer(calc_script) as llm:
        asyncio.run(run_calc(llm))
        asyncio.run(run_calc(llm))
    assert exporter.flush(10.0)
    rollouts = {spans_pb2.Span.FromString(raw).rollout_id for raw in lightning_server.store.iter_span_bytes()}
    assert len(rollouts) == 2
    one_run = SimpleNamespace(calls=llm.calls[:2])  # both runs sent the same requests
    assert expected_usage(one_run) == expected_usage(SimpleNamespace(calls=llm.calls[2:]))
    for rollout_id in rollouts:
        (agent,) = build_tree(client.query_spans(rollout_id))
        check_calc_tree(agent, one_run, "chat scripted", streamed=False)


def test_agent_completes_when_lightning_server_is_down(tmp_path: Path) -> None:
    with ScriptedLLMServer([]) as probe:
        dead = f"127.0.0.1:{probe.port}"  # a port that stopped listening: nothing answers gRPC there
    exporter = SpanExporter(ExporterConfig(endpoint=dead, spool_dir=str(tmp_path / "spool"), flush_interval_s=0.05,
                                           backoff_initial_s=0.05, backoff_max_s=0.2, rpc_timeout_s=0.5))
    try:
        rec = instrument(Tracer(exporter))
        with ScriptedLLMServer(calc_script) as llm:
            started = time.monotonic()
            result = asyncio.run(run_calc(llm))
            elapsed = time.monotonic() - started
        assert result.messages[-1].content == "2 + 3 = 5"
        assert elapsed < 10.0 and rec.errors == 0
        exporter.flush(5.0)
        stats = exporter.stats()
        assert stats.submitted == 5 and stats.acked == 0
        assert stats.spooled == 5 and not stats.dropped  # kept locally, nothing lost or raised
    finally:
        exporter.close(1.0)


def test_no_connection_leaves_localhost_and_nothing_is_printed(global_tracer: Tracer, capfd: Any) -> None:
    """A socket audit hook sees every Python-level connect; a root handler sees what logging shows."""
    seen: list[Any] = []
    active = [True]

    def audit(event: str, args: tuple) -> None:
        if active[0] and event == "socket.connect":
            seen.append(args[1])

    sys.addaudithook(audit)
    shown: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = shown.append  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(handler)  # like logging.basicConfig(): a root handler at the default WARNING level
    try:
        with ScriptedLLMServer(lambda r, a: team_script(r, a) if "calc" not in RequestView(r, a).system
                               else calc_script(r, a)) as llm:
            async def run() -> None:
                await run_calc(llm, stream=True)
                await run_team(llm, True, "Write.", 3)
            run_in_rollout("ro-net", run)
    finally:
        active[0] = False
        root.removeHandler(handler)
    assert global_tracer.sink.flush(10.0)
    hosts = {addr[0] for addr in seen if isinstance(addr, tuple)}
    assert hosts and hosts <= {"127.0.0.1", "::1", "localhost"}, hosts
    assert not [r for r in shown if r.name.startswith(("autogen", "agentlightning"))]
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_instrumentation_restores_logging_and_survives_bad_events(recorder: AutoGenRecorder) -> None:
    events = logging.getLogger(EVENT_LOGGER_NAME)
    assert events.isEnabledFor(logging.INFO)
    # Malformed events reach the recorder through AutoGen's own logger: swallowed and counted.
    events.info(LLMCallEvent(messages=[{"role": object()}], response={"choices": 5}, prompt_tokens=1,
                             completion_tokens=1))
    events.info(LLMStreamEndEvent(response=None, prompt_tokens="x", completion_tokens=None))  # type: ignore[arg-type]
    assert recorder.flush(5.0)  # mapping runs on the background worker
    assert recorder.errors >= 1
    recorder.on_start(object())
    recorder.on_end(object())
    level_before = logging.getLogger("autogen_agentchat.events").level
    uninstrument()
    assert not events.isEnabledFor(logging.INFO) and not events.filters
    assert logging.getLogger("autogen_agentchat.events").level == logging.NOTSET != level_before
    instrument()  # and back on for the fixture's uninstrument()


_SDK_PROGRAM = textwrap.dedent("""
    import asyncio, sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    trace.set_tracer_provider(provider)   # the application's own OpenTelemetry setup, done first

    from agentlightning.core.tracer import MemorySink, Tracer
    from agentlightning.core.span_tree import build_tree
    from agentlightning.integrations.autogen import instrument
    sink = MemorySink()
    instrument(Tracer(sink))
    sys.path.insert(0, sys.argv[1])
    from test_integration_autogen import ScriptedLLMServer, calc_script, run_calc
    with ScriptedLLMServer(calc_script) as llm:
        asyncio.run(run_calc(llm))
    (agent,) = build_tree(sink.spans)
    print([c.span.name for c in agent.children])
    print(sorted({s.name for s in exported.get_finished_spans() if s.name.startswith(("invoke", "execute"))}))
""")


def test_an_existing_opentelemetry_sdk_keeps_its_exporters() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OTEL_SDK_DISABLED"}
    out = subprocess.run([sys.executable, "-c", _SDK_PROGRAM, str(Path(__file__).parent)], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    ours, theirs = out.stdout.strip().splitlines()
    assert ours == str(["chat scripted", "execute_tool add", "execute_tool explode", "chat scripted"])
    assert theirs == str(["execute_tool add", "execute_tool explode", "invoke_agent calc"])


def test_import_pulls_in_no_other_framework() -> None:
    others = "{'langchain', 'langchain_core', 'langgraph', 'crewai', 'agents', 'litellm', 'torch', 'trl'}"
    code = ("import sys, agentlightning.integrations.autogen as m; "
            "print(sorted({n.split('.')[0] for n in sys.modules} & (" + others + " | {'autogen_core'}))); "
            "m.instrument(); "
            "print(sorted({n.split('.')[0] for n in sys.modules} & " + others + "))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "[]"]
