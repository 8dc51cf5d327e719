"""Which CrewAI events the listener maps, and every other event class that opens or closes a scope."""
from __future__ import annotations

import importlib

from crewai.events.base_events import BaseEvent
from crewai.events.event_context import SCOPE_ENDING_EVENTS, SCOPE_STARTING_EVENTS
from crewai.events.types.agent_events import (
    AgentExecutionCompletedEvent, AgentExecutionErrorEvent, AgentExecutionStartedEvent,
    LiteAgentExecutionCompletedEvent, LiteAgentExecutionErrorEvent, LiteAgentExecutionStartedEvent,
)
from crewai.events.types.crew_events import CrewKickoffCompletedEvent, CrewKickoffFailedEvent, CrewKickoffStartedEvent
from crewai.events.types.llm_events import LLMCallCompletedEvent, LLMCallFailedEvent, LLMCallStartedEvent
from crewai.events.types.task_events import TaskCompletedEvent, TaskFailedEvent, TaskStartedEvent
from crewai.events.types.tool_usage_events import ToolUsageErrorEvent, ToolUsageFinishedEvent, ToolUsageStartedEvent

MAPPED_TYPES = {
    CrewKickoffStartedEvent, CrewKickoffCompletedEvent, CrewKickoffFailedEvent, TaskStartedEvent,
    TaskCompletedEvent, TaskFailedEvent, AgentExecutionStartedEvent, AgentExecutionCompletedEvent,
    AgentExecutionErrorEvent, LiteAgentExecutionStartedEvent, LiteAgentExecutionCompletedEvent,
    LiteAgentExecutionErrorEvent, LLMCallStartedEvent, LLMCallCompletedEvent, LLMCallFailedEvent,
    ToolUsageStartedEvent, ToolUsageFinishedEvent, ToolUsageErrorEvent,
}


def scope_event_classes() -> tuple[list[type], list[type]]:
    """Every other scope-opening/closing event class: they become pass-through nodes, so an LLM call
    inside e.g. an agent executor's flow still finds its agent."""
    importlib.import_module("crewai.events.event_types")  # loads every event class
    starts, ends, stack, seen = [], [], list(BaseEvent.__subclasses__()), set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        field = getattr(cls, "model_fields", {}).get("type")
        name = getattr(field, "default", None)
        if cls in MAPPED_TYPES or not isinstance(name, str):
            continue
        if name in SCOPE_STARTING_EVENTS:
            starts.append(cls)
        elif name in SCOPE_ENDING_EVENTS:
            ends.append(cls)
    return starts, ends
