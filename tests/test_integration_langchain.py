"""LangChain/LangGraph integration end to end: a real two-agent LangGraph app (a prebuilt ReAct researcher with
three real tools, and a streaming writer), real ChatOpenAI against the scripted server, spans exported to a
real Lightning server and read back."""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("langchain_openai")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.messages import SystemMessage  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402
from langchain_core.tools import ToolException, tool  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402
from langgraph.graph import END, START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import ToolNode  # noqa: E402

from agentlightning.core import api  # noqa: E402
from agentlightning.core import context as ctx  # noqa: E402
from agentlightning.core.deferred import drain_all  # noqa: E402
from agentlightning.core.exporter import ExporterConfig, SpanExporter  # noqa: E402
from agentlightning.core.kinds import SpanKind, TokenProvenance, ToolOutcome  # noqa: E402
from agentlightning.core.span_tree import build_tree  # noqa: E402
from agentlightning.core.tracer import Tracer  # noqa: E402
from agentlightning.integrations.langchain import LightningCallbackHandler, instrument, uninstrument  # noqa: E402
from agentlightning.testing.scripted_llm import Reply, RequestView, ScriptedLLMServer, ToolCall, route_by_system  # noqa: E402
from agentlightning.v1 import spans_pb2  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langgraph.prebuilt import create_react_agent  # noqa: E402


# -- the agent under test ------------------------------------------------------------------------
@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def divide(a: int, b: int) -> float:
    """Divide a by b."""
    return a / b  # raises on b=0: ToolNode turns it into ToolMessage(status="error")


@tool
def lookup(key: str) -> str:
    """Look a constant up."""
    raise ToolException(f"no entry for {key}")


lookup.handle_tool_error = True  # LangChain returns the error as the tool's message

PLAN = [ToolCall("add", '{"a": 2, "b": 3}'), ToolCall("divide", '{"a": 1, "b": 0}'),
        ToolCall("lookup", '{"key": "pi"}')]


def researcher_script(request: dict, api_name: str) -> Reply:
    done = len(RequestView(request, api_name).tool_results)
    if done < len(PLAN):
        return Reply(tool_calls=[PLAN[done]], prompt_tokens=10 + done, completion_tokens=4)
    return Reply("sum is 5", prompt_tokens=20, completion_tokens=3)


SCRIPT = route_by_system({"researcher": researcher_script,
                          "writer": Reply("Report: the sum is 5.", prompt_tokens=30, completion_tokens=6)})


