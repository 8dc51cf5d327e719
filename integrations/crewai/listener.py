"""A CrewAI event listener that records crews, tasks, agents, LLM calls and tool uses as spans.

Crew -> AGENT (root, under the active rollout/span at kickoff), task -> CHAIN, agent execution -> AGENT
(its role is the agent name its LLM and tool spans carry), LLM call -> LLM, tool usage -> TOOL.
CrewAI runs sync handlers on a thread pool, so parents come from the ids the events carry (see
``linker``), not from the order handlers happen to run in. Every handler swallows its own errors.
Tool events are handled in ``tool_events`` (mixed in), matching tool runs to the model's requested calls.

The handlers CrewAI calls only note the event (one append); the spans are built later, in batches, by
a ``core.deferred`` worker: when the crew's kickoff completes (on CrewAI's pool thread, after CrewAI
has flushed its handlers), by ``agentlightning.flush()``, or every ``interval_s`` in a long crew.
Built one by one on pool threads woken for each event, the same spans cost 4-6x more CPU (measured).
The stream-chunk handler, which CrewAI runs on the agent's own thread, only counts chunks.
"""
from __future__ import annotations

import contextvars
import functools
import logging
from typing import Any, Callable, Optional

from crewai.events import BaseEventListener
from crewai.events.event_context import VALID_EVENT_PAIRS
from crewai.events.types.agent_events import (
    AgentExecutionCompletedEvent, AgentExecutionErrorEvent, AgentExecutionStartedEvent,
    LiteAgentExecutionCompletedEvent, LiteAgentExecutionErrorEvent, LiteAgentExecutionStartedEvent,
)
from crewai.events.types.crew_events import CrewKickoffCompletedEvent, CrewKickoffFailedEvent, CrewKickoffStartedEvent
from crewai.events.types.llm_events import (
    LLMCallCompletedEvent, LLMCallFailedEvent, LLMCallStartedEvent, LLMStreamChunkEvent,
)
from crewai.events.types.task_events import TaskCompletedEvent, TaskFailedEvent, TaskStartedEvent
from crewai.events.types.tool_usage_events import (
    ToolFailureDetectedEvent, ToolUsageErrorEvent, ToolUsageFinishedEvent, ToolUsageStartedEvent,
)

from agentlightning.core import api
from agentlightning.core.deferred import DeferredWorker
from agentlightning.core.kinds import SpanKind
from agentlightning.core.tracer import ActiveSpan, Tracer
from agentlightning.integrations.crewai import mapping
from agentlightning.integrations.crewai.calls import ToolCallBook
from agentlightning.integrations.crewai.events import scope_event_classes
from agentlightning.integrations.crewai.linker import SpanLinker
from agentlightning.integrations.crewai.tool_events import ToolEventHandlers, agent_keys

logger = logging.getLogger("agentlightning.integrations.crewai")

_MAX_ATTR = 16 * 1024
_KICKOFF_ENDS = (CrewKickoffCompletedEvent, CrewKickoffFailedEvent)


def _clip(value: Any) -> str:
    return mapping.text_of(value)[:_MAX_ATTR]


