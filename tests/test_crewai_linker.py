"""The CrewAI linker builds the same span tree whatever order (and threads) the events are handled in.

CrewAI runs sync handlers on a thread pool, so starts, ends and children can arrive in any order. No
CrewAI needed: the linker works on event ids only."""
from __future__ import annotations

import contextvars
import random
import threading
from typing import Callable, Optional

import pytest

from agentlightning.core import context as ctx
from agentlightning.core.tracer import ActiveSpan, MemorySink, Tracer
from agentlightning.integrations.crewai.linker import SpanLinker
from agentlightning.v1 import spans_pb2

AGENT, CHAIN, LLM, TOOL = (spans_pb2.SPAN_KIND_AGENT, spans_pb2.SPAN_KIND_CHAIN, spans_pb2.SPAN_KIND_LLM,
                           spans_pb2.SPAN_KIND_TOOL)

# (event id, parent event id, span name or None for a pass-through scope, kind, agent name, fallback keys, keys)
TREE = [
    ("crew", None, "crew", AGENT, "crew", (), ()),
    ("task1", "crew", "task one", CHAIN, "A", (), (("task", "t1"),)),
    ("agent1", "task1", "A", AGENT, "A", (), (("agent", "a", "t1"),)),
    ("flow1", "agent1", None, 0, None, (), ()),
    ("llm1", "flow1", "llm 1", LLM, None, (("agent", "a", "t1"),), ()),
    ("tool1", "flow1", "tool 1", TOOL, None, (("agent", "a", "t1"),), ()),
    ("llm2", "flow1", "llm 2", LLM, None, (("agent", "a", "t1"),), ()),
    ("task2", "crew", "task two", CHAIN, "B", (), (("task", "t2"),)),
    ("agent2", "task2", "B", AGENT, "B", (), (("agent", "b", "t2"),)),
    ("flow2", "agent2", None, 0, None, (), ()),
    ("llm3", "flow2", "llm 3", LLM, None, (("agent", "b", "t2"),), ()),
    ("tool2", "flow2", "tool 2", TOOL, None, (("agent", "b", "t2"),), ()),
    # a delegation: an agent run inside a tool
    ("agent3", "tool2", "C", AGENT, "C", (), (("agent", "c", "t2"),)),
    ("llm4", "agent3", "llm 4", LLM, None, (("agent", "c", "t2"),), ()),
    ("llm5", "flow2", "llm 5", LLM, None, (("agent", "b", "t2"),), ()),
]
EXPECTED = {  # span name -> (parent span name, agent name)
    "crew": ("rollout-root", "crew"), "task one": ("crew", "A"), "A": ("task one", "A"),
    "llm 1": ("A", "A"), "tool 1": ("A", "A"), "llm 2": ("A", "A"), "task two": ("crew", "B"),
    "B": ("task two", "B"), "llm 3": ("B", "B"), "tool 2": ("B", "B"), "C": ("tool 2", "C"),
    "llm 4": ("C", "C"), "llm 5": ("B", "B"),
}


def _builder(tracer: Tracer, name: Optional[str], kind: int, agent: Optional[str], start: int
             ) -> Optional[Callable[[ActiveSpan], ActiveSpan]]:
    if name is None:
        return None  # a pass-through scope
    return lambda parent: tracer.start_span(name, kind, agent_name=agent, parent=parent, start_time_ns=start)


def _operations(linker: SpanLinker, tracer: Tracer) -> list[Callable[[], None]]:
    ops = []
    for index, (event_id, parent_id, name, kind, agent, fallback, keys) in enumerate(TREE):
        builder = _builder(tracer, name, kind, agent, 1_000 + index)
        ops.append(lambda e=event_id, p=parent_id, b=builder, f=fallback, k=keys:
                   linker.start(e, p, b, keys=k, fallback=f))
        ops.append(lambda e=event_id, i=index: linker.end(e, None, 5_000 - i))
    return ops


def _check(sink: MemorySink, rollout: ctx.RolloutContext, root: ActiveSpan) -> None:
    by_id = {s.span_id: s for s in sink.spans}
    names = {root.span_id: "rollout-root"}
    names.update({s.span_id: s.name for s in sink.spans})
    got = {s.name: (names.get(s.parent_span_id, "?"), s.agent_name) for s in sink.spans}
    assert got == EXPECTED
    assert len(by_id) == len(sink.spans) == len(EXPECTED)
    assert {s.rollout_id for s in sink.spans} == {rollout.rollout_id}


def _run(order: list[Callable[[], None]]) -> None:
    for op in order:
        op()


@pytest.mark.parametrize("seeds", [range(0, 250), range(250, 500)], ids=["seeds0-249", "seeds250-499"])
def test_any_handling_order_gives_the_same_tree(seeds: range) -> None:
    for seed in seeds:
        _one_shuffled_run(seed)


def _one_shuffled_run(seed: int) -> None:
    sink = MemorySink()
    tracer = Tracer(sink)
    linker = SpanLinker(lambda: tracer)
    rollout = ctx.new_rollout_context()
    with ctx.use_rollout(rollout):
        root = tracer.start_span("rollout", AGENT)
        with ctx.use_span(root):
            # Starts must be handled in the kickoff's context (roots capture it); shuffle the rest freely.
            ops = _operations(linker, tracer)
            order = list(ops)
            random.Random(seed).shuffle(order)
            _run(order)
    linker.sweep()
    _check(sink, rollout, root)
    assert linker.pending() == 0
    assert linker.errors == 0