def build_graph(base_url: str):
    llm = ChatOpenAI(model="scripted-model", base_url=base_url, api_key="dummy", temperature=0.2, max_retries=0)
    writer_llm = ChatOpenAI(model="scripted-model", base_url=base_url, api_key="dummy", streaming=True,
                            stream_usage=True, max_retries=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        researcher = create_react_agent(llm, ToolNode([add, divide, lookup], handle_tool_errors=True),
                                        prompt="You are the researcher.")

    def writer(state: MessagesState) -> dict:
        return {"messages": [writer_llm.invoke([SystemMessage("You are the writer."), *state["messages"][-1:]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("researcher", researcher)
    graph.add_node("writer", writer)
    graph.add_edge(START, "researcher")
    graph.add_edge("researcher", "writer")
    graph.add_edge("writer", END)
    return graph.compile()


INPUT = {"messages": [("user", "What is 2+3?")]}
FINAL = "Report: the sum is 5."


# -- reading the tree back -----------------------------------------------------------------------
def shape(node) -> tuple:
    s = node.span
    return (SpanKind(s.kind).name, s.name, s.agent_name, [shape(c) for c in node.children])


def step(tool_name: str) -> list:
    return [("CHAIN", "agent", "researcher", [("LLM", "chat scripted-model", "researcher", [])]),
            ("CHAIN", "tools", "researcher", [("TOOL", tool_name, "researcher", [])])]


GRAPH_SHAPE = ("CHAIN", "LangGraph", "", [
    ("CHAIN", "researcher", "researcher",
     step("add") + step("divide") + step("lookup")
     + [("CHAIN", "agent", "researcher", [("LLM", "chat scripted-model", "researcher", [])])]),
    ("CHAIN", "writer", "writer", [("LLM", "chat scripted-model", "writer", [])]),
])


def read_back(tracer: Tracer, client, rollout_id: str) -> list[spans_pb2.Span]:
    assert drain_all(10)  # spans handed to background workers first, as agentlightning.flush() does
    assert tracer.sink.flush(10)
    return client.query_spans(rollout_id)


def of_kind(spans, kind) -> list[spans_pb2.Span]:
    return sorted((s for s in spans if s.kind == kind), key=lambda s: s.sequence)


def check_graph_spans(spans: list[spans_pb2.Span], rollout_id: str) -> None:
    roots = build_tree(spans)
    assert [shape(r) for r in roots] == [("AGENT", "rollout", "", [GRAPH_SHAPE])]
    assert {s.rollout_id for s in spans} == {rollout_id}
    assert all(s.status.code != spans_pb2.STATUS_CODE_UNSET for s in spans)

    tools = of_kind(spans, SpanKind.TOOL)
    assert [(t.tool.name, t.tool.outcome) for t in tools] == [
        ("add", ToolOutcome.OK), ("divide", ToolOutcome.ERROR), ("lookup", ToolOutcome.ERROR)]
    assert [t.status.code for t in tools] == [spans_pb2.STATUS_CODE_OK, spans_pb2.STATUS_CODE_ERROR,
                                              spans_pb2.STATUS_CODE_ERROR]
    assert tools[0].tool.result == "5" and tools[0].tool.arguments == '{"a": 2, "b": 3}'
    assert tools[0].tool.arguments_valid and '"integer"' in tools[0].tool.parameters_json_schema
    assert tools[1].tool.error_message == "division by zero" and tools[1].status.error_type == "ZeroDivisionError"
    assert "no entry for pi" in tools[2].tool.error_message  # returned as ToolMessage(status="error")

    llms = of_kind(spans, SpanKind.LLM)
    assert [(s.llm.usage.input_tokens, s.llm.usage.output_tokens, s.llm.usage.total_tokens) for s in llms] == [
        (10, 4, 14), (11, 4, 15), (12, 4, 16), (20, 3, 23), (30, 6, 36)]
    assert [s.llm.streamed for s in llms] == [False] * 4 + [True]
    assert [list(s.llm.finish_reasons) for s in llms] == [["tool_calls"]] * 3 + [["stop"]] * 2
    # Each tool span's call id is the one the preceding LLM call requested.
    requested = [m.tool_calls[0] for s in llms[:3] for m in s.llm.response_messages]
    assert [(c.name, c.id) for c in requested] == [(t.tool.name, t.tool.call_id) for t in tools]
    assert [c.arguments for c in requested] == [c.arguments for c in PLAN]
    first, last = llms[0].llm, llms[3].llm
    assert [t.name for t in first.tools] == ["add", "divide", "lookup"]
    assert first.sampling.temperature == pytest.approx(0.2) and first.request_model == "scripted-model"
    assert [(m.role, m.content) for m in first.request_messages] == [
        ("system", "You are the researcher."), ("user", "What is 2+3?")]
    assert [m.role for m in last.request_messages] == ["system", "user"] + ["assistant", "tool"] * 3
    assert last.request_messages[3].content == "5" and last.request_messages[3].tool_call_id == tools[0].tool.call_id
    assert [m.content for m in last.response_messages] == ["sum is 5"]
    assert [m.content for m in llms[4].llm.response_messages] == [FINAL]
    assert llms[4].attributes["gen_ai.response.chunks"].int_value >= 5
    for s in llms:  # the scripted server sent no token ids here: provenance stays unspecified
        assert s.llm.token_provenance == spans_pb2.TOKEN_PROVENANCE_UNSPECIFIED and not s.llm.completion_token_ids


@pytest.fixture
def llm_server():
    with ScriptedLLMServer(SCRIPT) as server:
        yield server


# -- tests ---------------------------------------------------------------------------------------
def test_langgraph_two_agents_tree_via_callbacks(global_tracer, client, llm_server) -> None:
    handler = LightningCallbackHandler()
    with api.rollout("lc-callbacks-1") as rollout:
        out = build_graph(llm_server.base_url).invoke(INPUT, config={"callbacks": [handler]})
    assert out["messages"][-1].content == FINAL
    assert handler.errors == 0 and handler.open_runs() == 0
    check_graph_spans(read_back(global_tracer, client, rollout.rollout_id), rollout.rollout_id)


def test_chains_none_flat_tree_keeps_agent_names(global_tracer, client, llm_server) -> None:
    handler = LightningCallbackHandler(chains="none")
    with api.rollout("lc-flat") as rollout:
        out = build_graph(llm_server.base_url).invoke(INPUT, config={"callbacks": [handler]})
    assert out["messages"][-1].content == FINAL and handler.open_runs() == 0
    [root] = build_tree(read_back(global_tracer, client, rollout.rollout_id))
    llm = ("LLM", "chat scripted-model")
    assert [(SpanKind(c.span.kind).name, c.span.name, c.span.agent_name) for c in root.children] == [
        (*llm, "researcher"), ("TOOL", "add", "researcher"), (*llm, "researcher"), ("TOOL", "divide", "researcher"),
        (*llm, "researcher"), ("TOOL", "lookup", "researcher"), (*llm, "researcher"), (*llm, "writer")]
    assert [c.span.tool.outcome for c in root.children if c.span.kind == SpanKind.TOOL] == [
        ToolOutcome.OK, ToolOutcome.ERROR, ToolOutcome.ERROR]


def test_instrument_records_async_runs_once(global_tracer, client, llm_server) -> None:
    handler = instrument()
    try:
        graph = build_graph(llm_server.base_url)

        async def run() -> dict:
            with api.rollout("lc-instrumented-1"):
                # An explicit handler as well: LangChain's hook must not add the global one twice.
                return await graph.ainvoke(INPUT, config={"callbacks": [handler]})

        out = asyncio.run(run())
        assert out["messages"][-1].content == FINAL
        check_graph_spans(read_back(global_tracer, client, "lc-instrumented-1"), "lc-instrumented-1")

        with api.rollout("lc-instrumented-2"):  # no callbacks passed at all
            graph.invoke(INPUT)
        check_graph_spans(read_back(global_tracer, client, "lc-instrumented-2"), "lc-instrumented-2")
        assert handler.errors == 0 and handler.open_runs() == 0
    finally:
        uninstrument()
    with api.rollout("lc-uninstrumented"):
        graph.invoke(INPUT)
    assert [s.name for s in read_back(global_tracer, client, "lc-uninstrumented")] == ["rollout"]


def test_outside_any_rollout_spans_get_a_generated_rollout(exporter, client, llm_server) -> None:
    seen: list[spans_pb2.Span] = []

    class Tee:  # the real exporter, plus a note of what went through it
        def submit(self, span: spans_pb2.Span) -> bool:
            seen.append(span)
            return exporter.submit(span)

        def flush(self, timeout_s: float) -> bool:
            return exporter.flush(timeout_s)

    tracer = Tracer(Tee())
    graph = build_graph(llm_server.base_url)
    graph.invoke(INPUT, config={"callbacks": [LightningCallbackHandler(tracer)]})
    graph.invoke(INPUT, config={"callbacks": [LightningCallbackHandler(tracer)]})
    assert drain_all(5.0)  # a run's spans are mapped in the background once it ends; flush() drains them
    rollouts = sorted({s.rollout_id for s in seen})
    assert len(rollouts) == 2  # one live rollout per top-level invocation
    for rollout_id in rollouts:
        spans = read_back(tracer, client, rollout_id)
        assert [shape(r) for r in build_tree(spans)] == [GRAPH_SHAPE]
        root = [s for s in spans if s.name == "LangGraph"][0]
        assert root.parent_span_id == b""


def test_agent_runs_unchanged_when_lightning_server_is_down(tmp_path: Path, llm_server) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    exporter = SpanExporter(ExporterConfig(endpoint=f"127.0.0.1:{dead}", spool_dir=str(tmp_path / "spool"),
                                           flush_interval_s=0.05, backoff_initial_s=0.05, backoff_max_s=0.2))
    try:
        graph = build_graph(llm_server.base_url)
        plain = graph.invoke(INPUT)
        handler = LightningCallbackHandler(Tracer(exporter))
        started = time.monotonic()
        traced = graph.invoke(INPUT, config={"callbacks": [handler]})
        elapsed = time.monotonic() - started
        assert [m.content for m in traced["messages"]] == [m.content for m in plain["messages"]]
        assert elapsed < 5.0
        assert handler.errors == 0 and handler.open_runs() == 0
        assert handler.flush(5.0)
        stats = exporter.stats()
        assert stats.submitted == 18 and stats.acked == 0
    finally:
        exporter.close(timeout_s=2)


def test_exact_tokens_logprobs_and_policy_version(tracer, client) -> None:
    # vLLM-style: logprob tokens rendered as "token_id:N" (return_tokens_as_token_ids), version in a header.
    reply = Reply("ok then", tokens=["token_id:11", "token_id:12"], logprobs=[-0.25, -1.5], model_version="policy-v3",
                  prompt_tokens=5, completion_tokens=2)
    with ScriptedLLMServer([reply, reply]) as server:
        handler = LightningCallbackHandler(tracer, agent_name="solo")
        with ctx.use_rollout(ctx.new_rollout_context("lc-exact")):
            for streaming in (False, True):
                llm = ChatOpenAI(model="m", base_url=server.base_url, api_key="dummy", logprobs=True,
                                 include_response_headers=True, streaming=streaming, max_retries=0)
                assert llm.invoke("hi", config={"callbacks": [handler]}).content == "ok then"
    llms = read_back(tracer, client, "lc-exact")
    assert len(llms) == 2
    for span in llms:
        assert span.agent_name == "solo" and span.parent_span_id == b""
        assert span.llm.token_provenance == TokenProvenance.EXACT
        assert list(span.llm.completion_token_ids) == [11, 12]
        assert list(span.llm.completion_logprobs) == [-0.25, -1.5]
        assert span.llm.policy_version == "policy-v3"
    assert [s.llm.streamed for s in sorted(llms, key=lambda s: s.sequence)] == [False, True]


class _Docs(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager=None) -> list[Document]:
        return [Document("paris is in france", id="d1", metadata={"score": 0.9}), Document("other", id="d2")]


def test_retriever_chain_and_llm_error(tracer, client) -> None:
    fail = Reply(http_status=500, error_message="model crashed")
    with ScriptedLLMServer([Reply("Paris", prompt_tokens=7, completion_tokens=1), fail]) as server:
        llm = ChatOpenAI(model="m", base_url=server.base_url, api_key="dummy", max_retries=0)
        chain = _Docs() | RunnableLambda(lambda docs: docs[0].page_content) | llm
        handler = LightningCallbackHandler(tracer, agent_name="rag")
        with ctx.use_rollout(ctx.new_rollout_context("lc-rag")):
            assert chain.invoke("capital of france?", config={"callbacks": [handler]}).content == "Paris"
            with pytest.raises(Exception, match="model crashed"):
                chain.invoke("again", config={"callbacks": [handler]})
    assert handler.open_runs() == 0
    spans = read_back(tracer, client, "lc-rag")
    roots = build_tree(spans)
    assert [shape(r) for r in roots] == [
        ("CHAIN", "RunnableSequence", "rag", [("RETRIEVER", "_Docs", "rag", []), ("LLM", "chat m", "rag", [])])] * 2
    ok, failed = roots
    retriever = ok.children[0].span.retriever
    assert retriever.query == "capital of france?"
    assert [(d.id, d.content, d.score) for d in retriever.documents] == [
        ("d1", "paris is in france", pytest.approx(0.9)), ("d2", "other", 0.0)]
    assert ok.children[1].span.llm.usage.input_tokens == 7
    assert failed.span.status.code == failed.children[1].span.status.code == spans_pb2.STATUS_CODE_ERROR
    assert "model crashed" in failed.children[1].span.status.message


@pytest.mark.parametrize("defer", [False, True])
def test_mapping_bug_is_swallowed_and_counted(defer: bool) -> None:
    import uuid

    from agentlightning.core.tracer import MemorySink

    tracer = Tracer(MemorySink())
    handler = LightningCallbackHandler(tracer, defer=defer)
    before = handler.errors
    run_id = uuid.uuid4()
    handler.on_chat_model_start({}, [[("user", "hi")]], run_id=run_id, invocation_params={"tools": 5})
    handler.on_llm_end(object(), run_id=run_id)  # not an LLMResult: recorded as far as it goes
    assert handler.flush(5)
    # Iterating 5 failed inside our mapping: counted, logged, nothing reached the caller.
    assert handler.errors == before + 1 and handler.open_runs() == 0
    [span] = tracer.sink.spans
    assert span.kind == SpanKind.LLM and span.llm.request_messages[0].content == "hi"
    assert span.status.code == spans_pb2.STATUS_CODE_OK


def test_text_completion_llm(tracer, client) -> None:
    from langchain_core.language_models.fake import FakeListLLM

    handler = LightningCallbackHandler(tracer, agent_name="completer")
    with ctx.use_rollout(ctx.new_rollout_context("lc-text")):
        assert FakeListLLM(responses=["42"]).invoke("6*7=", config={"callbacks": [handler]}) == "42"
    [span] = read_back(tracer, client, "lc-text")
    assert span.kind == SpanKind.LLM and span.llm.operation == "text_completion" and span.agent_name == "completer"
    assert [(m.role, m.content) for m in span.llm.request_messages] == [("user", "6*7=")]
    assert [m.content for m in span.llm.response_messages] == ["42"]


def test_import_pulls_in_no_other_framework() -> None:
    code = ("import sys, agentlightning.integrations.langchain\n"
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'crewai', 'autogen_core', 'autogen_agentchat',"
            " 'autogen_ext', 'agents', 'openai', 'langchain_openai', 'torch', 'transformers'})\n"
            "print(','.join(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