class AgentLightningListener(ToolEventHandlers, BaseEventListener):
    """Registers on ``crewai_event_bus`` when constructed; ``close()`` unregisters.

    ``tracer`` defaults to the process-wide one (``agentlightning.core.api.get_tracer()``) at each span.
    """

    def __init__(self, tracer: Optional[Tracer] = None, *, drain_timeout_s: float = 5.0) -> None:
        self._tracer_override = tracer
        self.drain_timeout_s = drain_timeout_s
        self.dropped = 0  # events not recorded because the worker's backlog was full
        self._worker = DeferredWorker(self._apply, name="agentlightning-crewai")
        self.linker = SpanLinker(self._tracer)
        self.linker.on_scope_end = self._on_scope_end
        self.calls = ToolCallBook()
        self._streams: dict[str, list] = {}  # call_id -> [first chunk timestamp, chunks]
        self._llm_starts: dict[str, str] = {}  # call_id -> its llm_call_started event id
        self._registered: list[tuple[type, Callable[..., Any]]] = []
        self._bus: Any = None
        super().__init__()

    def _tracer(self) -> Tracer:
        return self._tracer_override or api.get_tracer()

    # -- registration ------------------------------------------------------------------------------
    def setup_listeners(self, crewai_event_bus: Any) -> None:
        self._bus = crewai_event_bus
        handlers: list[tuple[type, Callable[..., Any]]] = [
            (CrewKickoffStartedEvent, self._on_crew_start),
            (CrewKickoffCompletedEvent, self._on_crew_end),
            (CrewKickoffFailedEvent, self._on_crew_end),
            (TaskStartedEvent, self._on_task_start),
            (TaskCompletedEvent, self._on_task_end),
            (TaskFailedEvent, self._on_task_end),
            (AgentExecutionStartedEvent, self._on_agent_start),
            (LiteAgentExecutionStartedEvent, self._on_agent_start),
            (AgentExecutionCompletedEvent, self._on_agent_end),
            (AgentExecutionErrorEvent, self._on_agent_end),
            (LiteAgentExecutionCompletedEvent, self._on_agent_end),
            (LiteAgentExecutionErrorEvent, self._on_agent_end),
            (LLMCallStartedEvent, self._on_llm_start),
            (LLMCallCompletedEvent, self._on_llm_end),
            (LLMCallFailedEvent, self._on_llm_end),
            (LLMStreamChunkEvent, self._on_llm_chunk),
            (ToolUsageStartedEvent, self._on_tool_start),
            (ToolUsageFinishedEvent, self._on_tool_end),
            (ToolUsageErrorEvent, self._on_tool_end),
            (ToolFailureDetectedEvent, self._on_tool_failure),
        ]
        starts, ends = scope_event_classes()
        handlers += [(cls, self._on_scope_start) for cls in starts]
        handlers += [(cls, self._on_scope_close) for cls in ends]
        for event_type, handler in handlers:
            noted = handler if event_type is LLMStreamChunkEvent else self._noting(handler, event_type in _KICKOFF_ENDS)
            crewai_event_bus.on(event_type)(noted)
            self._registered.append((event_type, noted))

    def _noting(self, handler: Callable[[Any, Any], None], drain: bool) -> Callable[[Any, Any], None]:
        """What CrewAI calls: queue ``handler(source, event)`` for the worker, with the context it was
        emitted in (a crew's span hangs under the rollout current at kickoff); a kickoff's end drains."""
        submit, worker, context = self._worker.submit, self._worker, contextvars.copy_context

        @functools.wraps(handler)
        def noted(source: Any, event: Any) -> None:  # exactly two parameters: CrewAI counts them
            if not submit((context(), handler, source, event)):
                self.dropped += 1
            if drain:
                worker.drain(self.drain_timeout_s)

        return noted

    def _apply(self, item: tuple) -> None:
        context, handler, source, event = item
        context.run(handler, source, event)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Build every noted event's span now (``agentlightning.flush()`` does this for all workers)."""
        return self._worker.drain(timeout_s)

    def close(self) -> None:
        """Unregister every handler (spans already open are left to end as their events arrive)."""
        bus, registered, self._registered = self._bus, self._registered, []
        for event_type, handler in registered:
            try:
                bus.off(event_type, handler)
            except Exception:
                logger.debug("could not unregister %s", event_type, exc_info=True)

    # -- crew / task / agent -----------------------------------------------------------------------
    def _start(self, event: Any, name: str, kind: int, agent_name: Optional[str],
               attributes: Optional[dict] = None, keys: tuple = (), fallback: tuple = (),
               fill: Optional[Callable[[ActiveSpan], None]] = None) -> None:
        start_ns = mapping.time_ns(event.timestamp)

        def build(parent: ActiveSpan) -> ActiveSpan:
            span = self._tracer().start_span(name, kind, agent_name=agent_name, parent=parent,
                                            attributes=attributes, start_time_ns=start_ns)
            if fill is not None:
                fill(span)
            return span

        self.linker.start(event.event_id, event.parent_event_id, build, keys=keys, fallback=fallback,
                          tag=event.type)

    def _end(self, event: Any, fill: Optional[Callable[[ActiveSpan], None]] = None, error: Any = None,
             started_id: Optional[str] = None) -> None:
        self.linker.end(started_id or event.started_event_id, fill, mapping.time_ns(event.timestamp), error,
                        expect=VALID_EVENT_PAIRS.get(event.type))

    def _on_crew_start(self, source: Any, event: Any) -> None:
        try:
            name = event.crew_name or "crew"
            attributes = {"crewai.crew.id": str(getattr(source, "id", "") or "")}
            if event.inputs:
                attributes["crewai.crew.inputs"] = _clip(event.inputs)
            process = getattr(source, "process", None)
            if process is not None:
                attributes["crewai.crew.process"] = str(getattr(process, "value", process))
            self._start(event, name, SpanKind.AGENT, name, attributes)
        except Exception:
            logger.debug("crew start not recorded", exc_info=True)

    def _on_crew_end(self, source: Any, event: Any) -> None:
        try:
            # CrewAI flushes its handlers before this event: anything still waiting now never gets a parent.
            self.linker.sweep()
            self._flush_failures()
            error = getattr(event, "error", None)
            output, total = getattr(event, "output", None), getattr(event, "total_tokens", 0)

            def fill(span: ActiveSpan) -> None:
                if output is not None:
                    span.set_attribute("crewai.crew.output", _clip(output))
                if total:
                    span.set_attribute("gen_ai.usage.total_tokens", int(total))

            self._end(event, fill, error)
        except Exception:
            logger.debug("crew end not recorded", exc_info=True)

    def _on_task_start(self, source: Any, event: Any) -> None:
        try:
            task = event.task
            agent = getattr(task, "agent", None)
            role = getattr(agent, "role", None)
            attributes = {"crewai.task.id": event.task_id or "",
                          "crewai.task.description": _clip(getattr(task, "description", "") or "")}
            expected = getattr(task, "expected_output", None)
            if expected:
                attributes["crewai.task.expected_output"] = _clip(expected)
            name = (getattr(task, "name", None) or event.task_name or "task")[:200]
            self._start(event, name, SpanKind.CHAIN, role, attributes, keys=(("task", event.task_id),))
        except Exception:
            logger.debug("task start not recorded", exc_info=True)

    def _on_task_end(self, source: Any, event: Any) -> None:
        try:
            output = getattr(event, "output", None)
            error = getattr(event, "error", None)
            error_type = getattr(getattr(event, "error_type", None), "__name__", None)

            def fill(span: ActiveSpan) -> None:
                if output is not None:
                    span.set_attribute("crewai.task.output", _clip(output))
                if error is not None:
                    span.record_error(str(error), error_type=error_type)

            self._end(event, fill)
        except Exception:
            logger.debug("task end not recorded", exc_info=True)

    def _on_agent_start(self, source: Any, event: Any) -> None:
        try:
            agent = getattr(event, "agent", None)
            info = getattr(event, "agent_info", None) or {}
            role = getattr(agent, "role", None) or info.get("role") or event.agent_role or "agent"
            agent_id = str(getattr(agent, "id", "") or info.get("id") or "")
            task_id = event.task_id
            if task_id is None and getattr(event, "task", None) is not None:
                task_id = str(getattr(event.task, "id", "") or "") or None
            attributes = {"crewai.agent.id": agent_id}
            goal = getattr(agent, "goal", None) or info.get("goal")
            if goal:
                attributes["crewai.agent.goal"] = _clip(goal)
            tools = getattr(event, "tools", None)
            if tools:
                attributes["crewai.agent.tools"] = [str(getattr(t, "name", t)) for t in tools]
            self._start(event, role, SpanKind.AGENT, role, attributes,
                        keys=(("agent", agent_id, task_id),), fallback=(("task", task_id),) if task_id else ())
        except Exception:
            logger.debug("agent start not recorded", exc_info=True)

    def _on_agent_end(self, source: Any, event: Any) -> None:
        try:
            output = getattr(event, "output", None)

            def fill(span: ActiveSpan) -> None:
                if output is not None:
                    span.set_attribute("crewai.agent.output", _clip(output))

            self._end(event, fill, getattr(event, "error", None))
        except Exception:
            logger.debug("agent end not recorded", exc_info=True)

    def _on_scope_start(self, source: Any, event: Any) -> None:
        try:
            self.linker.start(event.event_id, event.parent_event_id, None, fallback=agent_keys(event),
                              tag=event.type)
        except Exception:
            logger.debug("scope start not recorded", exc_info=True)

    def _on_scope_close(self, source: Any, event: Any) -> None:
        try:
            self.linker.end(event.started_event_id, None, 0, expect=VALID_EVENT_PAIRS.get(event.type))
        except Exception:
            logger.debug("scope end not recorded", exc_info=True)

    # -- LLM -----------------------------------------------------------------------------------------
    def _on_llm_start(self, source: Any, event: Any) -> None:
        try:
            if event.call_id:  # single dict operations: atomic, no lock needed
                self._llm_starts[event.call_id] = event.event_id
                if len(self._llm_starts) > 10_000:
                    self._llm_starts.pop(next(iter(self._llm_starts)), None)
            model = event.model or "llm"
            self._start(event, f"chat {model}", SpanKind.LLM, event.agent_role,
                        fallback=agent_keys(event), fill=lambda span: mapping.fill_request(span.proto.llm, event))
        except Exception:
            logger.debug("llm start not recorded", exc_info=True)

    def _on_llm_chunk(self, source: Any, event: Any) -> None:
        # Runs on the agent's own thread (CrewAI calls chunk handlers inline): keep it tiny.
        try:
            stats = self._streams.get(event.call_id)
            if stats is None:
                self._streams[event.call_id] = [event.timestamp, 1]
            else:
                stats[1] += 1
        except Exception:
            pass

    def _on_llm_end(self, source: Any, event: Any) -> None:
        try:
            stream = self._streams.pop(event.call_id, None)
            # the call's own start, whatever CrewAI's scope stack paired this end with
            started_id = self._llm_starts.pop(event.call_id, None) if event.call_id else None
            if isinstance(event, LLMCallFailedEvent):
                self._end(event, None, event.error, started_id)
                return
            scope = event.parent_event_id

            def fill(span: ActiveSpan) -> None:
                llm = span.proto.llm
                requested = mapping.fill_response(llm, event)
                if stream is not None:
                    llm.streamed = True
                    span.set_attribute("agentlightning.stream.chunks", stream[1])
                    first = mapping.time_ns(stream[0])
                    if first:
                        span.set_attribute("gen_ai.response.time_to_first_chunk_ms",
                                           max(0.0, (first - span.proto.start_time_unix_nano) / 1e6))
                self.calls.add_requested(scope, requested)

            self._end(event, fill, started_id=started_id)
        except Exception:
            logger.debug("llm end not recorded", exc_info=True)