def test_in_order_is_the_reference() -> None:
    sink = MemorySink()
    tracer = Tracer(sink)
    linker = SpanLinker(lambda: tracer)
    rollout = ctx.new_rollout_context()
    with ctx.use_rollout(rollout):
        root = tracer.start_span("rollout", AGENT)
        with ctx.use_span(root):
            ops = _operations(linker, tracer)
            starts, ends = ops[0::2], ops[1::2]
            _run(starts + ends[::-1])
    _check(sink, rollout, root)


def test_threads_handling_events_concurrently_give_the_same_tree() -> None:
    for seed in range(20):
        sink = MemorySink()
        tracer = Tracer(sink)
        linker = SpanLinker(lambda: tracer)
        rollout = ctx.new_rollout_context()
        with ctx.use_rollout(rollout):
            root = tracer.start_span("rollout", AGENT)
            with ctx.use_span(root):
                ops = _operations(linker, tracer)
                random.Random(seed).shuffle(ops)
                barrier = threading.Barrier(4)
                def worker(part: list, snapshot: contextvars.Context) -> None:
                    barrier.wait()
                    snapshot.run(_run, part)

                threads = [threading.Thread(target=worker, args=(ops[i::4], contextvars.copy_context()))
                           for i in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        linker.sweep()
        _check(sink, rollout, root)


def test_a_scope_that_never_starts_is_bridged_by_the_agent_key() -> None:
    """An LLM call inside a scope type nobody listens to still lands under its agent."""
    sink = MemorySink()
    tracer = Tracer(sink)
    linker = SpanLinker(lambda: tracer)
    with ctx.use_rollout(ctx.new_rollout_context()):
        linker.start("agent", None, lambda p: tracer.start_span("A", AGENT, agent_name="A", parent=p),
                     keys=(("agent", "a", "t"),))
    linker.start("llm", "unknown-scope", lambda p: tracer.start_span("llm", LLM, parent=p),
                 fallback=(("agent", "a", "t"),))
    assert linker.pending() == 3  # agent, llm waiting, placeholder for the unknown scope
    linker.end("llm", None, 10)
    linker.end("agent", None, 20)
    (agent,) = [s for s in sink.spans if s.name == "A"]
    (llm,) = [s for s in sink.spans if s.name == "llm"]
    assert llm.parent_span_id == agent.span_id and llm.agent_name == "A"


def test_a_broken_builder_is_swallowed_and_children_still_attach() -> None:
    sink = MemorySink()
    tracer = Tracer(sink)
    linker = SpanLinker(lambda: tracer)

    def broken(parent: ActiveSpan) -> ActiveSpan:
        raise RuntimeError("mapping bug")

    with ctx.use_rollout(ctx.new_rollout_context()):
        linker.start("crew", None, lambda p: tracer.start_span("crew", AGENT, parent=p))
    linker.start("task", "crew", broken)
    linker.start("llm", "task", lambda p: tracer.start_span("llm", LLM, parent=p))
    for event_id in ("llm", "task", "crew"):
        linker.end(event_id, None, 0)
    (crew,) = [s for s in sink.spans if s.name == "crew"]
    (llm,) = [s for s in sink.spans if s.name == "llm"]
    assert llm.parent_span_id == crew.span_id
    assert linker.errors == 1 and linker.pending() == 0


def test_a_close_meant_for_another_kind_of_scope_is_ignored() -> None:
    """CrewAI can report one LLM call failed twice; the second close pops its own scope stack one level too
    far and names the enclosing scope. With the expected start type checked, that scope stays open."""
    sink = MemorySink()
    tracer = Tracer(sink)
    linker = SpanLinker(lambda: tracer)
    with ctx.use_rollout(ctx.new_rollout_context()):
        linker.start("agent", None, lambda p: tracer.start_span("A", AGENT, parent=p, start_time_ns=1),
                     tag="agent_started")
    linker.end("agent", None, 5, expect="llm_call_started")  # wrong pairing: ignored
    linker.end("task", None, 5, expect="llm_call_started")  # early and wrong for what "task" turns out to be
    linker.end("task", None, 6, expect="task_started")  # early and right
    linker.start("task", "agent", lambda p: tracer.start_span("T", CHAIN, parent=p, start_time_ns=1),
                 tag="task_started")
    assert [s.name for s in sink.spans] == ["T"] and sink.spans[0].end_time_unix_nano == 6
    linker.end("agent", None, 9, expect="agent_started")
    assert [s.name for s in sink.spans] == ["T", "A"] and linker.pending() == 0


def test_children_that_waited_for_a_late_parent_keep_their_order() -> None:
    """Span trees order one producer's siblings by sequence number: children released together when
    their parent finally arrives must be created in the order they started."""
    sink = MemorySink()
    tracer = Tracer(sink)
    linker = SpanLinker(lambda: tracer)
    for i in range(5):
        linker.start(f"c{i}", "agent", lambda p, i=i: tracer.start_span(f"c{i}", LLM, parent=p))
        linker.end(f"c{i}", None, 0)
    with ctx.use_rollout(ctx.new_rollout_context()):
        linker.start("agent", None, lambda p: tracer.start_span("A", AGENT, parent=p))
    linker.end("agent", None, 0)
    children = sorted((s for s in sink.spans if s.name != "A"), key=lambda s: s.sequence)
    assert [s.name for s in children] == ["c0", "c1", "c2", "c3", "c4"]


def test_a_tool_call_message_without_content_keeps_its_tool_calls():
    from agentlightning.integrations.crewai.mapping import add_message
    from agentlightning.v1 import spans_pb2

    llm = spans_pb2.LlmPayload()
    add_message(llm.request_messages, {"role": "assistant",
                                       "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]})
    (message,) = llm.request_messages
    assert [(c.id, c.name, c.arguments) for c in message.tool_calls] == [("c1", "f", "{}")]
