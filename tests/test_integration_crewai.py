"""CrewAI integration end to end: a real crew of two agents with real tools, CrewAI's own OpenAI provider
talking to the scripted server on 127.0.0.1, spans exported to a real Lightning server and read back."""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("crewai")

from agentlightning.core import api  # noqa: E402
from agentlightning.core.exporter import ExporterConfig, SpanExporter  # noqa: E402
from agentlightning.core.span_tree import build_tree  # noqa: E402
from agentlightning.core.tracer import Tracer  # noqa: E402
from agentlightning.testing.scripted_llm import (  # noqa: E402
    ScriptedLLMServer, route_by_system, tool_then_answer,
)
from agentlightning.v1 import spans_pb2  # noqa: E402

KIND = {spans_pb2.SPAN_KIND_AGENT: "AGENT", spans_pb2.SPAN_KIND_CHAIN: "CHAIN", spans_pb2.SPAN_KIND_LLM: "LLM",
        spans_pb2.SPAN_KIND_TOOL: "TOOL"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

# Every Python-level connection and name lookup in this process, while a test watches (audit hooks stay
# installed for the life of the process, so one hook, switched by a flag).
_net_lock = threading.Lock()
_net_seen: list[str] = []
_net_watching = [False]


def _audit(event: str, args: tuple) -> None:
    if not _net_watching[0]:
        return
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and address:
            with _net_lock:
                _net_seen.append(str(address[0]))
    elif event == "socket.getaddrinfo":
        with _net_lock:
            _net_seen.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture(scope="module", autouse=True)
def crewai_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """CrewAI writes under $HOME (credentials, kickoff outputs): keep it in a throwaway directory."""
    home = tmp_path_factory.mktemp("crewai-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("CREWAI_DISABLE_TELEMETRY", "true")
        mp.setenv("CREWAI_TRACING_ENABLED", "false")
        yield home


@pytest.fixture
def instrumented() -> Iterator[Any]:
    from agentlightning.integrations.crewai import instrument, uninstrument

    listener = instrument()
    try:
        yield listener
    finally:
        uninstrument()


def _script() -> Any:
    return route_by_system({
        "Mathematician": tool_then_answer("add", '{"a": 2, "b": 3}', "The sum is 5.",
                                          prompt_tokens=11, completion_tokens=3),
        "Divider": tool_then_answer("divide", '{"a": 1, "b": 0}', "Division by zero is undefined.",
                                    prompt_tokens=17, completion_tokens=5),
    })


def _crew(base_url: str, stream: bool = False) -> Any:
    from crewai import LLM, Agent, Crew, Process, Task
    from crewai.tools import tool

    @tool("add")
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @tool("divide")
    def divide(a: int, b: int) -> float:
        """Divide a by b."""
        return a / b

    llm = LLM(model="openai/scripted", base_url=base_url, api_key="dummy", stream=stream)
    mathematician = Agent(role="Mathematician", goal="add numbers", backstory="Good at sums.",
                          tools=[add], llm=llm, verbose=False)
    divider = Agent(role="Divider", goal="divide numbers", backstory="Good at quotients.",
                    tools=[divide], llm=llm, verbose=False)
    tasks = [Task(description="Add 2 and 3.", expected_output="a number", agent=mathematician),
             Task(description="Divide 1 by 0.", expected_output="a number", agent=divider)]
    return Crew(agents=[mathematician, divider], tasks=tasks, process=Process.sequential, verbose=False)


def _flush_crewai() -> None:
    from crewai.events import crewai_event_bus

    crewai_event_bus.flush()


def _shape(nodes: list, depth: int = 0) -> list[tuple]:
    out = []
    for node in nodes:
        s = node.span
        out.append((depth, KIND.get(s.kind, str(s.kind)), s.name, s.agent_name))
        out.extend(_shape(node.children, depth + 1))
    return out


def _find(spans: list, kind: int, agent: str) -> list:
    return sorted((s for s in spans if s.kind == kind and s.agent_name == agent),
                  key=lambda s: (s.start_time_unix_nano, s.sequence))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_crew_of_two_agents_exact_tree(global_tracer: Tracer, client: Any, instrumented: Any, stream: bool) -> None:
    rollout_id = f"crew-{'stream' if stream else 'plain'}"
    with ScriptedLLMServer(_script()) as llm_server:
        crew = _crew(llm_server.base_url, stream=stream)
        with _watch_network() as seen:
            with api.rollout(rollout_id, agent_name="runner"):
                output = crew.kickoff()
            _flush_crewai()
        assert not llm_server.errors
    assert "undefined" in str(output)
    assert global_tracer.sink.flush(10)
    spans = client.query_spans(rollout_id)
    roots = build_tree(spans)

    assert _shape(roots) == [
        (0, "AGENT", "rollout", "runner"),
        (1, "AGENT", "crew", "crew"),
        (2, "CHAIN", "Add 2 and 3.", "Mathematician"),
        (3, "AGENT", "Mathematician", "Mathematician"),
        (4, "LLM", "chat scripted", "Mathematician"),
        (4, "TOOL", "add", "Mathematician"),
        (4, "LLM", "chat scripted", "Mathematician"),
        (2, "CHAIN", "Divide 1 by 0.", "Divider"),
        (3, "AGENT", "Divider", "Divider"),
        (4, "LLM", "chat scripted", "Divider"),
        (4, "TOOL", "divide", "Divider"),
        (4, "LLM", "chat scripted", "Divider"),
    ]
    assert all(s.rollout_id == rollout_id for s in spans)
    assert not any(node.orphan for node in roots)

    for agent, tool_name, args, (prompt, completion) in (
            ("Mathematician", "add", '{"a": 2, "b": 3}', (11, 3)),
            ("Divider", "divide", '{"a": 1, "b": 0}', (17, 5))):
        first, second = _find(spans, spans_pb2.SPAN_KIND_LLM, agent)
        (tool,) = _find(spans, spans_pb2.SPAN_KIND_TOOL, agent)
        for llm in (first, second):
            assert (llm.llm.usage.input_tokens, llm.llm.usage.output_tokens, llm.llm.usage.total_tokens) == (
                prompt, completion, prompt + completion)
            assert llm.llm.request_model == "scripted"
            assert llm.llm.streamed is stream
            assert [t.name for t in llm.llm.tools] == [tool_name]
            assert llm.llm.request_messages[0].role == "system"
            assert agent in llm.llm.request_messages[0].content
        # The first call asks for the tool; the tool span answers exactly that call; the second call sees it.
        (requested,) = first.llm.response_messages[0].tool_calls
        assert (requested.name, requested.arguments) == (tool_name, args)
        assert list(first.llm.finish_reasons) == ["tool_calls"]
        assert (tool.tool.name, tool.tool.call_id, tool.tool.arguments) == (tool_name, requested.id, args)
        assert tool.tool.arguments_valid
        assert first.end_time_unix_nano <= tool.start_time_unix_nano <= tool.end_time_unix_nano
        assert tool.end_time_unix_nano <= second.start_time_unix_nano
        tool_message = second.llm.request_messages[-1]
        assert (tool_message.role, tool_message.tool_call_id) == ("tool", requested.id)
        assert list(second.llm.finish_reasons) == ["stop"]

    (add,) = _find(spans, spans_pb2.SPAN_KIND_TOOL, "Mathematician")
    assert (add.tool.outcome, add.tool.result, add.status.code) == (
        spans_pb2.TOOL_OUTCOME_OK, "5", spans_pb2.STATUS_CODE_OK)
    (divide,) = _find(spans, spans_pb2.SPAN_KIND_TOOL, "Divider")
    assert divide.tool.outcome == spans_pb2.TOOL_OUTCOME_ERROR
    assert divide.tool.error_message == "division by zero"
    assert (divide.status.code, divide.status.error_type) == (spans_pb2.STATUS_CODE_ERROR, "ZeroDivisionError")
    (_, second_divider) = _find(spans, spans_pb2.SPAN_KIND_LLM, "Divider")
    assert second_divider.llm.response_messages[0].content == "Division by zero is undefined."

    crew_span = next(s for s in spans if s.name == "crew")
    assert crew_span.attributes["crewai.crew.process"].string_value == "sequential"
    assert crew_span.attributes["crewai.crew.output"].string_value == "Division by zero is undefined."
    assert instrumented.linker.pending() == 0
    assert instrumented.linker.errors == 0
    # nothing kept per call once the crew is done
    assert instrumented.calls.empty() and not (instrumented._llm_starts or instrumented._streams)
    assert seen and set(seen) <= LOCAL_HOSTS, seen


def test_concurrent_crews_in_threads_each_keep_their_own_tree(global_tracer: Tracer, client: Any,
                                                               instrumented: Any) -> None:
    """Three crews kicked off at once from three threads, each inside its own rollout: CrewAI's handler
    pool interleaves all their events, yet every rollout gets exactly its own crew's tree."""
    errors: list[BaseException] = []
    with ScriptedLLMServer(_script()) as llm_server:
        crews = [_crew(llm_server.base_url) for _ in range(3)]
        barrier = threading.Barrier(3)

        def run(index: int) -> None:
            try:
                barrier.wait()
                with api.rollout(f"crew-thread-{index}", agent_name=f"runner-{index}"):
                    crews[index].kickoff()
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        _flush_crewai()
    assert not errors
    assert global_tracer.sink.flush(10)
    for index in range(3):
        spans = client.query_spans(f"crew-thread-{index}")
        roots = build_tree(spans)
        assert [(d, k, n) for d, k, n, _ in _shape(roots)] == [
            (0, "AGENT", "rollout"), (1, "AGENT", "crew"),
            (2, "CHAIN", "Add 2 and 3."), (3, "AGENT", "Mathematician"),
            (4, "LLM", "chat scripted"), (4, "TOOL", "add"), (4, "LLM", "chat scripted"),
            (2, "CHAIN", "Divide 1 by 0."), (3, "AGENT", "Divider"),
            (4, "LLM", "chat scripted"), (4, "TOOL", "divide"), (4, "LLM", "chat scripted")]
        assert roots[0].span.agent_name == f"runner-{index}"
    assert instrumented.linker.pending() == 0


def test_crew_outside_any_rollout_gets_a_generated_one(global_tracer: Tracer, client: Any, db_path: Path,
                                                       instrumented: Any) -> None:
    with ScriptedLLMServer(_script()) as llm_server:
        _crew(llm_server.base_url).kickoff()
        _flush_crewai()
    assert global_tracer.sink.flush(10)
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:  # generated ids are in no queue
        (rollout_id,), = conn.execute("SELECT DISTINCT rollout_id FROM spans").fetchall()
    spans = client.query_spans(rollout_id)
    roots = build_tree(spans)
    assert len(roots) == 1 and len(spans) == 11
    assert [(d, k, n) for d, k, n, _ in _shape(roots)][:3] == [
        (0, "AGENT", "crew"), (1, "CHAIN", "Add 2 and 3."), (2, "AGENT", "Mathematician")]


def test_invalid_arguments_and_unknown_tool_are_classified(global_tracer: Tracer, client: Any,
                                                          instrumented: Any) -> None:
    """Arguments that are not JSON never reach the tool (CrewAI reports a failure with no tool run): still a
    TOOL span, INVALID_ARGUMENTS, in order; a tool the crew lacks is NOT_FOUND."""
    script = route_by_system({
        "Mathematician": tool_then_answer("add", '{"a": 2, "b":', "I could not add."),
        "Divider": tool_then_answer("multiply", '{"a": 1, "b": 0}', "No such tool."),
    })
    with ScriptedLLMServer(script) as llm_server:
        with api.rollout("crew-bad-calls", agent_name="runner"):
            _crew(llm_server.base_url).kickoff()
        _flush_crewai()
    assert global_tracer.sink.flush(10)
    spans = client.query_spans("crew-bad-calls")
    shape = _shape(build_tree(spans))
    assert [row[1:3] for row in shape if row[0] == 4] == [
        ("LLM", "chat scripted"), ("TOOL", "add"), ("LLM", "chat scripted"),
        ("LLM", "chat scripted"), ("TOOL", "multiply"), ("LLM", "chat scripted")]
    (add,) = _find(spans, spans_pb2.SPAN_KIND_TOOL, "Mathematician")
    first, _ = _find(spans, spans_pb2.SPAN_KIND_LLM, "Mathematician")
    assert add.tool.outcome == spans_pb2.TOOL_OUTCOME_INVALID_ARGUMENTS
    assert (add.tool.arguments, add.tool.arguments_valid) == ('{"a": 2, "b":', False)
    assert add.tool.call_id == first.llm.response_messages[0].tool_calls[0].id
    assert (add.status.code, add.status.error_type) == (spans_pb2.STATUS_CODE_ERROR, "invalid_input")
    (multiply,) = _find(spans, spans_pb2.SPAN_KIND_TOOL, "Divider")
    assert multiply.tool.outcome == spans_pb2.TOOL_OUTCOME_NOT_FOUND
    assert multiply.status.error_type == "unknown_tool"
    assert instrumented.linker.pending() == 0


def test_a_failing_llm_call_marks_llm_agent_task_and_crew(global_tracer: Tracer, client: Any,
                                                          instrumented: Any) -> None:
    from agentlightning.testing.scripted_llm import Reply

    script = route_by_system({
        "Mathematician": tool_then_answer("add", '{"a": 2, "b": 3}', "The sum is 5."),
        "Divider": Reply(http_status=500, error_message="model down"),
    })
    with ScriptedLLMServer(script) as llm_server:
        crew = _crew(llm_server.base_url)
        for agent in crew.agents:
            agent.max_retry_limit = 0
        with api.rollout("crew-llm-fails", agent_name="runner"):
            with pytest.raises(Exception, match="model down"):
                crew.kickoff()
        _flush_crewai()
    assert global_tracer.sink.flush(10)
    spans = client.query_spans("crew-llm-fails")
    failed = {(KIND[s.kind], s.name) for s in spans if s.status.code == spans_pb2.STATUS_CODE_ERROR}
    assert failed == {("LLM", "chat scripted"), ("AGENT", "Divider"), ("CHAIN", "Divide 1 by 0."),
                      ("AGENT", "crew")}
    (llm,) = _find(spans, spans_pb2.SPAN_KIND_LLM, "Divider")
    assert "model down" in llm.status.message
    assert all(s.end_time_unix_nano for s in spans)
    assert instrumented.linker.pending() == 0


def test_crew_completes_when_lightning_server_is_down(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    from agentlightning.integrations.crewai import instrument, uninstrument

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    exporter = SpanExporter(ExporterConfig(endpoint=dead, spool_dir=str(tmp_path / "spool"), flush_interval_s=0.05,
                                           backoff_initial_s=0.05, backoff_max_s=0.2))
    instrument(Tracer(exporter))
    try:
        with ScriptedLLMServer(_script()) as llm_server:
            started = time.monotonic()
            output = _crew(llm_server.base_url).kickoff()
            elapsed = time.monotonic() - started
            _flush_crewai()
        assert "undefined" in str(output)
        assert elapsed < 60
        stats = exporter.stats()
        assert stats.submitted == 11  # every span was still recorded, then spooled for later
    finally:
        uninstrument()
        exporter.close(timeout_s=2)
    printed = capfd.readouterr()
    assert "agentlightning" not in printed.out + printed.err


def test_instrument_is_idempotent_and_uninstrument_stops_recording(tracer: Tracer) -> None:
    from crewai.events import crewai_event_bus
    from crewai.events.types.llm_events import LLMCallStartedEvent

    from agentlightning.integrations.crewai import instrument, uninstrument

    listener = instrument(tracer)
    try:
        assert instrument() is listener
        handlers = crewai_event_bus._sync_handlers[LLMCallStartedEvent]
        assert sum(1 for h in handlers if _owner(h) is listener) == 1
    finally:
        uninstrument()
    assert not any(_owner(h) is listener for h in crewai_event_bus._sync_handlers.get(LLMCallStartedEvent, ()))


def _owner(handler: Any) -> Any:
    """The listener a registered handler belongs to (handlers wrap the listener's methods)."""
    return getattr(getattr(handler, "__wrapped__", handler), "__self__", None)


def test_importing_the_integration_imports_no_other_framework() -> None:
    code = (
        "import sys, json\n"
        "import agentlightning.integrations.crewai as c\n"
        "before = 'crewai' in sys.modules\n"
        "c.instrument()\n"
        "others = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('langchain', 'langchain_core', 'langgraph', 'autogen', 'autogen_core', 'autogen_agentchat', "
        "'autogen_ext', 'agents', 'litellm'))\n"
        "print(json.dumps([before, 'crewai' in sys.modules, others]))\n"
    )
    env = dict(os.environ, CREWAI_DISABLE_TELEMETRY="true", CREWAI_TRACING_ENABLED="false")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    before, after, others = json.loads(result.stdout.strip().splitlines()[-1])
    assert (before, after, others) == (False, True, [])


class _watch_network:
    """Record the hosts this process connects to or resolves while the block runs."""

    def __enter__(self) -> list[str]:
        with _net_lock:
            _net_seen.clear()
        _net_watching[0] = True
        return _net_seen

    def __exit__(self, *exc: Any) -> None:
        _net_watching[0] = False
